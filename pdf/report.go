// Package pdf owns tsim's printable output: the report PDF (a summary page
// with the service × router verdict matrix and the simulation/emulation
// disagreements, then one page per service with the path diagram and the
// per-router evidence), one PDF of several documents with a contents page,
// continuous page numbers and an outline (rendered from the documents, never
// by reading PDFs), and the path diagram as DOT or Mermaid text. It reads the
// pipeline document and never changes facts, labs or the kernel; it draws
// every PDF with fpdf and parses no PDF.
package pdf

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/fsx"
)

// Options control a report.
type Options struct {
	Dir   string    // directory the PDF is written to
	Paper string    // "A4" (default) or "Letter"
	Now   time.Time // report date; the caller takes it from SOURCE_DATE_EPOCH for reproducible output
	// Progress, when set, is called after each document is drawn.
	Progress func(done, total int)
}

// Report writes the PDF report of d into opts.Dir and returns its path and
// page count. It also records them, with the page of each section, in
// d.Report. The file name is derived from the source, the destination and a
// hash of the document, so the same document always gives the same name;
// the file is written atomically (no partial file on error).
func Report(ctx context.Context, d *doc.Document, opts Options) (string, int, error) {
	v, err := newView(d)
	if err != nil {
		return "", 0, err
	}
	if opts.Dir == "" {
		opts.Dir = "."
	}
	name, err := fileName(v)
	if err != nil {
		return "", 0, err
	}
	path := filepath.Join(opts.Dir, name)
	var res Rendered
	var rerr error
	err = fsx.WriteAtomic(path, 0o644, func(w io.Writer) error {
		res, rerr = render(ctx, []*view{v}, opts, false, w)
		return rerr
	})
	if rerr != nil {
		return "", 0, rerr
	}
	if err != nil {
		return "", 0, err
	}
	d.Report = &doc.Report{PDF: path, Pages: res.Pages, Sections: res.Sections[0]}
	return path, res.Pages, nil
}

// fileName is <src>-<dst>-<hash>.pdf; the hash covers the document without
// its report sections, so re-reporting a reported document keeps the name.
func fileName(v *view) (string, error) {
	cp := *v.d
	cp.Report, cp.Merged = nil, nil
	b, err := json.Marshal(&cp)
	if err != nil {
		return "", fmt.Errorf("report: hash document: %w", err)
	}
	sum := sha256.Sum256(b)
	first := v.d.Flows[0]
	return fmt.Sprintf("tsim-%s-%s-%s.pdf", safeName(first.Src), safeName(first.Dst), hex.EncodeToString(sum[:4])), nil
}

// safeName keeps an address usable in a file name on every system.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '.', r == '-':
			return r
		}
		return '_'
	}, s)
}

// newPDF returns an fpdf document set up the way every tsim PDF is:
// fixed dates, sorted catalogs, embedded fonts.
func newPDF(paper string, now time.Time) (*fpdf.Fpdf, *canvas, error) {
	size := "A4"
	switch strings.ToLower(paper) {
	case "", "a4":
	case "letter":
		size = "Letter"
	default:
		return nil, nil, fmt.Errorf("unknown paper size %q (want A4 or Letter)", paper)
	}
	fd := loadFonts()
	if fd.err != nil {
		return nil, nil, fd.err
	}
	f := fpdf.New("P", "mm", size, "")
	f.SetCatalogSort(true)
	now = now.UTC().Truncate(time.Second)
	f.SetCreationDate(now)
	f.SetModificationDate(now)
	f.SetCreator("tsim", true)
	f.SetProducer("tsim (fpdf)", true)
	f.SetMargins(margin, margin, margin)
	f.SetAutoPageBreak(false, margin)
	f.AliasNbPages(pageCountAlias)
	return f, newCanvas(f, fd), nil
}

// pageCountAlias stands for the page count in the footers until fpdf
// writes the file. It is built from U+E000, which no embedded font has, so
// clean turns it into U+FFFD wherever a document's text holds it: text
// from facts can never contain the alias (a literal "{nb}" in a rule stays
// "{nb}").
const pageCountAlias = "\uE000nb\uE000"

