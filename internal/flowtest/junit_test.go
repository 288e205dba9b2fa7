package flowtest

import (
	"bytes"
	"context"
	"encoding/xml"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/testenv"
	"github.com/tsim-dev/tsim/trace"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// exampleFlows covers every status on the built-in example network: an
// allowed and a denied service (PASS, and FAIL both ways), a mixed line, a
// NULL_ROUTED flow, an UNKNOWN rule (F40) with and without expectation, a
// line without expectation.
const exampleFlows = "src,dst,spec,expect,name\r\n" +
	"10.1.10.5,10.1.50.10,https,allow,web from HQ\r\n" +
	"10.1.10.5,10.1.50.10,3306/tcp,deny,\r\n" +
	"10.1.10.5,10.1.50.10,3306/tcp,allow,\r\n" +
	"10.1.10.5,10.1.50.10,\"https,3306/tcp\",permit,\r\n" +
	"10.1.10.5,10.1.50.10,https,block,\r\n" +
	"10.1.10.5,10.2.250.5,icmp,drop,\r\n" +
	"10.3.100.10,10.3.10.5,9090/tcp,allow,\r\n" +
	"10.3.100.10,10.3.10.5,9090/tcp,,\r\n" +
	"10.1.10.5,10.1.50.10,ssh,,\r\n" // denied by hq-dmz's FORWARD policy

func exampleCases(t *testing.T) ([]*Case, *facts.Facts) {
	t.Helper()
	ctx := context.Background()
	f, err := facts.Load(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	file, err := Read(strings.NewReader(exampleFlows), "flows.csv")
	if err != nil {
		t.Fatal(err)
	}
	var cases []*Case
	err = TraceFile(ctx, trace.New(f), file, func(c *Case, ts []*doc.Trace) error {
		if len(ts) != len(c.Results) {
			t.Fatalf("line %d: %d traces, %d results", c.Line, len(ts), len(c.Results))
		}
		c.Time = time.Duration(c.Line) * time.Millisecond // stable golden output
		cases = append(cases, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return cases, f
}

func TestTraceFileStatuses(t *testing.T) {
	cases, _ := exampleCases(t)
	want := []struct {
		line   int
		status Status
		msg    string // a part of the message
	}{
		{2, Pass, ""},
		{3, Pass, ""},
		{4, Fail, "3306/tcp: got deny, want allow (DENIED) by hq-gw filter HQ_EGRESS #2 (builtin:example/hq-gw_facts.txt:160)"},
		{5, Fail, "3306/tcp: got deny, want allow"},
		{6, Fail, "https: got allow, want deny (DELIVERED) by hq-dmz filter FORWARD #4 (builtin:example/hq-dmz_facts.txt:"},
		{7, Pass, ""},
		{8, Unknown, "9090/tcp: got unknown (UNKNOWN): "},
		{9, Unknown, "dc-core"},
		{10, Info, "ssh: got deny (DENIED) by hq-dmz filter FORWARD policy"},
	}
	if len(cases) != len(want) {
		t.Fatalf("%d cases, want %d", len(cases), len(want))
	}
	for i, w := range want {
		c := cases[i]
		if c.Line != w.line || c.Status != w.status || !strings.Contains(c.Message(), w.msg) {
			t.Errorf("case %d: line %d %s %q, want line %d %s containing %q", i, c.Line, c.Status, c.Message(), w.line, w.status, w.msg)
		}
	}
	if cases[0].Name != "web from HQ" || cases[1].Name != "10.1.10.5 → 10.1.50.10 3306/tcp" {
		t.Errorf("names %q, %q", cases[0].Name, cases[1].Name)
	}
	s := Summarize(cases)
	if got := s.String(); got != "3 passed, 3 failed, 2 unknown, 1 without expectation" || s.OK() {
		t.Errorf("summary %q ok=%v", got, s.OK())
	}
	if !(Summary{Passed: 2, NoExpect: 1}).OK() || (Summary{Passed: 2, Unknown: 1}).OK() {
		t.Error("OK: an unknown must not pass, a line without expectation must not fail")
	}
}

// TestJUnitValidates writes the example's JUnit XML, compares it with the
// golden file and validates it against testdata/junit.xsd with xmllint.
func TestJUnitValidates(t *testing.T) {
	cases, f := exampleCases(t)
	var buf bytes.Buffer
	err := WriteJUnit(&buf, Suite{
		Name: "tsim trace --flows flows.csv", File: "flows.csv",
		Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Time: 42 * time.Millisecond,
		Properties: [][2]string{{"facts", f.Source}, {"facts.digest", f.Digest}}, Cases: cases,
	})
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "example.junit.xml")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("JUnit XML differs from %s (go test -update rewrites it):\n%s", golden, buf.String())
	}
	validateJUnit(t, buf.Bytes())

	// The counts a CI reads match the test cases.
	var got struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Errors   int `xml:"errors,attr"`
		Skipped  int `xml:"skipped,attr"`
		Suite    struct {
			Cases []struct {
				Name    string    `xml:"name,attr"`
				Line    int       `xml:"line,attr"`
				Failure *struct{} `xml:"failure"`
				Error   *struct{} `xml:"error"`
				Skipped *struct{} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	nf, ne, ns := 0, 0, 0
	for _, c := range got.Suite.Cases {
		if c.Failure != nil {
			nf++
		}
		if c.Error != nil {
			ne++
		}
		if c.Skipped != nil {
			ns++
		}
	}
	if got.Tests != 9 || len(got.Suite.Cases) != 9 || got.Failures != 3 || nf != 3 || got.Errors != 2 || ne != 2 || got.Skipped != 1 || ns != 1 {
		t.Errorf("counts: %+v (failures %d errors %d skipped %d)", got, nf, ne, ns)
	}
	if got.Suite.Cases[2].Line != 4 || !strings.HasPrefix(got.Suite.Cases[2].Name, "line 4: ") {
		t.Errorf("third case: %+v", got.Suite.Cases[2])
	}
}

// TestJUnitSchemaRejects proves the validation can fail: documents that
// break the schema are refused.
func TestJUnitSchemaRejects(t *testing.T) {
	for name, bad := range map[string]string{
		"no tests count":  `<testsuites tests="1" failures="0" errors="0"><testsuite name="x" failures="0" errors="0" time="0"/></testsuites>`,
		"two outcomes":    `<testsuites tests="1" failures="1" errors="0"><testsuite name="x" tests="1" failures="1" errors="0" time="0"><testcase name="a" classname="x" time="0"><failure message="m"/><error message="m"/></testcase></testsuite></testsuites>`,
		"time not number": `<testsuites tests="1" failures="0" errors="0"><testsuite name="x" tests="1" failures="0" errors="0" time="soon"/></testsuites>`,
	} {
		t.Run(name, func(t *testing.T) {
			if err := xmllint(t, []byte(bad)); err == nil {
				t.Error("xmllint accepted an invalid document")
			}
		})
	}
}

func validateJUnit(t *testing.T, b []byte) {
	t.Helper()
	if err := xmllint(t, b); err != nil {
		t.Fatalf("JUnit XML does not validate against testdata/junit.xsd: %v", err)
	}
}

func xmllint(t *testing.T, b []byte) error {
	t.Helper()
	testenv.NeedTools(t, "xmllint") // Debian package libxml2-utils
	p := filepath.Join(t.TempDir(), "junit.xml")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("xmllint", "--noout", "--schema", filepath.Join("testdata", "junit.xsd"), p).CombinedOutput()
	if err != nil {
		return &lintError{string(out)}
	}
	if !regexp.MustCompile(`validates`).Match(out) {
		t.Fatalf("xmllint: %s", out)
	}
	return nil
}

type lintError struct{ out string }

func (e *lintError) Error() string { return e.out }
