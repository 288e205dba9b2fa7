package reach

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/internal/doc"
)

// want is one router's expected verdict and deciding rule
// ("table CHAIN index"; "" when no rule decides, e.g. routing).
type want struct {
	router, verdict, rule string
}

// exampleCase is a flow of the built-in example with a known outcome. The
// outcomes are those scripts/example/verify.sh checks against the kernel
// with real packets when the example is built (its F-numbers); the rules
// are read off internal/example/facts. None crosses an ECMP route, so no
// outcome here depends on the multipath hash seed.
type exampleCase struct {
	name string
	flow *doc.Flow
	e2e  string
	// blockedBy is "router table CHAIN index" for an UNREACHABLE flow
	// stopped by a rule.
	blockedBy string
	// routers is the per-router view, in path order.
	routers []want
	// moved lists extra counters that must have moved in the end-to-end
	// view ("router table CHAIN index"): translations, jumps.
	moved []string
}

func exampleCases() []exampleCase {
	return []exampleCase{
		{name: "allowed by a specific rule after a RETURN (F06)", flow: flow("F06", "10.3.10.5", "10.3.20.10", "tcp", 5432),
			e2e:     doc.Reachable,
			routers: []want{{"dc-core", doc.Allowed, "filter FORWARD 8"}, {"dc-srv", doc.Allowed, "filter FORWARD 5"}},
			moved:   []string{"dc-srv filter DB_GUARD 1"}},
		{name: "dropped by a specific rule, blocked at the second of three routers (F02)",
			flow: flow("F02", "10.1.10.5", "10.1.50.10", "tcp", 3306),
			e2e:  doc.Unreachable, blockedBy: "hq-gw filter HQ_EGRESS 2",
			routers: []want{{"hq-core", doc.Allowed, "filter FORWARD 6"}, {"hq-gw", doc.Blocked, "filter HQ_EGRESS 2"},
				{"hq-dmz", doc.Allowed, "filter FORWARD 7"}}},
		{name: "dropped by policy (F03)", flow: flow("F03", "10.1.10.5", "192.0.2.80", "tcp", 25),
			e2e: doc.Unreachable, blockedBy: "hq-gw filter FORWARD 0",
			routers: []want{{"hq-core", doc.Allowed, "filter FORWARD 6"}, {"hq-gw", doc.Blocked, "filter FORWARD 0"},
				{"inet-gw", doc.Blocked, "filter FORWARD 0"}}},
		{name: "rejected, UDP (F05)", flow: flow("F05", "10.1.10.5", "10.1.20.10", "udp", 69),
			e2e: doc.Unreachable, blockedBy: "hq-core filter FORWARD 4",
			routers: []want{{"hq-core", doc.Blocked, "filter FORWARD 4"}}},
		{name: "rejected with a TCP reset at the fourth router (F04)", flow: flow("F04", "10.1.10.5", "10.3.20.10", "tcp", 5432),
			e2e: doc.Unreachable, blockedBy: "dc-srv filter DB_GUARD 3",
			routers: []want{{"hq-core", doc.Allowed, "filter FORWARD 6"}, {"hq-gw", doc.Allowed, "filter TO_SITES 2"},
				{"dc-gw", doc.Allowed, "filter SITES_TO_DC 2"}, {"dc-srv", doc.Blocked, "filter DB_GUARD 3"}}},
		{name: "allowed through a custom chain (F01)", flow: flow("F01", "10.1.10.5", "10.1.50.10", "tcp", 443),
			e2e: doc.Reachable,
			routers: []want{{"hq-core", doc.Allowed, "filter FORWARD 6"}, {"hq-gw", doc.Allowed, "filter HQ_EGRESS 3"},
				{"hq-dmz", doc.Allowed, "filter FORWARD 4"}},
			moved: []string{"hq-gw filter FORWARD 4"}},
		{name: "accepted by an ipset match (F10)", flow: flow("F10", "10.2.10.5", "10.1.20.10", "tcp", 443),
			e2e: doc.Reachable,
			routers: []want{{"br-core", doc.Allowed, "filter FORWARD 4"}, {"br-gw", doc.Allowed, "filter FORWARD 5"},
				{"hq-gw", doc.Allowed, "filter SITES_IN 2"}, {"hq-core", doc.Allowed, "filter FORWARD 9"}}},
		{name: "dropped by an ipset match (F36)", flow: flow("F36", "10.2.10.66", "10.1.20.10", "tcp", 443),
			e2e: doc.Unreachable, blockedBy: "hq-gw filter SITES_IN 1",
			routers: []want{{"br-core", doc.Allowed, "filter FORWARD 4"}, {"br-gw", doc.Allowed, "filter FORWARD 5"},
				{"hq-gw", doc.Blocked, "filter SITES_IN 1"}, {"hq-core", doc.Allowed, "filter FORWARD 9"}}},
		{name: "DNAT'ed from the internet (F09)",
			flow:    &doc.Flow{ID: "F09", Src: "192.0.2.50", Dst: "203.0.113.5", Proto: "tcp", DPort: 443, Ingress: "inet-gw:eth0"},
			e2e:     doc.Reachable,
			routers: []want{{"inet-gw", doc.Allowed, "filter INBOUND 1"}, {"hq-dmz", doc.Allowed, "filter FORWARD 4"}},
			moved:   []string{"inet-gw nat PREROUTING 1", "inet-gw filter ANTI_SPOOF 12"}},
		// F23 (ICMP across dc-gw's ECMP route) depends on the branch the
		// kernel hashes it to: TestExampleECMPEverySeed covers each branch.
		{name: "unreachable route: the router answers ICMP (F19)", flow: flow("F19", "10.1.30.10", "192.0.2.80", "tcp", 443),
			e2e: doc.Unreachable, blockedBy: "hq-gw",
			routers: []want{{"hq-core", doc.Allowed, "filter FORWARD 8"}, {"hq-gw", doc.Blocked, ""}}},
		{name: "UDP to a router's own service (F33)", flow: flow("F33", "10.1.10.5", "10.1.50.53", "udp", 53),
			e2e:     doc.Reachable,
			routers: []want{{"hq-core", doc.Allowed, "filter FORWARD 6"}, {"hq-gw", doc.Allowed, "filter HQ_EGRESS 4"}, {"hq-dmz", doc.Allowed, "filter INPUT 8"}}},
	}
}

