package flowtest

import (
	"fmt"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/trace"
)

// FromTrace is a flow's answer by simulation: DELIVERED and EXITS_NETWORK
// allow, UNKNOWN and UNKNOWN_SOURCE are unknown (the model cannot decide),
// every other disposition (DENIED, NO_ROUTE, NULL_ROUTED, LOOP) denies.
func FromTrace(f *doc.Flow, t *doc.Trace) *Result {
	r := &Result{Flow: f, Verdict: t.Disposition, Reason: t.Reason}
	switch {
	case trace.Positive(t.Disposition):
		r.Got = GotAllow
	case t.Disposition == doc.Unknown || t.Disposition == doc.UnknownSource:
		r.Got = GotUnknown
	default:
		r.Got = GotDeny
	}
	if db := t.DeniedBy; db != nil {
		r.Router, r.Rule, r.Text = db.Router, ruleName(db.Table, db.Chain, db.Index), db.Rule
		r.Pos = db.Pos
		if r.Pos == "" {
			r.Pos = PosOf(t, db.Router, db.Table, db.Chain, db.Index)
		}
		return r
	}
	// Otherwise the last deciding step: the last firewall rule that
	// accepted the packet, or the last route or policy step on the path.
	var last, lastFilter *doc.Step
	var lastNode, filterNode string
	for _, h := range t.Hops {
		if h.Kind != doc.HopRouter {
			continue
		}
		for _, s := range h.Steps {
			if s.Kind == doc.StepFilter {
				lastFilter, filterNode = s, h.Node
			}
			last, lastNode = s, h.Node
		}
		if len(h.Steps) == 0 {
			last, lastNode = nil, h.Node
		}
	}
	s, node := last, lastNode
	if r.Got == GotAllow && lastFilter != nil {
		s, node = lastFilter, filterNode
	}
	r.Router = node
	if s != nil {
		r.Rule, r.Text, r.Pos = stepName(s), s.Text, s.Pos
	}
	return r
}

// FromReach is a flow's answer by a live probe: REACHABLE allows,
// UNREACHABLE denies, anything else is unknown. The deciding rule's
// FILE:LINE comes from the document's trace of the same flow.
func FromReach(d *doc.Document, f *doc.Flow, rc *doc.Reach) *Result {
	r := &Result{Flow: f, Got: GotUnknown, Verdict: doc.Unknown}
	if rc == nil || rc.E2E == nil {
		r.Reason = "no live result for this flow"
		return r
	}
	e := rc.E2E
	r.Verdict, r.Reason = e.Verdict, e.Reason
	switch e.Verdict {
	case doc.Reachable:
		r.Got = GotAllow
	case doc.Unreachable:
		r.Got = GotDeny
	}
	var t *doc.Trace
	for _, x := range d.Trace {
		if x.Flow == f.ID {
			t = x
		}
	}
	if bb := e.BlockedBy; bb != nil {
		r.Router, r.Rule, r.Text = bb.Router, ruleName(bb.Table, bb.Chain, bb.Index), bb.Rule
		r.Pos = PosOf(t, bb.Router, bb.Table, bb.Chain, bb.Index)
		return r
	}
	routers := e.Routers
	if len(routers) == 0 {
		routers = rc.Routers
	}
	for i := len(routers) - 1; i >= 0; i-- {
		if rr := routers[i]; rr.Rule != nil {
			r.Router, r.Rule, r.Text = rr.Router, ruleName(rr.Rule.Table, rr.Rule.Chain, rr.Rule.Index), rr.Rule.Text
			r.Pos = PosOf(t, rr.Router, rr.Rule.Table, rr.Rule.Chain, rr.Rule.Index)
			break
		}
	}
	return r
}

// PosOf finds the FILE:LINE of a firewall rule in a trace's hops ("" when
// the trace did not pass that rule).
func PosOf(t *doc.Trace, router, table, chain string, index int) string {
	if t == nil {
		return ""
	}
	for _, h := range append(t.Hops[:len(t.Hops):len(t.Hops)], t.ReplyHops...) {
		if h.Node != router {
			continue
		}
		for _, s := range h.Steps {
			if (s.Kind == doc.StepFilter || s.Kind == doc.StepNAT || s.Kind == doc.StepMangle) &&
				s.Table == table && s.Chain == chain && s.Index == index {
				return s.Pos
			}
		}
	}
	return ""
}

// ruleName is "filter FORWARD #6" (#0 is the chain's policy: "policy").
func ruleName(table, chain string, index int) string {
	if index == 0 {
		return fmt.Sprintf("%s %s policy", table, chain)
	}
	return fmt.Sprintf("%s %s #%d", table, chain, index)
}

func stepName(s *doc.Step) string {
	switch s.Kind {
	case doc.StepFilter, doc.StepNAT, doc.StepMangle:
		return ruleName(s.Table, s.Chain, s.Index)
	case doc.StepPolicy:
		return fmt.Sprintf("rule %d", s.Priority)
	case doc.StepRoute:
		return "route table " + s.Table
	}
	return s.Kind
}
