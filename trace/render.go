package trace

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tsim-dev/tsim/internal/doc"
)

// ANSI styles for the terminal rendering.
const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiDim    = "\x1b[2m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
)

type painter bool

func (p painter) paint(style, s string) string {
	if !p || s == "" || style == "" {
		return s
	}
	return style + s + ansiReset
}

// RenderText writes the trace section of d for a person: per flow a header,
// one line per hop (node, in→out interface, the route that was used, the
// deciding firewall rule and any NAT or mark), then the disposition line.
// color adds ANSI colours (for a terminal).
func RenderText(w io.Writer, d *doc.Document, color bool) error {
	p := painter(color)
	if len(d.Trace) == 0 {
		_, err := fmt.Fprintln(w, "no trace in this document (run `tsim trace` first)")
		return err
	}
	flows := map[string]*doc.Flow{}
	for _, f := range d.Flows {
		flows[f.ID] = f
	}
	for i, t := range d.Trace {
		if i > 0 {
			if _, err := fmt.Fprintln(w); err != nil {
				return err
			}
		}
		if err := renderTrace(w, p, flows[t.Flow], t); err != nil {
			return err
		}
	}
	return nil
}

func flowTitle(f *doc.Flow) string {
	if f == nil {
		return ""
	}
	svc := f.Proto
	if f.Proto != "icmp" && f.Proto != "" {
		svc = strconv.Itoa(f.DPort) + "/" + f.Proto
	}
	if _, err := strconv.Atoi(f.Service); err == nil {
		// a bare port says nothing more than the port
	} else if f.Service != "" && f.Service != svc && f.Service != f.Proto {
		svc += " (" + f.Service + ")"
	}
	s := f.Src + " → " + f.Dst + "  " + svc
	if f.Ingress != "" {
		s += "  ingress " + f.Ingress
	}
	return s
}

func renderTrace(w io.Writer, p painter, f *doc.Flow, t *doc.Trace) error {
	if _, err := fmt.Fprintf(w, "%s  %s  %s\n", p.paint(ansiBold, t.Flow), flowTitle(f), dispo(p, t.Disposition)); err != nil {
		return err
	}
	var lines []string
	if len(t.Branches) > 1 {
		// Every ECMP branch, each with its request, reply and outcome.
		for _, b := range t.Branches {
			head := fmt.Sprintf("  ECMP branch %d of %d", b.Branch, len(t.Branches))
			if b.Kernel {
				head += " (the kernel's hash takes this one)"
			}
			head += ": " + strings.Join(b.Choices, "; ")
			lines = append(lines, p.paint(ansiBold, head))
			lines = append(lines, legs(p, b.Hops, b.ReplyHops, "    ")...)
			lines = append(lines, "    ⇒ "+outcome(p, b.Disposition, b.Reason, b.DeniedBy))
		}
	} else {
		lines = append(lines, legs(p, t.Hops, t.ReplyHops, "")...)
	}
	lines = append(lines, "  ⇒ "+outcome(p, t.Disposition, t.Reason, t.DeniedBy))
	for _, a := range t.Alternatives {
		lines = append(lines, "    "+p.paint(ansiDim, "also: "+a))
	}
	for _, n := range t.Notes {
		lines = append(lines, "    "+p.paint(ansiDim, "note: "+n))
	}
	for _, l := range lines {
		if _, err := fmt.Fprintln(w, l); err != nil {
			return err
		}
	}
	return nil
}

// legs renders the request's hops and, when there is a reply, the reply's
// under a "reply" heading, in one set of columns.
func legs(p painter, req, rep []*doc.Hop, indent string) []string {
	type row struct{ node, ip, ifs, sum, style string }
	var rows [2][]row
	wNode, wIP, wIfs := 0, 0, 0
	for i, hops := range [][]*doc.Hop{req, rep} {
		for _, h := range hops {
			r := row{node: h.Node, ip: h.IP}
			switch h.Kind {
			case doc.HopRouter:
				r.style = ansiBold
				in, out := h.In, h.Out
				if in == "" {
					in = "·"
				}
				if out == "" {
					out = "·"
				}
				r.ifs = in + " → " + out
			case doc.HopHost:
				r.node = "host " + h.Node
			case doc.HopInternet:
				r.node, r.ip = "internet", ""
			}
			r.sum = hopSummary(p, h)
			wNode = max(wNode, utf8.RuneCountInString(r.node))
			wIP = max(wIP, utf8.RuneCountInString(r.ip))
			wIfs = max(wIfs, utf8.RuneCountInString(r.ifs))
			rows[i] = append(rows[i], r)
		}
	}
	var out []string
	for i, rs := range rows {
		if i == 1 && len(rs) > 0 {
			out = append(out, indent+"  "+p.paint(ansiDim, "reply"))
		}
		for j, r := range rs {
			line := fmt.Sprintf("%s  %2d  %s  %s  %s  %s", indent, j+1, p.paint(r.style, pad(r.node, wNode)), pad(r.ip, wIP), pad(r.ifs, wIfs), r.sum)
			out = append(out, strings.TrimRight(line, " "))
		}
	}
	return out
}

