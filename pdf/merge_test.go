package pdf

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu"

	"github.com/tsim-dev/tsim/internal/doc"
)

func mergeInputs(t *testing.T, names ...string) ([]MergeInput, []int) {
	t.Helper()
	var ins []MergeInput
	var pages []int
	for _, n := range names {
		d := loadFixture(t, n)
		_, p := report(t, d, Options{})
		in, err := MergeInputFor(d)
		if err != nil {
			t.Fatal(err)
		}
		ins = append(ins, in)
		pages = append(pages, p)
	}
	return ins, pages
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

func TestMerge(t *testing.T) {
	ins, pages := mergeInputs(t, "three", "long", "unicode")
	out := filepath.Join(t.TempDir(), "all.pdf")
	n, err := Merge(context.Background(), ins, out)
	if err != nil {
		t.Fatal(err)
	}
	total := 1 // contents page
	for _, p := range pages {
		total += p
	}
	if n != total {
		t.Fatalf("merged pages = %d, want contents + %v = %d", n, pages, total)
	}
	if err := api.ValidateFile(out, nil); err != nil {
		t.Fatalf("pdfcpu validation: %v", err)
	}
	imgs := renderPages(t, out)
	if len(imgs) != n {
		t.Fatalf("pdftoppm rendered %d pages, want %d", len(imgs), n)
	}
	for i, img := range imgs {
		if inked(img) < 0.01 {
			t.Errorf("merged page %d is blank", i+1)
		}
	}

	// Outline: Contents, then one bookmark per document with one child per
	// section, each pointing at the right page.
	bms := bookmarks(t, out)
	if len(bms) != 1+len(ins) || bms[0].Title != "Contents" || bms[0].PageFrom != 1 {
		t.Fatalf("top-level bookmarks = %+v", bms)
	}
	start := 2
	for i, in := range ins {
		bm := bms[i+1]
		if bm.Title != in.Title || bm.PageFrom != start {
			t.Errorf("document bookmark %d = %q page %d, want %q page %d", i, bm.Title, bm.PageFrom, in.Title, start)
		}
		if len(bm.Kids) != len(in.Sections) {
			t.Fatalf("document %d has %d child bookmarks, want %d", i, len(bm.Kids), len(in.Sections))
		}
		for j, k := range bm.Kids {
			want := start + in.Sections[j].Page - 1
			if k.Title != in.Sections[j].Title || k.PageFrom != want {
				t.Errorf("bookmark %q page %d, want %q page %d", k.Title, k.PageFrom, in.Sections[j].Title, want)
			}
			// The bookmarked page shows that service (or the summary).
			text := squash(pageText(t, out, want, want))
			title := strings.SplitN(k.Title, ": ", 2)[0]
			if title == "Summary" {
				title = "NetworkReachabilityReport"
			}
			if !strings.Contains(text, squash(title)) {
				t.Errorf("page %d (bookmark %q) does not show %q", want, k.Title, title)
			}
		}
		start += pages[i]
	}
	// The contents page lists every document with its first page.
	contents := pageText(t, out, 1, 1)
	for _, in := range ins {
		if !strings.Contains(squash(contents), squash(in.Title)) {
			t.Errorf("contents page lacks %q", in.Title)
		}
	}

	// Deterministic: merging again gives the same bytes.
	out2 := filepath.Join(t.TempDir(), "again.pdf")
	if _, err := Merge(context.Background(), ins, out2); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(out)
	b, _ := os.ReadFile(out2)
	if !bytes.Equal(a, b) {
		t.Error("merging the same reports twice gave different bytes")
	}
}

func TestMergeSingleHasNoContentsPage(t *testing.T) {
	ins, pages := mergeInputs(t, "unicode")
	out := filepath.Join(t.TempDir(), "one.pdf")
	n, err := Merge(context.Background(), ins, out)
	if err != nil {
		t.Fatal(err)
	}
	if n != pages[0] {
		t.Fatalf("pages = %d, want %d (no contents page for one document)", n, pages[0])
	}
	bms := bookmarks(t, out)
	if len(bms) != 1 || bms[0].Title != "10.20.1.5 → 10.40.2.9" || len(bms[0].Kids) != 3 {
		t.Fatalf("bookmarks = %+v", bms)
	}
	if err := api.ValidateFile(out, nil); err != nil {
		t.Fatal(err)
	}
}

func TestMergeErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pdf")
	os.WriteFile(garbage, []byte("not a pdf"), 0o644)
	ins, _ := mergeInputs(t, "three")
	badSection := ins[0]
	badSection.Sections = append([]doc.Section{}, badSection.Sections...)
	badSection.Sections = append(badSection.Sections, doc.Section{Title: "ghost", Page: 99})
	tests := []struct {
		name string
		in   []MergeInput
		want string
	}{
		{"none", nil, "no documents"},
		{"missing file", []MergeInput{{PDF: filepath.Join(dir, "missing.pdf")}}, "no such file"},
		{"garbage", []MergeInput{{PDF: garbage}}, "not a valid PDF"},
		{"section past the end", []MergeInput{badSection}, `section "ghost" on page 99`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, tc.name+"-out.pdf")
			_, err := Merge(context.Background(), tc.in, out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("failed merge left an output file")
			}
		})
	}
	if _, err := MergeInputFor(loadFixture(t, "three")); err == nil || !strings.Contains(err.Error(), "tsim report") {
		t.Errorf("MergeInputFor without a report: %v", err)
	}
}

