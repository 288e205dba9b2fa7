package sweep

import "github.com/tsim-dev/tsim/internal/doc"

// allHops returns every path of a trace: the request's, the reply's, and
// both of every ECMP branch. A class is uniform only if every router any of
// them crosses treats its members alike, so refine takes the cuts of all.
func allHops(t *doc.Trace) [][]*doc.Hop {
	out := [][]*doc.Hop{t.Hops}
	if len(t.ReplyHops) > 0 {
		out = append(out, t.ReplyHops)
	}
	for _, b := range t.Branches {
		if b == nil {
			continue
		}
		for _, hs := range [][]*doc.Hop{b.Hops, b.ReplyHops} {
			if len(hs) > 0 {
				out = append(out, hs)
			}
		}
	}
	return out
}
