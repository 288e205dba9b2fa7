// Package netx owns the low-level network-namespace helpers tsim's labs are
// built from: creating and deleting named namespaces (bind mounts under
// /run/netns, compatible with `ip netns exec`), running Go code or child
// processes inside a namespace, per-namespace sysctls, finding the processes
// that live in a namespace, and the privilege check. It knows nothing of
// facts, documents or labs, and it never touches the host's own (root)
// namespace configuration.
package netx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/tsim-dev/tsim/internal/tsimerr"
)

// RunDir is where named namespaces are bind-mounted, as iproute2 expects.
const RunDir = "/run/netns"

// Path returns the bind-mount path of the named namespace.
func Path(name string) string { return filepath.Join(RunDir, name) }

// Check reports, as a tsimerr.Env error, why namespaces cannot be created
// here (not root, no CAP_SYS_ADMIN/CAP_NET_ADMIN, no netns support).
func Check() error {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return tsimerr.Envf("labs need CAP_NET_ADMIN and CAP_SYS_ADMIN; cannot read them: %w", err)
	}
	eff, err := EffectiveCaps(string(status))
	if err != nil {
		return tsimerr.Envf("labs need CAP_NET_ADMIN and CAP_SYS_ADMIN: /proc/self/status: %w", err)
	}
	if missing := MissingCaps(eff); len(missing) > 0 {
		return tsimerr.Envf("labs need CAP_NET_ADMIN and CAP_SYS_ADMIN to create network namespaces; this process lacks %s: run as root, e.g. with sudo",
			strings.Join(missing, " and "))
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return tsimerr.Envf("this kernel has no network namespace support (/proc/self/ns/net: %v); labs need CONFIG_NET_NS", err)
	}
	return nil
}

// Capabilities a lab needs (linux/capability.h).
const (
	capNetAdmin = 12
	capSysAdmin = 21
)

// EffectiveCaps reads the effective capability set (CapEff) from the text
// of /proc/PID/status.
func EffectiveCaps(status string) (uint64, error) {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return 0, fmt.Errorf("CapEff %q: %w", strings.TrimSpace(v), err)
			}
			return caps, nil
		}
	}
	return 0, errors.New("no CapEff line")
}

// MissingCaps names the capabilities a lab needs that eff lacks.
func MissingCaps(eff uint64) []string {
	var out []string
	for _, c := range []struct {
		bit  uint
		name string
	}{{capNetAdmin, "CAP_NET_ADMIN"}, {capSysAdmin, "CAP_SYS_ADMIN"}} {
		if eff&(1<<c.bit) == 0 {
			out = append(out, c.name)
		}
	}
	return out
}

// prepareRunDir makes /run/netns exist and be a shared mount point, exactly
// as `ip netns add` does, so mounts made here also appear in the mount
// namespaces `ip netns exec` creates.
func prepareRunDir() error {
	if err := os.MkdirAll(RunDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", RunDir, err)
	}
	err := unix.Mount("", RunDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("make %s shared: %w", RunDir, err)
	}
	// Not a mount point yet: bind it onto itself first (what iproute2 does).
	if err := unix.Mount(RunDir, RunDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", RunDir, err)
	}
	if err := unix.Mount("", RunDir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s shared: %w", RunDir, err)
	}
	return nil
}

// Prepare readies /run/netns once per operation.
func Prepare() error {
	if err := Check(); err != nil {
		return err
	}
	if err := prepareRunDir(); err != nil {
		return tsimerr.Env(err)
	}
	return nil
}

// Create makes a new named network namespace and returns an open handle to
// it. The calling goroutine's thread is not changed: the unshare happens on
// a dedicated locked thread that returns to its original namespace. init,
// when not nil, runs inside the new namespace first (cheaper than a second
// Do; a failing init is returned with the namespace left in place).
func Create(name string, init func() error) (netns.NsHandle, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return netns.None(), fmt.Errorf("invalid namespace name %q", name)
	}
	type result struct {
		h   netns.NsHandle
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		h, restored, err := createOnThread(name, init)
		if restored {
			// Only a thread back in its original namespace may serve other
			// goroutines; otherwise it dies with this goroutine.
			runtime.UnlockOSThread()
		}
		ch <- result{h, err}
	}()
	r := <-ch
	return r.h, r.err
}

func createOnThread(name string, init func() error) (h netns.NsHandle, restored bool, err error) {
	orig, err := netns.Get()
	if err != nil {
		return netns.None(), true, fmt.Errorf("get current namespace: %w", err)
	}
	defer orig.Close()
	p := Path(name)
	f, err := os.OpenFile(p, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return netns.None(), true, fmt.Errorf("create %s: %w", p, err)
	}
	f.Close()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		os.Remove(p)
		return netns.None(), true, fmt.Errorf("unshare network namespace: %w", err)
	}
	src := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
	mountErr := unix.Mount(src, p, "none", unix.MS_BIND, "")
	var initErr error
	if mountErr == nil && init != nil {
		initErr = init()
	}
	if err := netns.Set(orig); err != nil {
		if mountErr == nil {
			unix.Unmount(p, unix.MNT_DETACH)
		}
		os.Remove(p)
		return netns.None(), false, fmt.Errorf("return to original namespace: %w", err)
	}
	if mountErr != nil {
		os.Remove(p)
		return netns.None(), true, fmt.Errorf("bind-mount namespace %s: %w", name, mountErr)
	}
	h, err = netns.GetFromPath(p)
	if err != nil {
		Delete(name)
		return netns.None(), true, fmt.Errorf("open namespace %s: %w", name, err)
	}
	return h, true, initErr
}

