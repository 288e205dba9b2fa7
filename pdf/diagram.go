package pdf

import (
	"fmt"
	"math"
	"strings"

	"codeberg.org/go-pdf/fpdf"

	"github.com/tsim-dev/tsim/internal/doc"
)

// dnode is one box of a path diagram.
type dnode struct {
	name    string
	ip      string
	role    string // "source", "destination", "" for routers
	kind    string
	verdict string // routers: the verdict shown
	live    bool
	rule    string // "FORWARD #4", "… (sim)" when only the trace names it
	sim     string // prediction when it disagrees with the live verdict
	in, out string
	reached bool
	cut     bool // a router before this one blocked the flow: its link is dashed
	// replyDrop: the router blocks the connection by dropping its reply;
	// the request passed it, so the links after it stay solid.
	replyDrop bool
}

// pathNodes turns a service's hops into diagram boxes: source host, the
// routers, destination host (added when the trace does not name them).
func pathNodes(s *service) []dnode {
	var ns []dnode
	if len(s.hops) == 0 || s.hops[0].kind != doc.HopHost {
		ns = append(ns, dnode{name: "Source host", ip: s.src, role: "source", kind: doc.HopHost, reached: true})
	}
	for i, h := range s.hops {
		n := dnode{name: h.name, ip: h.ip, kind: h.kind, in: h.in, out: h.out, reached: true}
		switch h.kind {
		case doc.HopRouter:
			n.verdict, n.live, n.rule = h.verdict, h.live != "", h.rule
			if h.ruleDir == doc.Reply && h.live == "" {
				n.replyDrop = true
				n.rule += " (reply)"
			}
			if h.ruleSim {
				n.rule += " (sim)"
			}
			if h.live != "" && !h.agrees {
				n.sim = h.predicted
			}
		case doc.HopHost:
			n.role = "host"
			if i == 0 {
				n.role = "source"
			} else if i == len(s.hops)-1 {
				n.role = "destination"
				n.reached = s.requestArrived()
			}
		}
		ns = append(ns, n)
	}
	// Routers probed live but absent from the trace are not on a known
	// path position; the evidence table lists them, the diagram does not.
	// Past the first blocking router the packet does not travel on; the
	// boxes keep their own verdicts (each router is probed on its own).
	blocked := false
	for i := range ns {
		ns[i].cut = blocked || !ns[i].reached
		if ns[i].kind == doc.HopRouter && ns[i].verdict == doc.Blocked && !ns[i].replyDrop {
			blocked = true
		}
	}
	last := ""
	if len(s.hops) > 0 {
		last = s.hops[len(s.hops)-1].kind
	}
	if last != doc.HopHost && last != doc.HopInternet {
		ns = append(ns, dnode{name: "Destination host", ip: s.dst, role: "destination", kind: doc.HopHost, reached: s.requestArrived(), cut: blocked || !s.requestArrived()})
	}
	return ns
}

// Diagram geometry in mm.
const (
	diagGap   = 17.0 // horizontal space between boxes (holds two interface names)
	diagVGap  = 13.0 // vertical space between rows
	diagMaxW  = 46.0
	diagPerRo = 4
	arrowLen  = 1.8
)

// boxText is the laid-out text of one box.
type boxText struct {
	name  []string
	nameF face
	lines []part // below the name
	h     float64
}

