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

	"github.com/tsim-dev/tsim/internal/doc"
)

// buildPDF writes objects 1..n (their text after "N 0 obj") with a classic
// xref table and a trailer naming root as the catalog.
func buildPDF(objs []string, root int) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	offs := make([]int, len(objs))
	for i, o := range objs {
		offs[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	x := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<</Size %d /Root %d 0 R>>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, root, x)
	return b.Bytes()
}

// handMade is a PDF unlike fpdf's: a nested page tree whose inner node
// holds the MediaBox (Letter) and Resources, a page overriding the
// MediaBox (A5), a link annotation pointing at another page, a stream whose
// length is an indirect object, and a string that looks like a reference.
func handMade(label string) []byte {
	content := func(text string) string {
		s := fmt.Sprintf("BT /F1 14 Tf 72 500 Td (%s %s) Tj ET", label, text)
		return fmt.Sprintf("<</Length %d>>\nstream\n%s\nendstream", len(s), s)
	}
	c3 := fmt.Sprintf("BT /F1 14 Tf 72 300 Td (%s page three 9 0 R) Tj ET", label)
	return buildPDF([]string{
		"<</Type /Catalog /Pages 2 0 R>>",               // 1
		"<</Type /Pages /Kids [3 0 R 4 0 R] /Count 3>>", // 2
		"<</Type /Pages /Parent 2 0 R /Kids [5 0 R 6 0 R] /Count 2 /MediaBox [0 0 612 792] /Resources 9 0 R>>",                              // 3
		"<</Type /Page /Parent 2 0 R /MediaBox [0 0 420 595] /Resources 9 0 R /Contents 10 0 R>>",                                           // 4
		"<</Type /Page /Parent 3 0 R /Contents 7 0 R /Annots [<</Type /Annot /Subtype /Link /Rect [72 480 300 520] /Dest [6 0 R /Fit]>>]>>", // 5
		"<</Type /Page /Parent 3 0 R /Contents 8 0 R>>",                                                                                     // 6
		content("page one (links to two)"), // 7
		content("page two"),                // 8
		"<</Font <</F1 <</Type /Font /Subtype /Type1 /BaseFont /Helvetica>>>>>>", // 9
		fmt.Sprintf("<</Length 11 0 R>>\nstream\n%s\nendstream", c3),             // 10
		fmt.Sprint(len(c3)), // 11
	}, 1)
}

func TestMergeForeignPageTree(t *testing.T) {
	dir := t.TempDir()
	var ins []MergeInput
	for _, l := range []string{"alpha", "beta"} {
		p := filepath.Join(dir, l+".pdf")
		if err := os.WriteFile(p, handMade(l), 0o644); err != nil {
			t.Fatal(err)
		}
		ins = append(ins, MergeInput{PDF: p, Title: l + " (doc)", Sections: []doc.Section{{Title: "two", Page: 2}}})
	}
	out := filepath.Join(dir, "out.pdf")
	n, err := Merge(context.Background(), ins, out)
	if err != nil {
		t.Fatal(err)
	}
	if n != 7 { // contents + 2 × 3
		t.Fatalf("pages = %d, want 7", n)
	}
	if err := api.ValidateFile(out, nil); err != nil {
		t.Fatalf("pdfcpu validation: %v", err)
	}
	dims, err := api.PageDimsFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// Pages keep their inherited (Letter) or own (A5) size.
	want := []float64{792, 792, 792, 595, 792, 792, 595}
	for i, d := range dims {
		if d.Height != want[i] {
			t.Errorf("page %d is %.0f pt high, want %.0f", i+1, d.Height, want[i])
		}
	}
	for i, w := range []string{"", "alpha page one", "alpha page two", "alpha page three 9 0 R", "beta page one", "beta page two", "beta page three 9 0 R"} {
		if i == 0 {
			continue
		}
		if got := squash(pageText(t, out, i+1, i+1)); !strings.Contains(got, squash(w)) {
			t.Errorf("page %d text %q lacks %q", i+1, got, w)
		}
	}
	bms := bookmarks(t, out)
	if len(bms) != 3 || bms[2].Title != "beta (doc)" || bms[2].PageFrom != 5 || len(bms[2].Kids) != 1 || bms[2].Kids[0].PageFrom != 6 {
		t.Errorf("bookmarks = %+v", bms)
	}
	// The link on alpha's first page still points at alpha's second page.
	b, _ := os.ReadFile(out)
	src, err := openSource(b)
	if err != nil {
		t.Fatal(err)
	}
	first := src.objs[src.leaves[1].num].dict
	second := src.leaves[2].num
	if !bytes.Contains(first, []byte(fmt.Sprintf("/Dest [%d 0 R /Fit]", second))) {
		t.Errorf("link of page 2 does not point at page 3 (object %d): %s", second, first)
	}

	// A merged file merges again.
	again := filepath.Join(dir, "again.pdf")
	if n, err := Merge(context.Background(), []MergeInput{{PDF: out, Title: "all"}}, again); err != nil || n != 7 {
		t.Fatalf("re-merge: %d pages, %v", n, err)
	}
	if err := api.ValidateFile(again, nil); err != nil {
		t.Fatalf("re-merged file: %v", err)
	}
}

