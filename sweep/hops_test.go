package sweep

import (
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/internal/doc"
)

// TestAllHops: the request, the reply and every ECMP branch's paths are all
// found, so refine takes the cuts of every router they cross.
func TestAllHops(t *testing.T) {
	h := func(n string) []*doc.Hop { return []*doc.Hop{{Node: n, Kind: doc.HopRouter}} }
	tr := &doc.Trace{Hops: h("a"), ReplyHops: h("b"), Branches: []*doc.Branch{{Hops: h("c"), ReplyHops: h("d")}, nil, {Hops: h("e")}}}
	var got []string
	for _, hs := range allHops(tr) {
		for _, x := range hs {
			got = append(got, x.Node)
		}
	}
	if want := "a b c d e"; strings.Join(got, " ") != want {
		t.Errorf("allHops = %q, want %q", strings.Join(got, " "), want)
	}
	if n := len(allHops(&doc.Trace{Hops: h("a")})); n != 1 {
		t.Errorf("a trace with only Hops has %d paths, want 1", n)
	}
}
