package reach

import (
	"strconv"
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
)

// Table tests of the verdict logic: no namespace, no root.

func mv(table, chain string, index int, target string) *moved {
	return &moved{table: table, chain: chain, index: index, target: target,
		rule: &facts.IptRule{Chain: chain, Index: index, Text: "-A " + chain + " -j " + target}, delta: Count{1, 60}}
}

func TestJudgeRouter(t *testing.T) {
	accept := mv("filter", "FORWARD", 3, "ACCEPT")
	drop := mv("filter", "FORWARD", 2, "DROP")
	drop.note = `the lab's rule differs from the facts: kernel has "-A FORWARD -j DROP" where the facts have #2 "-A FORWARD -j ACCEPT"`
	cases := []struct {
		name    string
		in      routerInput
		verdict string
		rule    string // "chain index"
		cause   string
		reason  string // substring
	}{
		{name: "nothing moved: not seen, never ALLOWED", in: routerInput{ev: &evidence{}, answered: true},
			verdict: doc.Unknown, reason: "not seen"},
		{name: "no evidence at all", in: routerInput{later: true}, verdict: doc.Unknown, reason: "not seen"},
		{name: "accepted and forwarded", in: routerInput{ev: &evidence{dec: decision{accept: accept, moved: []*moved{accept}}, ip: ipStats{InReceives: 1, ForwDatagrams: 1}}},
			verdict: doc.Allowed, rule: "FORWARD 3"},
		{name: "a later router saw it", in: routerInput{ev: &evidence{ip: ipStats{InReceives: 1}}, later: true},
			verdict: doc.Allowed, reason: "no filter rule"},
		{name: "dropped by a rule, with the kernel's rule named", in: routerInput{ev: &evidence{dec: decision{block: drop, moved: []*moved{drop}}, ip: ipStats{InReceives: 1}}},
			verdict: doc.Blocked, rule: "FORWARD 2", cause: causeFilter, reason: "kernel has"},
		{name: "a drop of another packet of the connection does not block this direction",
			in:      routerInput{ev: &evidence{dec: decision{block: drop, accept: accept, moved: []*moved{accept, drop}}, ip: ipStats{InReceives: 2, ForwDatagrams: 1}}, later: true},
			verdict: doc.Allowed, rule: "FORWARD 3", reason: "dropped another packet"},
		{name: "blackhole: received, neither forwarded nor delivered", in: routerInput{ev: &evidence{ip: ipStats{InReceives: 1}}},
			verdict: doc.Blocked, cause: causeBlackhole},
		{name: "no route", in: routerInput{ev: &evidence{ip: ipStats{InReceives: 1, InNoRoutes: 1, OutDestUnreachs: 1}}},
			verdict: doc.Blocked, cause: causeNoRoute},
		{name: "unreachable or prohibit route", in: routerInput{ev: &evidence{ip: ipStats{InReceives: 1, OutDestUnreachs: 1}}},
			verdict: doc.Blocked, cause: causeUnreachable},
		{name: "rp_filter", in: routerInput{ev: &evidence{ip: ipStats{InReceives: 1, RPFilter: 1}}},
			verdict: doc.Blocked, cause: causeRPFilter},
		{name: "forwarding off on the incoming interface", in: routerInput{ev: &evidence{ip: ipStats{InReceives: 1, InAddrErrors: 1}}},
			verdict: doc.Blocked, cause: causeForwarding},
		{name: "loop", in: routerInput{ev: &evidence{ip: ipStats{InReceives: 1, InHdrErrors: 1, OutTimeExcds: 1}}},
			verdict: doc.Blocked, cause: causeLoop},
		{name: "a loop closes here: the TTL ran out at this router", in: routerInput{ev: &evidence{ip: ipStats{InReceives: 32, ForwDatagrams: 31, InHdrErrors: 1, OutTimeExcds: 1}}, stop: true},
			verdict: doc.Blocked, cause: causeLoop},
		{name: "the same statistics mid-path, with no walk ending here: passed on", in: routerInput{ev: &evidence{ip: ipStats{InReceives: 32, ForwDatagrams: 31, InHdrErrors: 1, OutTimeExcds: 1}}},
			verdict: doc.Allowed},
		{name: "a broadcast of the router: received, delivered to its stack, not forwarded, not answered",
			in:      routerInput{ev: &evidence{ip: ipStats{InReceives: 1, InDelivers: 1, InBcastPkts: 1}}, stop: true},
			verdict: doc.Blocked, cause: causeBroadcast, reason: "received as a broadcast"},
		{name: "a broadcast that went nowhere is no blackhole", in: routerInput{ev: &evidence{ip: ipStats{InReceives: 1, InBcastPkts: 1}}},
			verdict: doc.Blocked, cause: causeBroadcast},
		{name: "a broadcast dropped by an INPUT rule is the rule's", in: routerInput{ev: &evidence{dec: decision{block: drop, moved: []*moved{drop}}, ip: ipStats{InReceives: 1, InBcastPkts: 1}}, stop: true},
			verdict: doc.Blocked, rule: "FORWARD 2", cause: causeFilter},
		{name: "a broadcast echo answered (icmp_echo_ignore_broadcasts=0)", in: routerInput{ev: &evidence{ip: ipStats{InReceives: 1, InDelivers: 1, InBcastPkts: 1, OutRequests: 1}}, stop: true, answered: true},
			verdict: doc.Allowed},
		{name: "no neighbour", in: routerInput{ev: &evidence{ip: ipStats{InReceives: 1}, neigh: "passed on, but no neighbour on eth0 answers ARP for 10.0.0.9"}},
			verdict: doc.Blocked, cause: causeNoNeighbour},
		{name: "a refused line makes it UNKNOWN", in: routerInput{ev: &evidence{dec: decision{accept: accept, moved: []*moved{accept}}, ip: ipStats{InReceives: 1, ForwDatagrams: 1}}, refusal: "a route this packet consults is refused"},
			verdict: doc.Unknown, rule: "FORWARD 3", reason: "the lab cannot show"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, cause := judgeRouter("r1", "eth0", "eth1", c.in)
			got := ""
			if v.Rule != nil {
				got = v.Rule.Chain + " " + strconv.Itoa(v.Rule.Index)
			}
			if v.Verdict != c.verdict || got != c.rule || cause != c.cause || !strings.Contains(v.Reason, c.reason) {
				t.Errorf("got %s %q cause %q (%s), want %s %q cause %q (…%s…)", v.Verdict, got, cause, v.Reason, c.verdict, c.rule, c.cause, c.reason)
			}
		})
	}
}

