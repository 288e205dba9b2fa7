package pdf

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pdfcpu/pdfcpu/pkg/api"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// fixedNow is the report date of every test: SOURCE_DATE_EPOCH 1790000000.
var fixedNow = time.Unix(1790000000, 0).UTC()

func loadFixture(t testing.TB, name string) *doc.Document {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := doc.Parse(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

// needTool skips when a poppler tool is missing, except in CI where the
// test must run (.ci/run installs poppler-utils).
func needTool(t *testing.T, tool string) {
	t.Helper()
	testenv.NeedTools(t, tool)
}

// renderPages rasterises every page with pdftoppm and returns the images.
func renderPages(t *testing.T, pdfPath string) []image.Image {
	t.Helper()
	needTool(t, "pdftoppm")
	dir := t.TempDir()
	out, err := exec.Command("pdftoppm", "-r", "40", "-png", pdfPath, filepath.Join(dir, "p")).CombinedOutput()
	if err != nil {
		t.Fatalf("pdftoppm %s: %v\n%s", pdfPath, err, out)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "p-*.png"))
	// pdftoppm pads page numbers to the width of the last one; sort by number.
	imgs := make([]image.Image, len(files))
	for _, f := range files {
		base := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "p-"), ".png")
		n, err := strconv.Atoi(base)
		if err != nil || n < 1 || n > len(files) {
			t.Fatalf("unexpected pdftoppm output %s", f)
		}
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(fh)
		fh.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		imgs[n-1] = img
	}
	return imgs
}

// inked is the share of pixels that are not white.
func inked(img image.Image) float64 {
	b := img.Bounds()
	n := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r < 0xf000 || g < 0xf000 || bl < 0xf000 {
				n++
			}
		}
	}
	return float64(n) / float64(b.Dx()*b.Dy())
}

// pageText extracts the text of pages from..to (1-based, inclusive).
func pageText(t *testing.T, pdfPath string, from, to int) string {
	t.Helper()
	needTool(t, "pdftotext")
	out, err := exec.Command("pdftotext", "-f", fmt.Sprint(from), "-l", fmt.Sprint(to), "-enc", "UTF-8", pdfPath, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext %s: %v", pdfPath, err)
	}
	return string(out)
}

// squash removes all white space, so wrapped text can be found whole, and
// hyphens, which pdftotext drops where a line ends with one.
func squash(s string) string {
	return strings.ReplaceAll(strings.Join(strings.Fields(s), ""), "-", "")
}

func report(t testing.TB, d *doc.Document, opts Options) (string, int) {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Now.IsZero() {
		opts.Now = fixedNow
	}
	path, pages, err := Report(context.Background(), d, opts)
	if err != nil {
		t.Fatal(err)
	}
	return path, pages
}

