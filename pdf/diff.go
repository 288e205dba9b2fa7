package pdf

import (
	"bytes"
	"context"
	"fmt"
	"strconv"

	"github.com/tsim-dev/tsim/internal/fsx"
	"github.com/tsim-dev/tsim/sweep"
	"github.com/tsim-dev/tsim/trace"
)

// WriteDiff writes the PDF "what this change does" for a diff result to
// path (atomically) and returns its page count: the facts before and
// after, what was compared, then the changed flows grouped as newly
// blocked, newly allowed and otherwise changed (deciding rule or path).
func WriteDiff(ctx context.Context, res *sweep.DiffResult, path string, opts Options) (int, error) {
	var buf bytes.Buffer
	pages, err := renderDiff(ctx, res, opts, &buf)
	if err != nil {
		return 0, err
	}
	if err := fsx.WriteFileAtomic(path, buf.Bytes(), 0o644); err != nil {
		return 0, err
	}
	return pages, nil
}

func renderDiff(ctx context.Context, res *sweep.DiffResult, opts Options, out *bytes.Buffer) (int, error) {
	f, c, err := newPDF(opts.Paper, opts.Now)
	if err != nil {
		return 0, err
	}
	r := &renderer{ctx: ctx, f: f, c: c, now: opts.Now.UTC()}
	r.pw, r.ph = f.GetPageSize()
	r.head = "what this change does"
	f.SetTitle("tsim: what this change does", true)
	f.SetSubject("Change impact: "+res.Scope, true)
	f.SetFooterFunc(r.footer)
	r.diffSection(res)
	if err := f.Error(); err != nil {
		return 0, fmt.Errorf("diff report: %w", err)
	}
	pages := f.PageNo()
	if err := f.Output(out); err != nil {
		return 0, fmt.Errorf("diff report: %w", err)
	}
	return pages, nil
}

// diffSection draws the section "what this change does" on new pages.
func (r *renderer) diffSection(res *sweep.DiffResult) {
	r.addPage()
	r.section("What this change does")
	r.y += 4
	r.c.textCenter(r.pw/2, r.y, "What this change does", fTitle)
	r.y += fTitle.lineH() + 4

	var blocked, allowed, other []sweep.Change
	var nb, na, no float64
	for _, ch := range res.Changes {
		was, is := trace.Positive(ch.Old.Disposition), trace.Positive(ch.New.Disposition)
		switch {
		case was && !is:
			blocked, nb = append(blocked, ch), nb+ch.Flows
		case !was && is:
			allowed, na = append(allowed, ch), na+ch.Flows
		default:
			other, no = append(other, ch), no+ch.Flows
		}
	}
	banner := "No flow changes"
	bv := "DELIVERED"
	if len(res.Changes) > 0 {
		banner = fmt.Sprintf("%s flows changed: %s newly blocked, %s newly allowed, %s otherwise changed",
			count(nb+na+no), count(nb), count(na), count(no))
		bv = "UNKNOWN"
		if len(blocked) > 0 {
			bv = "DENIED"
		}
	}
	r.banner(banner, bv)

	r.heading("Compared")
	flows := count(res.Flows)
	if res.Classes > 0 {
		flows += fmt.Sprintf(" (traced as %d classes)", res.Classes)
	}
	rows := []kv{
		{"Before (reference)", []part{p(res.Reference, fBody, colText)}},
		{"After", []part{p(res.New, fBody, colText)}},
		{"Flows", []part{p(res.Scope, fBody, colText)}},
		{"Flows compared", []part{p(flows, fBody, colText)}},
		{"Date", []part{p(r.now.Format("2006-01-02 15:04:05 UTC"), fBody, colText)}},
	}
	r.kvBlock(margin, 38, r.contentW(), rows, true, nil)
	r.y += sectionG

	for _, grp := range []struct {
		title string
		list  []sweep.Change
	}{{"Newly blocked", blocked}, {"Newly allowed", allowed}, {"Otherwise changed (deciding rule or path)", other}} {
		if len(grp.list) == 0 {
			continue
		}
		n := 0.0
		for _, ch := range grp.list {
			n += ch.Flows
		}
		title := fmt.Sprintf("%s (%s flows)", grp.title, count(n))
		if n == 1 {
			title = grp.title + " (1 flow)"
		}
		r.heading(title)
		var rows []kv
		for i, ch := range grp.list {
			where := ch.Line()
			if k := len(where) - len(sweep.ChangeLabel(ch.Old, ch.New)) - 2; k > 0 {
				where = where[:k]
			}
			_, oldCol := verdictColours(ch.Old.Disposition)
			_, newCol := verdictColours(ch.New.Disposition)
			rows = append(rows, kv{fmt.Sprintf("%d", i+1), []part{
				p(where, fBodyB, colText),
				p("before: "+ch.Old.String(), fSmall, oldCol),
				p("after:  "+ch.New.String(), fSmall, newCol),
			}})
		}
		r.kvBlock(margin, 10, r.contentW(), rows, true, nil)
		r.y += sectionG
	}
}

// count prints a number of flows: exact below a billion, else 1.84e+19.
func count(n float64) string {
	if n < 1e9 {
		return strconv.FormatFloat(n, 'f', 0, 64)
	}
	return strconv.FormatFloat(n, 'g', 3, 64)
}