// diagram draws the path as boxes in rows of up to four, snaking so that
// every link stays short; it wraps onto as many rows as the path needs.
func (r *renderer) diagram(s *service) {
	ns := pathNodes(s)
	n := len(ns)
	rows := (n + diagPerRo - 1) / diagPerRo
	k := (n + rows - 1) / rows
	avail := r.contentW()
	w := math.Min(diagMaxW, (avail-float64(k-1)*diagGap)/float64(k))
	offX := margin + (avail-(float64(k)*w+float64(k-1)*diagGap))/2

	// One name size for every box, the largest that lets each name fit in
	// three lines, so the boxes read as a set.
	nameF := face{famSans, "B", 8}
	for _, nd := range ns {
		if _, f := r.c.fitLines(nd.name, w-3, nameF, 5.5, 3); f.size < nameF.size {
			nameF = f
		}
	}
	texts := make([]boxText, n)
	for i, nd := range ns {
		texts[i] = r.layoutBox(nd, w, nameF)
	}
	type pos struct{ x, y, h float64 }
	at := make([]pos, n)
	for row := 0; row < rows; row++ {
		lo, hi := row*k, (row+1)*k
		if hi > n {
			hi = n
		}
		rh := 0.0
		for i := lo; i < hi; i++ {
			rh = math.Max(rh, texts[i].h)
		}
		brk := r.ensure(rh + 2)
		if brk && row > 0 {
			// The link from the previous row continues here.
			r.textColor(colMuted)
			r.c.text(margin, r.y, "path continued from the previous page", fTiny)
			r.textColor(colText)
			r.y += fTiny.lineH() + diagVGap
		}
		for i := lo; i < hi; i++ {
			col := i - lo
			if row%2 == 1 {
				col = k - 1 - col
			}
			at[i] = pos{offX + float64(col)*(w+diagGap), r.y, rh}
			r.drawBox(ns[i], texts[i], at[i].x, at[i].y, w, rh)
		}
		if row > 0 && !brk {
			a, b := at[lo-1], at[lo]
			cx := a.x + w/2
			r.link(cx, a.y+a.h, cx, b.y, ns[lo-1].out, ns[lo].in, !ns[lo].cut, true)
		}
		for i := lo + 1; i < hi; i++ {
			a, b := at[i-1], at[i]
			cy := a.y + a.h/2
			if b.x > a.x {
				r.link(a.x+w, cy, b.x, cy, ns[i-1].out, ns[i].in, !ns[i].cut, false)
			} else {
				r.link(a.x, cy, b.x+w, cy, ns[i-1].out, ns[i].in, !ns[i].cut, false)
			}
		}
		r.y += rh
		if row < rows-1 {
			r.y += diagVGap
		}
	}
	r.y += 2
}

// layoutBox wraps and sizes the text of one box of width w.
func (r *renderer) layoutBox(nd dnode, w float64, nameF face) boxText {
	inner := w - 3
	bt := boxText{name: r.c.wrap(nd.name, inner, nameF), nameF: nameF}
	add := func(s string, fc face, col rgb) {
		if s != "" {
			bt.lines = append(bt.lines, p(s, fc, col))
		}
	}
	ipF := face{famSans, "", 6.5}
	switch nd.kind {
	case doc.HopRouter:
		add(nd.ip, ipF, colMuted)
		_, strong := verdictColours(nd.verdict)
		v := nd.verdict
		if !nd.live {
			v += " (sim)"
		}
		add(v, face{famSans, "B", 7}, strong)
		add(nd.rule, face{famMono, "", 6.5}, colText)
		if nd.sim != "" {
			add("simulation: "+nd.sim+" ≠", face{famSans, "B", 6}, colDisagree)
		}
	default:
		role := nd.role
		if nd.kind == doc.HopInternet {
			role = "internet"
		}
		if !nd.reached {
			role += " · not reached"
		}
		add(nd.ip, ipF, colMuted)
		if !strings.HasSuffix(strings.ToLower(nd.name), " host") || !nd.reached {
			add(role, face{famSans, "", 6}, colMuted)
		}
	}
	h := 3.0 + float64(len(bt.name))*bt.nameF.lineH()
	var wrapped []part
	for _, pt := range bt.lines {
		for _, l := range r.c.wrap(pt.text, inner, pt.fc) {
			wrapped = append(wrapped, p(l, pt.fc, pt.col))
			h += pt.fc.lineH()
		}
	}
	bt.lines = wrapped
	bt.h = math.Max(h+1, 14)
	return bt
}

func (r *renderer) drawBox(nd dnode, bt boxText, x, y, w, h float64) {
	fill, strong := colHost, colHostLine
	if nd.kind == doc.HopRouter {
		fill, strong = verdictColours(nd.verdict)
	} else if nd.kind == doc.HopInternet {
		fill, strong = verdictColours(unknown)
	}
	r.f.SetLineWidth(0.5)
	if !nd.reached {
		fill, strong = rgb{255, 255, 255}, colMuted
		r.f.SetDashPattern([]float64{1.2, 0.8}, 0)
	}
	if nd.sim != "" {
		strong = colDisagree
		r.f.SetLineWidth(0.9)
	}
	r.fill(fill)
	r.draw(strong)
	r.f.RoundedRect(x, y, w, h, 1.6, "1234", "FD")
	r.f.SetDashPattern(nil, 0)
	content := float64(len(bt.name)) * bt.nameF.lineH()
	for _, l := range bt.lines {
		content += l.fc.lineH()
	}
	ty := y + (h-content)/2
	r.textColor(colText)
	if !nd.reached {
		r.textColor(colMuted)
	}
	for _, l := range bt.name {
		r.c.textCenter(x+w/2, ty, l, bt.nameF)
		ty += bt.nameF.lineH()
	}
	for _, l := range bt.lines {
		r.textColor(l.col)
		r.c.textCenter(x+w/2, ty, l.text, l.fc)
		ty += l.fc.lineH()
	}
	r.textColor(colText)
}

