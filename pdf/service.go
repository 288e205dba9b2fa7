package pdf

import (
	"fmt"
	"strings"

	"github.com/tsim-dev/tsim/internal/doc"
)

// servicePage draws one service: heading, path diagram, evidence.
func (r *renderer) servicePage(s *service) {
	r.addPage()
	r.section(serviceTitle(s))
	r.y += 1
	// Heading with the end-to-end badge on the right.
	fill, strong := verdictColours(s.e2e)
	e2eText := s.e2e
	if !s.live {
		e2eText += " (simulation)"
	}
	bw := r.c.width(e2eText, face{famSans, "B", 10}) + 5
	hl, hf := r.c.fitLines("Service "+s.label, r.contentW()-bw-4, fH1, 10, 3)
	top := r.y
	r.y = r.c.lines(margin, r.y, hl, hf)
	r.badge(r.pw-margin, top, e2eText, face{famSans, "B", 10}, strong, rgb{255, 255, 255})
	_ = fill
	r.textColor(colMuted)
	sub := fmt.Sprintf("%s → %s · %s", s.src, s.dst, protoDesc(s.flow))
	if s.flow.ID != "" {
		sub += " · flow " + s.flow.ID
	}
	if s.flow.Expect != "" {
		sub += " · expected " + s.flow.Expect + ": " + expectResult(s)
	}
	r.y = r.c.lines(margin, r.y+0.5, r.c.wrap(sub, r.contentW(), fBody), fBody)
	var notes []string
	if s.trace != nil {
		notes = append(notes, "Simulation: "+s.trace.Disposition+withReason(s.trace.Reason))
		if s.trace.DeniedBy != nil {
			notes[0] += fmt.Sprintf(" by %s %s", s.trace.DeniedBy.Router, ruleName(s.trace.DeniedBy.Chain, s.trace.DeniedBy.Index))
		}
	} else {
		notes = append(notes, "Simulation: no trace for this flow")
	}
	if s.reach != nil && s.reach.E2E != nil {
		e := "Emulation: " + s.reach.E2E.Verdict + withReason(s.reach.E2E.Reason)
		if s.reach.E2E.BlockedBy != nil {
			e += fmt.Sprintf(" (blocked by %s %s)", s.reach.E2E.BlockedBy.Router, ruleName(s.reach.E2E.BlockedBy.Chain, s.reach.E2E.BlockedBy.Index))
		}
		notes = append(notes, e)
	}
	for _, n := range notes {
		r.y = r.c.lines(margin, r.y, r.c.wrap(n, r.contentW(), fSmall), fSmall)
	}
	r.textColor(colText)
	if !s.live {
		r.y += 1.5
		msg := "Simulation only: no emulation result for this service; router colours are the trace's predictions."
		ls := r.c.wrap(msg, r.contentW()-6, fSmall)
		h := float64(len(ls))*fSmall.lineH() + 2.5
		r.fill(colWarn)
		r.draw(colWarnLine)
		r.f.SetLineWidth(0.3)
		r.f.Rect(margin, r.y, r.contentW(), h, "FD")
		r.c.lines(margin+3, r.y+1.3, ls, fSmall)
		r.y += h
	}
	r.y += 3
	r.heading("Path")
	r.diagram(s)
	r.y += 3
	r.heading("Per-router evidence")
	if len(s.routers) == 0 {
		r.textColor(colMuted)
		r.c.text(margin, r.y, "No router on this path.", fBody)
		r.textColor(colText)
		r.y += fBody.lineH()
	}
	for i, h := range s.routers {
		r.evidence(i+1, s, h)
	}
}

// serviceTitle names a service's part in the outline and the contents.
func serviceTitle(s *service) string { return s.label + ": " + s.e2e }

// expectResult compares the end-to-end result with the flow's expectation.
func expectResult(s *service) string {
	want := strings.ToLower(s.flow.Expect) == "allow"
	if s.e2e == unknown {
		return "UNKNOWN"
	}
	if e2eGood(s.e2e) == want {
		return "PASS"
	}
	return "FAIL"
}