// Page geometry in mm.
const (
	margin   = 15.0
	headerH  = 9.0
	footerH  = 10.0
	sectionG = 6.0
)

// renderer lays out the documents of one PDF, one after the other.
type renderer struct {
	ctx      context.Context
	f        *fpdf.Fpdf
	c        *canvas
	v        *view // the document being drawn
	now      time.Time
	pw, ph   float64
	y        float64
	sections []doc.Section // the current document's parts, pages of the file
	head     string        // running header, right side
	level    int           // outline level of a part: 0 alone, 1 under its document
	docTitle string        // merged: the document's bookmark, added with its first part
}

// Colours.
type rgb struct{ r, g, b int }

var (
	colText     = rgb{33, 37, 41}
	colMuted    = rgb{96, 104, 112}
	colRule     = rgb{190, 196, 202}
	colHeadFill = rgb{55, 65, 81}
	colZebra    = rgb{246, 247, 249}
	colHost     = rgb{227, 242, 253}
	colHostLine = rgb{21, 101, 192}
	colWarn     = rgb{255, 243, 205}
	colWarnLine = rgb{204, 138, 0}
	colDisagree = rgb{191, 54, 12}
)

// verdictColours gives the light fill and the strong line/text colour.
func verdictColours(v string) (fill, strong rgb) {
	switch v {
	case doc.Allowed, doc.Reachable, doc.Delivered, doc.ExitsNetwork:
		return rgb{212, 237, 218}, rgb{30, 110, 50}
	case doc.Blocked, doc.Unreachable, doc.Denied, doc.NoRoute, doc.NullRouted, doc.Loop, doc.UnknownSource:
		return rgb{248, 215, 218}, rgb{176, 32, 40}
	}
	return rgb{226, 230, 234}, rgb{84, 94, 104}
}

func (r *renderer) fill(c rgb)      { r.f.SetFillColor(c.r, c.g, c.b) }
func (r *renderer) draw(c rgb)      { r.f.SetDrawColor(c.r, c.g, c.b) }
func (r *renderer) textColor(c rgb) { r.f.SetTextColor(c.r, c.g, c.b) }

var (
	fTitle  = face{famSans, "B", 20}
	fH1     = face{famSans, "B", 15}
	fH2     = face{famSans, "B", 11.5}
	fBody   = face{famSans, "", 9.5}
	fBodyB  = face{famSans, "B", 9.5}
	fSmall  = face{famSans, "", 8}
	fSmallB = face{famSans, "B", 8}
	fTiny   = face{famSans, "", 7}
	fMono   = face{famMono, "", 8}
	fMonoS  = face{famMono, "", 7}
)

func (r *renderer) contentW() float64 { return r.pw - 2*margin }
func (r *renderer) bottom() float64   { return r.ph - margin - footerH }

// addPage starts a page with the running header.
func (r *renderer) addPage() {
	r.f.AddPage()
	r.textColor(colMuted)
	r.c.text(margin, margin-6, "tsim · network reachability report", fTiny)
	r.c.textRight(r.pw-margin, margin-6, r.head, fTiny)
	r.draw(colRule)
	r.f.SetLineWidth(0.2)
	r.f.Line(margin, margin-1.5, r.pw-margin, margin-1.5)
	r.y = margin + 2
	r.textColor(colText)
}

func (r *renderer) footer() {
	y := r.ph - margin + 1
	r.draw(colRule)
	r.f.SetLineWidth(0.2)
	r.f.Line(margin, y-2, r.pw-margin, y-2)
	r.textColor(colMuted)
	r.c.text(margin, y, "generated "+r.now.Format("2006-01-02 15:04 UTC"), fTiny)
	// The total is only known when the file is written: fpdf replaces the
	// alias then. Measure as if it had as many digits as this page.
	label := fmt.Sprintf("page %d of ", r.f.PageNo())
	w := r.c.width(label+fmt.Sprint(r.f.PageNo()), fTiny)
	r.c.draw(r.pw-margin-w, y, label+pageCountAlias, fTiny)
	r.textColor(colText)
}