// TestReportPages renders each fixture, checks every page has content and
// that each page holds what it should: the summary the services, routers
// and disagreements; each service's pages its routers, full rule texts and
// the steering policy rule and route.
func TestReportPages(t *testing.T) {
	tests := []struct {
		fixture string
		summary []string // must be on the summary page(s)
		simOnly bool
	}{
		{"three", []string{"ssh (22/tcp)", "https (443/tcp)", "dns (53/udp)", "hq-gw", "core-r1", "br-gw",
			"builtin:example", "sha256:4f2a9c1e", "2 disagreement(s)", "dns (53/udp) at core-r1: simulation predicted ALLOWED, emulation found BLOCKED",
			"dns (53/udp), end to end: simulation predicted REACHABLE, emulation found UNREACHABLE",
			"1 of 3 services reachable", "2026-09-21 14:13:20 UTC"}, false},
		{"long", []string{"postgresql (5432/tcp)", "core-router-01.datacenter-frankfurt.example.net",
			"core-router-13.datacenter-dublin.example.net", "simulation only", "Not compared"}, true},
		{"unicode", []string{"Zürich-gw", "路由器", "Αθήνα-core", "/srv/tsim/facts/Zürich–東京", "ping (ICMP)"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.fixture, func(t *testing.T) {
			d := loadFixture(t, tc.fixture)
			path, pages := report(t, d, Options{})
			if d.Report == nil || d.Report.PDF != path || d.Report.Pages != pages {
				t.Fatalf("d.Report = %+v, want pdf %s pages %d", d.Report, path, pages)
			}
			validate(t, path)
			imgs := renderPages(t, path)
			if len(imgs) != pages {
				t.Fatalf("pdftoppm rendered %d pages, Report said %d", len(imgs), pages)
			}
			for i, img := range imgs {
				if ink := inked(img); ink < 0.01 {
					t.Errorf("page %d is (nearly) blank: %.4f of pixels inked", i+1, ink)
				}
			}
			secs := d.Report.Sections
			if len(secs) != 1+len(d.Flows) || secs[0].Title != "Summary" || secs[0].Page != 1 {
				t.Fatalf("sections = %+v, want Summary on page 1 then one per flow", secs)
			}
			end := func(i int) int { // last page of section i
				if i+1 < len(secs) {
					return secs[i+1].Page - 1
				}
				return pages
			}
			sum := squash(pageText(t, path, 1, end(0)))
			for _, want := range tc.summary {
				if !strings.Contains(sum, squash(want)) {
					t.Errorf("summary pages lack %q", want)
				}
			}
			v, err := newView(d)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range v.services {
				sec := secs[i+1]
				if sec.Page <= secs[i].Page {
					t.Fatalf("section %q starts on page %d, not after %q", sec.Title, sec.Page, secs[i].Title)
				}
				text := squash(pageText(t, path, sec.Page, end(i+1)))
				wants := []string{"Service" + s.label, s.e2e}
				if tc.simOnly {
					wants = append(wants, "Simulationonly")
				}
				for _, h := range s.routers {
					wants = append(wants, h.name, h.ruleText)
					for _, st := range append(h.policy, h.route...) {
						wants = append(wants, st.Text)
					}
				}
				for _, w := range wants {
					if !strings.Contains(text, squash(w)) {
						t.Errorf("pages %d-%d (%s) lack %q", sec.Page, end(i+1), s.label, w)
					}
				}
				// A service's text must not leak onto another service's pages.
				for j, o := range v.services {
					if j != i && !strings.Contains(s.label, o.label) && strings.Contains(text, squash("Service "+o.label)) {
						t.Errorf("pages of %s show service %s", s.label, o.label)
					}
				}
			}
		})
	}
}

// TestReportLongRuleNeverCut checks the 300-character rule survives whole.
func TestReportLongRuleNeverCut(t *testing.T) {
	d := loadFixture(t, "long")
	rule := d.Trace[0].Hops[1].Steps[2].Text
	if len(rule) != 300 {
		t.Fatalf("fixture rule is %d characters, want 300", len(rule))
	}
	path, pages := report(t, d, Options{})
	if !strings.Contains(squash(pageText(t, path, 1, pages)), squash(rule)) {
		t.Fatal("the 300-character rule is not present in full")
	}
}

func TestReportDeterministic(t *testing.T) {
	d := loadFixture(t, "three")
	a, _ := report(t, d, Options{})
	b, _ := report(t, loadFixture(t, "three"), Options{})
	if filepath.Base(a) != filepath.Base(b) {
		t.Fatalf("names differ: %s %s", a, b)
	}
	ba, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ba, bb) {
		t.Fatal("same document and date gave different PDFs")
	}
	c, _ := report(t, loadFixture(t, "three"), Options{Now: fixedNow.Add(time.Hour)})
	bc, _ := os.ReadFile(c)
	if bytes.Equal(ba, bc) {
		t.Fatal("a different date gave the same PDF")
	}
	// Reporting a document that already has a report keeps the name.
	d2 := loadFixture(t, "three")
	d2.Report = &doc.Report{PDF: "/elsewhere.pdf", Pages: 9}
	e, _ := report(t, d2, Options{})
	if filepath.Base(e) != filepath.Base(a) {
		t.Errorf("name changed with the report section: %s vs %s", e, a)
	}
}

// TestReportGolden pins the exact bytes (update with -update).
func TestReportGolden(t *testing.T) {
	for _, name := range []string{"three", "long", "unicode"} {
		t.Run(name, func(t *testing.T) {
			path, _ := report(t, loadFixture(t, name), Options{})
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			got := hex.EncodeToString(sum[:]) + "  " + filepath.Base(path) + "\n"
			golden := filepath.Join("testdata", "golden", name+".sha256")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./pdf -run Golden -update)", err)
			}
			if got != string(want) {
				t.Errorf("report differs from golden:\n got  %s want %s(rerun with -update after checking the rendered pages)", got, want)
			}
		})
	}
}

func TestReportPaper(t *testing.T) {
	for _, tc := range []struct {
		paper string
		w, h  float64
	}{{"A4", 595.28, 841.89}, {"", 595.28, 841.89}, {"Letter", 612, 792}, {"letter", 612, 792}} {
		path, _ := report(t, loadFixture(t, "three"), Options{Paper: tc.paper})
		dims, err := api.PageDimsFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range dims {
			if d.Width < tc.w-0.5 || d.Width > tc.w+0.5 || d.Height < tc.h-0.5 || d.Height > tc.h+0.5 {
				t.Errorf("paper %q page %d is %.1f×%.1f, want %.1f×%.1f", tc.paper, i+1, d.Width, d.Height, tc.w, tc.h)
			}
		}
	}
}