// link draws an arrow from (x1,y1) to (x2,y2) with the outgoing interface
// name at its start and the incoming one at its end.
func (r *renderer) link(x1, y1, x2, y2 float64, out, in string, reached, vertical bool) {
	col := rgb{70, 78, 86}
	if !reached {
		col = colMuted
		r.f.SetDashPattern([]float64{1, 1}, 0)
	}
	r.draw(col)
	r.fill(col)
	r.f.SetLineWidth(0.45)
	// Shorten the line so the arrowhead tip touches the box.
	dx, dy := x2-x1, y2-y1
	l := math.Hypot(dx, dy)
	ux, uy := dx/l, dy/l
	r.f.Line(x1, y1, x2-ux*arrowLen, y2-uy*arrowLen)
	r.f.SetDashPattern(nil, 0)
	px, py := -uy, ux
	r.f.Polygon([]fpdf.PointType{
		{X: x2, Y: y2},
		{X: x2 - ux*arrowLen*1.6 + px*arrowLen*0.7, Y: y2 - uy*arrowLen*1.6 + py*arrowLen*0.7},
		{X: x2 - ux*arrowLen*1.6 - px*arrowLen*0.7, Y: y2 - uy*arrowLen*1.6 - py*arrowLen*0.7},
	}, "F")
	fc := face{famMono, "", 6}
	r.textColor(rgb{13, 71, 161})
	if vertical {
		room := r.contentW()/float64(diagPerRo) - 2
		if out != "" {
			ls, f := r.c.fitLines(out, room, fc, 4.5, 2)
			r.c.lines(x1+2, y1+0.6, ls, f)
		}
		if in != "" {
			ls, f := r.c.fitLines(in, room, fc, 4.5, 2)
			r.c.lines(x2+2, y2-0.6-float64(len(ls))*f.lineH(), ls, f)
		}
	} else {
		room := math.Abs(x2-x1) - 1.5
		if out != "" {
			ls, f := r.c.fitLines(out, room, fc, 4.5, 2)
			top := y1 - 0.7 - float64(len(ls))*f.lineH()
			for _, s := range ls {
				if x2 > x1 {
					r.c.text(x1+0.8, top, s, f)
				} else {
					r.c.textRight(x1-0.8, top, s, f)
				}
				top += f.lineH()
			}
		}
		if in != "" {
			ls, f := r.c.fitLines(in, room, fc, 4.5, 2)
			top := y2 + 0.9
			for _, s := range ls {
				if x2 > x1 {
					r.c.textRight(x2-1.6, top, s, f)
				} else {
					r.c.text(x2+1.6, top, s, f)
				}
				top += f.lineH()
			}
		}
	}
	r.textColor(colText)
}

// Diagram renders the path of one flow (flowID, or every flow when it is
// empty) as Graphviz DOT ("dot") or Mermaid ("mermaid") text.
func Diagram(d *doc.Document, flowID string, format string) (string, error) {
	v, err := newView(d)
	if err != nil {
		return "", err
	}
	var svcs []*service
	var ids []string
	for _, s := range v.services {
		ids = append(ids, s.flow.ID)
		if flowID == "" || s.flow.ID == flowID {
			svcs = append(svcs, s)
		}
	}
	if len(svcs) == 0 {
		return "", fmt.Errorf("no flow %q in the document (flows: %s)", flowID, strings.Join(ids, ", "))
	}
	var b strings.Builder
	switch format {
	case "dot":
		for _, s := range svcs {
			writeDot(&b, s)
		}
	case "mermaid":
		b.WriteString("flowchart LR\n")
		for i, s := range svcs {
			writeMermaid(&b, s, i, len(svcs) > 1)
		}
	default:
		return "", fmt.Errorf("unknown diagram format %q (want dot or mermaid)", format)
	}
	return b.String(), nil
}

// nodeLabel is the text lines of a box, shared by DOT and Mermaid.
func nodeLabel(nd dnode) []string {
	ls := []string{nd.name}
	if nd.ip != "" {
		ls = append(ls, nd.ip)
	}
	if nd.kind == doc.HopRouter {
		v := nd.verdict
		if !nd.live {
			v += " (simulation)"
		}
		if nd.rule != "" {
			v += " · " + nd.rule
		}
		ls = append(ls, v)
		if nd.sim != "" {
			ls = append(ls, "simulation predicted "+nd.sim)
		}
	} else if !nd.reached {
		ls = append(ls, "not reached")
	}
	return ls
}

