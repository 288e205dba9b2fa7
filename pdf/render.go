package pdf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/fsx"
)

// Rendered describes a PDF that Report or Merge wrote.
type Rendered struct {
	Pages int // pages of the whole file
	// Sections lists, per document in input order, where its parts
	// (Summary, then one per service) start: 1-based pages of the file.
	Sections [][]doc.Section
}

// Check tells whether d holds what a report of it needs (flows and their
// trace); the error says which stage to run first.
func Check(d *doc.Document) error {
	_, err := newView(d)
	return err
}

// Merge renders docs into one PDF at out — from the documents alone: no
// report PDF is read, so documents written anywhere merge anywhere. With
// more than one document a contents page (or several) comes first, listing
// every document and service with the page it starts on.
// Pages are numbered through the whole file ("page 10 of 42") and the
// outline has a bookmark per document with one child per part (Summary,
// then one per service). The file is written atomically; with opts.Now
// fixed the same documents give the same bytes. opts.Dir is not used.
func Merge(ctx context.Context, docs []*doc.Document, out string, opts Options) (Rendered, error) {
	if len(docs) == 0 {
		return Rendered{}, errors.New("merge: no documents to merge")
	}
	views := make([]*view, len(docs))
	for i, d := range docs {
		v, err := newView(d)
		if err != nil {
			return Rendered{}, fmt.Errorf("merge: document %d: %w", i+1, err)
		}
		views[i] = v
	}
	// Streamed to the file: a suite's PDF is not held twice in memory
	// (fpdf keeps the whole file until it writes it out).
	var res Rendered
	var rerr error
	err := fsx.WriteAtomic(out, 0o644, func(w io.Writer) error {
		res, rerr = render(ctx, views, opts, true, w)
		return rerr
	})
	if rerr != nil {
		return Rendered{}, rerr
	}
	if err != nil {
		return Rendered{}, err
	}
	return res, nil
}

// render lays out views into one PDF written to out. merged selects the
// merged form: a bookmark per document (its parts one level below) and,
// for more than one document, the contents pages first. A single report
// has its parts as top-level bookmarks and no contents page.
func render(ctx context.Context, views []*view, opts Options, merged bool, out io.Writer) (Rendered, error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	f, c, err := newPDF(opts.Paper, now)
	if err != nil {
		return Rendered{}, err
	}
	r := &renderer{ctx: ctx, f: f, c: c, now: now.UTC()}
	r.pw, r.ph = f.GetPageSize()
	f.SetFooterFunc(r.footer)
	if merged {
		r.level = 1
		f.SetTitle("tsim merged reachability report", true)
		f.SetSubject(fmt.Sprintf("Network reachability: %d document(s)", len(views)), true)
	} else {
		head := views[0].src + " → " + views[0].dst
		f.SetTitle("tsim reachability report: "+head, true)
		f.SetSubject("Network reachability: "+head, true)
	}

	// The contents pages come first, but the pages they list are only known
	// once the documents are drawn: lay the contents out now (its length
	// depends only on the titles), keep its pages, and fill them in last.
	var toc *contents
	if merged && len(views) > 1 {
		toc = r.layoutContents(views)
		r.head = "contents"
		for i := 0; i < toc.pages; i++ {
			r.addPage()
			if i == 0 {
				r.f.Bookmark("Contents", 0, -1)
			}
		}
	}
	var res Rendered
	for _, v := range views {
		if err := ctx.Err(); err != nil {
			return Rendered{}, err
		}
		r.v, r.sections = v, nil
		r.head = v.src + " → " + v.dst
		if merged {
			r.docTitle = r.head
		}
		r.summary()
		for _, s := range v.services {
			if err := ctx.Err(); err != nil {
				return Rendered{}, err
			}
			r.servicePage(s)
		}
		res.Sections = append(res.Sections, r.sections)
		if opts.Progress != nil {
			opts.Progress(len(res.Sections), len(views))
		}
	}
	res.Pages = f.PageCount()
	if toc != nil {
		r.drawContents(toc, views, res)
		// Back to the last page: fpdf draws the footer of the current page
		// on closing and takes the current page number as the page count.
		f.SetPage(res.Pages)
	}
	if err := f.Error(); err != nil {
		return Rendered{}, fmt.Errorf("report: %w", err)
	}
	if err := f.Output(out); err != nil {
		return Rendered{}, fmt.Errorf("report: %w", err)
	}
	return res, nil
}