func hop(router, verdict string, rule *doc.LiveRule, cause, reason string) *obsHop {
	return &obsHop{router: router, view: &doc.RouterReach{Router: router, Verdict: verdict, Rule: rule, Reason: reason}, cause: cause}
}

func TestJudgeE2E(t *testing.T) {
	ok := func(r string) *obsHop { return hop(r, doc.Allowed, nil, "", "") }
	drop := &doc.LiveRule{Table: "filter", Chain: "FORWARD", Index: 2, Text: "-A FORWARD -m conntrack --ctstate INVALID -j DROP"}
	cases := []struct {
		name      string
		in        e2eInput
		verdict   string
		blockedBy string // "router chain index direction cause"
	}{
		{name: "answered", in: e2eInput{request: []*obsHop{ok("a"), ok("b")}, answered: true, delivered: true}, verdict: doc.Reachable},
		{name: "no answer, nothing moved: UNKNOWN, never UNREACHABLE", in: e2eInput{errText: "no answer"}, verdict: doc.Unknown},
		{name: "no answer, every router passed it on: UNKNOWN", in: e2eInput{request: []*obsHop{ok("a"), ok("b")}}, verdict: doc.Unknown},
		{name: "request dropped by a rule", in: e2eInput{request: []*obsHop{ok("a"), hop("b", doc.Blocked, drop, causeFilter, "")}},
			verdict: doc.Unreachable, blockedBy: "b FORWARD 2 request filter"},
		{name: "request dropped by routing: the router is named", in: e2eInput{request: []*obsHop{ok("a"), hop("b", doc.Blocked, nil, causeBlackhole, "blackhole")}},
			verdict: doc.Unreachable, blockedBy: "b  0 request blackhole"},
		{name: "reply dropped on the way back", in: e2eInput{request: []*obsHop{ok("a"), ok("b")}, delivered: true,
			reply: []*obsHop{hop("c", doc.Blocked, drop, causeFilter, "")}},
			verdict: doc.Unreachable, blockedBy: "c FORWARD 2 reply filter"},
		{name: "a reply drop does not count when the request never arrived", in: e2eInput{request: []*obsHop{ok("a")},
			reply: []*obsHop{hop("c", doc.Blocked, drop, causeFilter, "")}},
			verdict: doc.Unknown},
		{name: "a blocking rule off the known paths", in: e2eInput{request: []*obsHop{ok("a")}, elsewhere: hop("z", doc.Blocked, drop, causeFilter, "")},
			verdict: doc.Unreachable, blockedBy: "z FORWARD 2 request filter"},
		{name: "a refused line makes it UNKNOWN", in: e2eInput{request: []*obsHop{hop("a", doc.Blocked, drop, causeFilter, "")}, unknown: "a: the lab cannot show the real router"},
			verdict: doc.Unknown},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := judgeE2E(c.in)
			got := ""
			if b := e.BlockedBy; b != nil {
				got = b.Router + " " + b.Chain + " " + strconv.Itoa(b.Index) + " " + b.Direction + " " + e.Cause
				if b.Rule == "" {
					t.Error("blocked_by without rule text or cause")
				}
			}
			if e.Verdict != c.verdict || got != c.blockedBy {
				t.Errorf("got %s %q (%s), want %s %q", e.Verdict, got, e.Reason, c.verdict, c.blockedBy)
			}
			if e.Verdict != doc.Reachable && e.Reason == "" {
				t.Error("no reason")
			}
		})
	}
}

