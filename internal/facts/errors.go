package facts

import (
	"fmt"
	"strings"
)

// ParseError is a facts problem that stops loading: one or more findings of
// error severity, each naming file:line. Error() gives the first one on one
// line (and how many more); callers such as `facts check` can errors.As it
// to print them all.
type ParseError struct {
	Findings []Finding
}

func (e *ParseError) Error() string {
	if len(e.Findings) == 0 {
		return "facts: invalid input"
	}
	f := e.Findings[0]
	s := f.Pos.String() + ": " + f.Message
	if n := len(e.Findings) - 1; n > 0 {
		s += fmt.Sprintf(" (and %d more problem", n)
		if n > 1 {
			s += "s"
		}
		s += ")"
	}
	return s
}

// posErrorf builds a single-finding ParseError at pos.
func posErrorf(pos Pos, format string, a ...any) *ParseError {
	return &ParseError{Findings: []Finding{{Pos: pos, Severity: SevError, Message: fmt.Sprintf(format, a...)}}}
}

// errs collects line-level errors of one parser so a file reports every bad
// line at once instead of only the first.
type errs struct {
	list []Finding
}

func (e *errs) addf(pos Pos, format string, a ...any) {
	e.list = append(e.list, Finding{Pos: pos, Severity: SevError, Message: fmt.Sprintf(format, a...)})
}

func (e *errs) err() error {
	if len(e.list) == 0 {
		return nil
	}
	return &ParseError{Findings: e.list}
}

// warnf builds a warning finding.
func warnf(pos Pos, format string, a ...any) Finding {
	return Finding{Pos: pos, Severity: SevWarning, Message: fmt.Sprintf(format, a...)}
}

// quoteLine shortens a line for use inside a message.
func quoteLine(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return fmt.Sprintf("%q", s)
}