// docSummary is the line under a document's title on the contents page.
func docSummary(v *view) string {
	good := 0
	for _, s := range v.services {
		if e2eGood(s.e2e) {
			good++
		}
	}
	sum := fmt.Sprintf("%d service(s), %d reachable", len(v.services), good)
	if v.simOnly {
		sum += " (simulation only)"
	} else if len(v.disagree) > 0 {
		sum += fmt.Sprintf(", %d disagreement(s)", len(v.disagree))
	}
	return sum
}

// contents is the laid-out contents: which page and height each line
// group goes to.
type contents struct {
	pages int
	first float64 // y where the entries of the first page start
	items []tocItem
}

// tocItem is a document's title (sec < 0) or one of its parts.
type tocItem struct {
	doc, sec int
	lines    []string // the wrapped title
	sub      []string // under a document's title: its summary
	page     int      // 1-based contents page
	y, h     float64
	last     bool // the document's last item: a separator follows
}

// Contents geometry (mm).
const (
	tocNumW  = 14.0 // the page-number column
	tocSubIn = 6.0  // indent of the parts under a document
	tocGapIn = 0.8  // after a document's title block
	tocGapDc = 2.5  // after a document's last part
	tocContH = 6.0  // "Contents (continued)" atop a further contents page
)

func (r *renderer) tocTextW() float64 { return r.contentW() - tocNumW - 10 }

// layoutContents places every contents line without drawing: the
// contents' length depends only on the titles, not on the page numbers
// (they sit in a fixed right-hand column).
func (r *renderer) layoutContents(views []*view) *contents {
	top := margin + 2
	toc := &contents{pages: 1}
	y := top + 4 + fTitle.lineH() + 1 + 12 + 2 + fH2.lineH() + 0.8 + 2.5
	toc.first = y
	fit := func(h float64) {
		if y+h > r.bottom() {
			toc.pages++
			y = top + tocContH
		}
	}
	textW := r.tocTextW()
	for i, v := range views {
		it := tocItem{doc: i, sec: -1, lines: r.c.wrap(fmt.Sprintf("%d.  %s", i+1, v.src+" → "+v.dst), textW, fBodyB)}
		it.sub = r.c.wrap(docSummary(v), textW-tocSubIn, fSmall)
		it.h = float64(len(it.lines))*fBodyB.lineH() + float64(len(it.sub))*fSmall.lineH()
		fit(it.h + 2)
		it.page, it.y = toc.pages, y
		y += it.h + tocGapIn
		toc.items = append(toc.items, it)
		titles := append([]string{"Summary"}, make([]string, len(v.services))...)
		for k, s := range v.services {
			titles[k+1] = serviceTitle(s)
		}
		for k, t := range titles {
			it := tocItem{doc: i, sec: k, lines: r.c.wrap(t, textW-tocSubIn, fSmall), last: k == len(titles)-1}
			it.h = float64(len(it.lines)) * fSmall.lineH()
			fit(it.h)
			it.page, it.y = toc.pages, y
			y += it.h
			if it.last {
				y += tocGapDc
			}
			toc.items = append(toc.items, it)
		}
	}
	return toc
}

