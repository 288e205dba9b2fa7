package sweep

import (
	"cmp"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// PortRun is a range of destination ports with one answer.
type PortRun struct {
	Ports Range  `json:"-"`
	Label string `json:"label"`
}

// Group is a rectangle of the space, SRC × DST of one protocol, with its
// answers by destination port.
type Group struct {
	Proto string
	Src   Range
	Dst   Range
	Runs  []PortRun
}

// Groups merges classes into rectangles for output. label gives a class's
// label, or false to leave the class out (Diff: unchanged classes). Port
// runs with equal labels are joined, then adjacent sources and
// destinations with equal runs, until nothing joins any more.
func Groups(cs []*Class, label func(*Class) (string, bool)) []Group {
	type key struct {
		proto string
		s, d  Range
	}
	byKey := map[key]*Group{}
	var order []key
	for _, c := range cs {
		l, ok := label(c)
		if !ok {
			continue
		}
		k := key{c.Proto, c.Src, c.Dst}
		g := byKey[k]
		if g == nil {
			g = &Group{Proto: c.Proto, Src: c.Src, Dst: c.Dst}
			byKey[k] = g
			order = append(order, k)
		}
		g.Runs = append(g.Runs, PortRun{Ports: c.Ports, Label: l})
	}
	gs := make([]Group, 0, len(order))
	for _, k := range order {
		g := byKey[k]
		slices.SortFunc(g.Runs, func(a, b PortRun) int { return cmp.Compare(a.Ports.Lo, b.Ports.Lo) })
		var runs []PortRun
		for _, r := range g.Runs {
			if n := len(runs); n > 0 && runs[n-1].Label == r.Label && uint64(runs[n-1].Ports.Hi)+1 == uint64(r.Ports.Lo) {
				runs[n-1].Ports.Hi = r.Ports.Hi
				continue
			}
			runs = append(runs, r)
		}
		g.Runs = runs
		gs = append(gs, *g)
	}
	for {
		n := len(gs)
		gs = mergeAlong(gs, true)
		gs = mergeAlong(gs, false)
		if len(gs) == n {
			break
		}
	}
	slices.SortFunc(gs, func(a, b Group) int {
		return cmp.Or(cmp.Compare(protoOrder(a.Proto), protoOrder(b.Proto)), cmp.Compare(a.Src.Lo, b.Src.Lo), cmp.Compare(a.Dst.Lo, b.Dst.Lo))
	})
	return gs
}

func signature(g *Group) string {
	var b strings.Builder
	for _, r := range g.Runs {
		fmt.Fprintf(&b, "%d-%d=%s;", r.Ports.Lo, r.Ports.Hi, r.Label)
	}
	return b.String()
}

// mergeAlong joins groups adjacent in the source (src) or destination
// dimension whose other dimension and runs are equal.
func mergeAlong(gs []Group, src bool) []Group {
	sigs := make([]string, len(gs))
	idx := make([]int, len(gs))
	for i := range gs {
		sigs[i] = signature(&gs[i])
		idx[i] = i
	}
	along := func(g *Group) Range {
		if src {
			return g.Src
		}
		return g.Dst
	}
	other := func(g *Group) Range {
		if src {
			return g.Dst
		}
		return g.Src
	}
	slices.SortFunc(idx, func(a, b int) int {
		ga, gb := &gs[a], &gs[b]
		return cmp.Or(strings.Compare(ga.Proto, gb.Proto), cmp.Compare(other(ga).Lo, other(gb).Lo),
			cmp.Compare(other(ga).Hi, other(gb).Hi), strings.Compare(sigs[a], sigs[b]), cmp.Compare(along(ga).Lo, along(gb).Lo))
	})
	var out []Group
	var lastSig string
	for _, i := range idx {
		g := gs[i]
		if n := len(out); n > 0 {
			p := &out[n-1]
			if p.Proto == g.Proto && other(p) == other(&g) && lastSig == sigs[i] && uint64(along(p).Hi)+1 == uint64(along(&g).Lo) {
				if src {
					p.Src.Hi = g.Src.Hi
				} else {
					p.Dst.Hi = g.Dst.Hi
				}
				continue
			}
		}
		out = append(out, g)
		lastSig = sigs[i]
	}
	return out
}

// Line renders a group as one line:
// "10.1.10.0/24 → 10.3.20.0/24 tcp: 1-21 DENIED by …, 22 DELIVERED by dc-srv".
func (g Group) Line() string {
	var b strings.Builder
	b.WriteString(AddrString(g.Src) + " → " + AddrString(g.Dst) + " " + g.Proto + ":")
	for i, r := range g.Runs {
		if i > 0 {
			b.WriteByte(',')
		}
		if g.Proto != "icmp" {
			b.WriteString(" " + PortString(r.Ports))
		}
		b.WriteString(" " + r.Label)
	}
	return b.String()
}

// WriteText writes one line per group.
func WriteText(w io.Writer, gs []Group) error {
	for _, g := range gs {
		if _, err := fmt.Fprintln(w, g.Line()); err != nil {
			return err
		}
	}
	return nil
}

// WriteCSV writes one row per run: src,dst,proto,ports,label.
func WriteCSV(w io.Writer, gs []Group, header []string, row func(g Group, r PortRun) []string) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	for _, g := range gs {
		for _, r := range g.Runs {
			if err := cw.Write(row(g, r)); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// MarshalJSON renders a group with its ranges as text.
func (g Group) MarshalJSON() ([]byte, error) {
	type run struct {
		Ports string `json:"ports,omitempty"`
		Label string `json:"label"`
	}
	out := struct {
		Src   string `json:"src"`
		Dst   string `json:"dst"`
		Proto string `json:"proto"`
		Runs  []run  `json:"runs"`
	}{AddrString(g.Src), AddrString(g.Dst), g.Proto, nil}
	for _, r := range g.Runs {
		x := run{Label: r.Label}
		if g.Proto != "icmp" {
			x.Ports = PortString(r.Ports)
		}
		out.Runs = append(out.Runs, x)
	}
	return json.Marshal(out)
}
