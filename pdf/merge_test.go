package pdf

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/pdfcheck"
)

func fixtures(t testing.TB, names ...string) []*doc.Document {
	t.Helper()
	var ds []*doc.Document
	for _, n := range names {
		ds = append(ds, loadFixture(t, n))
	}
	return ds
}

// merge merges docs at the fixed test date into a temporary file.
func merge(t testing.TB, docs []*doc.Document) (string, Rendered) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "merged.pdf")
	res, err := Merge(context.Background(), docs, out, Options{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	return out, res
}

// singlePages is the page count of each document's own report.
func singlePages(t *testing.T, names ...string) []int {
	t.Helper()
	var pages []int
	for _, n := range names {
		_, p := report(t, loadFixture(t, n), Options{})
		pages = append(pages, p)
	}
	return pages
}

// bookmarks reads the outline of a PDF with pdfcpu.
func bookmarks(t *testing.T, path string) []pdfcpu.Bookmark {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bms, err := api.Bookmarks(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	return bms
}

// validate checks a PDF with pdfcpu (strict mode).
func validate(t testing.TB, path string) {
	t.Helper()
	pdfcheck.Validate(t, path)
}

// layoutText is pdftotext -layout of one page: lines keep their
// right-aligned page numbers.
func layoutText(t *testing.T, pdfPath string, page int) string {
	t.Helper()
	needTool(t, "pdftotext")
	out, err := exec.Command("pdftotext", "-layout", "-f", fmt.Sprint(page), "-l", fmt.Sprint(page), "-enc", "UTF-8", pdfPath, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext %s: %v", pdfPath, err)
	}
	return string(out)
}

// contentsNumbers reads the contents pages as printed: for each line that
// starts with one of titles (after indentation) and ends in a number, that
// number, in page order. pdftotext -layout keeps a right-aligned number on
// the line of the title it belongs to.
func contentsNumbers(t *testing.T, pdfPath string, pages int) [][2]string {
	t.Helper()
	re := regexp.MustCompile(`^\s*(\S.*?)\s{2,}(\d+)\s*$`)
	var out [][2]string
	for p := 1; p <= pages; p++ {
		for _, l := range strings.Split(layoutText(t, pdfPath, p), "\n") {
			if m := re.FindStringSubmatch(l); m != nil && !strings.HasPrefix(m[1], "generated ") {
				out = append(out, [2]string{m[1], m[2]})
			}
		}
	}
	return out
}

// partMarks is, per part of v (Summary, then each service), text only the
// first page of that part shows: the report title, or the line under a
// service's heading, which names its flow.
func partMarks(v *view) []string {
	marks := []string{"Network Reachability Report"}
	for _, s := range v.services {
		marks = append(marks, fmt.Sprintf("%s → %s · %s · flow %s", s.src, s.dst, protoDesc(s.flow), s.flow.ID))
	}
	return marks
}

// TestMergeContentsPageNumbers: the contents page lists every document and
// part with the page it really starts on — read back from the PDF with
// pdftotext, page by page — and every footer counts the whole file.
func TestMergeContentsPageNumbers(t *testing.T) {
	names := []string{"three", "long", "unicode"}
	docs := fixtures(t, names...)
	out, res := merge(t, docs)
	validate(t, out)
	single := singlePages(t, names...)
	total := 1 // one contents page
	for _, p := range single {
		total += p
	}
	if res.Pages != total {
		t.Fatalf("merged pages = %d, want contents + %v = %d", res.Pages, single, total)
	}

	// What the contents page says, in order: per document its title line,
	// then Summary and one line per service.
	got := contentsNumbers(t, out, 1)
	var want [][2]string
	for i, d := range docs {
		v, _ := newView(d)
		want = append(want, [2]string{fmt.Sprintf("%d.  %s → %s", i+1, v.src, v.dst), fmt.Sprint(res.Sections[i][0].Page)})
		for _, s := range res.Sections[i] {
			want = append(want, [2]string{s.Title, fmt.Sprint(s.Page)})
		}
	}
	norm := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	if len(got) != len(want) {
		t.Fatalf("contents lines with a page number:\n%q\nwant\n%q", got, want)
	}
	start := 2
	for i, w := range want {
		if norm(got[i][0]) != norm(w[0]) || got[i][1] != w[1] {
			t.Errorf("contents line %d = %q page %s, want %q page %s", i, got[i][0], got[i][1], w[0], w[1])
		}
	}

	// Each listed page is where that part starts: its heading is on that
	// page and not on the one before.
	for i, d := range docs {
		secs := res.Sections[i]
		if secs[0].Page != start {
			t.Errorf("document %d starts on page %d, want %d", i+1, secs[0].Page, start)
		}
		v, _ := newView(d)
		marks := partMarks(v)
		for k, s := range secs {
			head := squash(marks[k])
			if !strings.Contains(squash(pageText(t, out, s.Page, s.Page)), head) {
				t.Errorf("page %d (contents: %q) does not show %q", s.Page, s.Title, marks[k])
			}
			if s.Page-1 >= start && strings.Contains(squash(pageText(t, out, s.Page-1, s.Page-1)), head) {
				t.Errorf("%q already shows on page %d, the contents say %d", s.Title, s.Page-1, s.Page)
			}
		}
		start += single[i]
	}

	// One page numbering: page N's footer says "page N of total".
	for p := 1; p <= res.Pages; p++ {
		if text := pageText(t, out, p, p); !strings.Contains(text, fmt.Sprintf("page %d of %d", p, res.Pages)) {
			t.Errorf("page %d footer lacks %q", p, fmt.Sprintf("page %d of %d", p, res.Pages))
		}
	}
	if !strings.Contains(pageText(t, out, 1, 1), fmt.Sprintf("3 documents · %d pages", res.Pages)) {
		t.Error("contents page does not give the document and page counts")
	}

	// Every page renders with content.
	imgs := renderPages(t, out)
	if len(imgs) != res.Pages {
		t.Fatalf("pdftoppm rendered %d pages, want %d", len(imgs), res.Pages)
	}
	for i, img := range imgs {
		if inked(img) < 0.01 {
			t.Errorf("merged page %d is blank", i+1)
		}
	}

	// Outline: Contents, then one bookmark per document with one child per
	// part, each on the page the contents give.
	bms := bookmarks(t, out)
	if len(bms) != 1+len(docs) || bms[0].Title != "Contents" || bms[0].PageFrom != 1 {
		t.Fatalf("top-level bookmarks = %+v", bms)
	}
	for i, d := range docs {
		v, _ := newView(d)
		bm := bms[i+1]
		if bm.Title != v.src+" → "+v.dst || bm.PageFrom != res.Sections[i][0].Page {
			t.Errorf("document bookmark %d = %q page %d", i+1, bm.Title, bm.PageFrom)
		}
		if len(bm.Kids) != len(res.Sections[i]) {
			t.Fatalf("document %d has %d child bookmarks, want %d", i+1, len(bm.Kids), len(res.Sections[i]))
		}
		for j, k := range bm.Kids {
			if s := res.Sections[i][j]; k.Title != s.Title || k.PageFrom != s.Page {
				t.Errorf("bookmark %q page %d, want %q page %d", k.Title, k.PageFrom, s.Title, s.Page)
			}
		}
	}
}

// TestMergeDeterministic: the same documents and date give the same bytes;
// another date gives other bytes.
func TestMergeDeterministic(t *testing.T) {
	a, _ := merge(t, fixtures(t, "three", "unicode"))
	b, _ := merge(t, fixtures(t, "three", "unicode"))
	ba, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ba, bb) {
		t.Fatal("merging the same documents twice gave different bytes")
	}
	// The exact bytes are pinned like the single reports' (-update after
	// looking at the pages).
	sum := sha256.Sum256(ba)
	got := hex.EncodeToString(sum[:]) + "  three+unicode merged\n"
	golden := filepath.Join("testdata", "golden", "merged.sha256")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if want, err := os.ReadFile(golden); err != nil || string(want) != got {
		t.Errorf("merged PDF differs from golden (%v):\n got  %s want %s", err, got, want)
	}
	c := filepath.Join(t.TempDir(), "c.pdf")
	if _, err := Merge(context.Background(), fixtures(t, "three", "unicode"), c, Options{Now: fixedNow.Add(1e9)}); err != nil {
		t.Fatal(err)
	}
	if bc, _ := os.ReadFile(c); bytes.Equal(ba, bc) {
		t.Fatal("another date gave the same bytes")
	}
}

// TestMergeNeedsNoPDF: a document's report section may name a PDF that is
// not there (written on another machine) or be missing: merge renders from
// the document.
func TestMergeNeedsNoPDF(t *testing.T) {
	elsewhere := loadFixture(t, "three")
	elsewhere.Report = &doc.Report{PDF: "out/tsim-10.1.10.5-10.3.20.10-0badc0de.pdf", Pages: 4}
	out := filepath.Join(t.TempDir(), "m.pdf")
	var calls []int
	res, err := Merge(context.Background(), []*doc.Document{elsewhere, loadFixture(t, "long")}, out,
		Options{Now: fixedNow, Progress: func(done, total int) { calls = append(calls, done, total) }})
	if err != nil {
		t.Fatal(err)
	}
	validate(t, out)
	if fmt.Sprint(calls) != "[1 2 2 2]" {
		t.Errorf("progress calls (done, total) = %v, want one per document", calls)
	}
	if len(res.Sections) != 2 || res.Sections[1][0].Page <= res.Sections[0][0].Page {
		t.Fatalf("sections = %+v", res.Sections)
	}
}

func TestMergeSingleHasNoContentsPage(t *testing.T) {
	out, res := merge(t, fixtures(t, "unicode"))
	if want := singlePages(t, "unicode")[0]; res.Pages != want {
		t.Fatalf("pages = %d, want %d (no contents page for one document)", res.Pages, want)
	}
	bms := bookmarks(t, out)
	if len(bms) != 1 || bms[0].Title != "10.20.1.5 → 10.40.2.9" || len(bms[0].Kids) != 3 {
		t.Fatalf("bookmarks = %+v", bms)
	}
	validate(t, out)
}

func TestMergeErrors(t *testing.T) {
	noTrace := loadFixture(t, "three")
	noTrace.Trace = nil
	tests := []struct {
		name string
		docs []*doc.Document
		opts Options
		want string
	}{
		{"none", nil, Options{}, "no documents"},
		{"no trace", []*doc.Document{loadFixture(t, "long"), noTrace}, Options{}, "document 2: "},
		{"bad paper", fixtures(t, "long"), Options{Paper: "A3"}, `unknown paper size "A3"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.pdf")
			_, err := Merge(context.Background(), tc.docs, out, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("failed merge left an output file")
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := filepath.Join(t.TempDir(), "cancelled.pdf")
	if _, err := Merge(ctx, fixtures(t, "three", "long"), out, Options{Now: fixedNow}); err != context.Canceled {
		t.Fatalf("cancelled merge: err = %v", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("cancelled merge left an output file")
	}
}

// TestMergeManyDocuments: a nightly batch of 45 documents needs more than
// one contents page; the contents, the outline and the pages still agree.
func TestMergeManyDocuments(t *testing.T) {
	var docs []*doc.Document
	for i := 0; i < 45; i++ {
		docs = append(docs, loadFixture(t, "unicode"))
	}
	out, res := merge(t, docs)
	validate(t, out)
	per := singlePages(t, "unicode")[0]
	contents := res.Pages - 45*per
	if contents < 2 {
		t.Fatalf("%d contents page(s) for 45 documents of 3 parts each", contents)
	}
	bms := bookmarks(t, out)
	if len(bms) != 46 {
		t.Fatalf("%d top-level bookmarks, want 46", len(bms))
	}
	for i, bm := range bms[1:] {
		if want := contents + 1 + i*per; bm.PageFrom != want || res.Sections[i][0].Page != want {
			t.Errorf("document %d on page %d (outline) / %d, want %d", i+1, bm.PageFrom, res.Sections[i][0].Page, want)
		}
	}
	// The contents pages give the same numbers, the last entry included.
	got := contentsNumbers(t, out, contents)
	last := got[len(got)-1]
	lastSec := res.Sections[44][len(res.Sections[44])-1]
	if last[1] != strconv.Itoa(lastSec.Page) {
		t.Errorf("last contents line %q → %s, want page %d", last[0], last[1], lastSec.Page)
	}
	if len(got) != 45*4 {
		t.Errorf("%d contents lines with a number, want %d", len(got), 45*4)
	}
	// Page 1's footer counts the whole file.
	if !strings.Contains(pageText(t, out, 1, 1), fmt.Sprintf("page 1 of %d", res.Pages)) {
		t.Error("contents footer does not count the whole file")
	}
}

// TestMergeLarge validates a large merged file (100 documents × 3 services,
// as BenchmarkMerge100 renders).
func TestMergeLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("large merge")
	}
	docs := make([]*doc.Document, 100)
	for i := range docs {
		docs[i] = loadFixture(t, "three")
	}
	out, res := merge(t, docs)
	validate(t, out)
	if n := len(bookmarks(t, out)); n != 101 {
		t.Errorf("%d top-level bookmarks, want 101", n)
	}
	st, _ := os.Stat(out)
	t.Logf("100 documents: %d pages, %d KB", res.Pages, st.Size()>>10)
}

// BenchmarkMerge100 merges 100 documents of 3 services each (target: under
// 1.5 s and 150 MB for `tsim merge`; scripts/bench-merge.sh times the
// process). It reports the CPU time and the bytes allocated per merge.
func BenchmarkMerge100(b *testing.B) {
	docs := make([]*doc.Document, 100)
	for i := range docs {
		docs[i] = loadFixture(b, "three")
	}
	out := filepath.Join(b.TempDir(), "merged.pdf")
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := cpuTime()
	var pages int
	for b.Loop() {
		res, err := Merge(context.Background(), docs, out, Options{Now: fixedNow})
		if err != nil {
			b.Fatal(err)
		}
		pages = res.Pages
	}
	runtime.ReadMemStats(&ms1)
	cpuMS := float64((cpuTime() - cpu0).Microseconds()) / 1000 / float64(b.N)
	st, _ := os.Stat(out)
	b.ReportMetric(cpuMS, "cpu-ms/op")
	b.ReportMetric(cpuMS/1500, "cpu-ratio-to-1.5s")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(b.N)/(1<<20), "alloc-MB/op")
	b.ReportMetric(float64(pages), "pages")
	b.ReportMetric(float64(st.Size())/(1<<10), "KB/pdf")
}
