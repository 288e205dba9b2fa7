package hosts

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/netx"
	"github.com/tsim-dev/tsim/trace"
)

// These tests need no privileges.

func TestPlanSegments(t *testing.T) {
	f := tinyFacts()
	// r3 gets a second interface with two subnets: it joins them into one
	// segment; a point-to-point pair shares one segment; lo, an unaddressed
	// kernel tunnel and a too-long name make no veth.
	r3 := f.Router("r3")
	r3.Interfaces = append(r3.Interfaces,
		&facts.Interface{Name: "eth1", Addrs: []*facts.IfAddr{
			{Prefix: netip.MustParsePrefix("10.9.0.1/24")}, {Prefix: netip.MustParsePrefix("10.9.1.1/24")}}},
		&facts.Interface{Name: "ppp0", Addrs: []*facts.IfAddr{
			{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Peer: netip.MustParsePrefix("192.0.2.2/32")}}},
		&facts.Interface{Name: "lo", Kind: "loopback", Addrs: []*facts.IfAddr{{Prefix: netip.MustParsePrefix("127.0.0.1/8")}}},
		&facts.Interface{Name: "tunl0"},
		&facts.Interface{Name: "averyveryverylongname0", Pos: facts.Pos{File: "r3_facts.txt", Line: 40}},
	)
	r1 := f.Router("r1")
	r1.Interfaces = append(r1.Interfaces, &facts.Interface{Name: "ppp1", Addrs: []*facts.IfAddr{
		{Prefix: netip.MustParsePrefix("192.0.2.2/32"), Peer: netip.MustParsePrefix("192.0.2.1/32")}}})
	p, err := buildPlan("abc123", f.Routers)
	if err != nil {
		t.Fatal(err)
	}
	if p.fabric != "tsim-abc123-fabric" || p.routers[0].ns != "tsim-abc123-r1" {
		t.Errorf("names: fabric %s, r1 %s", p.fabric, p.routers[0].ns)
	}
	seg := map[string]string{} // router:iface -> segment key
	for _, rp := range p.routers {
		for _, ip := range rp.ifaces {
			if len(ip.fabric) > ifNameMax {
				t.Errorf("fabric name %q too long", ip.fabric)
			}
			k := ""
			if ip.seg != nil {
				k = strings.Join(ip.seg.subnet, ",")
			}
			seg[rp.r.Name+":"+ip.ifc.Name] = k
		}
	}
	tests := []struct{ iface, want string }{
		{"r1:eth0", "10.0.1.0/24"},
		{"r1:eth1", "10.0.12.0/30"},
		{"r2:eth0", "10.0.12.0/30"},
		{"r2:eth1", "10.0.2.0/24"},
		{"r3:eth0", "10.0.2.0/24"},
		{"r3:eth1", "10.9.0.0/24,10.9.1.0/24"},
		{"r3:ppp0", "p2p:192.0.2.1-192.0.2.2"},
		{"r1:ppp1", "p2p:192.0.2.1-192.0.2.2"},
	}
	for _, tc := range tests {
		if got, ok := seg[tc.iface]; !ok || got != tc.want {
			t.Errorf("%s: segment %q (present %v), want %q", tc.iface, got, ok, tc.want)
		}
	}
	for _, no := range []string{"r3:lo", "r3:tunl0", "r3:averyveryverylongname0"} {
		if _, ok := seg[no]; ok {
			t.Errorf("%s got a veth", no)
		}
	}
	if rf := p.routers[2].refused; len(rf) != 1 || rf[0].Line != "r3_facts.txt:40" || !strings.Contains(rf[0].Error, "IFNAMSIZ") {
		t.Errorf("r3 refusals %+v", rf)
	}
	// Bridge names are content-addressed: the same in another lab.
	q, _ := buildPlan("zzz999", f.Routers)
	for i := range p.segments {
		if p.segments[i].bridge != q.segments[i].bridge || len(p.segments[i].bridge) > ifNameMax {
			t.Errorf("bridge %s vs %s", p.segments[i].bridge, q.segments[i].bridge)
		}
	}
}

