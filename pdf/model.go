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
	// replyHops is the reply's path (destination back to the source) of
	// the representative branch; nil when no reply was simulated.
	replyHops []*hop
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
	ct        string // reply hops: the conntrack state (ESTABLISHED, NEW, INVALID)
	ctDetail  string
	dir       string // doc.Reply for a router only on the reply path
	ruleDir   string // the direction whose packet the deciding rule dropped
	liveRule  string // reply hops: the rule whose counter moved for the reply, "filter FORWARD #2"
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
			h := newHop(th)
			s.hops = append(s.hops, h)
			if th.Kind == doc.HopRouter {
				s.routers = append(s.routers, h)
				byName[h.name] = h
			}
		}
		replyBy := map[string]*hop{}
		for _, th := range t.ReplyHops {
			if th == nil {
				continue
			}
			h := newHop(th)
			s.replyHops = append(s.replyHops, h)
			if th.Kind != doc.HopRouter {
				continue
			}
			replyBy[h.name] = h
			if byName[h.name] == nil {
				// A router only the reply crosses: it has its own
				// evidence block and matrix cell.
				rh := *h
				rh.dir = doc.Reply
				s.routers = append(s.routers, &rh)
				byName[h.name] = &rh
			}
		}
		if dn := t.DeniedBy; dn != nil {
			rule := ruleName(dn.Chain, dn.Index)
			if dn.Direction == doc.Reply {
				if h := replyBy[dn.Router]; h != nil {
					h.predicted = doc.Blocked
					h.rule, h.ruleTable, h.ruleText = rule, dn.Table, dn.Rule
				}
			}
			if h := byName[dn.Router]; h != nil {
				h.predicted = doc.Blocked
				h.rule, h.ruleTable, h.ruleText, h.ruleDir = rule, dn.Table, dn.Rule, dn.Direction
			}
		}
		s.e2e, s.e2eNote = t.Disposition, t.Reason
	}
	for _, h := range s.routers {
		h.verdict = h.predicted
	}
	if r != nil {
		// The end-to-end probe's own view of a router on the reply path:
		// what it did to the reply (the per-router view tests the request).
		e2eBy := map[string]*doc.RouterReach{}
		if r.E2E != nil {
			for _, er := range r.E2E.Routers {
				if er != nil {
					e2eBy[er.Router+" "+er.In+" "+er.Out] = er
				}
			}
		}
		apply := func(h *hop, rr *doc.RouterReach) {
			h.live, h.verdict, h.agrees, h.reason, h.counters = rr.Verdict, rr.Verdict, rr.Agrees, rr.Reason, rr.Counters
			if rr.Predicted != "" {
				h.predicted = rr.Predicted
			}
			if rr.Rule != nil {
				h.rule, h.ruleTable, h.ruleText, h.ruleDir = ruleName(rr.Rule.Chain, rr.Rule.Index), rr.Rule.Table, rr.Rule.Text, ""
				if h.dir == doc.Reply {
					h.ruleDir = doc.Reply // the end-to-end probe's reply met this rule
				}
			} else {
				h.ruleSim = h.rule != ""
			}
			if h.verdict == "" {
				h.verdict = unknown
			}
		}
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
			if h.dir == doc.Reply && (rr.In != h.in || rr.Out != h.out) {
				continue // another direction or branch: the reply's own evidence follows
			}
			apply(h, rr)
		}
		// The reply table's hops: what the end-to-end probe's reply met.
		for _, h := range s.replyHops {
			if er := e2eBy[h.name+" "+h.in+" "+h.out]; er != nil && h.kind == doc.HopRouter {
				h.live, h.agrees = er.Verdict, er.Agrees
				if h.live == "" {
					h.live = unknown
				}
				if er.Rule != nil {
					h.liveRule = strings.TrimSpace(er.Rule.Table + " " + ruleName(er.Rule.Chain, er.Rule.Index))
				}
			}
		}
		for _, h := range s.routers {
			if h.dir == doc.Reply && h.live == "" {
				if er := e2eBy[h.name+" "+h.in+" "+h.out]; er != nil {
					apply(h, er)
				}
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

// newHop derives a hop of the diagram, the evidence or the reply table
// from a traced hop: its steps sorted by kind, the last filter step as the
// deciding rule, a reply's conntrack state.
func newHop(th *doc.Hop) *hop {
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
		case doc.StepConntrack:
			h.ct, h.ctDetail = st.Action, st.Detail
		case doc.StepFilter:
			// The last filter step is the one that decided the hop.
			h.predicted = filterVerdict(st.Action)
			h.rule, h.ruleTable, h.ruleText, h.pos = ruleName(st.Chain, st.Index), st.Table, st.Text, st.Pos
		}
	}
	if th.Kind == doc.HopRouter && h.predicted == unknown && !hasFilter(th) {
		h.predicted = doc.Allowed // no filter step: nothing stopped it
	}
	h.verdict = h.predicted
	return h
}

