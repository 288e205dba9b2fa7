package pdf

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pdfcpu/pdfcpu/pkg/api"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/sweep"
)

// TestWriteDiff renders "what this change does" for a result with a newly
// blocked flow, a newly allowed rectangle and a path change, and wants a
// valid PDF that names each under its heading.
func TestWriteDiff(t *testing.T) {
	deny := sweep.Answer{Disposition: doc.Denied, Decider: "dc-srv filter DB_GUARD #3", Path: []string{"dc-srv(eth0>eth1)"}}
	ok := sweep.Answer{Disposition: doc.Delivered, Decider: "dc-srv", Path: []string{"dc-srv(eth0>eth1)"}}
	ok2 := sweep.Answer{Disposition: doc.Delivered, Decider: "dc-srv", Path: []string{"dc-gw(wg0>eth0)", "dc-srv(eth0>eth1)"}}
	src, _ := sweep.ParseRange("10.1.20.0/24")
	dst, _ := sweep.ParseRange("10.3.20.0/24")
	g := &sweep.Group{Proto: "tcp", Src: src, Dst: dst, Runs: []sweep.PortRun{{Ports: sweep.Range{Lo: 22, Hi: 23}, Label: "x"}}}
	res := &sweep.DiffResult{Reference: "before.json", New: "after.json", Scope: "10.1.0.0/16 → 10.3.0.0/16 tcp", Flows: 1 << 40, Classes: 77,
		Changes: []sweep.Change{
			{Flow: &doc.Flow{Src: "10.1.20.10", Dst: "10.3.20.10", Proto: "tcp", DPort: 5432}, What: []string{"disposition"}, Flows: 1, Old: ok, New: deny},
			{Group: g, What: []string{"disposition"}, Flows: 131072, Old: deny, New: ok},
			{Flow: &doc.Flow{Src: "10.1.20.11", Dst: "10.3.20.10", Proto: "icmp"}, What: []string{"path"}, Flows: 1, Old: ok, New: ok2},
		}}
	out := filepath.Join(t.TempDir(), "change.pdf")
	pages, err := WriteDiff(context.Background(), res, out, Options{Now: time.Unix(1700000000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if pages != 1 {
		t.Errorf("pages = %d, want 1", pages)
	}
	if err := api.ValidateFile(out, nil); err != nil {
		t.Fatalf("pdfcpu validation: %v", err)
	}
	text := squash(pageText(t, out, 1, 1))
	for _, want := range []string{"What this change does", "131074 flows changed: 1 newly blocked, 131072 newly allowed, 1 otherwise changed",
		"Newly blocked (1 flow)", "10.1.20.10 → 10.3.20.10 5432/tcp", "Newly allowed (131072 flows)", "10.1.20.0/24 → 10.3.20.0/24 tcp 22-23",
		"Otherwise changed", "dc-gw(wg0>eth0)", "before.json", "after.json"} {
		if !strings.Contains(text, squash(want)) {
			t.Errorf("page lacks %q:\n%s", want, text)
		}
	}
}