func hexColour(c rgb) string { return fmt.Sprintf("#%02x%02x%02x", c.r, c.g, c.b) }

func nodeColours(nd dnode) (fill, line rgb) {
	switch {
	case !nd.reached:
		return rgb{255, 255, 255}, colMuted
	case nd.kind == doc.HopRouter:
		fill, line := verdictColours(nd.verdict)
		if nd.sim != "" {
			line = colDisagree // as in the PDF: the box is outlined
		}
		return fill, line
	case nd.kind == doc.HopInternet:
		return verdictColours(unknown)
	}
	return colHost, colHostLine
}

func dotQuote(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `"`, `\"`)
	return `"` + strings.ReplaceAll(s, "\n", `\n`) + `"`
}

func writeDot(b *strings.Builder, s *service) {
	ns := pathNodes(s)
	fmt.Fprintf(b, "digraph %s {\n", dotQuote(s.flow.ID+" "+s.label))
	fmt.Fprintf(b, "  label=%s;\n  labelloc=t;\n  rankdir=LR;\n", dotQuote(fmt.Sprintf("%s: %s → %s, %s", s.label, s.src, s.dst, s.e2e)))
	b.WriteString("  node [shape=box, style=\"rounded,filled\", fontname=\"DejaVu Sans\"];\n  edge [fontname=\"DejaVu Sans Mono\", fontsize=9];\n")
	for i, nd := range ns {
		fill, line := nodeColours(nd)
		style := ""
		if !nd.reached {
			style = `, style="rounded,dashed"`
		}
		fmt.Fprintf(b, "  n%d [label=%s, fillcolor=%q, color=%q%s];\n", i, dotQuote(strings.Join(nodeLabel(nd), "\n")), hexColour(fill), hexColour(line), style)
	}
	for i := 1; i < len(ns); i++ {
		attrs := []string{}
		if ns[i-1].out != "" {
			attrs = append(attrs, "taillabel="+dotQuote(ns[i-1].out))
		}
		if ns[i].in != "" {
			attrs = append(attrs, "headlabel="+dotQuote(ns[i].in))
		}
		if ns[i].cut {
			attrs = append(attrs, "style=dashed")
		}
		a := ""
		if len(attrs) > 0 {
			a = " [" + strings.Join(attrs, ", ") + "]"
		}
		fmt.Fprintf(b, "  n%d -> n%d%s;\n", i-1, i, a)
	}
	b.WriteString("}\n")
}

// mermaidText escapes text for a quoted Mermaid label.
func mermaidText(s string) string {
	s = strings.ReplaceAll(s, "#", "#35;")
	s = strings.ReplaceAll(s, `"`, "#quot;")
	s = strings.ReplaceAll(s, "<", "#lt;")
	return strings.ReplaceAll(s, ">", "#gt;")
}

func writeMermaid(b *strings.Builder, s *service, idx int, sub bool) {
	ns := pathNodes(s)
	ind := "  "
	id := func(i int) string { return fmt.Sprintf("s%dn%d", idx, i) }
	if sub {
		fmt.Fprintf(b, "  subgraph s%d[\"%s\"]\n", idx, mermaidText(s.label+": "+s.e2e))
		ind = "    "
	}
	for i, nd := range ns {
		var ls []string
		for _, l := range nodeLabel(nd) {
			ls = append(ls, mermaidText(l))
		}
		fmt.Fprintf(b, "%s%s[\"%s\"]\n", ind, id(i), strings.Join(ls, "<br/>"))
	}
	for i := 1; i < len(ns); i++ {
		arrow := "-->"
		if ns[i].cut {
			arrow = "-.->"
		}
		lbl := strings.TrimSpace(strings.Trim(ns[i-1].out+" → "+ns[i].in, " →"))
		if ns[i-1].out == "" || ns[i].in == "" {
			lbl = ns[i-1].out + ns[i].in
		}
		if lbl != "" {
			fmt.Fprintf(b, "%s%s %s|\"%s\"| %s\n", ind, id(i-1), arrow, mermaidText(lbl), id(i))
		} else {
			fmt.Fprintf(b, "%s%s %s %s\n", ind, id(i-1), arrow, id(i))
		}
	}
	if sub {
		b.WriteString("  end\n")
	}
	for i, nd := range ns {
		fill, line := nodeColours(nd)
		fmt.Fprintf(b, "  style %s fill:%s,stroke:%s\n", id(i), hexColour(fill), hexColour(line))
	}
}
