package serve

import (
	"fmt"
	"strings"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/pipeline"
	"github.com/tsim-dev/tsim/trace"
)

// pathHop is one node of a flow's path as the page shows it.
type pathHop struct {
	Node string `json:"node"`
	Kind string `json:"kind"`
	In   string `json:"in,omitempty"`
	Out  string `json:"out,omitempty"`
}

// flowResult is one flow's outcome as the pages show it: the answer to
// "which router and which rule is in the way?".
type flowResult struct {
	Flow        string    `json:"flow"`
	Service     string    `json:"service,omitempty"`
	Proto       string    `json:"proto"`
	DPort       int       `json:"dport,omitempty"`
	Port        string    `json:"port"`                  // "22/tcp", "icmp"
	Disposition string    `json:"disposition,omitempty"` // simulation
	Verdict     string    `json:"verdict,omitempty"`     // emulation (reach e2e)
	Agrees      *bool     `json:"agrees,omitempty"`
	Reason      string    `json:"reason,omitempty"` // why the emulation said so
	Router      string    `json:"router,omitempty"` // the deciding router
	Rule        string    `json:"rule,omitempty"`   // the deciding rule or route, as written
	Where       string    `json:"where,omitempty"`  // table/chain #index
	Pos         string    `json:"pos,omitempty"`    // FILE:LINE of the rule in the facts
	LiveRouter  string    `json:"live_router,omitempty"`
	LiveRule    string    `json:"live_rule,omitempty"` // the rule whose counters moved in the lab
	Why         string    `json:"why,omitempty"`       // where simulation and emulation disagree: why
	Path        []pathHop `json:"path,omitempty"`
	Line        int       `json:"line,omitempty"` // flows-file line (batch jobs)
	Expect      string    `json:"expect,omitempty"`
}

// lineResult is one line of a flows file (batch jobs).
type lineResult struct {
	Line   int    `json:"line"`
	Src    string `json:"src"`
	Dst    string `json:"dst"`
	Spec   string `json:"spec"`
	Expect string `json:"expect,omitempty"` // allow | deny
	Got    string `json:"got"`              // allow | deny | unknown
	Result string `json:"result"`           // PENDING | PASS | FAIL | UNKNOWN | INFO (no expectation) | NOT RUN
	Detail string `json:"detail,omitempty"` // why it did not pass: router, rule, FILE:LINE
}

type jobResult struct {
	Reachable bool         `json:"reachable"`
	Total     int          `json:"total"`   // flows
	Reached   int          `json:"reached"` // flows reachable end to end
	Summary   string       `json:"summary"` // "1 of 2 reachable"
	Flows     []flowResult `json:"flows"`   // one per flow (a range gives one per port)
	// Batch jobs: lines by status (the lines themselves are jobMeta.Tests).
	Passed   int `json:"passed,omitempty"`
	Failed   int `json:"failed,omitempty"`
	Unknown  int `json:"unknown,omitempty"`
	NoExpect int `json:"no_expect,omitempty"`
}

func portOf(f *doc.Flow) string {
	if f.Proto == "icmp" || f.DPort == 0 {
		return f.Proto
	}
	return fmt.Sprintf("%d/%s", f.DPort, f.Proto)
}

// decision finds the router and the rule (or route) that decided a
// simulated flow and where that rule is written in the facts.
func decision(t *doc.Trace, f *facts.Facts) (router, rule, where, pos string) {
	if t == nil {
		return
	}
	if d := t.DeniedBy; d != nil {
		router, rule = d.Router, d.Rule
		where = d.Table + " " + d.Chain
		if d.Index > 0 {
			where += fmt.Sprintf(" #%d", d.Index)
		}
		for _, h := range t.Hops {
			if h.Node != d.Router {
				continue
			}
			for _, s := range h.Steps {
				if s.Kind == doc.StepFilter && s.Chain == d.Chain && s.Index == d.Index && s.Pos != "" {
					pos = s.Pos
				}
			}
		}
		if pos == "" && d.Index == 0 && f != nil {
			// A chain policy: its line is the chain's ":CHAIN POLICY" line.
			if r := f.Router(d.Router); r != nil {
				if it := r.IPTable(d.Table); it != nil {
					for _, c := range it.Chains {
						if c.Name == d.Chain && c.Pos.File != "" {
							pos = c.Pos.String()
						}
					}
				}
			}
		}
		return
	}
	if t.Disposition == doc.NoRoute || t.Disposition == doc.NullRouted {
		for i := len(t.Hops) - 1; i >= 0 && router == ""; i-- {
			h := t.Hops[i]
			if h.Kind != doc.HopRouter {
				continue
			}
			router = h.Node
			for _, s := range h.Steps {
				if s.Kind == doc.StepRoute || s.Kind == doc.StepPolicy {
					rule, pos, where = s.Text, s.Pos, s.Kind
				}
			}
			if rule == "" {
				rule = t.Reason
			}
		}
	}
	return
}

func pathOf(t *doc.Trace) []pathHop {
	if t == nil {
		return nil
	}
	out := make([]pathHop, 0, len(t.Hops))
	for _, h := range t.Hops {
		out = append(out, pathHop{Node: h.Node, Kind: h.Kind, In: h.In, Out: h.Out})
	}
	return out
}

// summarize gives, per flow, the simulated disposition, the emulated
// verdict, the deciding router and rule with its FILE:LINE, the path and,
// where both views disagree, why; for batch jobs PASS/FAIL per line.
func summarize(docs []*doc.Document, f *facts.Facts) *jobResult {
	r := &jobResult{Reachable: true, Flows: []flowResult{}}
	for _, d := range docs {
		if !pipeline.Reachable(d) {
			r.Reachable = false
		}
		traces := map[string]*doc.Trace{}
		for _, t := range d.Trace {
			traces[t.Flow] = t
		}
		reach := map[string]*doc.Reach{}
		for _, x := range d.Reach {
			reach[x.Flow] = x
		}
		for _, fl := range d.Flows {
			fr := flowResult{Flow: fl.ID, Service: fl.Service, Proto: fl.Proto, DPort: fl.DPort, Port: portOf(fl),
				Line: fl.Line, Expect: fl.Expect}
			t := traces[fl.ID]
			if t != nil {
				fr.Disposition = t.Disposition
				fr.Path = pathOf(t)
			}
			fr.Router, fr.Rule, fr.Where, fr.Pos = decision(t, f)
			if x := reach[fl.ID]; x != nil && x.E2E != nil {
				fr.Verdict, fr.Agrees, fr.Reason = x.E2E.Verdict, x.E2E.Agrees, x.E2E.Reason
				if b := x.E2E.BlockedBy; b != nil {
					fr.LiveRouter, fr.LiveRule = b.Router, b.Rule
				}
				if fr.Agrees != nil && !*fr.Agrees {
					why := strings.Join(x.Disagreements, "; ")
					if why == "" {
						why = fmt.Sprintf("simulation predicted %s, the lab answered %s", x.E2E.Predicted, x.E2E.Verdict)
						if x.E2E.Reason != "" {
							why += ": " + x.E2E.Reason
						}
					}
					fr.Why = why
				}
			}
			if fr.Verdict == doc.Reachable || (fr.Verdict == "" && trace.Positive(fr.Disposition)) {
				r.Reached++
			}
			r.Total++
			r.Flows = append(r.Flows, fr)
		}
	}
	r.Summary = fmt.Sprintf("%d of %d reachable", r.Reached, r.Total)
	return r
}