// ensure starts a new page when h mm no longer fit; it reports whether it did.
func (r *renderer) ensure(h float64) bool {
	if r.y+h <= r.bottom() {
		return false
	}
	r.addPage()
	return true
}

// section records a part starting on the current page and bookmarks it
// (under its document's bookmark in a merged file).
func (r *renderer) section(title string) {
	if r.docTitle != "" && len(r.sections) == 0 {
		r.f.Bookmark(r.c.clean(r.docTitle, fBody), 0, -1)
	}
	r.sections = append(r.sections, doc.Section{Title: title, Page: r.f.PageNo()})
	r.f.Bookmark(r.c.clean(title, fBody), r.level, -1)
}

// heading draws a section heading with a rule under it.
func (r *renderer) heading(s string) {
	r.ensure(fH2.lineH() + 12)
	r.y += 2
	r.textColor(colText)
	r.c.text(margin, r.y, s, fH2)
	r.y += fH2.lineH() + 0.8
	r.draw(colRule)
	r.f.SetLineWidth(0.3)
	r.f.Line(margin, r.y, r.pw-margin, r.y)
	r.y += 2.5
}

// badge draws a filled rounded label ending at right edge x and returns its width.
func (r *renderer) badge(xRight, top float64, s string, fc face, fill, fg rgb) float64 {
	w := r.c.width(s, fc) + 5
	h := fc.mm() + 3
	r.fill(fill)
	r.draw(fill)
	r.f.RoundedRect(xRight-w, top, w, h, 1.2, "1234", "F")
	r.textColor(fg)
	r.c.text(xRight-w+2.5, top+1.5, s, fc)
	r.textColor(colText)
	return w
}

// kv is one label/value row of an information block.
type kv struct {
	label string
	parts []part
}

// part is a piece of a value: its own paragraph with its own face and colour.
type part struct {
	text string
	fc   face
	col  rgb
}

func p(text string, fc face, col rgb) part { return part{text, fc, col} }

// kvHeight is the height the rows of a kv block need.
func (r *renderer) kvRowHeight(row kv, valW float64) float64 {
	h := 0.0
	for _, pt := range row.parts {
		h += float64(len(r.c.wrap(pt.text, valW, pt.fc))) * pt.fc.lineH()
	}
	lh := float64(len(r.c.wrap(row.label, 100, fSmallB))) * fSmallB.lineH()
	if lh > h {
		h = lh
	}
	return h + 2.2
}

// kvBlock draws label/value rows; values wrap, nothing is cut. zebra shades
// every other row. Rows move to the next page whole.
// onBreak, when set, draws a continuation header after a page break.
func (r *renderer) kvBlock(x, labelW, w float64, rows []kv, zebra bool, onBreak func()) {
	valW := w - labelW - 3
	for i, row := range rows {
		h := r.kvRowHeight(row, valW)
		if r.ensure(h) && onBreak != nil {
			onBreak()
		}
		if zebra && i%2 == 1 {
			r.fill(colZebra)
			r.f.Rect(x, r.y, w, h, "F")
		}
		top := r.y + 1.1
		r.textColor(colMuted)
		r.c.text(x+1.5, top, row.label, fSmallB)
		y := top
		for _, pt := range row.parts {
			r.textColor(pt.col)
			y = r.c.lines(x+labelW, y, r.c.wrap(pt.text, valW, pt.fc), pt.fc)
		}
		r.textColor(colText)
		r.y += h
	}
}