func TestAgrees(t *testing.T) {
	r3 := &doc.LiveRule{Table: "filter", Chain: "FORWARD", Index: 3}
	r4 := &doc.LiveRule{Table: "filter", Chain: "FORWARD", Index: 4}
	cases := []struct {
		name string
		v    *doc.RouterReach
		pv   string
		pr   *doc.LiveRule
		want bool
	}{
		{"same rule", &doc.RouterReach{Verdict: doc.Allowed, Rule: r3}, doc.Allowed, r3, true},
		{"other rule", &doc.RouterReach{Verdict: doc.Allowed, Rule: r4}, doc.Allowed, r3, false},
		{"other verdict", &doc.RouterReach{Verdict: doc.Blocked, Rule: r3}, doc.Allowed, r3, false},
		{"firewall drop live, route drop predicted", &doc.RouterReach{Verdict: doc.Blocked, Rule: r3}, doc.Blocked, nil, false},
		{"route drop live, firewall drop predicted", &doc.RouterReach{Verdict: doc.Blocked}, doc.Blocked, r3, false},
		{"both routing", &doc.RouterReach{Verdict: doc.Blocked}, doc.Blocked, nil, true},
		{"both unknown", &doc.RouterReach{Verdict: doc.Unknown, Rule: r3}, doc.Unknown, nil, true},
	}
	for _, c := range cases {
		if got := agrees(c.v, c.pv, c.pr); got != c.want {
			t.Errorf("%s: agrees %v, want %v", c.name, got, c.want)
		}
	}
}

