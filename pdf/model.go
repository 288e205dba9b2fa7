package pdf

import (
	"fmt"
	"strings"

	"github.com/tsim-dev/tsim/internal/doc"
)

// Verdict shown for a router that has neither a live result nor a prediction.
const unknown = "UNKNOWN"

// service is everything the report shows about one flow.
type service struct {
	flow    *doc.Flow
	trace   *doc.Trace
	reach   *doc.Reach
	label   string // "ssh (22/tcp)"
	src     string
	dst     string
	hops    []*hop // source host, routers, destination host, in path order
	routers []*hop // the router hops only
	e2e     string // REACHABLE | UNREACHABLE | UNKNOWN, or the trace disposition
	e2eNote string
	live    bool // verdicts come from emulation (reach)
}

// hop is one box of the path diagram and, for routers, one evidence block.
type hop struct {
	name      string
	kind      string // router | host | internet
	ip        string
	in, out   string
	verdict   string // the verdict shown: live when there is reach, else predicted
	predicted string
	live      string // "" without reach
	agrees    bool
	rule      string // "FORWARD #3" or "FORWARD policy"
	ruleSim   bool   // a live verdict without a live rule: the rule is the trace's
	ruleTable string
	ruleText  string
	reason    string
	counters  []*doc.CounterDelta
	policy    []*doc.Step
	route     []*doc.Step
	nat       []*doc.Step
	pos       string
}

// disagreement is one place where simulation and emulation differ.
type disagreement struct {
	service, router, predicted, live, rule string
}

// view is the whole report, derived from a document.
type view struct {
	d          *doc.Document
	src, dst   string
	services   []*service
	routers    []string // every router, first-seen order over all services
	disagree   []disagreement
	simOnly    bool
	liveAny    bool
	factsLabel string
	digest     string
}

// serviceLabel names a flow the way an operator asked for it.
func serviceLabel(f *doc.Flow) string {
	port := ""
	switch {
	case f.Proto == "icmp" || f.Proto == "":
		port = strings.ToUpper(f.Proto)
		if port == "" {
			port = "ANY"
		}
	case f.DPort > 0:
		port = fmt.Sprintf("%d/%s", f.DPort, f.Proto)
	default:
		port = f.Proto
	}
	if f.Service != "" && f.Service != port {
		return f.Service + " (" + port + ")"
	}
	return port
}

func ruleName(chain string, index int) string {
	if chain == "" {
		return ""
	}
	if index == 0 {
		return chain + " policy"
	}
	return fmt.Sprintf("%s #%d", chain, index)
}

// newView checks the document has what a report needs and derives the view.
func newView(d *doc.Document) (*view, error) {
	if d == nil {
		return nil, fmt.Errorf("no document")
	}
	if len(d.Flows) == 0 {
		return nil, fmt.Errorf("the document has no flows: run `tsim trace` first")
	}
	if len(d.Trace) == 0 {
		return nil, doc.Need("trace", "tsim trace")
	}
	traces := map[string]*doc.Trace{}
	for _, t := range d.Trace {
		if t != nil {
			traces[t.Flow] = t
		}
	}
	reaches := map[string]*doc.Reach{}
	for _, r := range d.Reach {
		if r != nil {
			reaches[r.Flow] = r
		}
	}
	v := &view{d: d, simOnly: len(reaches) == 0}
	if d.Facts != nil {
		v.factsLabel, v.digest = d.Facts.Source, d.Facts.Digest
	}
	seen := map[string]bool{}
	srcs, dsts := map[string]bool{}, map[string]bool{}
	for _, f := range d.Flows {
		if f == nil {
			continue
		}
		s := buildService(f, traces[f.ID], reaches[f.ID])
		v.services = append(v.services, s)
		if s.live {
			v.liveAny = true
		}
		if !srcs[f.Src] {
			srcs[f.Src] = true
			v.src = joinComma(v.src, f.Src)
		}
		if !dsts[f.Dst] {
			dsts[f.Dst] = true
			v.dst = joinComma(v.dst, f.Dst)
		}
		for _, h := range s.routers {
			if !seen[h.name] {
				seen[h.name] = true
				v.routers = append(v.routers, h.name)
			}
			if h.live != "" && !h.agrees {
				v.disagree = append(v.disagree, disagreement{s.label, h.name, h.predicted, h.live, h.rule})
			}
		}
		if s.reach != nil && s.reach.E2E != nil && s.reach.E2E.Agrees != nil && !*s.reach.E2E.Agrees {
			v.disagree = append(v.disagree, disagreement{s.label, "", s.reach.E2E.Predicted, s.reach.E2E.Verdict, ""})
		}
	}
	return v, nil
}

