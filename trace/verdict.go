package trace

import (
	"context"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/tsimerr"
)

// Positive reports whether a disposition is a positive answer (exit 0):
// the packet reached its destination or left the network towards it.
func Positive(disposition string) bool {
	return disposition == doc.Delivered || disposition == doc.ExitsNetwork
}

// ExitCode is 0 when every trace is positive, else 1 (DESIGN §3.3).
func ExitCode(ts []*doc.Trace) int {
	for _, t := range ts {
		if !Positive(t.Disposition) {
			return tsimerr.ExitNegative
		}
	}
	return tsimerr.ExitOK
}

// TraceAll validates and traces flows in order. A flow that cannot be
// simulated (bad address, IPv6, bad ingress) is an input error; ctx
// cancellation stops between flows.
func (e *Engine) TraceAll(ctx context.Context, flows []*doc.Flow) ([]*doc.Trace, error) {
	for _, f := range flows {
		if err := e.Validate(f); err != nil {
			return nil, err
		}
	}
	out := make([]*doc.Trace, 0, len(flows))
	for _, f := range flows {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out = append(out, e.Trace(ctx, f))
	}
	return out, nil
}

// RouterVerdict is the simulation's prediction for one router hop of a
// flow, in the terms `tsim reach` measures with counters.
type RouterVerdict struct {
	Router string
	// Verdict is ALLOWED (the router passed the packet on or delivered
	// it), BLOCKED (a firewall rule dropped or rejected it, or routing
	// discarded it: then Rule is nil) or UNKNOWN (a rule the model does
	// not understand decided).
	Verdict string
	// Rule is the deciding rule of the filter table (FORWARD, or INPUT
	// for a delivered packet, OUTPUT for the originating router), the one
	// whose counter moves; index 0 is the chain policy. Nil when no
	// filter chain with rules was traversed.
	Rule   *doc.LiveRule
	Reason string
}

// PerRouter predicts each router hop's verdict for the request of a
// trace, in hop order (a router appears once per visit). A connection
// whose reply was stopped had every request hop pass the request.
func PerRouter(t *doc.Trace) []RouterVerdict {
	var out []RouterVerdict
	last := -1
	for i, h := range t.Hops {
		if h.Kind == doc.HopRouter {
			last = i
		}
	}
	for i, h := range t.Hops {
		if h.Kind != doc.HopRouter {
			continue
		}
		v := RouterVerdict{Router: h.Node, Verdict: doc.Allowed}
		for _, s := range h.Steps {
			if s.Kind == doc.StepFilter && s.Table == "filter" {
				v.Rule = &doc.LiveRule{Table: s.Table, Chain: s.Chain, Index: s.Index, Text: s.Text}
			}
		}
		if i == last && t.Direction != doc.Reply {
			switch t.Disposition {
			case doc.Denied:
				v.Verdict, v.Reason = doc.Blocked, t.Reason
				if d := t.DeniedBy; d != nil {
					v.Rule = &doc.LiveRule{Table: d.Table, Chain: d.Chain, Index: d.Index, Text: d.Rule}
				}
			case doc.Unknown:
				v.Verdict, v.Reason = doc.Unknown, t.Reason
			case doc.NoRoute, doc.NullRouted:
				v.Verdict, v.Reason, v.Rule = doc.Blocked, t.Reason, nil
			}
		}
		out = append(out, v)
	}
	return out
}