func TestCompareE2E(t *testing.T) {
	routerHop := func(n string) *doc.Hop { return &doc.Hop{Node: n, Kind: doc.HopRouter} }
	deniedAt := func(router string, idx int, dir string) *doc.Trace {
		return &doc.Trace{Disposition: doc.Denied, Direction: dir, Hops: []*doc.Hop{routerHop("a"), routerHop(router)},
			DeniedBy: &doc.RuleRef{Router: router, Table: "filter", Chain: "FORWARD", Index: idx, Direction: dir}}
	}
	blocked := func(router, chain string, idx int, dir, cause string) *doc.E2E {
		return &doc.E2E{Verdict: doc.Unreachable, Cause: cause, BlockedBy: &doc.RuleRef{Router: router, Table: "filter", Chain: chain, Index: idx, Direction: dir}}
	}
	cases := []struct {
		name  string
		e     *doc.E2E
		t     *doc.Trace
		agree bool
	}{
		{"reachable both", &doc.E2E{Verdict: doc.Reachable}, &doc.Trace{Disposition: doc.Delivered}, true},
		{"reachable live, denied predicted", &doc.E2E{Verdict: doc.Reachable}, deniedAt("b", 2, doc.Request), false},
		{"same rule", blocked("b", "FORWARD", 2, doc.Request, causeFilter), deniedAt("b", 2, doc.Request), true},
		{"other rule index", blocked("b", "FORWARD", 3, doc.Request, causeFilter), deniedAt("b", 2, doc.Request), false},
		{"other router", blocked("c", "FORWARD", 2, doc.Request, causeFilter), deniedAt("b", 2, doc.Request), false},
		{"other direction", blocked("b", "FORWARD", 2, doc.Reply, causeFilter), deniedAt("b", 2, doc.Request), false},
		{"reply both", blocked("b", "FORWARD", 2, doc.Reply, causeFilter), deniedAt("b", 2, doc.Reply), true},
		{"route drop live, firewall drop predicted", &doc.E2E{Verdict: doc.Unreachable, Cause: causeBlackhole, BlockedBy: &doc.RuleRef{Router: "b", Direction: doc.Request}},
			deniedAt("b", 2, doc.Request), false},
		{"firewall drop live, route drop predicted", blocked("b", "FORWARD", 2, doc.Request, causeFilter),
			&doc.Trace{Disposition: doc.NullRouted, Hops: []*doc.Hop{routerHop("a"), routerHop("b")}}, false},
		{"route drop both, same router", &doc.E2E{Verdict: doc.Unreachable, Cause: causeUnreachable, BlockedBy: &doc.RuleRef{Router: "b"}},
			&doc.Trace{Disposition: doc.NullRouted, Hops: []*doc.Hop{routerHop("a"), routerHop("b")}}, true},
		{"a broadcast live, NULL_ROUTED predicted at the same router", &doc.E2E{Verdict: doc.Unreachable, Cause: causeBroadcast, BlockedBy: &doc.RuleRef{Router: "b"}},
			&doc.Trace{Disposition: doc.NullRouted, Hops: []*doc.Hop{routerHop("a"), routerHop("b")}}, true},
		{"a broadcast live, a firewall drop predicted", &doc.E2E{Verdict: doc.Unreachable, Cause: causeBroadcast, BlockedBy: &doc.RuleRef{Router: "b"}},
			deniedAt("b", 2, doc.Request), false},
		{"route drop both, other router", &doc.E2E{Verdict: doc.Unreachable, Cause: causeBlackhole, BlockedBy: &doc.RuleRef{Router: "a"}},
			&doc.Trace{Disposition: doc.NullRouted, Hops: []*doc.Hop{routerHop("a"), routerHop("b")}}, false},
		{"unknown live never agrees with a verdict", &doc.E2E{Verdict: doc.Unknown}, deniedAt("b", 2, doc.Request), false},
		{"a loop: the TTL ran out at a router of the predicted cycle", &doc.E2E{Verdict: doc.Unreachable, Cause: causeLoop, BlockedBy: &doc.RuleRef{Router: "b"}},
			&doc.Trace{Disposition: doc.Loop, Hops: []*doc.Hop{routerHop("a"), routerHop("b"), routerHop("c"), routerHop("b"), routerHop("c")}}, true},
		{"a loop blamed on a router outside the predicted cycle", &doc.E2E{Verdict: doc.Unreachable, Cause: causeLoop, BlockedBy: &doc.RuleRef{Router: "a"}},
			&doc.Trace{Disposition: doc.Loop, Hops: []*doc.Hop{routerHop("a"), routerHop("b"), routerHop("c"), routerHop("b"), routerHop("c")}}, false},
		{"a firewall drop live, a loop predicted", blocked("b", "FORWARD", 2, doc.Request, causeFilter),
			&doc.Trace{Disposition: doc.Loop, Hops: []*doc.Hop{routerHop("a"), routerHop("b"), routerHop("c"), routerHop("b"), routerHop("c")}}, false},
	}
	for _, c := range cases {
		d := compareE2E(c.e, c.t)
		if (d == "") != c.agree {
			t.Errorf("%s: disagreement %q, want agree=%v", c.name, d, c.agree)
		}
	}
}