// summary draws the summary page(s).
func (r *renderer) summary() {
	v := r.v
	r.addPage()
	r.section("Summary")
	r.y += 4
	r.c.textCenter(r.pw/2, r.y, "Network Reachability Report", fTitle)
	r.y += fTitle.lineH() + 1
	r.textColor(colMuted)
	for _, l := range r.c.wrap(v.src+"  →  "+v.dst, r.contentW(), face{famSans, "", 12}) {
		r.c.textCenter(r.pw/2, r.y, l, face{famSans, "", 12})
		r.y += face{famSans, "", 12}.lineH()
	}
	r.textColor(colText)
	r.y += 4

	// Overall verdict banner.
	good := 0
	for _, s := range v.services {
		if e2eGood(s.e2e) {
			good++
		}
	}
	var banner string
	switch {
	case good == len(v.services):
		banner = fmt.Sprintf("All %d services reachable", len(v.services))
	case good == 0:
		banner = fmt.Sprintf("No service reachable (%d tested)", len(v.services))
	default:
		banner = fmt.Sprintf("%d of %d services reachable", good, len(v.services))
	}
	if len(v.services) == 1 {
		banner = "The service is reachable"
		if good == 0 {
			banner = "The service is not reachable"
		}
	}
	if v.simOnly {
		banner += " (predicted by simulation)"
	}
	bv := doc.Reachable
	if good < len(v.services) {
		bv = doc.Unreachable
	}
	r.banner(banner, bv)

	r.heading("Test information")
	mode := "simulation (trace) and emulation (reach in a namespace lab)"
	if v.simOnly {
		mode = "simulation only: no emulation results in this document, verdicts are the trace's predictions"
	} else if !allLive(v) {
		mode = "simulation, and emulation for some services"
	}
	var labels []string
	for _, s := range v.services {
		labels = append(labels, s.label)
	}
	facts, digest := v.factsLabel, v.digest
	if facts == "" {
		facts = "not recorded"
	}
	if digest == "" {
		digest = "not recorded"
	}
	routersFace := fBody
	if len(v.routers) > 6 {
		routersFace = fSmall // a long list: keep the summary on its page
	}
	rows := []kv{
		{"Source", []part{p(v.src, fBody, colText)}},
		{"Destination", []part{p(v.dst, fBody, colText)}},
		{"Date", []part{p(r.now.Format("2006-01-02 15:04:05 UTC"), fBody, colText)}},
		{"Facts", []part{p(facts, fBody, colText)}},
		{"Facts digest", []part{p(digest, fMono, colText)}},
		{"Services tested", []part{p(fmt.Sprintf("%d: %s", len(labels), strings.Join(labels, ", ")), fBody, colText)}},
		{"Routers", []part{p(fmt.Sprintf("%d: %s", len(v.routers), strings.Join(v.routers, ", ")), routersFace, colText)}},
		{"Method", []part{p(mode, fBody, colText)}},
	}
	if r.v.d.Lab != nil && r.v.d.Lab.ID != "" {
		rows = append(rows, kv{"Lab", []part{p(r.v.d.Lab.ID, fBody, colText)}})
	}
	r.kvBlock(margin, 34, r.contentW(), rows, false, nil)
	r.y += sectionG

	r.heading("Results: service × router")
	r.matrix()
	r.connections()
	r.y += sectionG

	r.disagreements()

	r.y += 4
	if r.y+fSmall.lineH() <= r.bottom() {
		r.textColor(colMuted)
		r.c.textCenter(r.pw/2, r.y, "One page per service follows, with the path diagram and the evidence for each router.", face{famSans, "", 8})
		r.textColor(colText)
	}
}

// headerNames gives each router the name its matrix column shows: the
// host part of an FQDN when that is still unique (the summary lists the
// full names), else the full name.
func headerNames(routers []string) map[string]string {
	short := map[string]string{}
	used := map[string]int{}
	for _, n := range routers {
		s := n
		if i := strings.IndexByte(n, '.'); i > 0 {
			s = n[:i]
		}
		short[n] = s
		used[s]++
	}
	for _, n := range routers {
		if used[short[n]] > 1 {
			short[n] = n
		}
	}
	return short
}

func allLive(v *view) bool {
	for _, s := range v.services {
		if !s.live {
			return false
		}
	}
	return true
}

