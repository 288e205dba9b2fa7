package sweep

import (
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/trace"
)

// Answer is what the simulation says about a flow, reduced to what every
// member of a class shares: no address of the flow itself appears in it.
type Answer struct {
	Disposition string `json:"disposition"`
	// Decider names what decided: the denying rule ("dc-gw filter
	// FORWARD policy", "hq-gw filter HQ_EGRESS #2"), the route or rule
	// that stopped the packet, or the router that delivered it.
	Decider string `json:"decider,omitempty"`
	// Path is the routers the packet crossed, ROUTER(IN>OUT) each.
	Path []string `json:"path,omitempty"`
	// Accepted lists the filter rules that let the packet through each
	// router ("hq-gw FORWARD #5"), as `tsim reach` sees them in counters.
	Accepted []string `json:"accepted,omitempty"`
	// deciderID and acceptedIDs name the same rules and routes by their
	// text, not by position: a rule inserted above another, or a line
	// added to a facts file, shifts numbers without changing the answer.
	deciderID   string
	acceptedIDs []string
}

// Label is the answer as the sweep groups it: disposition and decider.
func (a Answer) Label() string {
	if a.Decider == "" {
		return a.Disposition
	}
	switch a.Disposition {
	case doc.Delivered:
		return a.Disposition + " by " + a.Decider
	case doc.ExitsNetwork:
		return a.Disposition + " via " + a.Decider
	}
	return a.Disposition + " by " + a.Decider
}

// Key identifies the whole answer: two flows whose keys differ got
// different answers (disposition, decider, path or accepting rules, the
// rules by their text).
func (a Answer) Key() string {
	return a.Disposition + "|" + a.deciderID + "|" + strings.Join(a.Path, " ") + "|" + strings.Join(a.acceptedIDs, "\x00")
}

// String is the answer in one line: label and path.
func (a Answer) String() string {
	s := a.Label()
	if len(a.Path) > 0 {
		s += " [" + strings.Join(a.Path, " → ") + "]"
	}
	return s
}

// AnswerOf reduces a trace to its Answer.
func AnswerOf(t *doc.Trace) Answer {
	a := Answer{Disposition: t.Disposition}
	var last *doc.Hop
	for _, h := range t.Hops {
		if h.Kind != doc.HopRouter {
			continue
		}
		last = h
		a.Path = append(a.Path, h.Node+"("+h.In+">"+h.Out+")")
	}
	// The reply's path, when trace reports one, is part of the answer.
	if rh := replyHops(t); len(rh) > 0 {
		a.Path = append(a.Path, "reply:")
		for _, h := range rh {
			if h.Kind == doc.HopRouter {
				a.Path = append(a.Path, h.Node+"("+h.In+">"+h.Out+")")
			}
		}
	}
	for _, v := range trace.PerRouter(t) {
		if v.Verdict == doc.Allowed && v.Rule != nil {
			a.Accepted = append(a.Accepted, v.Router+" "+v.Rule.Chain+" "+ruleNo(v.Rule.Index))
			a.acceptedIDs = append(a.acceptedIDs, v.Router+" "+v.Rule.Table+" "+v.Rule.Chain+" "+v.Rule.Text)
		}
	}
	switch {
	case t.Disposition == doc.Denied && t.DeniedBy != nil:
		d := t.DeniedBy
		a.Decider = d.Router + " " + d.Table + " " + d.Chain + " " + ruleNo(d.Index)
		a.deciderID = d.Router + " " + d.Table + " " + d.Chain + " " + d.Rule
	case last == nil:
	case trace.Positive(t.Disposition):
		a.Decider = last.Node
		a.deciderID = last.Node
	default:
		a.Decider = last.Node
		a.deciderID = last.Node
		if n := len(last.Steps); n > 0 {
			s := last.Steps[n-1]
			a.deciderID += " " + s.Kind + " " + s.Table + " " + s.Chain + " " + s.Text
			switch {
			case s.Kind == doc.StepFilter || s.Kind == doc.StepNAT || s.Kind == doc.StepMangle:
				a.Decider += " " + s.Table + " " + s.Chain + " " + ruleNo(s.Index)
			case s.Pos != "":
				a.Decider += " " + filepath.Base(s.Pos)
			case s.Text != "":
				a.Decider += " " + strconv.Quote(s.Text)
			}
		}
	}
	return a
}

func ruleNo(i int) string {
	if i == 0 {
		return "policy"
	}
	return "#" + strconv.Itoa(i)
}
