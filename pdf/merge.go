package pdf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/fsx"
)

// MergeInput is one report PDF to merge.
type MergeInput struct {
	PDF      string        // path of the report PDF
	Title    string        // bookmark and contents title of the document
	Summary  string        // one line for the contents page (may be empty)
	Sections []doc.Section // the report's sections, pages relative to PDF
}

// MergeInputFor describes the report recorded in d (by Report).
func MergeInputFor(d *doc.Document) (MergeInput, error) {
	if d == nil || d.Report == nil || d.Report.PDF == "" {
		return MergeInput{}, doc.Need("report", "tsim report -o DIR")
	}
	in := MergeInput{PDF: d.Report.PDF, Sections: d.Report.Sections, Title: filepath.Base(d.Report.PDF)}
	if v, err := newView(d); err == nil {
		in.Title = v.src + " → " + v.dst
		good := 0
		for _, s := range v.services {
			if e2eGood(s.e2e) {
				good++
			}
		}
		in.Summary = fmt.Sprintf("%d service(s), %d reachable", len(v.services), good)
		if v.simOnly {
			in.Summary += " (simulation only)"
		} else if len(v.disagree) > 0 {
			in.Summary += fmt.Sprintf(", %d disagreement(s)", len(v.disagree))
		}
	}
	return in, nil
}

// Merge concatenates the input PDFs into out with an outline (a bookmark
// per document with one child per section) and, when there is more than one
// document, a contents page first. It returns the page count of out. The
// output is deterministic: its dates are those of the first input and its
// file identifier is a hash of its content.
func Merge(ctx context.Context, inputs []MergeInput, out string) (int, error) {
	if len(inputs) == 0 {
		return 0, errors.New("merge: no documents to merge")
	}
	conf := model.NewDefaultConfiguration()
	conf.ValidationMode = model.ValidationRelaxed
	conf.Offline = true
	conf.CreateBookmarks = false // the outline is built below, once
	// Plain objects and a classic xref table keep the info dictionary and
	// trailer in clear text, so normalizeOutput can fix dates and ID.
	conf.WriteObjectStream = false
	conf.WriteXRefStream = false

	ctxs := make([]*model.Context, len(inputs))
	for i, in := range inputs {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		b, err := os.ReadFile(in.PDF)
		if err != nil {
			return 0, fmt.Errorf("merge: %w", err)
		}
		c, err := api.ReadAndValidate(bytes.NewReader(b), conf)
		if err != nil {
			return 0, fmt.Errorf("merge: %s: not a valid PDF: %w", in.PDF, err)
		}
		if err := c.EnsurePageCount(); err != nil {
			return 0, fmt.Errorf("merge: %s: %w", in.PDF, err)
		}
		// The report's own outline is replaced by the merged one.
		if _, err := pdfcpu.RemoveBookmarks(c); err != nil {
			return 0, fmt.Errorf("merge: %s: %w", in.PDF, err)
		}
		ctxs[i] = c
	}
	date := ctxs[0].XRefTable.CreationDate
	now, ok := parsePDFDate(date)
	if !ok {
		now = time.Unix(0, 0).UTC()
	}

	// Page where each document starts, after the contents pages.
	var contents []byte
	offset := 0
	if len(inputs) > 1 {
		var err error
		for guess := 1; ; guess++ {
			contents, offset, err = contentsPDF(inputs, ctxs, guess, now)
			if err != nil {
				return 0, err
			}
			if offset == guess {
				break
			}
		}
	}
	var dest *model.Context
	var bms []pdfcpu.Bookmark
	if contents != nil {
		c, err := api.ReadAndValidate(bytes.NewReader(contents), conf)
		if err != nil {
			return 0, fmt.Errorf("merge: contents page: %w", err)
		}
		dest = c
		bms = append(bms, pdfcpu.Bookmark{Title: "Contents", PageFrom: 1})
	}
	start := offset + 1
	for i, in := range inputs {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if dest == nil {
			dest = ctxs[i]
			dest.EnsureVersionForWriting()
		} else if err := pdfcpu.MergeXRefTables(filepath.Base(in.PDF), ctxs[i], dest, false, false); err != nil {
			return 0, fmt.Errorf("merge: %s: %w", in.PDF, err)
		}
		bm := pdfcpu.Bookmark{Title: in.Title, PageFrom: start, Bold: true}
		for _, s := range in.Sections {
			if s.Page < 1 || s.Page > ctxs[i].PageCount {
				return 0, fmt.Errorf("merge: %s: section %q on page %d of %d", in.PDF, s.Title, s.Page, ctxs[i].PageCount)
			}
			bm.Kids = append(bm.Kids, pdfcpu.Bookmark{Title: s.Title, PageFrom: start + s.Page - 1})
		}
		bms = append(bms, bm)
		start += ctxs[i].PageCount
	}
	if err := pdfcpu.AddBookmarks(dest, bms, true); err != nil {
		return 0, fmt.Errorf("merge: outline: %w", err)
	}
	var buf bytes.Buffer
	if err := api.WriteContext(dest, &buf); err != nil {
		return 0, fmt.Errorf("merge: write: %w", err)
	}
	b, err := canonicalPDF(buf.Bytes(), types.DateString(now))
	if err != nil {
		return 0, err
	}
	if err := fsx.WriteFileAtomic(out, b, 0o644); err != nil {
		return 0, err
	}
	return start - 1, nil
}

