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
// file identifier is a hash of its content. The inputs must be PDFs tsim
// wrote (see readPDF).
func Merge(ctx context.Context, inputs []MergeInput, out string) (int, error) {
	if len(inputs) == 0 {
		return 0, errors.New("merge: no documents to merge")
	}
	srcs := make([]mergeSource, len(inputs))
	counts := make([]int, len(inputs))
	for i, in := range inputs {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		b, err := os.ReadFile(in.PDF)
		if err != nil {
			return 0, fmt.Errorf("merge: %w", err)
		}
		if srcs[i], err = openSource(b); err != nil {
			return 0, fmt.Errorf("merge: %s: not a valid PDF: %w", in.PDF, err)
		}
		counts[i] = len(srcs[i].leaves)
		for _, s := range in.Sections {
			if s.Page < 1 || s.Page > counts[i] {
				return 0, fmt.Errorf("merge: %s: section %q on page %d of %d", in.PDF, s.Title, s.Page, counts[i])
			}
		}
	}
	now, ok := parsePDFDate(srcs[0].date())
	if !ok {
		now = time.Unix(0, 0).UTC()
	}

	// The contents pages come first; their count shifts every page number
	// they list, so render until the guess holds.
	var bms []bookmark
	start := 0 // index of each document's first page, after the contents
	if len(inputs) > 1 {
		for guess := 1; ; guess++ {
			b, n, err := contentsPDF(inputs, counts, srcs[0].paper(), guess, now)
			if err != nil {
				return 0, err
			}
			if n != guess {
				continue
			}
			c, err := openSource(b)
			if err != nil {
				return 0, fmt.Errorf("merge: contents page: %w", err)
			}
			srcs = append([]mergeSource{c}, srcs...)
			bms = append(bms, bookmark{title: "Contents", page: 0})
			start = n
			break
		}
	}
	for i, in := range inputs {
		bm := bookmark{title: in.Title, page: start, bold: true, open: len(inputs) == 1}
		for _, s := range in.Sections {
			bm.kids = append(bm.kids, bookmark{title: s.Title, page: start + s.Page - 1})
		}
		bms = append(bms, bm)
		start += counts[i]
	}

	w := &pdfWriter{}
	catalog, tree, outline := w.reserve(), w.reserve(), w.reserve()
	var pages []int
	version := 0
	for _, s := range srcs {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n, err := w.copyPages(s, catalog, tree)
		if err != nil {
			return 0, fmt.Errorf("merge: %w", err)
		}
		pages = append(pages, n...)
		version = max(version, s.version)
	}
	kids := make([]string, len(pages))
	for i, n := range pages {
		kids[i] = fmt.Sprintf("%d 0 R", n)
	}
	w.set(tree, fmt.Sprintf("<</Type /Pages /Kids [%s] /Count %d>>", strings.Join(kids, " "), len(pages)))
	w.writeOutline(outline, bms, pages)
	w.set(catalog, fmt.Sprintf("<</Type /Catalog /Pages %d 0 R /Outlines %d 0 R /PageMode /UseOutlines>>", tree, outline))
	info := w.reserve()
	w.set(info, string(srcs[0].infoDict()))
	if err := fsx.WriteFileAtomic(out, w.bytes(version, catalog, info), 0o644); err != nil {
		return 0, err
	}
	return len(pages), nil
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
func contentsPDF(inputs []MergeInput, pages []int, paper string, guess int, now time.Time) ([]byte, int, error) {
	f, c, err := newPDF(paper, now)
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
	for _, n := range pages {
		total += n
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
		page += pages[i]
	}
	var buf bytes.Buffer
	if err := f.Output(&buf); err != nil {
		return nil, 0, fmt.Errorf("merge: contents page: %w", err)
	}
	return buf.Bytes(), f.PageNo(), nil
}
