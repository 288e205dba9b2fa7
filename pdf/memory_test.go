package pdf

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/tsim-dev/tsim/internal/doc"
)

// mergeBytesPerPage bounds how much the heap grows per page while a
// merged report is drawn: fpdf keeps every page's content until it writes
// the file (~15 kB of operators per page of a suite, 20 kB with its
// buffers' slack for this fixture), and the renderer must keep nothing
// per document beyond that: a suite of 10,000 flows draws ~40,000 pages.
const mergeBytesPerPage = 32 << 10

// TestMergeMemoryPerPage draws one merged report of many copies of a
// document with live results and measures the heap after the 10th and
// the 40th document: the growth per page must stay what fpdf's page
// buffers need.
func TestMergeMemoryPerPage(t *testing.T) {
	const n = 40
	var docs []*doc.Document
	for range n {
		docs = append(docs, loadFixture(t, "three"))
	}
	_, per := report(t, loadFixture(t, "three"), Options{})
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	var at10, at40 uint64
	progress := func(done, total int) {
		switch done {
		case 10:
			at10 = heap()
		case n:
			at40 = heap()
		}
	}
	out := filepath.Join(t.TempDir(), "merged.pdf")
	res, err := Merge(context.Background(), docs, out, Options{Now: fixedNow, Progress: progress})
	if err != nil {
		t.Fatal(err)
	}
	if res.Pages < n*per {
		t.Fatalf("%d pages for %d documents of %d pages", res.Pages, n, per)
	}
	pages := uint64(30 * per)
	grow := int64(at40) - int64(at10)
	perPage := grow / int64(pages)
	t.Logf("%d documents of %d pages: the heap grew %d kB over the last %d pages, %d B per page", n, per, grow>>10, pages, perPage)
	if perPage > mergeBytesPerPage {
		t.Errorf("drawing keeps %d B per page, more than %d: something is kept per document besides fpdf's pages", perPage, mergeBytesPerPage)
	}
}
