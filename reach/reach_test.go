package reach

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/netx"
	"github.com/tsim-dev/tsim/internal/tsimerr"
)

func TestRunBadInput(t *testing.T) {
	f := loadFacts(t, "")
	lab := &doc.Lab{ID: "abc123", Routers: []*doc.LabRouter{}, Hosts: []*doc.LabHost{}}
	flows := []*doc.Flow{flow("f1", "10.1.10.5", "10.1.50.10", "tcp", 443)}
	ref := &doc.FactsRef{Source: f.Source, Digest: f.Digest}
	cases := []struct {
		name string
		d    *doc.Document
		want string
	}{
		{"no lab", &doc.Document{Schema: doc.Schema, Facts: ref, Flows: flows}, "tsim hosts up"},
		{"removed lab", &doc.Document{Schema: doc.Schema, Facts: ref, Flows: flows,
			Lab: &doc.Lab{ID: "abc123", Removed: true}}, "was removed"},
		{"no flows", &doc.Document{Schema: doc.Schema, Facts: ref, Lab: lab}, `"flows"`},
		{"other facts", &doc.Document{Schema: doc.Schema, Facts: &doc.FactsRef{Source: "x", Digest: "sha256:00"}, Flows: flows, Lab: lab},
			"built from other facts"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Run(context.Background(), f, c.d, Options{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if code := tsimerr.ExitCode(err); code != tsimerr.ExitInput {
				t.Errorf("exit code %d, want %d", code, tsimerr.ExitInput)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			if c.d.Reach != nil {
				t.Errorf("reach filled on error")
			}
		})
	}
}

// TestRunLabGone: a document whose lab namespaces are gone gets a clear
// error naming the missing namespace, not a hang or a BLOCKED.
func TestRunLabGone(t *testing.T) {
	needRoot(t)
	f := loadFacts(t, "")
	name := fmt.Sprintf("tsim-gone%d-hq-gw", os.Getpid())
	d := &doc.Document{Schema: doc.Schema, Facts: &doc.FactsRef{Source: f.Source, Digest: f.Digest},
		Flows: []*doc.Flow{flow("f1", "10.1.10.5", "10.1.50.10", "tcp", 443)},
		Lab:   &doc.Lab{ID: "gone", Routers: []*doc.LabRouter{{Name: "hq-gw", Netns: name}}, Hosts: []*doc.LabHost{}}}
	err := Run(context.Background(), f, d, Options{})
	if err == nil || !strings.Contains(err.Error(), "no longer exists") || !strings.Contains(err.Error(), name) {
		t.Fatalf("error %v, want one saying the lab no longer exists and naming %s", err, name)
	}
}

// TestListenerCannotBind: when the destination's port is taken, the flow
// is UNKNOWN with the reason, quickly; nothing is reported BLOCKED.
func TestListenerCannotBind(t *testing.T) {
	needRoot(t)
	f := loadFacts(t, "")
	d := labDoc(t, f, []*doc.Flow{flow("f1", "10.1.10.5", "10.1.50.10", "tcp", 443)})
	var dst *doc.LabHost
	for _, h := range d.Lab.Hosts {
		if h.IP == "10.1.50.10" {
			dst = h
		}
	}
	if dst == nil {
		t.Fatalf("the lab has no host for 10.1.50.10: %+v", d.Lab.Hosts)
	}
	h, err := netns.GetFromPath(netx.Path(dst.Netns))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var squat net.Listener
	if err := netx.Do(h, func() error {
		var err error
		squat, err = net.Listen("tcp4", "10.1.50.10:443")
		return err
	}); err != nil {
		t.Fatalf("occupy the port: %v", err)
	}
	defer squat.Close()
	t0 := time.Now()
	if err := Run(context.Background(), f, d, Options{Log: testLog(t), Timeout: testTimeout}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if took := time.Since(t0); took > 5*time.Second {
		t.Errorf("Run took %v", took)
	}
	e := d.Reach[0].E2E
	if e.Verdict != doc.Unknown || !strings.Contains(e.Reason, "cannot listen") || !strings.Contains(e.Reason, "address already in use") {
		t.Errorf("end to end %s (%s), want UNKNOWN saying the listener cannot bind", e.Verdict, e.Reason)
	}
	if e.BlockedBy != nil {
		t.Errorf("blocked_by set for a probe that never ran: %+v", e.BlockedBy)
	}
	// The per-router harness has its own listeners, on its own sides.
	for _, v := range d.Reach[0].Routers {
		if v.Verdict != doc.Allowed {
			t.Errorf("router %s: %s (%s), want ALLOWED", v.Router, v.Verdict, v.Reason)
		}
	}
}

// labState is what Run may touch in a lab: the fabric's links and their
// bridges, every host's addresses and the sysctls Run tunes, the lab's
// namespaces, and this process's open files and goroutines.
func labState(t *testing.T, d *doc.Document) string {
	t.Helper()
	var lines []string
	fab, err := netns.GetFromPath(netx.Path(d.Lab.Fabric))
	if err != nil {
		t.Fatal(err)
	}
	defer fab.Close()
	nl, err := netlink.NewHandleAt(fab)
	if err != nil {
		t.Fatal(err)
	}
	links, err := nl.LinkList()
	nl.Close()
	if err != nil {
		t.Fatal(err)
	}
	names := map[int]string{}
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	for _, l := range links {
		lines = append(lines, fmt.Sprintf("fabric %s master %s", l.Attrs().Name, names[l.Attrs().MasterIndex]))
	}
	seen := map[string]bool{}
	for _, hst := range d.Lab.Hosts {
		if seen[hst.Netns] {
			continue
		}
		seen[hst.Netns] = true
		h, err := netns.GetFromPath(netx.Path(hst.Netns))
		if err != nil {
			t.Fatal(err)
		}
		hn, err := netlink.NewHandleAt(h)
		if err != nil {
			t.Fatal(err)
		}
		as, _ := hn.AddrList(nil, netlink.FAMILY_V4)
		hn.Close()
		for _, a := range as {
			lines = append(lines, fmt.Sprintf("host %s addr %s", hst.Netns, a.IPNet))
		}
		netx.Do(h, func() error {
			for _, k := range []string{"ipv4/tcp_synack_retries", "ipv4/conf/all/arp_announce", "ipv4/conf/eth0/arp_announce"} {
				b, _ := os.ReadFile("/proc/sys/net/" + k)
				lines = append(lines, fmt.Sprintf("host %s %s=%s", hst.Netns, k, strings.TrimSpace(string(b))))
			}
			return nil
		})
		h.Close()
	}
	for _, n := range netnsList(t) {
		// Other processes' namespaces come and go; they are none of ours.
		if strings.HasPrefix(n, "tsim-"+d.Lab.ID+"-") {
			lines = append(lines, "netns "+n)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// cancelOnHarness cancels as soon as a router's port leaves the fabric
// (the per-router harness has taken it).
func cancelOnHarness(ctx context.Context, t *testing.T, fabric string, cancel func()) {
	h, err := netns.GetFromPath(netx.Path(fabric))
	if err != nil {
		t.Error(err)
		return
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Error(err)
		return
	}
	defer nl.Close()
	links, _ := nl.LinkList()
	n := len(links)
	for ctx.Err() == nil {
		if links, _ := nl.LinkList(); len(links) < n {
			cancel()
			return
		}
		time.Sleep(200 * time.Microsecond)
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestLeavesNothing: after Run, also an interrupted one, the lab is as it
// was (ports back on their bridges, no harness bridge or veth, no address
// or sysctl left changed), no namespace is added, and no socket, file or
// goroutine of Run is left in this process.
func TestLeavesNothing(t *testing.T) {
	needRoot(t)
	f := loadFacts(t, "")
	flows := []*doc.Flow{
		flow("a", "10.1.10.5", "10.1.50.10", "tcp", 443),
		flow("b", "10.1.10.5", "10.1.50.10", "tcp", 3306),
		&doc.Flow{ID: "c", Src: "192.0.2.50", Dst: "203.0.113.5", Proto: "tcp", DPort: 443, Ingress: "inet-gw:eth0"},
		flow("d", "10.1.10.5", "10.3.100.10", "icmp", 0),
		flow("e", "10.1.10.5", "10.1.20.10", "udp", 69),
	}
	d := labDoc(t, f, flows)
	before := labState(t, d)
	fds, gor := openFDs(t), runtime.NumGoroutine()
	t0 := time.Now()
	if err := Run(context.Background(), f, d, Options{Log: testLog(t), Timeout: testTimeout}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	full := time.Since(t0)
	if after := labState(t, d); after != before {
		t.Errorf("lab changed by Run:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// Interrupted early (end-to-end probes) and once a port has left the
	// fabric (router harnesses).
	for _, when := range []string{"early", "harness"} {
		ctx, cancel := context.WithCancel(context.Background())
		if when == "early" {
			time.AfterFunc(full/10, cancel)
		} else {
			go cancelOnHarness(ctx, t, d.Lab.Fabric, cancel)
		}
		d.Reach = nil
		err := Run(ctx, f, d, Options{Log: testLog(t), Timeout: testTimeout})
		cancel()
		t.Logf("Run interrupted (%s) of %v: %v", when, full, err)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run interrupted %s: %v, want context.Canceled", when, err)
		}
		if d.Reach != nil {
			t.Errorf("Run interrupted %s filled reach", when)
		}
		if after := labState(t, d); after != before {
			t.Errorf("lab changed by a Run interrupted %s:\nbefore:\n%s\nafter:\n%s", when, before, after)
		}
	}
	// Sockets close asynchronously in the runtime's poller; give the
	// count a moment to settle (this is a check, not a wait in Run).
	deadline := time.Now().Add(2 * time.Second)
	for (openFDs(t) > fds || runtime.NumGoroutine() > gor+2) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := openFDs(t); n > fds {
		t.Errorf("%d file descriptors open after Run, %d before", n, fds)
	}
	if n := runtime.NumGoroutine(); n > gor+2 {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after Run, %d before:\n%s", n, gor, buf[:runtime.Stack(buf, true)])
	}
}

func TestParseSnmp(t *testing.T) {
	s := "Ip: Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams InUnknownProtos InDiscards InDelivers\n" +
		"Ip: 1 64 17 0 0 5 0 0 12\nIcmp: InMsgs\nIcmp: 3\n"
	st, err := parseSnmp(s)
	if err != nil {
		t.Fatal(err)
	}
	if st != (ipStats{InReceives: 17, ForwDatagrams: 5, InDelivers: 12}) {
		t.Errorf("got %+v", st)
	}
	if _, err := parseSnmp("Tcp: x\nTcp: 1\n"); err == nil {
		t.Error("no error without Ip: lines")
	}
	if c, _ := routingCause(ipStats{InReceives: 2}.sub(ipStats{InReceives: 1})); c != causeBlackhole {
		t.Errorf("received and went nowhere: cause %q", c)
	}
	if c, _ := routingCause(ipStats{InReceives: 1, ForwDatagrams: 1}.sub(ipStats{})); c != "" {
		t.Errorf("forwarded: cause %q", c)
	}
}

func TestParseSave(t *testing.T) {
	out := "# Generated\n*filter\n:INPUT ACCEPT [3:180]\n:FORWARD DROP [7:420]\n:X - [0:0]\n" +
		"[1:60] -A FORWARD -j X\n[2:120] -A X -p tcp -j ACCEPT\n[0:0] -A X -j RETURN\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n"
	c, err := parseSave([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if c["filter"]["FORWARD"].Policy != (Count{7, 420}) || c["filter"]["INPUT"].Policy != (Count{3, 180}) {
		t.Errorf("policies: %+v %+v", c["filter"]["FORWARD"], c["filter"]["INPUT"])
	}
	if got := c["filter"]["X"].Rules; len(got) != 2 || got[0] != (Count{2, 120}) {
		t.Errorf("X rules %+v", got)
	}
	if _, ok := c["nat"]["PREROUTING"]; !ok {
		t.Error("nat PREROUTING missing")
	}
	for _, bad := range []string{"*filter\n[1:2 -A X\n", "*filter\n[1:2] -I X\n", "*filter\n:X\n"} {
		if _, err := parseSave([]byte(bad)); err == nil {
			t.Errorf("no error for %q", bad)
		}
	}
}

func TestRouteVia(t *testing.T) {
	h := &doc.Hop{Out: "eth2", Steps: []*doc.Step{
		{Kind: doc.StepRoute, Detail: "via 10.0.0.1 dev eth0", Gateway: "10.0.0.1", Device: "eth0"},
		{Kind: doc.StepRoute, Detail: "no route matched"},
		{Kind: doc.StepRoute, Text: "default via 198.51.100.1 dev eth2 proto static", Detail: "via 198.51.100.1 dev eth2", Gateway: "198.51.100.1", Device: "eth2"},
		// A suppressed route names a gateway in its text but is not taken.
		{Kind: doc.StepRoute, Text: "default via 192.0.2.1 dev eth2", Detail: "suppressed: prefix length 0 <= suppress_prefixlength 0; continue with the next rule"},
	}}
	if got := routeVia(h); got != netip.MustParseAddr("198.51.100.1") {
		t.Errorf("routeVia = %v", got)
	}
	if got := routeVia(&doc.Hop{Out: "eth1", Steps: []*doc.Step{{Kind: doc.StepRoute, Detail: "dev eth1", Device: "eth1"}}}); got.IsValid() {
		t.Errorf("routeVia without gateway = %v", got)
	}
}

func TestExitCode(t *testing.T) {
	r := func(v string) *doc.Reach { return &doc.Reach{E2E: &doc.E2E{Verdict: v}} }
	cases := []struct {
		rs   []*doc.Reach
		want int
	}{
		{[]*doc.Reach{r(doc.Reachable), r(doc.Reachable)}, tsimerr.ExitOK},
		{[]*doc.Reach{r(doc.Reachable), r(doc.Unreachable)}, tsimerr.ExitNegative},
		{[]*doc.Reach{r(doc.Unknown)}, tsimerr.ExitNegative},
		{[]*doc.Reach{{}}, tsimerr.ExitNegative},
		{nil, tsimerr.ExitNegative},
	}
	for i, c := range cases {
		if got := ExitCode(c.rs); got != c.want {
			t.Errorf("case %d: %d, want %d", i, got, c.want)
		}
	}
}
