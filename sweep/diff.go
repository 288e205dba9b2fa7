package sweep

import (
	"context"
	"slices"
	"strings"

	"github.com/tsim-dev/tsim/internal/doc"
)

// Change is one flow (or, over a space, one rectangle of flows) whose
// answer differs between the reference facts and the new facts.
type Change struct {
	// Flow is the changed flow (--flows), or nil for a space rectangle.
	Flow  *doc.Flow `json:"flow,omitempty"`
	Group *Group    `json:"group,omitempty"`
	// What lists what differs: disposition, decider, path, accepted.
	What []string `json:"what"`
	// Flows is how many flows the change covers (1 for a flow; for a
	// rectangle, its sources × destinations × ports, src = dst left out).
	Flows float64 `json:"flows"`
	Old   Answer  `json:"old"`
	New   Answer  `json:"new"`
}

// DiffResult is what a change does: every flow whose answer differs.
type DiffResult struct {
	Reference string `json:"reference"` // facts source before the change
	New       string `json:"new"`       // facts source after it
	// Scope says what was compared: "flows FILE" or the space.
	Scope string `json:"scope"`
	// Flows is how many flows were compared; Classes how many classes
	// were traced for a space (0 for a flows file).
	Flows   float64  `json:"flows"`
	Classes int      `json:"classes,omitempty"`
	Changes []Change `json:"changes"`
}

// ChangedFlows is the number of flows whose answer changed.
func (r *DiffResult) ChangedFlows() float64 {
	n := 0.0
	for _, c := range r.Changes {
		n += c.Flows
	}
	return n
}

// Changed reports whether anything changed.
func (r *DiffResult) Changed() bool { return len(r.Changes) > 0 }

// What says what differs between two answers, in a fixed order; empty
// when they are the same.
func What(old, new Answer) []string {
	var out []string
	if old.Disposition != new.Disposition {
		out = append(out, "disposition")
	}
	if old.deciderID != new.deciderID {
		out = append(out, "decider")
	}
	if !slices.Equal(old.Path, new.Path) {
		out = append(out, "path")
	}
	if !slices.Equal(old.acceptedIDs, new.acceptedIDs) {
		out = append(out, "accepted")
	}
	return out
}

// ChangeLabel renders the change from old to new in a few words:
// "DENIED by hq-gw filter FORWARD policy → DELIVERED by dc-srv", or, when
// only the path or the accepting rules changed, what they became.
func ChangeLabel(old, new Answer) string {
	if old.Label() != new.Label() || old.deciderID != new.deciderID {
		return old.Label() + " → " + new.Label()
	}
	if !slices.Equal(old.Path, new.Path) {
		return old.Label() + ", path " + strings.Join(old.Path, " ") + " → " + strings.Join(new.Path, " ")
	}
	return old.Label() + ", accepted by " + orNone(old.Accepted) + " → " + orNone(new.Accepted)
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, ", ")
}

// DiffFlows traces every flow with both models and returns the changed
// ones in flow order. Flows must have been validated against both.
func DiffFlows(ctx context.Context, ref, cur *Model, flows []*doc.Flow) ([]Change, error) {
	var out []Change
	for i, f := range flows {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		o := AnswerOf(ref.Engine.Trace(ctx, f))
		n := AnswerOf(cur.Engine.Trace(ctx, f))
		if w := What(o, n); len(w) > 0 {
			out = append(out, Change{Flow: f, What: w, Flows: 1, Old: o, New: n})
		}
	}
	return out, nil
}

// DiffSpace splits sp into classes that both models treat alike (the
// cuts of both facts sets) and returns the changed rectangles, merged.
func DiffSpace(ctx context.Context, sp Space, ref, cur *Model) ([]Change, Stats, error) {
	cs, st, err := Run(ctx, sp, ref, cur)
	if err != nil {
		return nil, st, err
	}
	// One representative answer pair per label, for the JSON output.
	pairs := map[string][2]Answer{}
	gs := Groups(cs, func(c *Class) (string, bool) {
		o, n := c.Answers[0], c.Answers[1]
		if len(What(o, n)) == 0 {
			return "", false
		}
		l := ChangeLabel(o, n)
		if _, ok := pairs[l]; !ok {
			pairs[l] = [2]Answer{o, n}
		}
		return l, true
	})
	var out []Change
	for _, g := range gs {
		for _, r := range g.Runs {
			p := pairs[r.Label]
			one := g
			one.Runs = []PortRun{r}
			c := Class{Src: g.Src, Dst: g.Dst, Ports: r.Ports}
			out = append(out, Change{Group: &one, What: What(p[0], p[1]), Flows: c.Flows(), Old: p[0], New: p[1]})
		}
	}
	return out, st, nil
}

// Line renders a change as one line: the flow or rectangle, then the
// change.
func (c Change) Line() string {
	var where string
	if c.Flow != nil {
		where = c.Flow.Src + " → " + c.Flow.Dst + " " + flowService(c.Flow)
	} else {
		g := c.Group
		where = AddrString(g.Src) + " → " + AddrString(g.Dst) + " " + g.Proto
		if g.Proto != "icmp" {
			where += " " + PortString(g.Runs[0].Ports)
		}
	}
	return where + ": " + ChangeLabel(c.Old, c.New)
}

func flowService(f *doc.Flow) string {
	if f.Proto == "icmp" || f.Proto == "" {
		return "icmp"
	}
	return strings.TrimSpace(itoa(f.DPort) + "/" + f.Proto)
}

func itoa(n int) string {
	return PortString(Range{uint32(n), uint32(n)})
}