func TestReadPDFErrors(t *testing.T) {
	good := handMade("x")
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"not a pdf", []byte("hello"), "no %PDF-1.x header"},
		{"xref stream", []byte("%PDF-1.7\n1 0 obj\n<<>>\nendobj\nstartxref\n9\n%%EOF\n"), "classic xref table"},
		{"offset off", bytes.Replace(good, []byte("0000000009 00000 n"), []byte("0000000011 00000 n"), 1), "not where the xref table says"},
		{"no root", bytes.Replace(good, []byte("/Root 1 0 R"), []byte("/Rot 1 0 R"), 1), "names no catalog"},
		{"page tree loop", bytes.Replace(good, []byte("/Kids [5 0 R 6 0 R]"), []byte("/Kids [2 0 R 6 0 R]"), 1), "broken page tree"},
		{"missing object", bytes.Replace(good, []byte("/Contents 8 0 R"), []byte("/Contents 80 0 R"), 1), "missing object 80"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := openSource(tc.b)
			if err == nil {
				_, err = (&pdfWriter{}).copyPages(s, 1, 2)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestDictEntries(t *testing.T) {
	ents, err := dictEntries([]byte("\n<</A 1 0 R/B(x (y) \\) z)/C[4 0 R [5] <</D 6>>]/E<0a0b>/F -1.5/G/Name/H true>>\nstream"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.key+"="+string(e.val))
	}
	want := "A=1 0 R|B=(x (y) \\) z)|C=[4 0 R [5] <</D 6>>]|E=<0a0b>|F=-1.5|G=/Name|H=true"
	if strings.Join(got, "|") != want {
		t.Errorf("entries\n got %s\nwant %s", strings.Join(got, "|"), want)
	}
}

func TestPDFString(t *testing.T) {
	got := pdfString("a(→)😀")
	want := []byte("(\xfe\xff\x00a\x00\\(!\x92\x00\\)\xd8\x3d\xde\x00)")
	if !bytes.Equal(got, want) {
		t.Errorf("pdfString = %q, want %q", got, want)
	}
}

// FuzzReadPDF: arbitrary bytes give an error or a copy, never a panic or
// a hang.
func FuzzReadPDF(f *testing.F) {
	f.Add(handMade("f"))
	f.Add([]byte("%PDF-1.7\n1 0 obj\n<</Type/Catalog/Pages 2 0 R>>\nendobj\n2 0 obj\n<</Type/Pages/Kids[]/Count 0>>\nendobj\nxref\n0 3\n0000000000 65535 f \n0000000009 00000 n \n0000000058 00000 n \ntrailer\n<</Root 1 0 R/Size 3>>\nstartxref\n104\n%%EOF\n"))
	f.Add([]byte("%PDF-1.4\nxref\n0 1\ntrailer\nstartxref\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := openSource(b)
		if err != nil {
			return
		}
		w := &pdfWriter{}
		c, tr := w.reserve(), w.reserve()
		if _, err := w.copyPages(s, c, tr); err == nil {
			w.bytes(s.version, c, tr)
		}
	})
}