// drawContents fills the contents pages reserved before the documents,
// now that res says where every part starts.
func (r *renderer) drawContents(toc *contents, views []*view, res Rendered) {
	r.f.SetPage(1)
	r.y = margin + 2 + 4
	r.c.textCenter(r.pw/2, r.y, "Merged Reachability Report", fTitle)
	r.y += fTitle.lineH() + 1
	r.textColor(colMuted)
	r.c.textCenter(r.pw/2, r.y, fmt.Sprintf("%d documents · %d pages · %s", len(views), res.Pages, r.now.Format("2006-01-02 15:04 UTC")), face{famSans, "", 11})
	r.textColor(colText)
	r.y += 12
	r.heading("Contents")
	page := 1
	for _, it := range toc.items {
		if it.page != page {
			page = it.page
			r.f.SetPage(page)
			r.textColor(colMuted)
			r.c.text(margin, margin+2, "Contents (continued)", fSmallB)
			r.textColor(colText)
		}
		secs := res.Sections[it.doc]
		target := secs[0].Page
		if it.sec >= 0 {
			target = secs[it.sec].Page
		}
		if it.sec < 0 {
			r.c.textRight(r.pw-margin, it.y, fmt.Sprint(target), fBodyB)
			y := r.c.lines(margin, it.y, it.lines, fBodyB)
			r.textColor(colMuted)
			r.c.lines(margin+tocSubIn, y, it.sub, fSmall)
			r.textColor(colText)
			continue
		}
		r.textColor(colMuted)
		r.c.textRight(r.pw-margin, it.y, fmt.Sprint(target), fSmall)
		r.textColor(colText)
		r.c.lines(margin+tocSubIn, it.y, it.lines, fSmall)
		if it.last {
			y := it.y + it.h + tocGapDc - 1.2
			r.draw(colRule)
			r.f.SetLineWidth(0.15)
			r.f.Line(margin, y, r.pw-margin, y)
		}
	}
}

// column is a table column: its heading and width in mm (scaled to the
// content width).
type column struct {
	title string
	w     float64
}

// table draws rows of cells (each cell its paragraphs) under a dark
// heading row; cells wrap, nothing is cut, a row moves to the next page
// whole and the heading is repeated there.
func (r *renderer) table(cols []column, rows [][][]part) {
	total := 0.0
	for _, c := range cols {
		total += c.w
	}
	scale := r.contentW() / total
	ws := make([]float64, len(cols))
	for i, c := range cols {
		ws[i] = c.w * scale
	}
	hf := face{famSans, "B", 7}
	headH := hf.lineH() + 2
	head := func() {
		r.fill(colHeadFill)
		r.f.Rect(margin, r.y, r.contentW(), headH, "F")
		r.f.SetTextColor(255, 255, 255)
		x := margin
		for i, c := range cols {
			r.c.text(x+1.2, r.y+1, c.title, hf)
			x += ws[i]
		}
		r.textColor(colText)
		r.y += headH
	}
	height := func(row [][]part) float64 {
		h := 0.0
		for i, cell := range row {
			if i >= len(ws) {
				break
			}
			ch := 0.0
			for _, pt := range cell {
				ch += float64(len(r.c.wrap(pt.text, ws[i]-2.4, pt.fc))) * pt.fc.lineH()
			}
			h = max(h, ch)
		}
		return h + 2
	}
	first := 0.0
	if len(rows) > 0 {
		first = height(rows[0])
	}
	r.ensure(headH + first)
	head()
	for k, row := range rows {
		h := height(row)
		if r.ensure(h) {
			head()
		}
		if k%2 == 1 {
			r.fill(colZebra)
			r.f.Rect(margin, r.y, r.contentW(), h, "F")
		}
		x := margin
		for i, cell := range row {
			if i >= len(ws) {
				break
			}
			y := r.y + 1
			for _, pt := range cell {
				r.textColor(pt.col)
				y = r.c.lines(x+1.2, y, r.c.wrap(pt.text, ws[i]-2.4, pt.fc), pt.fc)
			}
			x += ws[i]
		}
		r.textColor(colText)
		r.draw(colRule)
		r.f.SetLineWidth(0.15)
		r.f.Line(margin, r.y+h, r.pw-margin, r.y+h)
		r.y += h
	}
}