func TestScanRefs(t *testing.T) {
	src := []byte("<</A 1 0 R/B(12 0 R in a string \\) 13 0 R)/C[4 0 R 5 0 R]/D<0a0b>/E 10 20/F 6 0 R>>\nstream\n7 0 R\nendstream")
	refs, cut := scanRefs(src, true)
	var got []string
	for _, r := range refs {
		got = append(got, string(src[r[0]:r[2]]))
	}
	if strings.Join(got, ",") != "1 0 R,4 0 R,5 0 R,6 0 R" {
		t.Errorf("refs = %q", got)
	}
	if !bytes.HasPrefix(src[cut:], []byte("stream\n")) {
		t.Errorf("stream cut at %q", src[cut:])
	}
}

// TestMergeManyDocuments: a nightly batch of 45 documents needs more than
// one contents page; every bookmark still lands on its document.
func TestMergeManyDocuments(t *testing.T) {
	one, pages := mergeInputs(t, "unicode")
	var ins []MergeInput
	for i := 0; i < 45; i++ {
		in := one[0]
		in.Title = fmt.Sprintf("run %02d: %s", i+1, in.Title)
		ins = append(ins, in)
	}
	out := filepath.Join(t.TempDir(), "batch.pdf")
	n, err := Merge(context.Background(), ins, out)
	if err != nil {
		t.Fatal(err)
	}
	contents := n - 45*pages[0]
	if contents < 2 {
		t.Fatalf("%d contents page(s) for 45 documents with %d sections each", contents, len(one[0].Sections))
	}
	bms := bookmarks(t, out)
	if len(bms) != 46 {
		t.Fatalf("%d top-level bookmarks, want 46", len(bms))
	}
	for i, bm := range bms[1:] {
		want := contents + 1 + i*pages[0]
		if bm.PageFrom != want {
			t.Errorf("%q on page %d, want %d", bm.Title, bm.PageFrom, want)
		}
	}
	// The contents pages give the same page numbers.
	text := pageText(t, out, 1, contents)
	last := fmt.Sprintf("run 45: %s", one[0].Title)
	if !strings.Contains(text, last) || !strings.Contains(text, fmt.Sprint(contents+1+44*pages[0])) {
		t.Errorf("contents lack %q on page %d", last, contents+1+44*pages[0])
	}
	if err := api.ValidateFile(out, nil); err != nil {
		t.Fatal(err)
	}
}
