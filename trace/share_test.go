package trace

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
)

// TestShareHopsFields pins the fields hopEqual compares: a new field of
// Hop, Step or RefusedRoute must be compared there before this passes.
func TestShareHopsFields(t *testing.T) {
	for _, c := range []struct {
		typ  any
		want []string
	}{
		{doc.Hop{}, []string{"Node", "Kind", "IP", "In", "Out", "Steps"}},
		{doc.Step{}, []string{"Kind", "Priority", "Table", "Chain", "Index", "Text", "Action", "Detail", "Query",
			"From", "To", "Pos", "Gateway", "Device", "Refused", "Nexthop", "Nexthops", "HashNexthop"}},
		{doc.RefusedRoute{}, []string{"Route", "Reason", "Pos"}},
	} {
		rt := reflect.TypeOf(c.typ)
		var got []string
		for i := range rt.NumField() {
			got = append(got, rt.Field(i).Name)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s has fields %v; hopEqual compares %v: compare the new ones", rt.Name(), got, c.want)
		}
	}
}

func hopObjects(t *doc.Trace) int {
	seen := map[*doc.Hop]bool{}
	add := func(hs []*doc.Hop) {
		for _, h := range hs {
			seen[h] = true
		}
	}
	add(t.Hops)
	add(t.ReplyHops)
	for _, b := range t.Branches {
		add(b.Hops)
		add(b.ReplyHops)
	}
	return len(seen)
}

// TestShareHops: the example's ECMP flows keep every byte of their JSON
// with fewer hop objects; hops that differ in one step stay apart.
func TestShareHops(t *testing.T) {
	f, err := facts.Load(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	eng := New(f)
	shared := 0
	for _, fl := range []*doc.Flow{
		{ID: "F23", Src: "10.1.10.5", Dst: "10.3.100.10", Proto: "icmp"},
		{ID: "f2", Src: "10.1.10.5", Dst: "10.3.100.10", Proto: "tcp", DPort: 443},
		{ID: "f3", Src: "10.1.10.5", Dst: "10.1.50.10", Proto: "tcp", DPort: 443},
	} {
		tr := eng.Trace(context.Background(), fl)
		before, err := json.Marshal(tr)
		if err != nil {
			t.Fatal(err)
		}
		n := hopObjects(tr)
		ShareHops(tr)
		after, _ := json.Marshal(tr)
		if !bytes.Equal(before, after) {
			t.Errorf("%s: the JSON changed:\n%s\n%s", fl.ID, before, after)
		}
		m := hopObjects(tr)
		if m > n {
			t.Errorf("%s: %d hop objects after sharing, %d before", fl.ID, m, n)
		}
		shared += n - m
		t.Logf("%s: %d branches, %d hop objects, %d after sharing", fl.ID, len(tr.Branches), n, m)
	}
	if shared == 0 {
		t.Error("no hop of the example's ECMP flows was shared")
	}

	// Crafted: branch 2's first hop equals branch 1's; its second differs
	// in one step's detail, its third in a refused route.
	step := func(detail, refused string) *doc.Step {
		s := &doc.Step{Kind: doc.StepRoute, Table: "main", Text: "default via 10.0.0.1", Detail: detail}
		if refused != "" {
			s.Refused = []*doc.RefusedRoute{{Route: refused, Reason: "gateway unreachable"}}
		}
		return s
	}
	hop := func(node, detail, refused string) *doc.Hop {
		return &doc.Hop{Node: node, Kind: doc.HopRouter, In: "eth0", Out: "eth1", Steps: []*doc.Step{step(detail, refused)}}
	}
	b1 := []*doc.Hop{hop("a", "x", ""), hop("b", "x", ""), hop("c", "x", "r1")}
	b2 := []*doc.Hop{hop("a", "x", ""), hop("b", "y", ""), hop("c", "x", "r2")}
	tr := &doc.Trace{Hops: b1, Branches: []*doc.Branch{{Branch: 1, Hops: b1}, {Branch: 2, Hops: b2}}}
	ShareHops(tr)
	if b2[0] != b1[0] {
		t.Error("equal hops a were not shared")
	}
	if b2[1] == b1[1] || b2[2] == b1[2] {
		t.Error("hops that differ in a step's detail or a refused route were shared")
	}
}