// matrix draws the service × router table, in chunks of routers when they
// do not fit side by side, and a legend.
func (r *renderer) matrix() {
	v := r.v
	const svcW, resW, minCol, maxCol, rowH = 34.0, 30.0, 23.0, 38.0, 6.5
	avail := r.contentW() - svcW - resW
	perChunk := int(avail / minCol)
	if perChunk < 1 {
		perChunk = 1
	}
	// Every chunk gets the same column width and header size, so the
	// chunks line up and read as one table.
	n := len(v.routers)
	if n > perChunk {
		n = perChunk
	}
	colW := maxCol
	if n > 0 && avail/float64(n) < colW {
		colW = avail / float64(n)
	}
	names := headerNames(v.routers)
	hf := face{famSans, "B", 7}
	for _, name := range v.routers {
		if _, f := r.c.fitLines(names[name], colW-2, hf, 5.5, 3); f.size < hf.size {
			hf = f
		}
	}
	for start := 0; start < len(v.routers) || start == 0; start += perChunk {
		end := start + perChunk
		if end > len(v.routers) {
			end = len(v.routers)
		}
		cols := v.routers[start:end]
		type hdr struct {
			lines []string
			fc    face
		}
		hdrs := make([]hdr, len(cols))
		maxLines := 1
		for i, name := range cols {
			ls := r.c.wrap(names[name], colW-2, hf)
			hdrs[i] = hdr{ls, hf}
			if len(ls) > maxLines {
				maxLines = len(ls)
			}
		}
		headH := float64(maxLines)*hf.lineH() + 3
		if len(v.routers) > perChunk {
			r.ensure(fSmall.lineH() + headH + rowH)
			r.textColor(colMuted)
			r.c.text(margin, r.y, fmt.Sprintf("Routers %d–%d of %d", start+1, end, len(v.routers)), fSmall)
			r.textColor(colText)
			r.y += fSmall.lineH() + 0.5
		}
		tableW := svcW + resW + colW*float64(len(cols))
		drawHead := func() {
			r.fill(colHeadFill)
			r.f.Rect(margin, r.y, tableW, headH, "F")
			r.f.SetTextColor(255, 255, 255)
			r.c.text(margin+1.5, r.y+headH/2-hf.mm()/2, "Service", hf)
			r.c.textCenter(margin+svcW+resW/2, r.y+headH/2-hf.mm()/2, "End to end", hf)
			for i, h := range hdrs {
				x := margin + svcW + resW + colW*float64(i)
				top := r.y + (headH-float64(len(h.lines))*h.fc.lineH())/2
				for _, l := range h.lines {
					r.c.textCenter(x+colW/2, top, l, h.fc)
					top += h.fc.lineH()
				}
			}
			r.textColor(colText)
			r.y += headH
		}
		r.ensure(headH + rowH)
		drawHead()
		for _, s := range v.services {
			labels, lf := r.c.fitLines(s.label, svcW-3, fSmallB, 6, 2)
			h := rowH
			if lh := float64(len(labels))*lf.lineH() + 2; lh > h {
				h = lh
			}
			if r.ensure(h) {
				drawHead()
			}
			r.fill(colZebra)
			r.f.Rect(margin, r.y, svcW, h, "F")
			r.textColor(colText)
			r.c.lines(margin+1.5, r.y+(h-float64(len(labels))*lf.lineH())/2, labels, lf)
			e2e, mark := s.e2e, ""
			if s.reach != nil && s.reach.E2E != nil && s.reach.E2E.Agrees != nil && !*s.reach.E2E.Agrees {
				mark = "≠"
			}
			r.cell(margin+svcW, r.y, resW, h, e2e, s.live || e2e == unknown, mark)
			for i, name := range cols {
				x := margin + svcW + resW + colW*float64(i)
				hp := findHop(s, name)
				if hp == nil {
					r.fill(rgb{255, 255, 255})
					r.f.Rect(x, r.y, colW, h, "F")
					r.textColor(colMuted)
					r.c.textCenter(x+colW/2, r.y+h/2-fSmall.mm()/2, "—", fSmall)
					r.textColor(colText)
					continue
				}
				mark := ""
				if hp.live != "" && !hp.agrees {
					mark = "≠"
				}
				r.cell(x, r.y, colW, h, hp.verdict, true, mark)
			}
			// grid
			r.draw(colRule)
			r.f.SetLineWidth(0.2)
			r.f.Rect(margin, r.y, tableW, h, "D")
			r.f.Line(margin+svcW, r.y, margin+svcW, r.y+h)
			for i := range cols {
				x := margin + svcW + resW + colW*float64(i)
				r.f.Line(x, r.y, x, r.y+h)
			}
			r.y += h
		}
		r.y += 3
		if end >= len(v.routers) {
			break
		}
	}
	r.legend()
}

