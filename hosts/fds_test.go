package hosts

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
)

// starFacts is n routers on one shared segment 10.99.0.0/24 (a bridge of
// n ports, as a transit network is), each with its own LAN 10.100.K.0/24.
func starFacts(n int) *facts.Facts {
	f := &facts.Facts{Source: "test:star", Digest: fmt.Sprintf("sha256:star%d", n), Format: "builtin"}
	for k := 1; k <= n; k++ {
		file := fmt.Sprintf("r%d_facts.txt", k)
		iface := func(line int, name, addr string) *facts.Interface {
			return &facts.Interface{Name: name, Kind: "ether", Flags: []string{"BROADCAST", "MULTICAST", "UP", "LOWER_UP"},
				State: "UP", MTU: 1500, Pos: facts.Pos{File: file, Line: line},
				Addrs: []*facts.IfAddr{{Prefix: netip.MustParsePrefix(addr), Scope: "global", Pos: facts.Pos{File: file, Line: line + 1}}}}
		}
		f.Routers = append(f.Routers, &facts.Router{Name: fmt.Sprintf("r%d", k), File: file,
			Interfaces: []*facts.Interface{iface(10, "eth0", fmt.Sprintf("10.99.0.%d/24", k)), iface(13, "eth1", fmt.Sprintf("10.100.%d.1/24", k))},
			Tables:     []*facts.Table{{ID: facts.TableMain, Name: "main"}}})
	}
	return f
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestUpHoldsFewDescriptors: a lab holds a file descriptor per namespace
// only while a worker builds it, so a lab of more namespaces than the
// descriptor limit allows is built (a 500-router `--scope all` lab failed
// with "too many open files" under RLIMIT_NOFILE 1024 when every
// namespace's handle and netlink sockets stayed open: 4 per namespace),
// and none is left open when Up returns.
func TestUpHoldsFewDescriptors(t *testing.T) {
	needRoot(t)
	const routers, limit = 60, 128 // 63 namespaces: 252 descriptors the old way
	f := starFacts(routers)
	d := doc.New()
	d.Flows = []*doc.Flow{{ID: "f1", Src: "10.100.1.10", Dst: "10.100.2.10", Proto: "udp", DPort: 9999}}
	opts := testOpts(t)
	opts.Scope, opts.Workers = ScopeAll, 8

	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	netnsList(t) // the runtime's poller (epoll, kept for good) is made by the first exec
	before := openFDs(t)
	if before+40 > limit {
		t.Skipf("the test process already has %d descriptors open", before)
	}
	low := old
	low.Cur = limit
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	lab, err := Up(context.Background(), f, d, opts)
	if rerr := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); rerr != nil {
		t.Error(rerr)
	}
	if err != nil {
		t.Fatalf("Up of %d routers under RLIMIT_NOFILE %d: %v", routers, limit, err)
	}
	defer func() {
		if err := Down(context.Background(), lab.ID, opts); err != nil {
			t.Error(err)
		}
	}()
	if len(lab.Routers) != routers || len(lab.Hosts) != 2 {
		t.Errorf("lab has %d routers and %d hosts, want %d and 2", len(lab.Routers), len(lab.Hosts), routers)
	}
	if after := openFDs(t); after > before {
		t.Errorf("%d descriptors open after Up, %d before: Up left %d open", after, before, after-before)
	}
	// Every interface was made: a fabric end per router interface and
	// per host; every bridge joins at least two of them (an interface
	// alone on its segment gets none).
	out, err := exec.Command("ip", "-n", lab.Fabric, "-o", "link", "show", "type", "veth").Output()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(out), "\n"); n != 2*routers+2 {
		t.Errorf("fabric has %d veth ends, want %d", n, 2*routers+2)
	}
	ports := map[string]int{}
	for _, f := range strings.Fields(string(out)) {
		if strings.HasPrefix(f, "br") && f != "brd" {
			ports[f]++
		}
	}
	brs, err := exec.Command("ip", "-n", lab.Fabric, "-o", "link", "show", "type", "bridge").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(brs)), "\n") {
		if fs := strings.Fields(l); len(fs) > 1 {
			if br := strings.TrimSuffix(fs[1], ":"); ports[br] < 2 {
				t.Errorf("bridge %s has %d ports, want 2 or more", br, ports[br])
			}
		}
	}
}
