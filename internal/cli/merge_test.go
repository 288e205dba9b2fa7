package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/internal/pdfcheck"
)

// TestMergeFromDocumentsAlone: merge renders from the documents on stdin;
// the report PDFs they name may be gone (or written on another machine).
func TestMergeFromDocumentsAlone(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1790000000")
	dir := t.TempDir()
	a, errs, code := run(t, "", "trace", "-s", "10.1.10.5", "-d", "10.1.50.10", "-p", "https,ssh", "--json")
	if code > 1 {
		t.Fatalf("trace: exit %d: %s", code, errs)
	}
	b, errs, code := run(t, "", "trace", "-s", "10.2.10.5", "-d", "10.3.10.5", "-p", "https", "--json")
	if code > 1 {
		t.Fatalf("trace: exit %d: %s", code, errs)
	}
	// One document went through `report` into a directory that is then
	// removed: its .report.pdf names a file that no longer exists.
	rdir := filepath.Join(dir, "elsewhere")
	reported, errs, code := run(t, b, "report", "-o", rdir)
	if code != 0 {
		t.Fatalf("report: exit %d: %s", code, errs)
	}
	if !strings.Contains(reported, `"pdf"`) {
		t.Fatalf("report did not record its PDF: %s", reported)
	}
	if err := os.RemoveAll(rdir); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(dir, "all.pdf")
	stdout, errs, code := run(t, a+reported, "merge", "-o", out)
	if code != 0 {
		t.Fatalf("merge: exit %d: %s", code, errs)
	}
	var res struct {
		Schema string
		Merged struct {
			PDF       string
			Pages     int
			Documents int
		}
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("merge output %q: %v", stdout, err)
	}
	if res.Schema != "tsim/v1" || res.Merged.PDF != out || res.Merged.Documents != 2 || res.Merged.Pages < 6 {
		t.Fatalf("merge output = %+v", res)
	}
	if !strings.Contains(errs, "simulation only") {
		t.Errorf("no warning that trace-only documents show the simulation: %q", errs)
	}
	if n := pdfcheck.Validate(t, out); n != res.Merged.Pages {
		t.Errorf("the PDF has %d pages, merge said %d", n, res.Merged.Pages)
	}
	first, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// SOURCE_DATE_EPOCH: the same documents give the same bytes.
	if _, errs, code := run(t, a+reported, "merge", "-o", out); code != 0 {
		t.Fatalf("second merge: exit %d: %s", code, errs)
	}
	if again, _ := os.ReadFile(out); string(again) != string(first) {
		t.Error("merging the same documents twice under SOURCE_DATE_EPOCH gave different bytes")
	}
}

func TestMergeErrorsCLI(t *testing.T) {
	a, _, _ := run(t, "", "trace", "-s", "10.1.10.5", "-d", "10.1.50.10", "-p", "https", "--json")
	noTrace := `{"schema":"tsim/v1","flows":[{"id":"f1","src":"10.1.10.5","dst":"10.1.50.10","proto":"tcp","dport":443}]}`
	tests := []struct {
		name, stdin string
		args        []string
		msg         string
	}{
		{"document without trace", a + noTrace, []string{"-o", "x.pdf"}, "document 2: "},
		{"garbage", "not json", []string{"-o", "x.pdf"}, "merge: stdin"},
		{"bad paper", a, []string{"-o", "x.pdf", "--paper", "a3"}, "--paper"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"merge"}
			for _, x := range tc.args {
				if strings.HasSuffix(x, ".pdf") {
					x = filepath.Join(dir, x)
				}
				args = append(args, x)
			}
			stdout, errs, code := run(t, tc.stdin, args...)
			if code != 2 || !strings.Contains(errs, tc.msg) || stdout != "" {
				t.Fatalf("exit %d, stderr %q, stdout %q; want 2 and %q", code, errs, stdout, tc.msg)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("failed merge left %d file(s)", len(ents))
			}
		})
	}
}
