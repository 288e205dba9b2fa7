package pdf_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tsim-dev/tsim/hosts"
	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/pdfcheck"
	"github.com/tsim-dev/tsim/internal/pipeline"
	"github.com/tsim-dev/tsim/internal/testenv"
	"github.com/tsim-dev/tsim/trace"
)

// TestRunReportConnection runs the example's F23 (ICMP 10.1.10.5 →
// 10.3.100.10: two ECMP branches at dc-gw, the reply of one dropped as
// INVALID at dc-core) the way `tsim run` does, in a real lab, and checks
// the report: the reply, both branches and the reply's denial from the
// simulation, and the live verdict with the branch the lab's kernel took
// (whichever it is: the test holds for any hash seed).
func TestRunReportConnection(t *testing.T) {
	testenv.NeedRoot(t, "sudo go test ./pdf/ -run TestRunReportConnection")
	testenv.NeedTools(t, "pdftotext")
	f, err := facts.Load(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	flows, err := trace.FlowsFromSpec("10.1.10.5", "10.3.100.10", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "report.pdf")
	res, err := pipeline.Run(context.Background(), pipeline.Request{Facts: f, Groups: [][]*doc.Flow{flows}, Output: out,
		Paper: "A4", Now: time.Unix(1790000000, 0), Scope: hosts.ScopePath, Registry: filepath.Join(t.TempDir(), "labs"),
		ProbeTimeout: 3 * time.Second}, pipeline.Deps{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	pages := pdfcheck.Validate(t, out)
	d := res.Docs[0]
	if len(d.Reach) != 1 || d.Reach[0].E2E == nil {
		t.Fatalf("no reach result: %+v", d.Reach)
	}
	e := d.Reach[0].E2E
	secs := d.Report.Sections
	text := func(from, to int) string {
		b, err := exec.Command("pdftotext", "-f", itoa(from), "-l", itoa(to), "-enc", "UTF-8", out, "-").Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(strings.Fields(string(b)), "")
	}
	sq := func(s string) string { return strings.Join(strings.Fields(s), "") }
	sum, svc := text(secs[0].Page, secs[1].Page-1), text(secs[1].Page, pages)
	rule := "-A FORWARD -m conntrack --ctstate INVALID -j DROP"
	for _, w := range []string{"Reply", "ct INVALID", rule, "ECMP branches",
		"request dc-gw: nexthop 1 of 2 via 10.3.0.2 dev eth0", "request dc-gw: nexthop 2 of 2 via 10.3.0.3 dev eth0",
		"the reply is dropped by dc-core filter FORWARD #2"} {
		if !strings.Contains(svc, sq(w)) {
			t.Errorf("service page lacks %q", w)
		}
	}
	if !strings.Contains(sum, sq("simulation: the reply is dropped by dc-core filter FORWARD #2")) {
		t.Error("summary does not say the simulated reply is dropped at dc-core")
	}
	// The live verdict depends on the branch the lab's kernel hashed the
	// request to: via dc-srv the reply dies at dc-core, via dc-core it comes back.
	live := "emulation: the reply is dropped by dc-core filter FORWARD #2"
	switch {
	case e.Verdict == doc.Unreachable && e.BlockedBy != nil && e.BlockedBy.Direction == doc.Reply:
		if e.BlockedBy.Router != "dc-core" || e.BlockedBy.Index != 2 {
			t.Fatalf("live blocked_by = %+v, want dc-core FORWARD #2", e.BlockedBy)
		}
		if !strings.Contains(sum, sq(live)) {
			t.Errorf("summary lacks %q", live)
		}
		if !strings.Contains(svc, sq("Emulation: "+e.Verdict)) || !strings.Contains(svc, sq("(the reply is dropped by dc-core filter FORWARD #2)")) {
			t.Error("service page does not give the live denial's direction")
		}
		if !strings.Contains(svc, sq("emulation: BLOCKED · filter FORWARD #2")) {
			t.Error("the reply table lacks the live verdict of dc-core's rule")
		}
	case e.Verdict == doc.Reachable:
		if strings.Contains(sum, sq("emulation: the reply is dropped")) {
			t.Error("summary says the live reply was dropped, but the connection succeeded")
		}
	default:
		t.Fatalf("live F23: %s %s (blocked_by %+v)", e.Verdict, e.Reason, e.BlockedBy)
	}
	if e.PathDiffers != strings.Contains(svc, sq("Live path versus predicted path")) {
		t.Errorf("path_differs %v, but the live path comparison shown = %v", e.PathDiffers, !e.PathDiffers)
	}
	t.Logf("live: %s via %v, reply %v; %d pages", e.Verdict, e.Path, e.ReplyPath, pages)
}

func itoa(n int) string { return strconv.Itoa(n) }
