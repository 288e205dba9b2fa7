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
		if dn := s.trace.DeniedBy; dn != nil {
			if dn.Direction != "" {
				notes[0] += " (" + denial(dn, "") + ")"
			} else {
				notes[0] += fmt.Sprintf(" by %s %s", dn.Router, ruleName(dn.Chain, dn.Index))
			}
		}
	} else {
		notes = append(notes, "Simulation: no trace for this flow")
	}
	if s.reach != nil && s.reach.E2E != nil {
		e := "Emulation: " + s.reach.E2E.Verdict + withReason(s.reach.E2E.Reason)
		if bb := s.reach.E2E.BlockedBy; bb != nil {
			if bb.Direction != "" || s.reach.E2E.Cause != "" {
				e += " (" + denial(bb, s.reach.E2E.Cause) + ")"
			} else {
				e += fmt.Sprintf(" (blocked by %s %s)", bb.Router, ruleName(bb.Chain, bb.Index))
			}
		}
		notes = append(notes, e)
	}
	if s.trace != nil {
		for _, a := range s.trace.Alternatives {
			notes = append(notes, "Also: "+a)
		}
		for _, n := range s.trace.Notes {
			notes = append(notes, "Note: "+n)
		}
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
	if len(s.replyHops) > 0 {
		r.heading("Reply")
		r.replyTable(s)
		r.y += 3
	}
	if s.trace != nil && len(s.trace.Branches) > 1 {
		r.heading("ECMP branches")
		r.branchTable(s)
		r.y += 3
	}
	if s.reach != nil && s.reach.E2E != nil && s.reach.E2E.PathDiffers {
		r.heading("Live path versus predicted path")
		r.pathCompare(s.reach.E2E)
		r.y += 3
	}
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
	if h.dir == doc.Reply {
		title += "  · reply path only"
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
		if h.ruleDir != "" && (h.verdict == doc.Blocked || h.predicted == doc.Blocked) {
			rp = append(rp, p(fmt.Sprintf("the %s is dropped by %s %s", h.ruleDir, h.name, strings.TrimSpace(h.ruleTable+" "+h.rule)), fSmall, colDisagree))
		}
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
	if h.ct != "" {
		ct := []part{p("ct "+h.ct, fSmallB, colText)}
		if h.ctDetail != "" {
			ct = append(ct, p(h.ctDetail, fSmall, colMuted))
		}
		rows = append(rows, kv{"Conntrack", ct})
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

// hopRule is the deciding-rule cell of a hop table: the verdict, where
// the rule sits and its text.
func hopRule(h *hop) []part {
	if h.rule == "" && h.ruleText == "" {
		return []part{p("no filter rule", fSmall, colMuted)}
	}
	_, strong := verdictColours(h.predicted)
	where := strings.TrimSpace(h.ruleTable + " " + h.rule)
	ps := []part{p(h.predicted+" · "+where, fSmallB, strong)}
	if h.ruleText != "" {
		ps = append(ps, p(h.ruleText, fMonoS, colText))
	}
	if h.live != "" {
		l := "emulation: " + h.live
		if h.liveRule != "" {
			l += " · " + h.liveRule
		}
		col := colMuted
		if !h.agrees && h.live != unknown {
			l += " (DISAGREE)"
			col = colDisagree
		}
		ps = append(ps, p(l, fSmall, col))
	}
	return ps
}

// hopRoute is the route cell of a hop table: each route step's line.
func hopRoute(h *hop) []part {
	var ps []part
	for _, st := range h.policy {
		if st.Text != "" && !strings.Contains(st.Text, "lookup main") {
			ps = append(ps, p(stepText(st), fMonoS, colMuted))
		}
	}
	for _, st := range h.route {
		ps = append(ps, p(stepText(st), fMonoS, colText))
	}
	for _, st := range h.nat {
		t := stepText(st)
		if st.From != "" || st.To != "" {
			t = fmt.Sprintf("%s %s → %s", st.Action, st.From, st.To)
		}
		ps = append(ps, p(t, fMonoS, colText))
	}
	if len(ps) == 0 {
		ps = append(ps, p("—", fSmall, colMuted))
	}
	return ps
}

// replyTable lists the reply's hops, from the destination back to the
// source: per router the interfaces, the route, the deciding filter rule
// and the conntrack state the reply has there.
func (r *renderer) replyTable(s *service) {
	r.textColor(colMuted)
	intro := fmt.Sprintf("The reply from %s back to %s", s.dst, s.src)
	if s.trace != nil && len(s.trace.Branches) > 1 && s.trace.Branch > 0 {
		intro += fmt.Sprintf(" (ECMP branch %d)", s.trace.Branch)
	}
	last := s.replyHops[len(s.replyHops)-1]
	if last.kind == doc.HopRouter {
		intro += fmt.Sprintf(": it stops at %s.", last.name)
		if dn := s.trace.DeniedBy; dn != nil && dn.Direction == doc.Reply {
			intro = strings.TrimSuffix(intro, ".") + "; " + denial(dn, "") + "."
		}
	} else {
		intro += ": it arrives."
	}
	r.y = r.c.lines(margin, r.y, r.c.wrap(intro, r.contentW(), fSmall), fSmall)
	r.textColor(colText)
	r.y += 1
	cols := []column{{"#", 6}, {"Router", 26}, {"in → out", 22}, {"Route", 44}, {"Deciding rule", 60}, {"Conntrack", 22}}
	var rows [][][]part
	n := 0
	for _, h := range s.replyHops {
		if h.kind != doc.HopRouter {
			continue
		}
		n++
		ct := []part{p("—", fSmall, colMuted)}
		if h.ct != "" {
			col := colText
			if h.ct == "INVALID" {
				col = colDisagree
			}
			ct = []part{p("ct "+h.ct, fSmallB, col)}
		}
		rows = append(rows, [][]part{
			{p(fmt.Sprint(n), fSmall, colText)},
			{p(h.name, fSmallB, colText)},
			{p(fmt.Sprintf("%s → %s", orDash(h.in), orDash(h.out)), fMonoS, colText)},
			hopRoute(h), hopRule(h), ct,
		})
	}
	r.table(cols, rows)
}

// branchTable lists every ECMP branch of the flow: the nexthops it
// chose, its disposition and what decided it, and which branch the
// kernel's multipath hash takes.
func (r *renderer) branchTable(s *service) {
	t := s.trace
	intro := fmt.Sprintf("The routes offer %d equal-cost paths; each is traced with its reply.", len(t.Branches))
	if b := branchSummary(t); b != "" {
		intro += " " + b + "."
	}
	if t.KernelBranch > 0 {
		intro += fmt.Sprintf(" The kernel's multipath hash takes branch %d.", t.KernelBranch)
	} else {
		intro += " The branch the kernel takes cannot be computed (see the notes above): every branch is possible."
	}
	if t.Branch > 0 {
		intro += fmt.Sprintf(" The path and the reply above are branch %d's.", t.Branch)
	}
	r.textColor(colMuted)
	r.y = r.c.lines(margin, r.y, r.c.wrap(intro, r.contentW(), fSmall), fSmall)
	r.textColor(colText)
	r.y += 1
	cols := []column{{"Branch", 18}, {"Nexthop choices", 58}, {"Disposition", 26}, {"Deciding router / rule", 62}, {"Direction", 16}}
	var rows [][][]part
	for _, b := range t.Branches {
		if b == nil {
			continue
		}
		name := []part{p(fmt.Sprint(b.Branch), fSmallB, colText)}
		if b.Kernel || b.Branch == t.KernelBranch && t.KernelBranch > 0 {
			name = append(name, p("the kernel's", fTiny, colMuted))
		}
		var ch []part
		for _, c := range b.Choices {
			ch = append(ch, p(c, fMonoS, colText))
		}
		if len(ch) == 0 {
			ch = []part{p("—", fSmall, colMuted)}
		}
		_, strong := verdictColours(b.Disposition)
		disp := []part{p(b.Disposition, fSmallB, strong)}
		dec := []part{p("—", fSmall, colMuted)}
		if dn := b.DeniedBy; dn != nil {
			dec = []part{p(strings.TrimSpace(dn.Router+" "+dn.Table+" "+ruleName(dn.Chain, dn.Index)), fSmallB, colText)}
			if dn.Rule != "" {
				dec = append(dec, p(dn.Rule, fMonoS, colText))
			}
		} else if b.Reason != "" {
			dec = []part{p(b.Reason, fSmall, colText)}
		}
		dir := []part{p(orDash(b.Direction), fSmall, colText)}
		rows = append(rows, [][]part{name, ch, disp, dec, dir})
	}
	r.table(cols, rows)
}

// pathCompare sets the path the live packets took beside trace's, for
// the request and the reply, and names routers seen off both paths.
func (r *renderer) pathCompare(e *doc.E2E) {
	r.textColor(colDisagree)
	r.y = r.c.lines(margin, r.y, r.c.wrap("The probe's packets did not take the predicted path (from every lab router's counters).", r.contentW(), fSmall), fSmall)
	r.textColor(colText)
	r.y += 1
	path := func(ps []string) part {
		if len(ps) == 0 {
			return p("—", fSmall, colMuted)
		}
		return p(strings.Join(ps, " → "), fMonoS, colText)
	}
	cols := []column{{"", 24}, {"Predicted (simulation)", 78}, {"Live (emulation)", 78}}
	rows := [][][]part{
		{{p("Request", fSmallB, colText)}, {path(e.PredictedPath)}, {path(e.Path)}},
	}
	if len(e.ReplyPath) > 0 || len(e.PredictedReplyPath) > 0 {
		rows = append(rows, [][]part{{p("Reply", fSmallB, colText)}, {path(e.PredictedReplyPath)}, {path(e.ReplyPath)}})
	}
	if len(e.AlsoSeen) > 0 {
		rows = append(rows, [][]part{{p("Also seen", fSmallB, colText)}, {p("off both predicted paths", fSmall, colMuted)}, {path(e.AlsoSeen)}})
	}
	r.table(cols, rows)
}
