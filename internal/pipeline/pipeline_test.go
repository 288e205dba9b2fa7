package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tsim-dev/tsim/hosts"
	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/pdfcheck"
	"github.com/tsim-dev/tsim/internal/testenv"
	"github.com/tsim-dev/tsim/trace"
)

// TestRunOnePDF: a job of two documents renders one PDF directly (no
// scratch reports left beside it), each document records where its parts
// start in that file, and the lab is gone afterwards.
func TestRunOnePDF(t *testing.T) {
	testenv.NeedRoot(t, "sudo go test ./internal/pipeline/")
	f, err := facts.Load(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	var groups [][]*doc.Flow
	for _, q := range [][3]string{{"10.1.10.5", "10.1.50.10", "https"}, {"10.2.10.5", "10.3.10.5", "https,ssh"}} {
		fl, err := trace.FlowsFromSpec(q[0], q[1], q[2], 0)
		if err != nil {
			t.Fatal(err)
		}
		groups = append(groups, fl)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "report.pdf")
	reg := filepath.Join(t.TempDir(), "labs")
	res, err := Run(context.Background(), Request{Facts: f, Groups: groups, Output: out, Paper: "A4",
		Now: time.Unix(1790000000, 0), Scope: hosts.ScopePath, Registry: reg, ProbeTimeout: 3 * time.Second},
		Deps{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(reg); len(ents) != 0 {
		t.Errorf("lab registry not empty after the run: %d entries", len(ents))
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("output directory holds %v, want only report.pdf", names)
	}
	pages := pdfcheck.Validate(t, out)
	if res.Merged == nil || res.Merged.PDF != out || res.Merged.Pages != pages || res.Merged.Documents != 2 {
		t.Fatalf("merged = %+v, file has %d pages", res.Merged, pages)
	}
	// Contents on page 1, then document 1, then document 2: their parts
	// are pages of the one file, in order, within it.
	last := 1 // the page of the previous part
	for i, d := range res.Docs {
		if d.Report == nil || d.Report.PDF != out || d.Report.Pages != pages {
			t.Fatalf("document %d report = %+v", i+1, d.Report)
		}
		secs := d.Report.Sections
		if len(secs) != 1+len(d.Flows) || secs[0].Title != "Summary" || secs[0].Page <= last || i == 0 && secs[0].Page != 2 {
			t.Fatalf("document %d sections = %+v, want Summary after page %d then one per flow", i+1, secs, last)
		}
		for k := 1; k < len(secs); k++ {
			if secs[k].Page <= secs[k-1].Page || secs[k].Page > pages {
				t.Errorf("document %d part %q on page %d (after %d, of %d)", i+1, secs[k].Title, secs[k].Page, secs[k-1].Page, pages)
			}
		}
		last = secs[len(secs)-1].Page
	}
}