// cell draws one coloured verdict cell.
func (r *renderer) cell(x, y, w, h float64, verdict string, solid bool, mark string) {
	fill, strong := verdictColours(verdict)
	r.fill(fill)
	r.f.Rect(x, y, w, h, "F")
	r.textColor(strong)
	fc := face{famSans, "B", 7}
	label := verdict
	if !solid {
		label += " (sim)"
	}
	mw := 0.0
	if mark != "" {
		mw = r.c.width(mark, face{famSans, "B", 8}) + 1.5
	}
	ls, lf := r.c.fitLines(label, w-2-2*mw, fc, 5.5, 1) // shrink before wrapping
	top := y + (h-float64(len(ls))*lf.lineH())/2
	for _, l := range ls {
		r.c.textCenter(x+w/2, top, l, lf)
		top += lf.lineH()
	}
	if mark != "" {
		r.textColor(colDisagree)
		r.c.textRight(x+w-1, y+0.8, mark, face{famSans, "B", 8})
	}
	r.textColor(colText)
}

// legend explains the colours of the matrix and the diagram.
func (r *renderer) legend() {
	r.ensure(6)
	x := margin
	items := []struct{ v, label string }{
		{doc.Allowed, "ALLOWED / reachable"},
		{doc.Blocked, "BLOCKED / unreachable"},
		{unknown, "UNKNOWN"},
	}
	for _, it := range items {
		fill, strong := verdictColours(it.v)
		r.fill(fill)
		r.draw(strong)
		r.f.SetLineWidth(0.3)
		r.f.Rect(x, r.y+0.4, 3.5, 3.5, "FD")
		r.textColor(colMuted)
		r.c.text(x+5, r.y+0.5, it.label, fTiny)
		x += 7 + r.c.width(it.label, fTiny)
	}
	r.fill(rgb{255, 255, 255})
	r.draw(colRule)
	r.f.Rect(x, r.y+0.4, 3.5, 3.5, "FD")
	r.c.textCenter(x+1.75, r.y+0.5, "—", fTiny)
	r.c.text(x+5, r.y+0.5, "not on the path", fTiny)
	x += 7 + r.c.width("not on the path", fTiny)
	r.textColor(colDisagree)
	r.c.text(x, r.y+0.3, "≠", face{famSans, "B", 8})
	r.textColor(colMuted)
	r.c.text(x+3, r.y+0.5, "simulation and emulation disagree", fTiny)
	r.textColor(colText)
	r.y += 6
	if r.v.simOnly {
		r.textColor(colMuted)
		r.c.text(margin, r.y, "Simulation only: verdicts are the trace's predictions; end-to-end results are trace dispositions.", fTiny)
		r.textColor(colText)
		r.y += fTiny.lineH() + 1
	}
}

// connections lists, under the matrix, the services whose connection
// failed on the reply or on some of their ECMP branches: the matrix's
// one cell per service cannot say that.
func (r *renderer) connections() {
	var lines []string
	for _, s := range r.v.services {
		if n := connectionNote(s); n != "" {
			lines = append(lines, s.label+": "+s.e2e+": "+n)
		}
	}
	if len(lines) == 0 {
		return
	}
	r.y += 1
	r.ensure(fSmallB.lineH() + fSmall.lineH())
	r.c.text(margin, r.y, "Connections that fail on the reply or on some ECMP branches", fSmallB)
	r.y += fSmallB.lineH() + 0.5
	for _, l := range lines {
		ls := r.c.wrap(l, r.contentW()-4, fSmall)
		r.ensure(float64(len(ls)) * fSmall.lineH())
		r.c.text(margin, r.y, "•", fSmall)
		r.y = r.c.lines(margin+4, r.y, ls, fSmall)
	}
}

