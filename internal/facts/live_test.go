package facts

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/internal/testenv"
)

// liveNS creates a network namespace of its own (no link to the host) and
// removes it when the test ends.
func liveNS(t *testing.T) string {
	t.Helper()
	testenv.NeedRoot(t, "sudo go test ./internal/facts/")
	testenv.NeedTools(t, "ip")
	ns := fmt.Sprintf("tsimfacts%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	})
	return ns
}

func nsRun(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip -n %s %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// liveSetup gives the namespace addresses, routes of every type and rules
// with every selector the kernel accepts, so the parsers meet real output.
func liveSetup(t *testing.T, ns string) {
	for _, c := range []string{
		"link set lo up",
		// veth pairs with both ends inside the namespace (no dummy module here).
		"link add d0 type veth peer name d0p", "link set d0p up", "link set d0 up",
		"addr add 10.50.0.1/24 dev d0", "addr add 10.50.0.2/24 dev d0", "addr add 2001:db8:50::1/64 dev d0 nodad",
		"link add d1 type veth peer name d1p", "link set d1p up", "link set d1 up", "link set d1 mtu 1400",
		"addr add 10.51.0.1/24 dev d1", "addr add 10.52.0.1 peer 10.52.0.2/32 dev d1",
		"route add 10.60.0.0/16 via 10.50.0.254 dev d0 metric 5",
		"route add 10.61.0.0/16 proto static nexthop via 10.50.0.253 dev d0 weight 1 nexthop via 10.51.0.254 dev d1 weight 3",
		"route add blackhole 10.62.0.0/16", "route add unreachable 10.63.0.0/16", "route add prohibit 10.64.0.0/16",
		"route add throw 10.65.0.0/16 table 100",
		"route add 10.66.0.0/16 via 10.50.0.254 dev d0 table 100 mtu lock 1300 advmss 1260",
		"route add 10.67.0.0/16 tos 0x10 via 10.50.0.254 dev d0",
		"route add 10.68.0.1 via 10.99.0.1 dev d0 onlink",
		"route add default via 10.50.0.254 dev d0 table 200",
		"route add 2001:db8:99::/48 via 2001:db8:50::fe dev d0",
		"rule add pref 100 from 10.50.0.0/24 lookup 100",
		"rule add pref 101 not to 10.0.0.0/8 fwmark 0x1/0xff lookup 200",
		"rule add pref 102 iif d0 oif d1 tos 0x10 lookup main",
		"rule add pref 103 ipproto tcp dport 22 sport 1000-2000 lookup 100",
		"rule add pref 104 uidrange 1000-2000 lookup 100",
		"rule add pref 105 from 10.9.9.9 goto 107",
		"rule add pref 106 from 10.9.9.8 blackhole",
		"rule add pref 107 lookup main suppress_prefixlength 0",
		"rule add pref 108 lookup main suppress_ifgroup 5",
		"rule add pref 109 realms 1/2 lookup 100",
		"rule add pref 110 from 10.9.9.7 unreachable",
		"rule add pref 111 from 10.9.9.6 prohibit",
		"rule add pref 112 from 10.9.9.5 nop",
		"rule add pref 113 l3mdev",
		"rule add pref 114 iif lo dsfield 0x08 lookup 200",
		"rule add pref 115 ipproto 132 lookup 200",
	} {
		nsRun(t, ns, strings.Fields(c)...)
	}
}

// TestLiveCollectorRoundTrip collects a namespace with the real collector
// and checks every parser against what was configured.
func TestLiveCollectorRoundTrip(t *testing.T) {
	ns := liveNS(t)
	liveSetup(t, ns)
	script := t.TempDir() + "/collect.sh"
	if err := os.WriteFile(script, []byte(CollectorScript()), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, "sh", script)
	cmd.Env = append(os.Environ(), "TSIM_ROUTER=live", "SOURCE_DATE_EPOCH=1767225600")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("collector: %v\n%s", err, stderr.String())
	}
	r, find, err := ParseRaw("live_facts.txt", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, f := range find {
		// Only the IPv6 note is expected.
		if !strings.Contains(f.Message, "IPv6 is parsed and kept") {
			t.Errorf("finding: %s", f)
		}
	}
	if r.Sysctls["net.ipv4.ip_forward"] == "" {
		t.Errorf("sysctls = %v", r.Sysctls)
	}
	d0, d1 := r.Interface("d0"), r.Interface("d1")
	if d0 == nil || d1 == nil || d0.Kind != "ether" || d1.MTU != 1400 || !d0.Up() {
		t.Fatalf("interfaces = %+v %+v", d0, d1)
	}
	var addrs []string
	for _, a := range append(d0.Addrs, d1.Addrs...) {
		s := a.Prefix.String()
		if a.Peer.IsValid() {
			s += " peer " + a.Peer.String()
		}
		if a.Secondary {
			s += " secondary"
		}
		addrs = append(addrs, s)
	}
	want := "10.50.0.1/24 10.50.0.2/24 secondary 2001:db8:50::1/64 10.51.0.1/24 10.52.0.1/32 peer 10.52.0.2/32"
	if got := strings.Join(filterLL(addrs), " "); got != want {
		t.Errorf("addresses:\n got %s\nwant %s", got, want)
	}

	// Rules: every configured one, in order, with its selectors.
	byPrio := map[int]*Rule{}
	for _, ru := range r.Rules {
		byPrio[ru.Priority] = ru
	}
	check := func(prio int, ok bool) {
		t.Helper()
		if !ok {
			t.Errorf("rule %d parsed as %+v", prio, byPrio[prio])
		}
	}
	r100 := byPrio[100]
	check(100, r100 != nil && r100.From == netip.MustParsePrefix("10.50.0.0/24") && r100.Table == 100)
	r101 := byPrio[101]
	check(101, r101 != nil && r101.Not && r101.To == netip.MustParsePrefix("10.0.0.0/8") && r101.Fwmark == 1 && r101.FwmarkMask == 0xff && r101.Table == 200)
	r102 := byPrio[102]
	check(102, r102 != nil && r102.IIF == "d0" && r102.OIF == "d1" && r102.HasTOS && r102.TOS == 0x10 && r102.Table == TableMain)
	r103 := byPrio[103]
	check(103, r103 != nil && r103.IPProto == 6 && r103.DPort == PortRange{22, 22} && r103.SPort == PortRange{1000, 2000})
	r104 := byPrio[104]
	check(104, r104 != nil && r104.UIDRange == "1000-2000")
	r105 := byPrio[105]
	check(105, r105 != nil && r105.Action == ActionGoto && r105.Goto == 107 && r105.From == netip.MustParsePrefix("10.9.9.9/32"))
	check(106, byPrio[106] != nil && byPrio[106].Action == ActionBlackhole)
	check(107, byPrio[107] != nil && byPrio[107].SuppressPrefixLen == 0)
	check(108, byPrio[108] != nil && byPrio[108].SuppressIfGroup == "5")
	check(109, byPrio[109] != nil && byPrio[109].Realms == "1/2")
	check(110, byPrio[110] != nil && byPrio[110].Action == ActionUnreachable)
	check(111, byPrio[111] != nil && byPrio[111].Action == ActionProhibit)
	check(112, byPrio[112] != nil && byPrio[112].Action == ActionNop)
	check(113, byPrio[113] != nil && byPrio[113].L3MDev)
	check(114, byPrio[114] != nil && byPrio[114].IIF == "lo" && byPrio[114].TOS == 8)
	check(115, byPrio[115] != nil && byPrio[115].IPProto == 132)
	for _, p := range []int{0, 32766, 32767} {
		check(p, byPrio[p] != nil)
	}

	// Routes.
	main := r.Table(TableMain)
	if main == nil || r.Table(100) == nil || r.Table(200) == nil {
		t.Fatalf("tables = %v", r.Tables)
	}
	byDst := map[string]*Route{}
	for _, rt := range main.Routes {
		byDst[rt.Dst.String()] = rt
	}
	mp := byDst["10.61.0.0/16"]
	if mp == nil || len(mp.Nexthops) != 2 || mp.Nexthops[1].Weight != 3 || mp.Nexthops[1].Dev != "d1" || mp.Nexthops[0].Gateway != netip.MustParseAddr("10.50.0.253") {
		t.Errorf("multipath = %+v", mp)
	}
	for dst, typ := range map[string]string{"10.62.0.0/16": RouteBlackhole, "10.63.0.0/16": RouteUnreachable, "10.64.0.0/16": RouteProhibit, "10.60.0.0/16": RouteUnicast} {
		if byDst[dst] == nil || byDst[dst].Type != typ {
			t.Errorf("route %s = %+v, want type %s", dst, byDst[dst], typ)
		}
	}
	if rt := byDst["10.67.0.0/16"]; rt == nil || rt.TOS != 0x10 {
		t.Errorf("tos route = %+v", rt)
	}
	if rt := byDst["10.68.0.1/32"]; rt == nil || !rt.Onlink {
		t.Errorf("onlink route = %+v", rt)
	}
	if rt := byDst["10.60.0.0/16"]; rt == nil || rt.Metric != 5 {
		t.Errorf("metric route = %+v", rt)
	}
	var t100 []string
	for _, rt := range r.Table(100).Routes {
		t100 = append(t100, fmt.Sprintf("%s %s mtu=%d %v", rt.Type, rt.Dst, rt.MTU, rt.Extra))
	}
	if got := strings.Join(t100, "; "); got != "throw 10.65.0.0/16 mtu=0 []; unicast 10.66.0.0/16 mtu=1300 [advmss 1260]" {
		t.Errorf("table 100: %s", got)
	}
}

// filterLL drops link-local IPv6 addresses, which the kernel may add.
func filterLL(in []string) []string {
	var out []string
	for _, s := range in {
		if !strings.HasPrefix(s, "fe80:") {
			out = append(out, s)
		}
	}
	return out
}

// TestLiveRouteShowAll parses `ip route show table all` (IPv4 and IPv6,
// with and without -o): local, broadcast, multicast and anycast routes of
// the local table, `table X` on every line, no warnings.
func TestLiveRouteShowAll(t *testing.T) {
	ns := liveNS(t)
	liveSetup(t, ns)
	for _, args := range [][]string{
		{"route", "show", "table", "all"},
		{"-o", "route", "show", "table", "all"},
		{"-6", "route", "show", "table", "all"},
		{"-6", "-o", "route", "show", "table", "all"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			text := nsRun(t, ns, args...)
			routes, warn, err := ParseIPRoute("all", lines(1, text), reservedTables())
			if err != nil {
				t.Fatalf("%v\n%s", err, text)
			}
			if len(warn) > 0 {
				t.Errorf("warnings: %v", warn)
			}
			types := map[string]bool{}
			tables := map[int]bool{}
			for _, r := range routes {
				types[r.Route.Type] = true
				tables[r.Table] = true
			}
			if !tables[TableLocal] || !types[RouteLocal] {
				t.Errorf("no local-table routes: types %v tables %v", types, tables)
			}
			if args[0] != "-6" && (!types[RouteBroadcast] || !tables[100] || !tables[200] || !types[RouteThrow]) {
				t.Errorf("types %v tables %v", types, tables)
			}
			if args[0] == "-6" && !types[RouteMulticast] {
				t.Errorf("no IPv6 multicast route: %v", types)
			}
		})
	}
}