// Delete unmounts and removes the named namespace. A namespace that does
// not exist is not an error. The kernel frees the namespace once no process
// or open handle refers to it any more.
func Delete(name string) error {
	p := Path(name)
	err := unix.Unmount(p, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("unmount %s: %w", p, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return nil
}

// Exists reports whether a namespace of that name is mounted.
func Exists(name string) bool {
	var st, parent unix.Stat_t
	if unix.Stat(Path(name), &st) != nil || unix.Stat(RunDir, &parent) != nil {
		return false
	}
	// A mounted nsfs file lives on a different device than the directory.
	return st.Dev != parent.Dev
}

// Inode returns the inode of the named namespace (0 if not mounted).
func Inode(name string) uint64 {
	if !Exists(name) {
		return 0
	}
	var st unix.Stat_t
	if unix.Stat(Path(name), &st) != nil {
		return 0
	}
	return st.Ino
}

// Do runs f on a thread switched into ns; whatever f starts with os/exec
// is born in ns too (a child inherits its parent thread's namespaces).
func Do(ns netns.NsHandle, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get current namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter namespace: %w", err)
			return
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: it exits with this goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("return to original namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Exec runs a program inside ns with stdin, returning its stdout and a
// wrapped error that includes stderr's first lines when it fails.
func Exec(ctx context.Context, ns netns.NsHandle, stdin []byte, name string, args ...string) (stdout, stderr []byte, err error) {
	var out, errb bytes.Buffer
	err = Do(ns, func() error {
		cmd := exec.CommandContext(ctx, name, args...)
		if stdin != nil {
			cmd.Stdin = bytes.NewReader(stdin)
		}
		cmd.Stdout = &out
		cmd.Stderr = &errb
		return cmd.Run()
	})
	if err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg != "" {
			err = fmt.Errorf("%s: %w: %s", name, err, msg)
		} else {
			err = fmt.Errorf("%s: %w", name, err)
		}
	}
	return out.Bytes(), errb.Bytes(), err
}

// SetSysctl writes a net.* sysctl of the calling thread's namespace (call
// it inside Do). /proc/sys/net resolves against the opener's namespace, so
// the thread must already be switched.
func SetSysctl(key, value string) error {
	if !strings.HasPrefix(key, "net.") || strings.Contains(key, "..") {
		return fmt.Errorf("sysctl %s: only net.* keys are per namespace", key)
	}
	p := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	// The keys whose write spins on the kernel's rtnl lock (forwarding,
	// disable_ipv6) are read first and left alone when unchanged; for the
	// others a read costs as much as the write.
	if strings.HasSuffix(key, "forward") || strings.HasSuffix(key, ".forwarding") || strings.HasSuffix(key, ".disable_ipv6") {
		if cur, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(cur)) == strings.TrimSpace(value) {
			return nil
		}
	}
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

// PidsIn returns the pids of processes with at least one thread in a
// network namespace whose inode is in inodes (excluding this process).
func PidsIn(inodes map[uint64]bool) []int {
	if len(inodes) == 0 {
		return nil
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if inNS(fmt.Sprintf("/proc/%d/ns/net", pid), inodes) {
			pids = append(pids, pid)
			continue
		}
		// A thread of a multi-threaded process may sit in the namespace
		// while the main thread does not (a tool that setns'd one thread).
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil || len(tasks) <= 1 {
			continue
		}
		for _, t := range tasks {
			if inNS(fmt.Sprintf("/proc/%d/task/%s/ns/net", pid, t.Name()), inodes) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

func inNS(path string, inodes map[uint64]bool) bool {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return false
	}
	return inodes[st.Ino]
}

// ProcStart returns a process's start time (clock ticks since boot, field
// 22 of /proc/PID/stat); together with the pid it names a process even
// after the pid is reused. ok is false when the process does not exist.
func ProcStart(pid int) (start uint64, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name (field 2) may contain spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(string(b[i+1:]))
	// fields[0] is field 3 (state); starttime is field 22.
	if len(fields) < 20 {
		return 0, false
	}
	start, err = strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, false
	}
	return start, true
}

// Alive reports whether pid is running and is the same process that had
// start time start (0 = any).
func Alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	s, ok := ProcStart(pid)
	if !ok {
		return false
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && bytes.HasPrefix(bytes.TrimSpace(b[i+1:]), []byte("Z")) {
			return false // a zombie owns nothing any more
		}
	}
	return start == 0 || s == start
}