func ruleKey(table, chain string, index int) string {
	return fmt.Sprintf("%s %s %d", table, chain, index)
}

func liveKey(l *doc.LiveRule) string {
	if l == nil {
		return ""
	}
	return ruleKey(l.Table, l.Chain, l.Index)
}

// TestExampleKnownOutcomes probes flows of the built-in example whose
// outcomes are known and checks, for both views, the verdict, the exact
// deciding rule and that live equals predicted.
func TestExampleKnownOutcomes(t *testing.T) {
	needRoot(t)
	f := loadFacts(t, "")
	cases := exampleCases()
	var flows []*doc.Flow
	for _, c := range cases {
		flows = append(flows, c.flow)
	}
	lab := labDoc(t, f, flows)
	// The same answers whether every router is tested alone or the
	// routers the end-to-end probe crossed are read off its counters.
	for _, reuse := range []bool{false, true} {
		t.Run(fmt.Sprintf("reuse=%v", reuse), func(t *testing.T) {
			d := *lab
			if err := Run(context.Background(), f, &d, Options{Log: testLog(t), Timeout: testTimeout, ReuseEndToEnd: reuse}); err != nil {
				t.Fatalf("Run: %v", err)
			}
			checkExample(t, cases, d.Reach)
		})
	}
}

func checkExample(t *testing.T, cases []exampleCase, reach []*doc.Reach) {
	if len(reach) != len(cases) {
		t.Fatalf("%d reach entries for %d flows", len(reach), len(cases))
	}
	for i, c := range cases {
		res := reach[i]
		t.Run(c.name, func(t *testing.T) {
			if res.Flow != c.flow.ID {
				t.Fatalf("entry %d is flow %s, want %s", i, res.Flow, c.flow.ID)
			}
			e := res.E2E
			if e.Verdict != c.e2e {
				t.Errorf("end to end %s (%s), want %s", e.Verdict, e.Reason, c.e2e)
			}
			got := ""
			if e.BlockedBy != nil {
				b := e.BlockedBy
				got = b.Router
				if b.Chain != "" {
					got += " " + ruleKey(b.Table, b.Chain, b.Index)
				}
				if b.Rule == "" {
					t.Errorf("blocked_by has no rule text")
				}
			}
			if got != c.blockedBy {
				t.Errorf("blocked_by %q, want %q", got, c.blockedBy)
			}
			if e.Agrees == nil || !*e.Agrees || e.Predicted != c.e2e {
				t.Errorf("end to end: predicted %s, agrees %v", e.Predicted, e.Agrees)
			}
			for _, v := range e.Routers {
				if !v.Agrees {
					t.Errorf("end to end at %s: live %s %s, predicted %s (%s)", v.Router, v.Verdict, liveKey(v.Rule), v.Predicted, v.Reason)
				}
			}
			for _, m := range c.moved {
				router, key, _ := strings.Cut(m, " ")
				if !movedIn(e.Routers, router, key) {
					t.Errorf("end to end: counter %s did not move", m)
				}
			}
			if len(res.Routers) != len(c.routers) {
				t.Fatalf("per-router view has %d routers, want %d:\n%s", len(res.Routers), len(c.routers), summary([]*doc.Reach{res}))
			}
			for j, w := range c.routers {
				v := res.Routers[j]
				if v.Router != w.router || v.Verdict != w.verdict || liveKey(v.Rule) != w.rule {
					t.Errorf("router %d: %s %s %q (%s), want %s %s %q", j, v.Router, v.Verdict, liveKey(v.Rule), v.Reason, w.router, w.verdict, w.rule)
				}
				if !v.Agrees || v.Predicted != w.verdict {
					t.Errorf("router %s: predicted %s, agrees %v", v.Router, v.Predicted, v.Agrees)
				}
				if v.Rule != nil && v.Rule.Text == "" {
					t.Errorf("router %s: rule without text", v.Router)
				}
			}
			if len(res.Disagreements) != 0 {
				t.Errorf("disagreements: %q", res.Disagreements)
			}
		})
	}
	if t.Failed() {
		t.Log("\n" + summary(reach))
	}
}

func movedIn(rs []*doc.RouterReach, router, key string) bool {
	for _, v := range rs {
		if v.Router != router {
			continue
		}
		for _, c := range v.Counters {
			if ruleKey(c.Table, c.Chain, c.Index) == key && c.Packets > 0 {
				return true
			}
		}
	}
	return false
}