func joinComma(a, b string) string {
	if a == "" {
		return b
	}
	return a + ", " + b
}

func buildService(f *doc.Flow, t *doc.Trace, r *doc.Reach) *service {
	s := &service{flow: f, trace: t, reach: r, label: serviceLabel(f), src: f.Src, dst: f.Dst}
	s.live = r != nil
	byName := map[string]*hop{}
	if t != nil {
		for _, th := range t.Hops {
			if th == nil {
				continue
			}
			h := &hop{name: th.Node, kind: th.Kind, ip: th.IP, in: th.In, out: th.Out, verdict: unknown, predicted: unknown}
			for _, st := range th.Steps {
				if st == nil {
					continue
				}
				switch st.Kind {
				case doc.StepPolicy:
					h.policy = append(h.policy, st)
				case doc.StepRoute:
					h.route = append(h.route, st)
				case doc.StepNAT:
					h.nat = append(h.nat, st)
				case doc.StepFilter:
					// The last filter step is the one that decided the hop.
					h.predicted = filterVerdict(st.Action)
					h.rule, h.ruleTable, h.ruleText, h.pos = ruleName(st.Chain, st.Index), st.Table, st.Text, st.Pos
				}
			}
			if th.Kind == doc.HopRouter && h.predicted == unknown && !hasFilter(th) {
				h.predicted = doc.Allowed // no filter step: nothing stopped it
			}
			s.hops = append(s.hops, h)
			if th.Kind == doc.HopRouter {
				s.routers = append(s.routers, h)
				byName[h.name] = h
			}
		}
		if t.DeniedBy != nil {
			if h := byName[t.DeniedBy.Router]; h != nil {
				h.predicted = doc.Blocked
				h.rule, h.ruleTable, h.ruleText = ruleName(t.DeniedBy.Chain, t.DeniedBy.Index), t.DeniedBy.Table, t.DeniedBy.Rule
			}
		}
		s.e2e, s.e2eNote = t.Disposition, t.Reason
	}
	for _, h := range s.routers {
		h.verdict = h.predicted
	}
	if r != nil {
		for _, rr := range r.Routers {
			if rr == nil {
				continue
			}
			h := byName[rr.Router]
			if h == nil { // probed but not on the traced path: still show it
				h = &hop{name: rr.Router, kind: doc.HopRouter, predicted: unknown}
				byName[rr.Router] = h
				s.routers = append(s.routers, h)
			}
			h.live, h.verdict, h.agrees, h.reason, h.counters = rr.Verdict, rr.Verdict, rr.Agrees, rr.Reason, rr.Counters
			if rr.Predicted != "" {
				h.predicted = rr.Predicted
			}
			if rr.Rule != nil {
				h.rule, h.ruleTable, h.ruleText = ruleName(rr.Rule.Chain, rr.Rule.Index), rr.Rule.Table, rr.Rule.Text
			} else {
				h.ruleSim = h.rule != ""
			}
			if h.verdict == "" {
				h.verdict = unknown
			}
		}
		if r.E2E != nil {
			s.e2e, s.e2eNote = r.E2E.Verdict, r.E2E.Reason
		}
	}
	if s.e2e == "" {
		s.e2e = unknown
	}
	return s
}

func hasFilter(h *doc.Hop) bool {
	for _, st := range h.Steps {
		if st != nil && st.Kind == doc.StepFilter {
			return true
		}
	}
	return false
}

// filterVerdict maps a netfilter target to a router verdict.
func filterVerdict(action string) string {
	switch strings.ToUpper(action) {
	case "ACCEPT", "RETURN", "":
		return doc.Allowed
	case "DROP", "REJECT":
		return doc.Blocked
	}
	return unknown
}

// e2eGood tells whether an end-to-end result is a positive one.
func e2eGood(v string) bool {
	return v == doc.Reachable || v == doc.Delivered || v == doc.ExitsNetwork
}