func TestReportErrors(t *testing.T) {
	noTrace := loadFixture(t, "three")
	noTrace.Trace = nil
	noFlows := loadFixture(t, "three")
	noFlows.Flows = nil
	tests := []struct {
		name string
		d    *doc.Document
		opts Options
		want string
	}{
		{"no trace", noTrace, Options{}, "tsim trace"},
		{"no flows", noFlows, Options{}, "no flows"},
		{"bad paper", loadFixture(t, "three"), Options{Paper: "A3"}, `unknown paper size "A3"`},
		{"missing dir", loadFixture(t, "three"), Options{Dir: filepath.Join(t.TempDir(), "nope")}, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opts.Dir == "" {
				tc.opts.Dir = t.TempDir()
			}
			tc.opts.Now = fixedNow
			_, _, err := Report(context.Background(), tc.d, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if tc.d.Report != nil {
				t.Errorf("failed report recorded %+v", tc.d.Report)
			}
			if ents, _ := os.ReadDir(tc.opts.Dir); len(ents) != 0 {
				t.Errorf("failed report left %d file(s) in %s", len(ents), tc.opts.Dir)
			}
		})
	}
}

func TestReportCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	d := loadFixture(t, "three")
	if _, _, err := Report(ctx, d, Options{Dir: dir, Now: fixedNow}); err != context.Canceled {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("cancelled report left files")
	}
}

// TestFallbackFontOnlyWhenNeeded: the CJK font is embedded (subset) only
// in reports whose text needs it.
func TestFallbackFontOnlyWhenNeeded(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		want    bool
	}{{"three", false}, {"long", false}, {"unicode", true}} {
		path, _ := report(t, loadFixture(t, tc.fixture), Options{})
		b, _ := os.ReadFile(path)
		if got := bytes.Contains(b, []byte(famFallback)); got != tc.want {
			t.Errorf("%s: fallback font embedded = %v, want %v", tc.fixture, got, tc.want)
		}
	}
}

// TestReportSize: a three-service report stays well under 300 KB (fonts
// are subset).
func TestReportSize(t *testing.T) {
	for _, name := range []string{"three", "unicode"} {
		path, _ := report(t, loadFixture(t, name), Options{})
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes", name, st.Size())
		if st.Size() > 300<<10 {
			t.Errorf("%s report is %d bytes, over 300 KB", name, st.Size())
		}
	}
}

