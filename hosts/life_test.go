package hosts

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/netx"
	"github.com/tsim-dev/tsim/internal/tsimerr"
)

func hostNS(t *testing.T, lab *doc.Lab, ip string) string {
	t.Helper()
	for _, h := range lab.Hosts {
		if h.IP == ip {
			return h.Netns
		}
	}
	t.Fatalf("lab %s has no host %s: %+v", lab.ID, ip, lab.Hosts)
	return ""
}

// counters returns the packet counter of every rule of a chain, from
// iptables-save -c inside ns.
func counters(t *testing.T, ns, table, chain string) []uint64 {
	t.Helper()
	out, _, err := netx.Exec(context.Background(), mustNS(ns), nil, "iptables-save", "-c", "-t", table)
	if err != nil {
		t.Fatalf("iptables-save in %s: %v", ns, err)
	}
	re := regexp.MustCompile(`^\[(\d+):\d+\] -A ` + regexp.QuoteMeta(chain) + ` `)
	var c []uint64
	for _, l := range strings.Split(string(out), "\n") {
		if m := re.FindStringSubmatch(l); m != nil {
			n, _ := strconv.ParseUint(m[1], 10, 64)
			c = append(c, n)
		}
	}
	return c
}

// udpProbe sends n datagrams from the src host to dst:port and returns
// how many the dst host received.
func udpProbe(t *testing.T, srcNS, dstNS, dst string, port, n int) int {
	t.Helper()
	var ln *net.UDPConn
	err := netx.Do(mustNS(dstNS), func() (err error) {
		ln, err = net.ListenUDP("udp4", &net.UDPAddr{Port: port})
		return err
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", dstNS, err)
	}
	defer ln.Close()
	var c *net.UDPConn
	err = netx.Do(mustNS(srcNS), func() (err error) {
		c, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP(dst), Port: port})
		return err
	})
	if err != nil {
		t.Fatalf("dial in %s: %v", srcNS, err)
	}
	defer c.Close()
	got := 0
	buf := make([]byte, 64)
	for i := 0; i < n; i++ {
		c.Write([]byte("probe"))
		ln.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := ln.Read(buf); err == nil {
			got++
		}
	}
	return got
}

func TestTwoLabsIsolated(t *testing.T) {
	needRoot(t)
	f := tinyFacts()
	opts := testOpts(t)
	a := upT(t, f, tinyDoc(), opts)
	b := upT(t, f, tinyDoc(), opts)
	if a.ID == b.ID {
		t.Fatal("two labs share an id")
	}
	for _, l := range []*doc.Lab{a, b} {
		for _, r := range l.Routers {
			if len(r.Refused) > 0 {
				t.Fatalf("%s refused: %+v", r.Name, r.Refused[0])
			}
		}
	}
	r1a, r1b := labRouter(t, a, "r1").Netns, labRouter(t, b, "r1").Netns
	beforeA, beforeB := counters(t, r1a, "filter", "FORWARD"), counters(t, r1b, "filter", "FORWARD")
	const n = 5
	if got := udpProbe(t, hostNS(t, a, "10.0.1.10"), hostNS(t, a, "10.0.2.10"), "10.0.2.10", 9999, n); got != n {
		t.Fatalf("lab A delivered %d of %d probes", got, n)
	}
	afterA, afterB := counters(t, r1a, "filter", "FORWARD"), counters(t, r1b, "filter", "FORWARD")
	if len(afterA) != 2 || afterA[0]-beforeA[0] != n {
		t.Errorf("lab A r1 FORWARD counters %v -> %v, want +%d on rule 1", beforeA, afterA, n)
	}
	if fmt.Sprint(afterB) != fmt.Sprint(beforeB) {
		t.Errorf("lab B counters moved by lab A's probes: %v -> %v", beforeB, afterB)
	}
	// A blocked port: dropped by r1's policy in lab B, and A is untouched.
	if got := udpProbe(t, hostNS(t, b, "10.0.1.10"), hostNS(t, b, "10.0.2.10"), "10.0.2.10", 7777, 2); got != 0 {
		t.Errorf("udp/7777 crossed r1 in lab B (%d probes)", got)
	}
	if again := counters(t, r1a, "filter", "FORWARD"); fmt.Sprint(again) != fmt.Sprint(afterA) {
		t.Errorf("lab A counters moved by lab B's probes: %v -> %v", afterA, again)
	}
	ls, err := List(opts)
	if err != nil || len(ls) != 2 {
		t.Fatalf("List: %v %+v", err, ls)
	}
	for _, l := range ls {
		if l.Stale || !l.Complete || l.OwnerPID != os.Getpid() || len(l.Routers) != 3 || len(l.Hosts) != 2 {
			t.Errorf("List entry %+v", l)
		}
	}
	ids, err := DownAll(context.Background(), opts)
	if err != nil || len(ids) != 2 {
		t.Fatalf("DownAll: %v %v", ids, err)
	}
}

func TestInterruptedUpCleansUp(t *testing.T) {
	needRoot(t)
	f := loadCorpus(t)
	opts := testOpts(t)
	var last string
	record := opts.onID
	opts.onID = func(id string) { last = id; record(id) }
	interrupted := 0
	for _, d := range []time.Duration{time.Millisecond, 10 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond, 160 * time.Millisecond} {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		lab, err := Up(ctx, f, doc.New(), opts)
		cancel()
		if err == nil {
			// Finished before the deadline: fine, remove it.
			if err := Down(context.Background(), lab.ID, opts); err != nil {
				t.Fatal(err)
			}
			continue
		}
		interrupted++
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("after %v: error %v is not the context's", d, err)
		}
		if left := labNamespaces(t, last); len(left) != 0 {
			t.Errorf("after %v: namespaces left behind: %v", d, left)
		}
		if ents, _ := os.ReadDir(opts.dir()); len(ents) != 0 {
			t.Errorf("after %v: registry left behind: %v", d, ents)
		}
	}
	if interrupted == 0 {
		t.Error("no Up was interrupted; the test proved nothing")
	}
}