func TestPredictionForBranch(t *testing.T) {
	h := func(ns ...string) []*doc.Hop {
		var out []*doc.Hop
		for _, n := range ns {
			out = append(out, &doc.Hop{Node: n, Kind: doc.HopRouter})
		}
		return out
	}
	tr := &doc.Trace{Disposition: doc.Denied, Hops: h("a", "b", "c"), Branches: []*doc.Branch{
		{Branch: 1, Disposition: doc.Delivered, Hops: h("a", "b", "c")},
		{Branch: 2, Disposition: doc.Denied, Direction: doc.Reply, Hops: h("a", "b", "d"), Kernel: true},
	}}
	if p := predictionFor(tr, []string{"a", "b", "c"}, nil); p.Disposition != doc.Delivered {
		t.Errorf("observed branch 1: predicted %s", p.Disposition)
	}
	if p := predictionFor(tr, []string{"a", "b", "d"}, nil); p.Disposition != doc.Denied || p.Direction != doc.Reply {
		t.Errorf("observed branch 2: predicted %s %s", p.Disposition, p.Direction)
	}
	if p := predictionFor(tr, nil, nil); p.Disposition != doc.Denied {
		t.Errorf("nothing observed: the kernel's branch, got %s", p.Disposition)
	}
	// Branches with one request path and two ways back (ECMP on the reply
	// only): the observed reply picks the branch.
	two := &doc.Trace{Disposition: doc.Delivered, Hops: h("a", "b"), Branches: []*doc.Branch{
		{Branch: 1, Disposition: doc.Delivered, Hops: h("a", "b"), ReplyHops: h("b", "x", "a")},
		{Branch: 2, Disposition: doc.Denied, Direction: doc.Reply, Hops: h("a", "b"), ReplyHops: h("b", "y")},
	}}
	for _, c := range []struct {
		req, rep []string
		branch   int // observedBranch
		disp     string
	}{
		{[]string{"a", "b"}, []string{"b", "x", "a"}, 1, doc.Delivered},
		{[]string{"a", "b"}, []string{"b", "y"}, 2, doc.Denied},
		{[]string{"a", "b"}, []string{"b"}, 0, doc.Delivered}, // both match: not told apart
		{[]string{"a", "b"}, nil, 0, doc.Delivered},
		{[]string{"a", "b"}, []string{"z"}, 0, doc.Delivered}, // no reply matches: request only
	} {
		if got := observedBranch(two, c.req, c.rep); got != c.branch {
			t.Errorf("observedBranch(%v, %v) = %d, want %d", c.req, c.rep, got, c.branch)
		}
		if p := predictionFor(two, c.req, c.rep); p.Disposition != c.disp {
			t.Errorf("predictionFor(%v, %v): %s, want %s", c.req, c.rep, p.Disposition, c.disp)
		}
	}
}

func TestAlign(t *testing.T) {
	parse := func(lines ...string) []*facts.IptRule {
		text := "*filter\n:FORWARD DROP [0:0]\n" + strings.Join(lines, "\n") + "\nCOMMIT\n"
		ts, _, err := facts.ParseIptablesSave("t", 1, text)
		if err != nil {
			t.Fatal(err)
		}
		return ts[0].Chains[0].Rules
	}
	fr := parse("-A FORWARD -p tcp --dport 22 -j ACCEPT", "-A FORWARD -s 10.0.0.1 -j ACCEPT", "-A FORWARD -j LOG")
	cases := []struct {
		name   string
		kernel []*facts.IptRule
		want   []int
	}{
		{"same, spelled as iptables-save does", parse("-A FORWARD -p tcp -m tcp --dport 22 -j ACCEPT", "-A FORWARD -s 10.0.0.1/32 -j ACCEPT", "-A FORWARD -j LOG"), []int{0, 1, 2}},
		{"target changed", parse("-A FORWARD -p tcp -m tcp --dport 22 -j ACCEPT", "-A FORWARD -s 10.0.0.1/32 -j DROP", "-A FORWARD -j LOG"), []int{0, 1, 2}},
		{"rule inserted first", parse("-A FORWARD -p icmp -j DROP", "-A FORWARD -p tcp -m tcp --dport 22 -j ACCEPT", "-A FORWARD -s 10.0.0.1/32 -j ACCEPT", "-A FORWARD -j LOG"), []int{-1, 0, 1, 2}},
		{"rule deleted", parse("-A FORWARD -p tcp -m tcp --dport 22 -j ACCEPT", "-A FORWARD -j LOG"), []int{0, 2}},
	}
	for _, c := range cases {
		got := align(fr, c.kernel)
		if len(got) != len(c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: %v, want %v", c.name, got, c.want)
				break
			}
		}
	}
}