func TestAppendForm(t *testing.T) {
	tests := []struct{ chain, text, want string }{
		{"INPUT", "-A INPUT -p tcp --dport 22 -j ACCEPT", "-A INPUT -p tcp --dport 22 -j ACCEPT"},
		{"FWD", "-I FWD 2 -s 10.0.0.0/8 -j DROP", "-A FWD -s 10.0.0.0/8 -j DROP"},
		{"FWD", "-I FWD -j LOG --log-prefix \"a b\"", "-A FWD -j LOG --log-prefix \"a b\""},
		{"X", "--append X -j RETURN", "-A X -j RETURN"},
		{"X", "-A", "-A X"},
	}
	for _, tc := range tests {
		if got := appendForm(&facts.IptRule{Chain: tc.chain, Text: tc.text}); got != tc.want {
			t.Errorf("appendForm(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
}

func TestIptErrLine(t *testing.T) {
	tests := []struct {
		stderr string
		line   int
		msg    string
	}{
		{"iptables-restore v1.8.9 (nf_tables): Set nosuch doesn't exist.\n\nError occurred at line: 8\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", 8, "Set nosuch doesn't exist."},
		{"iptables-restore: line 7 failed: No chain/target/match by that name.\n", 7, "iptables-restore: line 7 failed: No chain/target/match by that name."},
		{"something odd\n", 0, "something odd"},
	}
	for _, tc := range tests {
		n, msg := iptErrLine(tc.stderr)
		if n != tc.line || msg != tc.msg {
			t.Errorf("iptErrLine(%q) = %d %q, want %d %q", tc.stderr, n, msg, tc.line, tc.msg)
		}
	}
}

func TestRestoreText(t *testing.T) {
	r := &facts.Router{Name: "r", Ipsets: []*facts.Ipset{{
		Name: "s", Type: "hash:ip", Options: []string{"family", "inet", "timeout", "300", "maxelem", "2"},
		Members: []*facts.Member{
			{Value: "10.0.0.1", Options: []string{"timeout", "100"}},
			{Value: "10.0.0.2", Nomatch: true},
			{Value: "10.0.0.3", Options: []string{"comment", `"x y"`}},
		}}},
		Iptables: []*facts.IPTable{{Name: "filter", Chains: []*facts.Chain{
			{Name: "INPUT", Policy: "DROP", Packets: 5, Bytes: 9, Rules: []*facts.IptRule{{Chain: "INPUT", Text: "-A INPUT -j USER", Pos: facts.Pos{File: "f", Line: 3}}}},
			{Name: "USER", Pos: facts.Pos{File: "f", Line: 2}, Rules: []*facts.IptRule{{Chain: "USER", Text: "-A USER -j ACCEPT", Pos: facts.Pos{File: "f", Line: 4}}}},
			{Name: "GHOST", Pos: facts.Pos{File: "f", Line: 5}, Rules: []*facts.IptRule{{Chain: "GHOST", Text: "-A GHOST -j ACCEPT", Pos: facts.Pos{File: "f", Line: 5}}}},
		}}},
	}
	var ipset []string
	for _, l := range ipsetLines(r) {
		ipset = append(ipset, l.text)
	}
	want := "create s hash:ip family inet maxelem 4|add s 10.0.0.1|add s 10.0.0.2 nomatch|add s 10.0.0.3 comment \"x y\""
	if got := strings.Join(ipset, "|"); got != want {
		t.Errorf("ipset text\n got %s\nwant %s", got, want)
	}
	var ipt []string
	for _, l := range iptablesLines(r) {
		ipt = append(ipt, l.text)
	}
	// GHOST is used but never declared: left undeclared for the kernel to refuse.
	want = "*filter|:INPUT DROP [0:0]|:USER - [0:0]|-A INPUT -j USER|-A USER -j ACCEPT|-A GHOST -j ACCEPT|COMMIT"
	if got := strings.Join(ipt, "|"); got != want {
		t.Errorf("iptables text\n got %s\nwant %s", got, want)
	}
}

func TestPlaceHostsWithoutTrace(t *testing.T) {
	f := tinyFacts()
	p, _ := buildPlan("t1", f.Routers)
	d := doc.New()
	d.Flows = []*doc.Flow{
		{ID: "a", Src: "10.0.1.10", Dst: "10.0.2.10", Proto: "tcp", DPort: 22},
		{ID: "b", Src: "10.0.1.10", Dst: "10.0.12.2", Proto: "icmp"},                     // dst owned by r2
		{ID: "c", Src: "198.18.0.1", Dst: "10.0.2.10", Proto: "udp", Ingress: "r2:eth2"}, // outside source
		{ID: "d", Src: "10.0.1.10", Dst: "172.31.0.1", Proto: "udp"},                     // nowhere
	}
	hs, warns := placeHosts(p, f, d)
	var got []string
	for _, h := range hs {
		if h.internet {
			// Addresses and gateway come from the router's kernel once
			// it is built (resolveInternet).
			got = append(got, h.ip.String()+"@"+h.router+":"+h.iface+" internet stand-in")
			continue
		}
		got = append(got, h.ip.String()+"@"+h.router+":"+h.iface+" "+h.addrs[0].String()+" via "+h.gw.String())
	}
	want := []string{
		"10.0.1.10@r1:eth0 10.0.1.10/24 via 10.0.1.1",
		"10.0.2.10@r2:eth1 10.0.2.10/24 via 10.0.2.1",
		"198.18.0.1@r2:eth2 internet stand-in",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("hosts\n got %v\nwant %v", got, want)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "172.31.0.1") {
		t.Errorf("warnings %v", warns)
	}
	if h := hs[2]; !h.internet || len(h.dsts) != 1 || h.dsts[0].String() != "198.18.0.1" {
		t.Errorf("the outside source is not owned by the stand-in for what lies behind r2 eth2: %+v", h)
	}
}

func TestRegistryLocking(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "labs")
	n := 0
	ids := []string{"dup111", "dup111", "new222"}
	next := func() string { n++; return ids[n-1] }
	g, err := newRegistry(dir, Record{OwnerPID: os.Getpid(), Created: time.Now()}, next)
	if err != nil || g.rec.ID != "dup111" {
		t.Fatalf("first registry: %v %v", g, err)
	}
	g2, err := newRegistry(dir, Record{OwnerPID: os.Getpid()}, next)
	if err != nil || g2.rec.ID != "new222" {
		t.Fatalf("second registry did not skip the taken id: %+v %v", g2, err)
	}
	if err := g.intend(Item{Kind: itemNetns, Name: "tsim-dup111-r1"}); err != nil {
		t.Fatal(err)
	}
	// Held by g: another opener sees it busy.
	if _, busy, err := openLocked(dir, "dup111"); !busy || err != nil {
		t.Errorf("openLocked on a held lab: busy=%v err=%v", busy, err)
	}
	g.release()
	h, busy, err := openLocked(dir, "dup111")
	if busy || err != nil || len(h.rec.Items) != 1 || h.rec.Namespaces()[0] != "tsim-dup111-r1" {
		t.Fatalf("openLocked after release: %+v busy=%v err=%v", h, busy, err)
	}
	h.remove()
	if _, _, err := openLocked(dir, "dup111"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("removed lab: %v", err)
	}
	recs, _ := readRecords(dir)
	if len(recs) != 1 || recs[0].ID != "new222" {
		t.Errorf("records %+v", recs)
	}
	g2.remove()
	if _, _, err := openLocked(dir, "../etc"); err == nil {
		t.Error("openLocked accepted a path as id")
	}
}

func TestOwnerLiveness(t *testing.T) {
	start, ok := netx.ProcStart(os.Getpid())
	if !ok || !netx.Alive(os.Getpid(), start) {
		t.Fatal("this process is not alive")
	}
	if netx.Alive(os.Getpid(), start+1) {
		t.Error("a different start time (pid reuse) counted as alive")
	}
	if (&Record{OwnerPID: 1 << 30}).OwnerPID > 0 && netx.Alive(1<<30, 0) {
		t.Error("a pid that cannot exist is alive")
	}
	if !stale(&Record{OwnerPID: 1 << 30}) || stale(&Record{OwnerPID: os.Getpid(), OwnerStart: start}) {
		t.Error("stale() wrong")
	}
}

// FuzzRestoreText: rebuilding rule text and reading restore errors never
// panic, and a rebuilt rule is always an append to its chain.
func FuzzRestoreText(f *testing.F) {
	for _, s := range []string{"-A INPUT -j ACCEPT", "-I FWD 3 -p tcp", "--insert X", "-I", "", "Error occurred at line: 99999999999999999999", "line -1 failed: x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := appendForm(&facts.IptRule{Chain: "C", Text: s})
		if !strings.HasPrefix(got, "-A ") {
			t.Errorf("appendForm(%q) = %q", s, got)
		}
		if n, _ := iptErrLine(s); n < 0 {
			t.Errorf("iptErrLine(%q) = %d", s, n)
		}
	})
}

// TestNoHostOnBroadcastOrNetwork: a flow's endpoint on a subnet's
// broadcast or network address gets no lab host (the router's kernel takes
// the broadcast as its own and never forwards it), with or without a
// trace, while the subnet's other addresses still do.
func TestNoHostOnBroadcastOrNetwork(t *testing.T) {
	f := tinyFacts()
	p, _ := buildPlan("t1", f.Routers)
	d := doc.New()
	d.Flows = []*doc.Flow{
		{ID: "a", Src: "10.0.1.10", Dst: "10.0.2.255", Proto: "udp", DPort: 9999},
		{ID: "b", Src: "10.0.1.10", Dst: "10.0.2.0", Proto: "icmp"},
		{ID: "c", Src: "10.0.1.255", Dst: "10.0.2.10", Proto: "udp", DPort: 53},
	}
	for _, traced := range []bool{false, true} {
		d.Trace = nil
		if traced {
			tr, err := trace.New(f).TraceAll(context.Background(), d.Flows)
			if err != nil {
				t.Fatal(err)
			}
			d.Trace = tr
			// r2 receives it as a broadcast: udp goes only to a socket
			// the facts do not list.
			if tr[0].Disposition != doc.Unknown || !strings.Contains(tr[0].Reason, "r2: 10.0.2.255 is a broadcast address of r2") {
				t.Errorf("trace of a udp flow to 10.0.2.255: %s %s, want UNKNOWN at r2", tr[0].Disposition, tr[0].Reason)
			}
		}
		hs, warns := placeHosts(p, f, d)
		var got []string
		for _, h := range hs {
			got = append(got, h.ip.String())
		}
		sort.Strings(got)
		if strings.Join(got, " ") != "10.0.1.10 10.0.2.10" {
			t.Errorf("traced=%v: hosts %v, want only 10.0.1.10 and 10.0.2.10", traced, got)
		}
		w := strings.Join(warns, "\n")
		for _, s := range []string{"10.0.2.255 is the broadcast address of 10.0.2.0/24 on r2 eth1", "10.0.2.0 is the network address of 10.0.2.0/24",
			"10.0.1.255 is the broadcast address of 10.0.1.0/24 on r1 eth0"} {
			if !strings.Contains(w, s) {
				t.Errorf("traced=%v: warnings %q lack %q", traced, w, s)
			}
		}
	}
}
