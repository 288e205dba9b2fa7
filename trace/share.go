package trace

import "github.com/tsim-dev/tsim/internal/doc"

// ShareHops makes the hops of t that are equal in every field one object:
// the walk of each ECMP branch builds its own hops, most of them the same
// as another branch's (the routers before the split, the replies), so a
// trace of a network with ECMP holds several copies of the same hops —
// ~5 times as many hop objects as distinct ones on a generated
// 50-router network. A job that keeps every trace of a suite (tsim run
// --flows, until its report is written) calls it to keep one of each.
//
// Nothing else changes: the same hops, in the same order, with the same
// steps, encode to the same JSON. Only hops that are equal field by field
// (and step by step) are shared; a trace must not be changed afterwards
// through one of its hops (nothing changes a finished trace).
func ShareHops(t *doc.Trace) {
	if t == nil || len(t.Branches) == 0 {
		return
	}
	type key struct {
		node, in, out string
		steps         int
	}
	seen := map[key][]*doc.Hop{}
	one := func(hs []*doc.Hop) {
		for i, h := range hs {
			if h == nil {
				continue
			}
			k := key{h.Node, h.In, h.Out, len(h.Steps)}
			found := false
			for _, c := range seen[k] {
				if c == h || hopEqual(c, h) {
					hs[i], found = c, true
					break
				}
			}
			if !found {
				seen[k] = append(seen[k], h)
			}
		}
	}
	one(t.Hops)
	one(t.ReplyHops)
	for _, b := range t.Branches {
		if b != nil {
			one(b.Hops)
			one(b.ReplyHops)
		}
	}
	// The walk hands out steps from chunks shared by all the hops it
	// built: a chunk stays alive while any step in it is referenced, so
	// the kept hops' steps move to one array of their own and every chunk
	// of the walk becomes garbage.
	n := 0
	for _, hs := range seen {
		for _, h := range hs {
			n += len(h.Steps)
		}
	}
	steps := make([]doc.Step, 0, n)
	for _, hs := range seen {
		for _, h := range hs {
			for i, st := range h.Steps {
				if st != nil {
					steps = append(steps, *st)
					h.Steps[i] = &steps[len(steps)-1]
				}
			}
		}
	}
}

// hopEqual: every field and every step equal. TestShareHopsFields fails
// when a field is added to Hop, Step or RefusedRoute, until it is
// compared here.
func hopEqual(a, b *doc.Hop) bool {
	if a.Node != b.Node || a.Kind != b.Kind || a.IP != b.IP || a.In != b.In || a.Out != b.Out ||
		len(a.Steps) != len(b.Steps) {
		return false
	}
	for i, s := range a.Steps {
		if !stepEqual(s, b.Steps[i]) {
			return false
		}
	}
	return true
}

func stepEqual(a, b *doc.Step) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil {
		return false
	}
	if a.Kind != b.Kind || a.Priority != b.Priority || a.Table != b.Table || a.Chain != b.Chain ||
		a.Index != b.Index || a.Text != b.Text || a.Action != b.Action || a.Detail != b.Detail ||
		a.Query != b.Query || a.From != b.From || a.To != b.To || a.Pos != b.Pos ||
		a.Gateway != b.Gateway || a.Device != b.Device || a.Nexthop != b.Nexthop ||
		a.Nexthops != b.Nexthops || a.HashNexthop != b.HashNexthop || len(a.Refused) != len(b.Refused) {
		return false
	}
	for i, r := range a.Refused {
		switch q := b.Refused[i]; {
		case r == q:
		case r == nil || q == nil || *r != *q:
			return false
		}
	}
	return true
}