// BenchmarkReport renders the three-service report (target < 100 ms) and
// reports its size.
func BenchmarkReport(b *testing.B) {
	d := loadFixture(b, "three")
	dir := b.TempDir()
	var path string
	cpu0 := cpuTime()
	for b.Loop() {
		var err error
		path, _, err = Report(context.Background(), d, Options{Dir: dir, Now: fixedNow})
		if err != nil {
			b.Fatal(err)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	// CPU time per report is what the 100 ms target is about; wall time on
	// a busy shared machine includes waiting for a core.
	cpuMS := float64((cpuTime() - cpu0).Microseconds()) / 1000 / float64(b.N)
	b.ReportMetric(float64(st.Size()), "bytes/pdf")
	b.ReportMetric(cpuMS, "cpu-ms/op")
	b.ReportMetric(cpuMS/100, "cpu-ratio-to-100ms")
}

// cpuTime is the CPU time (user+system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// stressDoc builds a document far beyond normal sizes: many services, a
// 30-router path, names without break points and 1000-character rules.
func stressDoc(services, routers int) *doc.Document {
	d := &doc.Document{Schema: doc.Schema, Facts: &doc.FactsRef{Source: "generated", Digest: "sha256:00"}}
	for s := 0; s < services; s++ {
		id := fmt.Sprintf("f%d", s)
		d.Flows = append(d.Flows, &doc.Flow{ID: id, Src: "10.0.0.1", Dst: "10.9.0.1", Proto: "tcp", DPort: 1000 + s})
		tr := &doc.Trace{Flow: id, Disposition: doc.Delivered}
		re := &doc.Reach{Flow: id, E2E: &doc.E2E{Verdict: doc.Reachable}}
		for r := 0; r < routers; r++ {
			name := fmt.Sprintf("r%02d%s", r, strings.Repeat("x", 85))
			rule := fmt.Sprintf("-A FORWARD -m comment --comment \"%s\" -j ACCEPT", strings.Repeat("long-comment-", 75))
			tr.Hops = append(tr.Hops, &doc.Hop{Node: name, Kind: doc.HopRouter, In: "verylongif0.123", Out: "verylongif1.456", Steps: []*doc.Step{
				{Kind: doc.StepFilter, Table: "filter", Chain: "FORWARD", Index: r + 1, Text: rule, Action: "ACCEPT"}}})
			v := doc.Allowed
			if (r+s)%7 == 3 {
				v = doc.Blocked
			}
			re.Routers = append(re.Routers, &doc.RouterReach{Router: name, Verdict: v, Predicted: doc.Allowed, Agrees: v == doc.Allowed,
				Rule: &doc.LiveRule{Table: "filter", Chain: "FORWARD", Index: r + 1, Text: rule}})
		}
		d.Trace = append(d.Trace, tr)
		d.Reach = append(d.Reach, re)
	}
	return d
}

func TestReportStress(t *testing.T) {
	d := stressDoc(3, 30)
	path, pages := report(t, d, Options{Paper: "Letter"})
	validate(t, path)
	imgs := renderPages(t, path)
	if len(imgs) != pages {
		t.Fatalf("rendered %d pages, want %d", len(imgs), pages)
	}
	text := squash(pageText(t, path, 1, pages))
	for _, h := range d.Trace[0].Hops {
		if !strings.Contains(text, squash(h.Node)) || !strings.Contains(text, squash(h.Steps[0].Text)) {
			t.Fatalf("router %s or its rule is not present in full", h.Node)
		}
	}
	t.Logf("%d services × %d routers: %d pages", len(d.Flows), len(d.Trace[0].Hops), pages)
}

// TestReportManyServices: the summary spreads over pages (matrix header
// repeated, the disagreement box split between items) without losing any.
func TestReportManyServices(t *testing.T) {
	d := stressDoc(60, 3)
	path, pages := report(t, d, Options{})
	imgs := renderPages(t, path)
	if len(imgs) != pages {
		t.Fatalf("rendered %d pages, want %d", len(imgs), pages)
	}
	for i, img := range imgs {
		if inked(img) < 0.01 {
			t.Errorf("page %d is blank", i+1)
		}
	}
	v, err := newView(d)
	if err != nil {
		t.Fatal(err)
	}
	first := d.Report.Sections[1].Page
	if first < 3 {
		t.Fatalf("summary of 60 services fits on %d page(s)?", first-1)
	}
	sum := squash(pageText(t, path, 1, first-1))
	if len(v.disagree) < 20 {
		t.Fatalf("stress document has only %d disagreements", len(v.disagree))
	}
	for _, dg := range v.disagree {
		if !strings.Contains(sum, squash(dg.service+" at "+dg.router)) {
			t.Errorf("summary lacks the disagreement of %s at %s", dg.service, dg.router)
		}
	}
	for _, f := range d.Flows {
		if !strings.Contains(sum, squash(serviceLabel(f))) {
			t.Errorf("summary lacks service %s", serviceLabel(f))
		}
	}
}

// TestReportConcurrent: reports run in parallel (the pipeline does) and
// share the parsed fonts; each must come out identical.
func TestReportConcurrent(t *testing.T) {
	const n = 4
	sums := make([][32]byte, n)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			name := []string{"three", "unicode"}[i%2]
			b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
			if err == nil {
				var d *doc.Document
				if d, err = doc.Parse(b); err == nil {
					var path string
					if path, _, err = Report(context.Background(), d, Options{Dir: t.TempDir(), Now: fixedNow}); err == nil {
						b, err = os.ReadFile(path)
						sums[i] = sha256.Sum256(b)
					}
				}
			}
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i := 2; i < n; i++ {
		if sums[i] != sums[i-2] {
			t.Errorf("concurrent reports %d and %d of the same document differ", i-2, i)
		}
	}
}

func TestReportExpectation(t *testing.T) {
	d := loadFixture(t, "three")
	d.Flows[0].Expect, d.Flows[1].Expect, d.Flows[2].Expect = "allow", "allow", "deny"
	path, _ := report(t, d, Options{})
	secs := d.Report.Sections
	for i, want := range []string{"expected allow: PASS", "expected allow: FAIL", "expected deny: PASS"} {
		if text := squash(pageText(t, path, secs[i+1].Page, secs[i+1].Page)); !strings.Contains(text, squash(want)) {
			t.Errorf("%s page lacks %q", d.Flows[i].ID, want)
		}
	}
}