// TestMain lets the lifecycle tests run the test binary again with
// TSIM_HOSTS_HELPER set, to act as a separate `hosts up` process.
func TestMain(m *testing.M) {
	if mode := os.Getenv("TSIM_HOSTS_HELPER"); mode != "" {
		helperProcess(mode)
	}
	os.Exit(m.Run())
}

// helperProcess builds a tiny lab and reports it on stdout; "up-and-wait"
// then waits to be killed.
func helperProcess(mode string) {
	opts := Options{RegistryDir: os.Getenv("TSIM_HOSTS_REGISTRY")}
	lab, err := Up(context.Background(), tinyFacts(), tinyDoc(), opts)
	if mode == "up-and-wait" && err == nil {
		fmt.Printf("READY %s\n", lab.ID)
		select {} // until SIGKILLed
	}
	fmt.Printf("ERR %d %v\n", tsimerr.ExitCode(err), err)
	os.Exit(0)
}

func helper(t *testing.T, mode, registry string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TSIM_HOSTS_HELPER="+mode, "TSIM_HOSTS_REGISTRY="+registry)
	return cmd
}

// killedLab starts a helper that builds a lab, SIGKILLs it, and returns
// the orphaned lab's id.
func killedLab(t *testing.T, opts Options) string {
	t.Helper()
	cmd := helper(t, "up-and-wait", opts.RegistryDir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "READY ") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper: %q %v", line, err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	id := strings.TrimSpace(strings.TrimPrefix(line, "READY "))
	opts.onID(id)
	return id
}

func labNamespaces(t *testing.T, id string) []string {
	var out []string
	for _, n := range netnsList(t) {
		if strings.HasPrefix(n, "tsim-"+id+"-") {
			out = append(out, n)
		}
	}
	return out
}

func TestKilledUpIsReaped(t *testing.T) {
	needRoot(t)
	opts := testOpts(t)

	// Reaped by DownStale.
	id := killedLab(t, opts)
	if len(labNamespaces(t, id)) == 0 {
		t.Fatalf("killed helper's lab %s has no namespaces; nothing to reap", id)
	}
	ls, _ := List(opts)
	if len(ls) != 1 || ls[0].ID != id || !ls[0].Stale {
		t.Fatalf("List after SIGKILL: %+v", ls)
	}
	ids, err := DownStale(context.Background(), opts)
	if err != nil || len(ids) != 1 || ids[0] != id {
		t.Fatalf("DownStale = %v, %v; want [%s]", ids, err, id)
	}
	if left := labNamespaces(t, id); len(left) != 0 {
		t.Errorf("DownStale left %v", left)
	}

	// Reaped by the next Up; a live lab is not.
	live := upT(t, tinyFacts(), tinyDoc(), opts)
	id = killedLab(t, opts)
	next := upT(t, tinyFacts(), tinyDoc(), opts)
	if left := labNamespaces(t, id); len(left) != 0 {
		t.Errorf("Up did not reap the killed lab: %v", left)
	}
	if len(labNamespaces(t, live.ID)) == 0 || len(labNamespaces(t, next.ID)) == 0 {
		t.Errorf("a live lab was reaped")
	}
	if ents, _ := filepath.Glob(filepath.Join(opts.dir(), id+".*")); len(ents) != 0 {
		t.Errorf("registry of reaped lab left: %v", ents)
	}
}

func TestNotRootIsEnvError(t *testing.T) {
	needRoot(t)
	// Run the helper as nobody: it must fail with exit code 3 and say why.
	dir := t.TempDir()
	bin := filepath.Join(dir, "hosts.test")
	src, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		t.Fatal(err)
	}
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = []string{"TSIM_HOSTS_HELPER=up", "TSIM_HOSTS_REGISTRY=" + filepath.Join(dir, "labs"), "PATH=" + os.Getenv("PATH")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper as nobody: %v (%s)", err, out)
	}
	s := string(out)
	if !strings.Contains(s, "ERR 3 ") || !strings.Contains(s, "root") {
		t.Errorf("as nobody: %q, want exit code 3 and a message naming root", s)
	}
}

func TestDownKillsProcessesFirst(t *testing.T) {
	needRoot(t)
	opts := testOpts(t)
	lab := upT(t, tinyFacts(), tinyDoc(), opts)
	// A long-lived process inside a host and one inside a router, as a
	// probe listener or an engineer's shell would be.
	var cmds []*exec.Cmd
	for _, ns := range []string{hostNS(t, lab, "10.0.2.10"), labRouter(t, lab, "r1").Netns} {
		cmd := exec.Command("sleep", "300")
		if err := netx.Do(mustNS(ns), cmd.Start); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	done := make(chan error, len(cmds))
	for _, c := range cmds {
		go func() { done <- c.Wait() }()
	}
	if err := Down(context.Background(), lab.ID, opts); err != nil {
		t.Fatal(err)
	}
	for range cmds {
		select {
		case err := <-done:
			if err == nil {
				t.Error("sleep exited cleanly; it should have been killed")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a process inside the lab survived Down")
		}
	}
	if left := labNamespaces(t, lab.ID); len(left) != 0 {
		t.Errorf("left %v", left)
	}
}