// denial says which packet of the connection a rule or a router dropped:
// "the reply is dropped by dc-core filter FORWARD #2". Documents written
// before replies were traced have no direction: "dc-core FORWARD #2".
func denial(ref *doc.RuleRef, cause string) string {
	if ref == nil {
		return ""
	}
	where := ref.Router
	if rn := ruleName(ref.Chain, ref.Index); rn != "" {
		if ref.Table != "" && ref.Direction != "" {
			rn = ref.Table + " " + rn
		}
		where += " " + rn
	} else if ref.Rule != "" {
		where += " (" + ref.Rule + ")"
	}
	if cause != "" && cause != "filter" {
		where += " [" + cause + "]"
	}
	switch ref.Direction {
	case doc.Reply:
		return "the reply is dropped by " + where
	case doc.Request:
		return "the request is dropped by " + where
	}
	return where
}

// branchSummary counts an ECMP flow's branches by disposition, "1 of 2
// branches DENIED, 1 DELIVERED"; "" with fewer than two branches or when
// they all agree.
func branchSummary(t *doc.Trace) string {
	if t == nil || len(t.Branches) < 2 {
		return ""
	}
	count := map[string]int{}
	var order []string
	for _, b := range t.Branches {
		if b == nil {
			continue
		}
		if count[b.Disposition] == 0 {
			order = append(order, b.Disposition)
		}
		count[b.Disposition]++
	}
	if len(order) < 2 {
		return ""
	}
	// The negative dispositions first: they are what the reader looks for.
	var neg, pos []string
	for _, d := range order {
		if e2eGood(d) {
			pos = append(pos, d)
		} else {
			neg = append(neg, d)
		}
	}
	order = append(neg, pos...)
	parts := []string{fmt.Sprintf("%d of %d branches %s", count[order[0]], len(t.Branches), order[0])}
	for _, d := range order[1:] {
		parts = append(parts, fmt.Sprintf("%d %s", count[d], d))
	}
	return "ECMP: " + strings.Join(parts, ", ")
}

// connectionNote is the one line the summary gives a service whose
// connection failed on the reply or on some ECMP branches ("" otherwise).
func connectionNote(s *service) string {
	var parts []string
	if t := s.trace; t != nil {
		if t.Direction == doc.Reply && t.DeniedBy != nil {
			parts = append(parts, "simulation: "+denial(t.DeniedBy, ""))
		} else if t.Direction == doc.Reply {
			parts = append(parts, "simulation: the reply does not come back ("+t.Disposition+")")
		}
		if b := branchSummary(t); b != "" {
			if t.KernelBranch > 0 && t.KernelBranch <= len(t.Branches) && t.Branches[t.KernelBranch-1] != nil {
				b += fmt.Sprintf("; the kernel's hash takes branch %d (%s)", t.KernelBranch, t.Branches[t.KernelBranch-1].Disposition)
			}
			parts = append(parts, b)
		}
	}
	if s.reach != nil && s.reach.E2E != nil && s.reach.E2E.BlockedBy != nil && s.reach.E2E.BlockedBy.Direction == doc.Reply {
		parts = append(parts, "emulation: "+denial(s.reach.E2E.BlockedBy, s.reach.E2E.Cause))
	}
	return strings.Join(parts, "; ")
}

// requestArrived tells whether the request reached the destination: the
// connection succeeded, or only its reply was dropped (live when there is
// an emulation result, else simulated).
func (s *service) requestArrived() bool {
	if e2eGood(s.e2e) {
		return true
	}
	if s.reach != nil && s.reach.E2E != nil {
		bb := s.reach.E2E.BlockedBy
		return bb != nil && bb.Direction == doc.Reply
	}
	return s.trace != nil && s.trace.Direction == doc.Reply
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