// outcome is a disposition with its deciding rule or reason.
func outcome(p painter, disp, reason string, db *doc.RuleRef) string {
	line := dispo(p, disp)
	if db != nil {
		line += fmt.Sprintf(" by %s %s %s %s", p.paint(ansiBold, db.Router), db.Table, db.Chain, ruleNo(db.Index))
		if db.Index == 0 {
			line += " " + strings.TrimPrefix(db.Rule, "policy ")
		} else {
			line += ": " + db.Rule
		}
		switch {
		case db.Direction == doc.Reply:
			line += " (the reply)"
		case strings.HasPrefix(reason, "the handshake's ACK"):
			line += " (the handshake's ACK)"
		}
		if strings.HasPrefix(reason, "ECMP:") {
			line += "; " + reason[:strings.Index(reason+";", ";")]
		}
	} else if reason != "" {
		line += ": " + reason
	}
	return line
}

func ruleNo(i int) string {
	if i == 0 {
		return "policy"
	}
	return "#" + strconv.Itoa(i)
}

func dispo(p painter, d string) string {
	switch d {
	case doc.Delivered, doc.ExitsNetwork:
		return p.paint(ansiGreen+ansiBold, d)
	case doc.Unknown, doc.UnknownSource, doc.Loop:
		return p.paint(ansiYellow+ansiBold, d)
	}
	return p.paint(ansiRed+ansiBold, d)
}

// hopSummary is the route, the deciding filter rule and the NAT/mark
// changes of one hop.
func hopSummary(p painter, h *doc.Hop) string {
	var route, rule string
	var extra []string
	var policy *doc.Step
	for _, s := range h.Steps {
		switch s.Kind {
		case doc.StepPolicy:
			switch s.Action {
			case "lookup":
				policy = s
			case "blackhole", "unreachable", "prohibit":
				policy, route = s, "rule "+strconv.Itoa(s.Priority)+" "+s.Action
			}
		case doc.StepRoute:
			if s.Text == "" {
				continue
			}
			route = shortRoute(s.Text)
			if s.Nexthops > 1 {
				via := "dev " + s.Device
				if s.Gateway != "" {
					via = "via " + s.Gateway + " " + via
				}
				route = strings.Fields(s.Text)[0] + " nexthop " + strconv.Itoa(s.Nexthop) + "/" + strconv.Itoa(s.Nexthops) + " " + via
			}
			if s.Action == "local" {
				route = "local delivery"
			} else if s.Table != "main" && s.Table != "" {
				route = s.Table + ": " + route
			}
			if policy != nil && policy.Priority != 32766 && policy.Priority != 0 {
				route = "rule " + strconv.Itoa(policy.Priority) + " → " + route
			}
		case doc.StepFilter:
			if s.Table != "filter" && s.Action == "ACCEPT" {
				continue
			}
			verdict := s.Action
			switch verdict {
			case "ACCEPT":
				verdict = p.paint(ansiGreen, verdict)
			case "UNKNOWN":
				verdict = p.paint(ansiYellow, verdict)
			default:
				verdict = p.paint(ansiRed, verdict)
			}
			txt := s.Text
			if s.Index == 0 {
				txt = ""
			}
			rule = strings.TrimSpace(fmt.Sprintf("%s %s %s %s", verdict, s.Chain, ruleNo(s.Index), p.paint(ansiDim, txt)))
		case doc.StepNAT:
			if s.From != "" || s.To != "" {
				extra = append(extra, p.paint(ansiCyan, s.Action+" "+s.From+" → "+s.To))
			} else if s.Action != "ACCEPT" {
				extra = append(extra, s.Action+" "+s.Chain+" "+ruleNo(s.Index))
			}
		case doc.StepMangle:
			if s.From != "" || s.To != "" {
				extra = append(extra, p.paint(ansiCyan, s.Action+" "+s.From+" → "+s.To))
			} else if s.Action != "ACCEPT" {
				extra = append(extra, s.Action+" "+s.Table+" "+s.Chain+" "+ruleNo(s.Index))
			}
		case doc.StepLocal:
			route = "local delivery"
			if s.Text != "" {
				// A broadcast route of the local table: what the
				// protocol did with the packet (drop, deliver, unknown).
				route = "local: " + shortRoute(s.Text) + " (" + s.Action + ", not forwarded)"
			}
		case doc.StepConntrack:
			st := s.Action
			if st == "INVALID" {
				st = p.paint(ansiRed, st)
			}
			extra = append(extra, "ct "+st)
		}
	}
	parts := []string{}
	for _, s := range []string{route, rule, strings.Join(extra, ", ")} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "  │  ")
}

// pad right-pads s to width runes (the columns hold →, · and names).
func pad(s string, width int) string {
	if n := utf8.RuneCountInString(s); n < width {
		return s + strings.Repeat(" ", width-n)
	}
	return s
}

// shortRoute drops the words of a route line that do not say where the
// packet goes (proto, scope, src, weight), for the one-line hop summary.
func shortRoute(text string) string {
	f := strings.Fields(text)
	out := f[:0:0]
	for i := 0; i < len(f); i++ {
		switch f[i] {
		case "proto", "scope", "src", "weight":
			i++
			continue
		}
		out = append(out, f[i])
	}
	return strings.Join(out, " ")
}
