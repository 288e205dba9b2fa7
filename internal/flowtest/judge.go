package flowtest

import (
	"fmt"
	"strings"
	"time"

	"github.com/tsim-dev/tsim/internal/doc"
)

// Status is a test's result.
type Status string

// Statuses. UNKNOWN never passes, whatever the expectation says: the
// simulation or the probe could not decide. INFO is a line without an
// expectation whose answer was decided.
const (
	Pass    Status = "PASS"
	Fail    Status = "FAIL"
	Unknown Status = "UNKNOWN"
	Info    Status = "INFO"
)

// Outcomes of one flow, in the terms of the expect column.
const (
	GotAllow   = "allow"
	GotDeny    = "deny"
	GotUnknown = "unknown"
)

// Result is the answer for one flow (one service of a line).
type Result struct {
	Flow *doc.Flow
	Got  string // allow | deny | unknown
	// Verdict is the trace disposition (DELIVERED, DENIED, …) or the live
	// end-to-end verdict (REACHABLE, UNREACHABLE, UNKNOWN).
	Verdict string
	// The deciding router and rule: the rule that denied the flow, or the
	// last firewall rule that accepted it, or the route that failed.
	Router string
	Rule   string // "filter FORWARD #6", "route main", …
	Text   string // the rule's text as in the facts
	Pos    string // FILE:LINE of that rule in the facts ("" when not known)
	Reason string // why, in one line (UNKNOWN, no route, …)
	Status Status // this flow against the line's expectation
}

// Case is one test: one line of the flows file with its flows' results.
type Case struct {
	File    string
	Line    int
	Name    string // the name column, or src → dst services
	Expect  string
	Status  Status
	Results []*Result
	Time    time.Duration
}

// Decider is the deciding router and rule of a result, one line:
// "hq-gw filter HQ_EGRESS #2 (hq-gw_facts.txt:160)".
func (r *Result) Decider() string {
	s := strings.TrimSpace(r.Router + " " + r.Rule)
	if r.Pos != "" {
		s += " (" + r.Pos + ")"
	}
	return s
}

// Service names the flow's service: "https", "3306/tcp", "icmp".
func Service(f *doc.Flow) string {
	if f.Service != "" {
		return f.Service
	}
	if f.DPort != 0 {
		return fmt.Sprintf("%d/%s", f.DPort, f.Proto)
	}
	return f.Proto
}

// judge sets each result's status against expect and returns the line's:
// FAIL when any flow contradicts the expectation, else UNKNOWN when any
// flow is unknown, else PASS (INFO without an expectation).
func judge(expect string, rs []*Result) Status {
	line := Pass
	if expect == "" {
		line = Info
	}
	anyUnknown, anyFail := false, false
	for _, r := range rs {
		switch {
		case r.Got == GotUnknown:
			r.Status = Unknown
			anyUnknown = true
		case expect == "":
			r.Status = Info
		case r.Got == expect:
			r.Status = Pass
		default:
			r.Status = Fail
			anyFail = true
		}
	}
	switch {
	case anyFail:
		return Fail
	case anyUnknown:
		return Unknown
	}
	return line
}

// NewCase judges one line's results.
func NewCase(file string, l *Line, rs []*Result, took time.Duration) *Case {
	c := &Case{File: file, Line: l.N, Name: l.Name, Expect: l.Expect, Results: rs, Time: took}
	if c.Name == "" {
		c.Name = Label(l.Flows)
	}
	c.Status = judge(l.Expect, rs)
	return c
}

// Label names a line's question: "10.1.10.5 → 10.3.20.10 ssh,https".
func Label(flows []*doc.Flow) string {
	if len(flows) == 0 {
		return ""
	}
	svcs := make([]string, 0, len(flows))
	for _, f := range flows {
		svcs = append(svcs, Service(f))
	}
	return fmt.Sprintf("%s → %s %s", flows[0].Src, flows[0].Dst, strings.Join(svcs, ","))
}

// Got is the line's answer over its flows: allow or deny when all agree,
// unknown when any is unknown, else "mixed".
func (c *Case) Got() string {
	got := ""
	for _, r := range c.Results {
		switch {
		case r.Got == GotUnknown:
			return GotUnknown
		case got == "":
			got = r.Got
		case got != r.Got:
			got = "mixed"
		}
	}
	return got
}

// Message says in one line why a case did not pass (or what an INFO line
// got): for each flow that failed or is unknown, what it got and the
// deciding router and rule with its FILE:LINE, or the reason.
func (c *Case) Message() string {
	var parts []string
	for _, r := range c.Results {
		if c.Status != Info && r.Status != c.Status {
			continue
		}
		s := Service(r.Flow) + ": got " + r.Got
		if r.Got != GotUnknown && c.Expect != "" {
			s += ", want " + c.Expect
		}
		s += " (" + r.Verdict + ")"
		if d := r.Decider(); d != "" && r.Got != GotUnknown {
			s += " by " + d
		}
		if r.Reason != "" && (r.Got == GotUnknown || r.Router == "") {
			s += ": " + r.Reason
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// Summary counts cases by status.
type Summary struct {
	Passed, Failed, Unknown, NoExpect int
}

// Summarize counts cases.
func Summarize(cs []*Case) Summary {
	var s Summary
	for _, c := range cs {
		switch c.Status {
		case Pass:
			s.Passed++
		case Fail:
			s.Failed++
		case Unknown:
			s.Unknown++
		case Info:
			s.NoExpect++
		}
	}
	return s
}

// OK reports whether every expectation holds: nothing failed and nothing
// is unknown.
func (s Summary) OK() bool { return s.Failed == 0 && s.Unknown == 0 }

// String is the closing line of a test run: "3 passed, 1 failed, 0
// unknown" and, when some lines have no expectation, ", 2 without
// expectation".
func (s Summary) String() string {
	out := fmt.Sprintf("%d passed, %d failed, %d unknown", s.Passed, s.Failed, s.Unknown)
	if s.NoExpect > 0 {
		out += fmt.Sprintf(", %d without expectation", s.NoExpect)
	}
	return out
}
