package sweep

import (
	"testing"

	"github.com/tsim-dev/tsim/internal/doc"
)

// TestExtraHops: a trace that reports a reply path and ECMP branches (as
// trace is growing to) has all of them found, so refine takes the cuts of
// every router they cross.
func TestExtraHops(t *testing.T) {
	type branch struct {
		Branch    int
		Hops      []*doc.Hop
		ReplyHops []*doc.Hop
	}
	type future struct {
		Flow      string
		Hops      []*doc.Hop
		ReplyHops []*doc.Hop
		Branches  []*branch
	}
	h := func(n string) []*doc.Hop { return []*doc.Hop{{Node: n, Kind: doc.HopRouter}} }
	tr := &future{Hops: h("a"), ReplyHops: h("b"), Branches: []*branch{{Hops: h("c"), ReplyHops: h("d")}, nil, {Hops: h("e")}}}
	var got []string
	for _, hs := range extraHops(tr) {
		for _, x := range hs {
			got = append(got, x.Node)
		}
	}
	if want := "b c d e"; join(got) != want {
		t.Errorf("extraHops = %q, want %q", join(got), want)
	}
	if r := replyHops(tr); len(r) != 1 || r[0].Node != "b" {
		t.Errorf("replyHops = %v", r)
	}
	if len(extraHops(&doc.Trace{Hops: h("a")})) != 0 || replyHops(&doc.Trace{}) != nil {
		t.Error("a trace with only Hops has no extra hops")
	}
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}