func TestRealignNamesTheKernelsRule(t *testing.T) {
	text := "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -p tcp --dport 22 -j ACCEPT\n-A FORWARD -p tcp --dport 80 -j ACCEPT\nCOMMIT\n"
	ts, _, _ := facts.ParseIptablesSave("r1_facts.txt", 1, text)
	m := newRuleMap(&facts.Router{Name: "r1", Iptables: ts}, nil)
	kernel := Counters{"filter": {"FORWARD": {Rules: []Count{{}, {}}, Targets: []string{"ACCEPT", "DROP"}}, "INPUT": {}, "OUTPUT": {}}}
	if why := m.mismatch(kernel); !strings.Contains(why, "kernel target DROP") {
		t.Fatalf("mismatch %q", why)
	}
	kt, _, _ := facts.ParseIptablesSave("kernel", 1, "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"+
		"-A FORWARD -p tcp -m tcp --dport 22 -j ACCEPT\n-A FORWARD -p tcp -m tcp --dport 80 -j DROP\nCOMMIT\n")
	m.realign(kt)
	after := Counters{"filter": {"FORWARD": {Rules: []Count{{}, {1, 60}}, Targets: []string{"ACCEPT", "DROP"}}}}
	d := m.decide(m.diff(kernel, after), hopForward)
	if d.block == nil || d.block.index != 2 || !strings.Contains(d.block.note, "differs from the facts") || !strings.Contains(d.block.live().Text, "-j DROP") {
		t.Fatalf("decision %+v", d.block)
	}
}

func TestParseMIB(t *testing.T) {
	var st ipStats
	s := "Ip: Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams\nIp: 1 64 9 1 2 3\n" +
		"Icmp: InMsgs OutDestUnreachs OutTimeExcds\nIcmp: 0 4 5\nIpExt: InNoRoutes InTruncatedPkts InBcastPkts\nIpExt: 6 0 8\nTcpExt: SyncookiesSent IPReversePathFilter\nTcpExt: 0 7\n"
	if !parseMIB(s, &st) {
		t.Fatal("no Ip: section")
	}
	want := ipStats{InReceives: 9, InHdrErrors: 1, InAddrErrors: 2, ForwDatagrams: 3, OutDestUnreachs: 4, OutTimeExcds: 5, InNoRoutes: 6, InBcastPkts: 8, RPFilter: 7}
	if st != want {
		t.Errorf("got %+v, want %+v", st, want)
	}
	if d := want.sub(ipStats{InReceives: 10}); d.InReceives != 0 || d.ForwDatagrams != 3 {
		t.Errorf("sub: %+v", d)
	}
}

func TestReached(t *testing.T) {
	fwd := mv("filter", "FORWARD", 3, "ACCEPT")
	pre := mv("mangle", "PREROUTING", 0, "ACCEPT")
	cases := []struct {
		name       string
		ev         *evidence
		prevPassed bool
		want       bool
	}{
		{"forwarded", &evidence{ip: ipStats{InReceives: 1, ForwDatagrams: 1}}, false, true},
		{"a FORWARD counter", &evidence{dec: decision{moved: []*moved{fwd}}}, false, true},
		{"a routing drop the statistics name", &evidence{ip: ipStats{InReceives: 1, InNoRoutes: 1}}, false, true},
		{"a lone received packet after a router that passed it on: a blackhole here", &evidence{ip: ipStats{InReceives: 1}}, true, true},
		{"a lone received packet after a router that dropped it: a straggler", &evidence{ip: ipStats{InReceives: 1}}, false, false},
		{"PREROUTING only after a router that dropped it", &evidence{dec: decision{moved: []*moved{pre}}, ip: ipStats{InReceives: 1}}, false, false},
		{"nothing", &evidence{}, true, false},
		{"counted for forwarding, then dropped before it left (kernel with OutTransmits)",
			&evidence{ip: ipStats{InReceives: 1, ForwDatagrams: 1, HasOutTransmits: true}}, false, false},
		{"forwarded and transmitted", &evidence{ip: ipStats{InReceives: 1, ForwDatagrams: 1, OutTransmits: 1, HasOutTransmits: true}}, false, true},
	}
	if (&evidence{ip: ipStats{ForwDatagrams: 1, OutTransmits: 1, OutRequests: 1, HasOutTransmits: true}}).passedOn() {
		t.Error("a router that only sent its own packet (an ICMP error, a reset) did not pass the probe on")
	}
	for _, c := range cases {
		if got := reached(c.ev, c.prevPassed); got != c.want {
			t.Errorf("%s: reached %v, want %v", c.name, got, c.want)
		}
	}
}