func findHop(s *service, router string) *hop {
	for _, h := range s.routers {
		if h.name == router {
			return h
		}
	}
	return nil
}

// disagreements draws the box listing where simulation and emulation differ.
func (r *renderer) disagreements() {
	v := r.v
	// With nothing to compare the box only repeats the Method row: leave it
	// out rather than start a page for it.
	if v.simOnly && r.y+fH2.lineH()+28 > r.bottom() {
		return
	}
	r.heading("Simulation versus emulation")
	var lines []part
	col := colText
	switch {
	case v.simOnly:
		lines = []part{p("Not compared: this document holds simulation results only (run `tsim hosts up | tsim reach` for live verdicts).", fBody, colMuted)}
		col = colRule
	case len(v.disagree) == 0:
		lines = []part{p("No disagreement: every live verdict matches the simulation's prediction.", fBody, rgb{30, 110, 50})}
		col = rgb{30, 110, 50}
	default:
		col = colDisagree
		lines = append(lines, p(fmt.Sprintf("%d disagreement(s) between the simulation (trace) and the emulation (reach):", len(v.disagree)), fBodyB, colDisagree))
		for _, dg := range v.disagree {
			where := dg.service + " at " + dg.router
			if dg.router == "" {
				where = dg.service + ", end to end"
			}
			s := fmt.Sprintf("%s: simulation predicted %s, emulation found %s", where, orDash(dg.predicted), orDash(dg.live))
			if dg.rule != "" {
				s += " (" + dg.rule + ")"
			}
			lines = append(lines, p(s, fBody, colText))
		}
	}
	// Items after the first line hang behind a bullet when there is a list.
	w := r.contentW() - 8
	bullet := len(lines) > 1
	wrapped := make([][]string, len(lines))
	h := 4.0
	for i, l := range lines {
		lw := w
		if bullet && i > 0 {
			lw -= 4
		}
		wrapped[i] = r.c.wrap(l.text, lw, l.fc)
		h += float64(len(wrapped[i])) * l.fc.lineH()
	}
	// Keep the box on one page when it fits on one; else split it into one
	// box per page, breaking between items.
	if h > r.bottom()-r.y && h < r.bottom()-margin-headerH {
		r.addPage()
	}
	fill := rgb{255, 255, 255}
	if col == colDisagree {
		fill = colWarn
	}
	for i := 0; i < len(lines); {
		segH, j := 4.0, i
		for j < len(lines) {
			lh := float64(len(wrapped[j])) * lines[j].fc.lineH()
			if j > i && r.y+segH+lh > r.bottom() {
				break
			}
			segH += lh
			j++
		}
		r.fill(fill)
		r.draw(col)
		r.f.SetLineWidth(0.5)
		r.f.Rect(margin, r.y, r.contentW(), segH, "FD")
		y := r.y + 2
		for k := i; k < j; k++ {
			l := lines[k]
			r.textColor(l.col)
			x := margin + 4
			if bullet && k > 0 {
				r.c.text(x, y, "•", l.fc)
				x += 4
			}
			y = r.c.lines(x, y, wrapped[k], l.fc)
		}
		r.textColor(colText)
		r.y += segH
		if i = j; i < len(lines) {
			r.addPage()
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// banner draws the full-width verdict box at the top of a summary page,
// coloured by verdict.
func (r *renderer) banner(text, verdict string) {
	fill, strong := verdictColours(verdict)
	r.fill(fill)
	r.draw(strong)
	r.f.SetLineWidth(0.4)
	r.f.RoundedRect(margin, r.y, r.contentW(), 9, 1.5, "1234", "FD")
	r.textColor(strong)
	r.c.textCenter(r.pw/2, r.y+2.3, text, face{famSans, "B", 11})
	r.textColor(colText)
	r.y += 9 + sectionG
}
