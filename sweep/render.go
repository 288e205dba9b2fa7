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
// label, or false to leave the class out (Diff: unchanged classes). The
// rectangles form a grid: each holds every port of the space for its
// sources and destinations (a class split only for some ports splits the
// rectangle for all of them), port runs with equal labels are joined,
// then adjacent destinations with equal runs, then adjacent sources with
// equal rows.
func Groups(cs []*Class, label func(*Class) (string, bool)) []Group {
	type lc struct {
		c     *Class
		label string
	}
	byProto := map[string][]lc{}
	for _, c := range cs {
		if l, ok := label(c); ok {
			byProto[c.Proto] = append(byProto[c.Proto], lc{c, l})
		}
	}
	var out []Group
	for _, proto := range []string{"tcp", "udp", "icmp"} {
		list := byProto[proto]
		if len(list) == 0 {
			continue
		}
		// Source segments: every class's source bounds.
		var bounds []uint64
		for _, x := range list {
			bounds = append(bounds, uint64(x.c.Src.Lo), uint64(x.c.Src.Hi)+1)
		}
		slices.Sort(bounds)
		bounds = slices.Compact(bounds)
		byStart := slices.Clone(list)
		slices.SortFunc(byStart, func(a, b lc) int { return cmp.Compare(a.c.Src.Lo, b.c.Src.Lo) })
		var active []lc
		next := 0
		type row struct {
			src  Range
			sig  string
			ents []Group
		}
		var prev *row
		flush := func() {
			if prev != nil {
				for _, g := range prev.ents {
					g.Src = prev.src
					out = append(out, g)
				}
			}
		}
		for bi := 0; bi+1 < len(bounds); bi++ {
			seg := Range{uint32(bounds[bi]), uint32(bounds[bi+1] - 1)}
			for next < len(byStart) && byStart[next].c.Src.Lo <= seg.Lo {
				active = append(active, byStart[next])
				next++
			}
			active = slices.DeleteFunc(active, func(x lc) bool { return x.c.Src.Hi < seg.Lo })
			if len(active) == 0 {
				flush()
				prev = nil
				continue
			}
			ents := rowGroups(proto, active, func(x lc) (*Class, string) { return x.c, x.label })
			var sb strings.Builder
			for i := range ents {
				fmt.Fprintf(&sb, "%d-%d:%s|", ents[i].Dst.Lo, ents[i].Dst.Hi, signature(&ents[i]))
			}
			sig := sb.String()
			if prev != nil && prev.sig == sig && uint64(prev.src.Hi)+1 == uint64(seg.Lo) {
				prev.src.Hi = seg.Hi
				continue
			}
			flush()
			prev = &row{src: seg, sig: sig, ents: ents}
		}
		flush()
	}
	return out
}

// rowGroups lays out the classes covering one source segment: destination
// cells at every class's bounds, each with its port runs, adjacent cells
// with equal runs joined.
func rowGroups[T any](proto string, active []T, get func(T) (*Class, string)) []Group {
	var bounds []uint64
	for _, x := range active {
		c, _ := get(x)
		bounds = append(bounds, uint64(c.Dst.Lo), uint64(c.Dst.Hi)+1)
	}
	slices.Sort(bounds)
	bounds = slices.Compact(bounds)
	byStart := slices.Clone(active)
	slices.SortFunc(byStart, func(a, b T) int {
		ca, _ := get(a)
		cb, _ := get(b)
		return cmp.Compare(ca.Dst.Lo, cb.Dst.Lo)
	})
	var cur []T
	next := 0
	var out []Group
	var lastSig string
	for bi := 0; bi+1 < len(bounds); bi++ {
		seg := Range{uint32(bounds[bi]), uint32(bounds[bi+1] - 1)}
		for next < len(byStart) {
			c, _ := get(byStart[next])
			if c.Dst.Lo > seg.Lo {
				break
			}
			cur = append(cur, byStart[next])
			next++
		}
		cur = slices.DeleteFunc(cur, func(x T) bool { c, _ := get(x); return c.Dst.Hi < seg.Lo })
		if len(cur) == 0 {
			lastSig = ""
			continue
		}
		runs := make([]PortRun, 0, len(cur))
		for _, x := range cur {
			c, l := get(x)
			runs = append(runs, PortRun{Ports: c.Ports, Label: l})
		}
		slices.SortFunc(runs, func(a, b PortRun) int { return cmp.Compare(a.Ports.Lo, b.Ports.Lo) })
		merged := runs[:0:0]
		for _, r := range runs {
			if n := len(merged); n > 0 && merged[n-1].Label == r.Label && uint64(merged[n-1].Ports.Hi)+1 == uint64(r.Ports.Lo) {
				merged[n-1].Ports.Hi = r.Ports.Hi
				continue
			}
			merged = append(merged, r)
		}
		g := Group{Proto: proto, Dst: seg, Runs: merged}
		sig := signature(&g)
		if n := len(out); n > 0 && lastSig == sig && uint64(out[n-1].Dst.Hi)+1 == uint64(seg.Lo) {
			out[n-1].Dst.Hi = seg.Hi
			continue
		}
		out = append(out, g)
		lastSig = sig
	}
	return out
}

func signature(g *Group) string {
	var b strings.Builder
	for _, r := range g.Runs {
		fmt.Fprintf(&b, "%d-%d=%s;", r.Ports.Lo, r.Ports.Hi, r.Label)
	}
	return b.String()
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

// Tally is one answer of a sweep with how much of the space it takes.
type Tally struct {
	Label   string  `json:"label"`
	Flows   float64 `json:"flows"`
	Classes int     `json:"classes"`
}

// Tallies counts the flows and classes of each label, most flows first
// (then by label): which rules decide how much of the space.
func Tallies(cs []*Class, label func(*Class) (string, bool)) []Tally {
	idx := map[string]int{}
	var out []Tally
	for _, c := range cs {
		l, ok := label(c)
		if !ok {
			continue
		}
		i, seen := idx[l]
		if !seen {
			i = len(out)
			idx[l] = i
			out = append(out, Tally{Label: l})
		}
		out[i].Flows += c.Flows()
		out[i].Classes++
	}
	slices.SortFunc(out, func(a, b Tally) int {
		return cmp.Or(cmp.Compare(b.Flows, a.Flows), strings.Compare(a.Label, b.Label))
	})
	return out
}
