package flowtest

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Columns of the one-row-per-flow views (--format csv and table). Tests
// (a flows file) add the line, the expectation and the status.
var (
	traceColumns = []string{"flow", "src", "dst", "service", "disposition", "router", "rule", "pos", "reason"}
	testColumns  = []string{"line", "flow", "src", "dst", "service", "expect", "status", "disposition", "router", "rule", "pos", "reason"}
)

// Columns returns the header of the row views.
func Columns(tests bool) []string {
	if tests {
		return testColumns
	}
	return traceColumns
}

// Rows returns one row per flow of c, in Columns(tests) order.
func Rows(c *Case, tests bool) [][]string {
	out := make([][]string, 0, len(c.Results))
	for _, r := range c.Results {
		f := r.Flow
		row := []string{f.ID, f.Src, f.Dst, Service(f), r.Verdict, r.Router, r.Rule, r.Pos, r.Reason}
		if tests {
			row = append([]string{strconv.Itoa(c.Line), f.ID, f.Src, f.Dst, Service(f), c.Expect, string(r.Status)}, row[4:]...)
		}
		out = append(out, row)
	}
	return out
}

// CSVWriter writes the row view as CSV (RFC 4180, header first).
type CSVWriter struct {
	w     *csv.Writer
	tests bool
	began bool
}

// NewCSVWriter writes to w; tests adds the columns of a flows file.
func NewCSVWriter(w io.Writer, tests bool) *CSVWriter {
	return &CSVWriter{w: csv.NewWriter(w), tests: tests}
}

// Write writes c's rows (and the header before the first).
func (cw *CSVWriter) Write(c *Case) error {
	if !cw.began {
		cw.began = true
		if err := cw.w.Write(Columns(cw.tests)); err != nil {
			return err
		}
	}
	return cw.w.WriteAll(Rows(c, cw.tests))
}

// Flush flushes and reports a write error.
func (cw *CSVWriter) Flush() error {
	if !cw.began {
		if err := cw.w.Write(Columns(cw.tests)); err != nil {
			return err
		}
	}
	cw.w.Flush()
	return cw.w.Error()
}

// WriteTable writes the compact table of cases: the row view without the
// reason column (a refused route or an UNKNOWN's reason follows the table,
// one line each), aligned in columns.
func WriteTable(w io.Writer, cases []*Case, tests bool) error {
	cols := Columns(tests)
	cols = cols[:len(cols)-1] // reason: below the table
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(cols, "\t")))
	var notes []string
	for _, c := range cases {
		for i, row := range Rows(c, tests) {
			reason := row[len(row)-1]
			row = row[:len(row)-1]
			for k := range row {
				if row[k] == "" {
					row[k] = "-"
				}
			}
			fmt.Fprintln(tw, strings.Join(row, "\t"))
			r := c.Results[i]
			if reason != "" && (r.Got == GotUnknown || r.Router == "" || r.Rule == "") {
				notes = append(notes, fmt.Sprintf("%s %s: %s", r.Flow.ID, Service(r.Flow), reason))
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range notes {
		if _, err := fmt.Fprintln(w, n); err != nil {
			return err
		}
	}
	return nil
}