func withReason(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

func protoDesc(f *doc.Flow) string {
	s := strings.ToUpper(f.Proto)
	if f.DPort > 0 {
		s += fmt.Sprintf(" port %d", f.DPort)
	}
	if f.SPort > 0 {
		s += fmt.Sprintf(" from port %d", f.SPort)
	}
	if f.Ingress != "" {
		s += " entering at " + f.Ingress
	}
	return s
}

// evidence draws the block of one router: a coloured header, then rows.
func (r *renderer) evidence(n int, s *service, h *hop) {
	fill, strong := verdictColours(h.verdict)
	w := r.contentW()
	title := fmt.Sprintf("%d. %s", n, h.name)
	if h.ip != "" {
		title += "  (" + h.ip + ")"
	}
	verdict := h.verdict
	if h.live == "" {
		verdict += " (simulation)"
	}
	vw := r.c.width(verdict, fSmallB) + 6
	tl := r.c.wrap(title, w-vw-6, fBodyB)
	headH := float64(len(tl))*fBodyB.lineH() + 2.5

	var rows []kv
	// Verdict and agreement.
	var vparts []part
	switch {
	case h.live == "":
		vparts = append(vparts, p(h.predicted+" predicted by simulation (no emulation result)", fSmall, colText))
	case h.live == unknown:
		vparts = append(vparts, p(fmt.Sprintf("UNKNOWN in emulation; simulation predicted %s: not compared", orDash(h.predicted)), fSmall, colText))
	case !h.agrees:
		vparts = append(vparts, p(fmt.Sprintf("%s in emulation; simulation predicted %s: DISAGREE", h.live, orDash(h.predicted)), fSmallB, colDisagree))
	default:
		vparts = append(vparts, p(fmt.Sprintf("%s in emulation; simulation predicted %s: agree", h.live, orDash(h.predicted)), fSmall, colText))
	}
	if h.reason != "" {
		vparts = append(vparts, p(h.reason, fSmall, colMuted))
	}
	rows = append(rows, kv{"Verdict", vparts})
	if h.in != "" || h.out != "" {
		rows = append(rows, kv{"Interfaces", []part{p(fmt.Sprintf("in %s → out %s", orDash(h.in), orDash(h.out)), fMono, colText)}})
	}
	// Deciding rule.
	if h.rule != "" || h.ruleText != "" {
		where := h.rule
		if h.ruleTable != "" {
			where = h.ruleTable + " / " + where
		}
		if h.ruleSim {
			where += " (predicted by the simulation; the emulation found no deciding rule)"
		}
		rp := []part{p(where, fSmallB, colText)}
		if h.ruleText != "" {
			rp = append(rp, p(h.ruleText, fMono, colText))
		}
		if h.pos != "" {
			rp = append(rp, p(h.pos, fTiny, colMuted))
		}
		rows = append(rows, kv{"Deciding rule", rp})
	} else {
		rows = append(rows, kv{"Deciding rule", []part{p("none found", fSmall, colMuted)}})
	}
	// Counters.
	switch {
	case h.live == "":
		rows = append(rows, kv{"Counters", []part{p("not measured (simulation only)", fSmall, colMuted)}})
	case len(h.counters) == 0:
		rows = append(rows, kv{"Counters", []part{p("no counter moved", fSmall, colMuted)}})
	default:
		var cs []string
		for _, c := range h.counters {
			cs = append(cs, fmt.Sprintf("%s / %s: +%d packets, +%d bytes", c.Table, ruleName(c.Chain, c.Index), c.Packets, c.Bytes))
		}
		rows = append(rows, kv{"Counters", []part{p(strings.Join(cs, "\n"), fMono, colText)}})
	}
	// What steered the packet.
	if len(h.policy) > 0 {
		var ps []part
		for _, st := range h.policy {
			ps = append(ps, p(stepText(st), fMono, colText))
		}
		rows = append(rows, kv{"Policy rule", ps})
	}
	if len(h.route) > 0 {
		var ps []part
		for _, st := range h.route {
			t := stepText(st)
			if st.Table != "" && !strings.Contains(t, "table "+st.Table) {
				t += "   [table " + st.Table + "]"
			}
			ps = append(ps, p(t, fMono, colText))
			if st.Query != "" {
				ps = append(ps, p(st.Query, fTiny, colMuted))
			}
		}
		rows = append(rows, kv{"Route", ps})
	}
	for _, st := range h.nat {
		t := stepText(st)
		if st.From != "" || st.To != "" {
			t += fmt.Sprintf("  (%s → %s)", st.From, st.To)
		}
		rows = append(rows, kv{"NAT", []part{p(t, fMono, colText)}})
	}

	// Keep the header with its first row.
	const labelW = 28.0
	first := r.kvRowHeight(rows[0], w-labelW-5)
	r.ensure(headH + first + 2)
	r.bar(w, headH, fill, strong)
	r.c.lines(margin+4, r.y+1.2, tl, fBodyB)
	r.badge(r.pw-margin-1.5, r.y+(headH-fSmallB.mm()-3)/2, verdict, fSmallB, strong, rgb{255, 255, 255})
	r.y += headH
	top := r.y
	page := r.f.PageNo()
	cont := func() {
		ls := r.c.wrap(fmt.Sprintf("%d. %s (continued)", n, h.name), w-6, fSmallB)
		ch := float64(len(ls))*fSmallB.lineH() + 1.6
		r.bar(w, ch, fill, strong)
		r.c.lines(margin+4, r.y+0.8, ls, fSmallB)
		r.y += ch
		top, page = r.y, r.f.PageNo()
	}
	r.kvBlock(margin+2, labelW, w-2, rows, true, cont)
	if r.f.PageNo() == page {
		r.draw(fill)
		r.f.SetLineWidth(0.4)
		r.f.Line(margin+0.8, top, margin+0.8, r.y)
	}
	r.y += 4
}

// bar draws the coloured header band of an evidence block at r.y.
func (r *renderer) bar(w, h float64, fill, strong rgb) {
	r.fill(fill)
	r.f.Rect(margin, r.y, w, h, "F")
	r.fill(strong)
	r.f.Rect(margin, r.y, 1.6, h, "F")
	r.textColor(colText)
}

// stepText is the original text of a step, or what it did.
func stepText(st *doc.Step) string {
	t := st.Text
	if t == "" {
		t = strings.TrimSpace(st.Action + " " + st.Detail)
	}
	if st.Kind == doc.StepPolicy && st.Text == "" && st.Priority != 0 {
		t = fmt.Sprintf("%d: %s", st.Priority, t)
	}
	return t
}
