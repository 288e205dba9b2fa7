package flowtest

import (
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Suite is one test run for JUnit XML: the cases of one flows file.
type Suite struct {
	Name       string // e.g. "tsim trace --flows flows.csv"
	File       string // the flows file
	Timestamp  time.Time
	Time       time.Duration
	Properties [][2]string // name, value (facts source and digest, lab id …)
	Cases      []*Case
}

// The JUnit XML format as Ant wrote it and GitLab, Jenkins and GitHub
// read it (testdata/junit.xsd is the schema the tests validate against).
type xTestsuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []xTestsuite `xml:"testsuite"`
}

type xTestsuite struct {
	Name       string       `xml:"name,attr"`
	Tests      int          `xml:"tests,attr"`
	Failures   int          `xml:"failures,attr"`
	Errors     int          `xml:"errors,attr"`
	Skipped    int          `xml:"skipped,attr"`
	Time       string       `xml:"time,attr"`
	Timestamp  string       `xml:"timestamp,attr"`
	File       string       `xml:"file,attr,omitempty"`
	Properties *xProperties `xml:"properties"`
	Cases      []xTestcase  `xml:"testcase"`
}

type xProperties struct {
	Props []xProperty `xml:"property"`
}

type xProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type xTestcase struct {
	Name      string    `xml:"name,attr"`
	Classname string    `xml:"classname,attr"`
	File      string    `xml:"file,attr,omitempty"`
	Line      int       `xml:"line,attr,omitempty"`
	Time      string    `xml:"time,attr"`
	Skipped   *xMessage `xml:"skipped"`
	Failure   *xMessage `xml:"failure"`
	Error     *xMessage `xml:"error"`
	SystemOut string    `xml:"system-out,omitempty"`
}

type xMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",chardata"`
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 6, 64)
}

// WriteJUnit writes s as JUnit XML: one testcase per flows-file line. A
// FAIL is a <failure> whose message names, per failing service, what it
// got, the deciding router and rule and the rule's FILE:LINE; an UNKNOWN is
// an <error> (it did not pass, and it did not fail either); a line without
// expectation is <skipped>.
func WriteJUnit(w io.Writer, s Suite) error {
	sum := Summarize(s.Cases)
	ts := xTestsuite{
		Name: s.File, Tests: len(s.Cases), Failures: sum.Failed, Errors: sum.Unknown, Skipped: sum.NoExpect,
		Time: seconds(s.Time), Timestamp: s.Timestamp.UTC().Format("2006-01-02T15:04:05"), File: s.File,
	}
	if len(s.Properties) > 0 {
		ts.Properties = &xProperties{}
		for _, p := range s.Properties {
			ts.Properties.Props = append(ts.Properties.Props, xProperty{Name: p[0], Value: p[1]})
		}
	}
	for _, c := range s.Cases {
		tc := xTestcase{
			Name:      fmt.Sprintf("line %d: %s", c.Line, c.Name),
			Classname: s.File, File: s.File, Line: c.Line, Time: seconds(c.Time),
			SystemOut: details(c),
		}
		msg := &xMessage{Message: c.Message(), Type: string(c.Status), Body: details(c)}
		switch c.Status {
		case Fail:
			tc.Failure = msg
		case Unknown:
			tc.Error = msg
		case Info:
			msg.Message = "no expectation: " + msg.Message
			tc.Skipped = msg
		}
		if c.Status != Pass {
			tc.SystemOut = "" // the details are the outcome's text
		}
		ts.Cases = append(ts.Cases, tc)
	}
	root := xTestsuites{Name: s.Name, Tests: ts.Tests, Failures: ts.Failures, Errors: ts.Errors,
		Skipped: ts.Skipped, Time: ts.Time, Suites: []xTestsuite{ts}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(root); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// details is a case's full explanation, one service per line, with the
// deciding rules' text.
func details(c *Case) string {
	var b strings.Builder
	for _, r := range c.Results {
		fmt.Fprintf(&b, "%s %s → %s %s: %s (%s)", r.Status, r.Flow.Src, r.Flow.Dst, Service(r.Flow), r.Got, r.Verdict)
		if c.Expect != "" {
			fmt.Fprintf(&b, ", want %s", c.Expect)
		}
		b.WriteString("\n")
		if d := r.Decider(); d != "" {
			fmt.Fprintf(&b, "  decided by %s", d)
			if r.Text != "" {
				fmt.Fprintf(&b, ": %s", r.Text)
			}
			b.WriteString("\n")
		}
		if r.Reason != "" && (r.Text == "" || !strings.Contains(r.Reason, r.Text) || r.Got == GotUnknown) {
			fmt.Fprintf(&b, "  reason: %s\n", r.Reason)
		}
	}
	return b.String()
}