// parsePDFDate reads a "D:YYYYMMDDHHmmSS…" date.
func parsePDFDate(s string) (time.Time, bool) {
	s = strings.TrimPrefix(s, "D:")
	if len(s) < 14 {
		return time.Time{}, false
	}
	t, err := time.Parse("20060102150405", s[:14])
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// contentsPDF renders the contents page(s) assuming they take guess pages;
// it returns the PDF and the number of pages it really took.
func contentsPDF(inputs []MergeInput, ctxs []*model.Context, guess int, now time.Time) ([]byte, int, error) {
	f, c, err := newPDF(paperOf(ctxs[0]), now)
	if err != nil {
		return nil, 0, err
	}
	r := &renderer{f: f, c: c, now: now}
	r.pw, r.ph = f.GetPageSize()
	r.head = "contents"
	f.SetTitle("tsim merged reachability report", true)
	f.SetFooterFunc(r.footer)
	r.addPage()
	r.y += 4
	r.c.textCenter(r.pw/2, r.y, "Merged Reachability Report", fTitle)
	r.y += fTitle.lineH() + 1
	total := guess
	for _, x := range ctxs {
		total += x.PageCount
	}
	r.textColor(colMuted)
	r.c.textCenter(r.pw/2, r.y, fmt.Sprintf("%d documents · %d pages · %s", len(inputs), total, now.Format("2006-01-02 15:04 UTC")), face{famSans, "", 11})
	r.textColor(colText)
	r.y += 12
	r.heading("Contents")
	page := guess + 1
	numW := 14.0
	textW := r.contentW() - numW - 10
	for i, in := range inputs {
		tl := r.c.wrap(fmt.Sprintf("%d.  %s", i+1, in.Title), textW, fBodyB)
		h := float64(len(tl)) * fBodyB.lineH()
		var sl []string
		if in.Summary != "" {
			sl = r.c.wrap(in.Summary, textW-6, fSmall)
			h += float64(len(sl)) * fSmall.lineH()
		}
		r.ensure(h + 2)
		r.c.textRight(r.pw-margin, r.y, fmt.Sprint(page), fBodyB)
		r.y = r.c.lines(margin, r.y, tl, fBodyB)
		r.textColor(colMuted)
		r.y = r.c.lines(margin+6, r.y, sl, fSmall)
		r.textColor(colText)
		r.y += 0.8
		for _, s := range in.Sections {
			ls := r.c.wrap(s.Title, textW-6, fSmall)
			r.ensure(float64(len(ls)) * fSmall.lineH())
			r.textColor(colMuted)
			r.c.textRight(r.pw-margin, r.y, fmt.Sprint(page+s.Page-1), fSmall)
			r.textColor(colText)
			r.y = r.c.lines(margin+6, r.y, ls, fSmall)
		}
		r.y += 2.5
		r.draw(colRule)
		r.f.SetLineWidth(0.15)
		r.f.Line(margin, r.y-1.2, r.pw-margin, r.y-1.2)
		page += ctxs[i].PageCount
	}
	var buf bytes.Buffer
	if err := f.Output(&buf); err != nil {
		return nil, 0, fmt.Errorf("merge: contents page: %w", err)
	}
	return buf.Bytes(), f.PageNo(), nil
}

// paperOf picks the contents paper size from the first document's first page.
func paperOf(c *model.Context) string {
	dims, err := c.PageDims()
	if err == nil && len(dims) > 0 && dims[0].Height < 800 {
		return "Letter" // Letter is 792 pt high, A4 842
	}
	return "A4"
}
