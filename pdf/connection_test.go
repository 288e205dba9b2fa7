package pdf

import (
	"context"
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/trace"
)

// f23 traces the example's ECMP + asymmetric flow (ICMP 10.1.10.5 →
// 10.3.100.10): two branches at dc-gw; on the one via dc-srv the reply
// returns through dc-core, which never saw the request (ct INVALID, DROP).
// seed is the multipath hash seed of routers whose facts pin none.
func f23(t *testing.T, seed uint32) *doc.Document {
	t.Helper()
	f, err := facts.Load(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	e := trace.New(f)
	if seed != 0 {
		e.SetHashSeed(seed)
	}
	flows, err := trace.FlowsFromSpec("10.1.10.5", "10.3.100.10", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := e.TraceAll(context.Background(), flows)
	if err != nil {
		t.Fatal(err)
	}
	d := doc.New()
	d.Facts = &doc.FactsRef{Source: f.Source, Digest: f.Digest, Routers: len(f.Routers)}
	d.Flows, d.Trace = flows, ts
	tr := ts[0]
	if tr.Disposition != doc.Denied || tr.Direction != doc.Reply || len(tr.Branches) != 2 || len(tr.ReplyHops) == 0 {
		t.Fatalf("F23 trace is no longer the ECMP + reply case: %s %s, %d branches, %d reply hops",
			tr.Disposition, tr.Direction, len(tr.Branches), len(tr.ReplyHops))
	}
	return d
}

// TestReportConnection renders F23 from a trace-only document: the service
// page shows the reply with its conntrack states, both ECMP branches with
// their dispositions and the kernel's branch, and says that the reply is
// what dc-core's rule drops; the summary names the failing reply and branch.
func TestReportConnection(t *testing.T) {
	for _, tc := range []struct {
		name   string
		seed   uint32
		kernel string // what the branch table says about the kernel's branch
	}{
		{"seed 1", 1, "The kernel's multipath hash takes branch"},
		{"random seed", 0, "The branch the kernel takes cannot be computed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := f23(t, tc.seed)
			tr := d.Trace[0]
			path, pages := report(t, d, Options{})
			validate(t, path)
			secs := d.Report.Sections
			sum := squash(pageText(t, path, 1, secs[1].Page-1))
			svc := squash(pageText(t, path, secs[1].Page, pages))
			rule := "-A FORWARD -m conntrack --ctstate INVALID -j DROP"
			for _, w := range []string{
				"Connections that fail on the reply or on some ECMP branches",
				"simulation: the reply is dropped by dc-core filter FORWARD #2",
				"ECMP: 1 of 2 branches DENIED, 1 DELIVERED",
				"dc-core", // the router that drops the reply has its matrix column
			} {
				if !strings.Contains(sum, squash(w)) {
					t.Errorf("summary lacks %q", w)
				}
			}
			wants := []string{
				"Reply", "The reply from 10.3.100.10 back to 10.1.10.5",
				"it stops at dc-core; the reply is dropped by dc-core filter FORWARD #2",
				"ct INVALID", "BLOCKED · filter FORWARD #2", rule,
				"ECMP branches", tc.kernel,
				"request dc-gw: nexthop 1 of 2 via 10.3.0.2 dev eth0",
				"request dc-gw: nexthop 2 of 2 via 10.3.0.3 dev eth0",
				"(the reply is dropped by dc-core filter FORWARD #2)", // the Simulation line
				"reply path only", // dc-core's evidence block: the request never crossed it
			}
			if tc.seed != 0 {
				wants = append(wants, "the kernel's hash takes branch")
			}
			for _, w := range wants {
				if !strings.Contains(svc+sum, squash(w)) {
					t.Errorf("report lacks %q", w)
				}
			}
			// Each branch is one row: its nexthop, disposition, deciding
			// router and rule, direction.
			rows := map[string][]string{
				"nexthop 1 of 2 via": {"DELIVERED"},
				"nexthop 2 of 2 via": {"DENIED", "dc-core filter FORWARD #2", "reply"},
			}
			for pg := secs[1].Page; pg <= pages; pg++ {
				for _, l := range strings.Split(layoutText(t, path, pg), "\n") {
					for key, want := range rows {
						if !strings.Contains(l, key) {
							continue
						}
						for _, w := range want {
							if !strings.Contains(l, w) {
								t.Errorf("branch row %q lacks %q", strings.TrimSpace(l), w)
							}
						}
						delete(rows, key)
					}
				}
			}
			if len(rows) != 0 {
				t.Errorf("no branch row for %v", rows)
			}
			// The request arrived: the destination is reached, only the reply is lost.
			if strings.Contains(svc, squash("destination · not reached")) {
				t.Error("the diagram says the destination was not reached, but only the reply was dropped")
			}
			// The representative branch's reply crosses dc-core only; the
			// other branch's reply would cross dc-gw, hq-gw, hq-core back.
			if tr.Branch < 1 || tr.Branches[tr.Branch-1].Disposition != doc.Denied {
				t.Fatalf("representative branch %d is not the denied one", tr.Branch)
			}
		})
	}
}

// TestReportLivePathDiffers: when reach found the packets on another path
// than predicted, the service page sets the live paths beside the
// predicted ones, for the request and the reply, and gives the live
// blocked_by's direction and cause.
func TestReportLivePathDiffers(t *testing.T) {
	d := f23(t, 1)
	pred := []string{"hq-core(eth1>eth0)", "hq-gw(eth1>wg0)", "dc-gw(wg0>eth0)", "dc-srv(eth0>eth2)"}
	live := []string{"hq-core(eth1>eth0)", "hq-gw(eth1>wg0)", "dc-gw(wg0>eth0)", "dc-core(eth0>eth2)"}
	liveReply := []string{"dc-core(eth2>eth0)", "dc-gw(eth0>wg0)", "hq-gw(wg0>eth1)", "hq-core(eth0>eth1)"}
	no := false
	d.Reach = []*doc.Reach{{Flow: d.Flows[0].ID, E2E: &doc.E2E{
		Verdict: doc.Unreachable, Reason: "reply dropped at dc-gw: rp_filter",
		BlockedBy: &doc.RuleRef{Router: "dc-gw", Rule: "rp_filter drops the reply on eth0", Direction: doc.Reply},
		Cause:     "rp_filter", Predicted: doc.Unreachable, Agrees: &no,
		Path: live, PredictedPath: pred, ReplyPath: liveReply, PredictedReplyPath: []string{"dc-core(eth2>eth0)"},
		PathDiffers: true, AlsoSeen: []string{"br-gw(eth0>eth1)"},
	}}}
	path, pages := report(t, d, Options{})
	validate(t, path)
	text := squash(pageText(t, path, 1, pages))
	for _, w := range []string{
		"Live path versus predicted path",
		"Request", strings.Join(pred, " → "), strings.Join(live, " → "),
		"Reply", strings.Join(liveReply, " → "), "Also seen", "br-gw(eth0>eth1)",
		"(the reply is dropped by dc-gw (rp_filter drops the reply on eth0) [rp_filter])",
		"emulation: the reply is dropped by dc-gw",
	} {
		if !strings.Contains(text, squash(w)) {
			t.Errorf("report lacks %q", w)
		}
	}
}

// TestReplyDropOnRequestPath: a router the request passes and whose rule
// drops the reply is BLOCKED with the reply named, but the request's links
// after it stay solid and the destination counts as reached.
func TestReplyDropOnRequestPath(t *testing.T) {
	acc := func(i int) *doc.Step {
		return &doc.Step{Kind: doc.StepFilter, Table: "filter", Chain: "FORWARD", Index: i, Action: "ACCEPT", Text: "-A FORWARD -j ACCEPT"}
	}
	drop := &doc.Step{Kind: doc.StepFilter, Table: "filter", Chain: "FORWARD", Index: 2, Action: "DROP", Text: "-A FORWARD -m conntrack --ctstate INVALID -j DROP"}
	d := doc.New()
	d.Flows = []*doc.Flow{{ID: "f1", Src: "10.0.1.5", Dst: "10.0.2.5", Proto: "icmp"}}
	d.Trace = []*doc.Trace{{Flow: "f1", Disposition: doc.Denied, Direction: doc.Reply,
		Hops: []*doc.Hop{
			{Node: "10.0.1.5", Kind: doc.HopHost, IP: "10.0.1.5"},
			{Node: "r1", Kind: doc.HopRouter, In: "eth0", Out: "eth1", Steps: []*doc.Step{acc(3)}},
			{Node: "r2", Kind: doc.HopRouter, In: "eth0", Out: "eth1", Steps: []*doc.Step{acc(3)}},
			{Node: "10.0.2.5", Kind: doc.HopHost, IP: "10.0.2.5"},
		},
		ReplyHops: []*doc.Hop{
			{Node: "10.0.2.5", Kind: doc.HopHost, IP: "10.0.2.5"},
			{Node: "r2", Kind: doc.HopRouter, In: "eth1", Out: "eth0", Steps: []*doc.Step{{Kind: doc.StepConntrack, Action: "ESTABLISHED"}, acc(1)}},
			{Node: "r1", Kind: doc.HopRouter, In: "eth1", Out: "eth0", Steps: []*doc.Step{{Kind: doc.StepConntrack, Action: "INVALID"}, drop}},
		},
		DeniedBy: &doc.RuleRef{Router: "r1", Table: "filter", Chain: "FORWARD", Index: 2, Rule: drop.Text, Direction: doc.Reply},
	}}
	dot, err := Diagram(d, "f1", "dot")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`BLOCKED (simulation) · FORWARD #2 (reply)`, `n3 [label="10.0.2.5\n10.0.2.5"`} {
		if !strings.Contains(dot, w) {
			t.Errorf("diagram lacks %s\n%s", w, dot)
		}
	}
	if strings.Contains(dot, "dashed") || strings.Contains(dot, "not reached") {
		t.Errorf("the request's path is cut although only the reply was dropped\n%s", dot)
	}
	path, pages := report(t, d, Options{})
	validate(t, path)
	text := squash(pageText(t, path, 1, pages))
	for _, w := range []string{"the reply is dropped by r1 filter FORWARD #2", "ct INVALID", "ct ESTABLISHED", "Conntrack"} {
		if !strings.Contains(text, squash(w)) {
			t.Errorf("report lacks %q", w)
		}
	}
	if strings.Contains(text, squash("reply path only")) {
		t.Error("r1 and r2 are on the request path too, yet marked reply path only")
	}
}
