// Package pipeline owns the whole tsim job in one process — trace, hosts up,
// reach, report (one PDF of every document), hosts down — on the hybrid
// pool, with typed progress events and cancellation through the context.
// `tsim run` and `tsim serve` both call it; it knows nothing of flags,
// terminals or HTTP.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/tsim-dev/tsim/hosts"
	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/pool"
	"github.com/tsim-dev/tsim/internal/progress"
	"github.com/tsim-dev/tsim/internal/tsimerr"
	"github.com/tsim-dev/tsim/pdf"
	"github.com/tsim-dev/tsim/reach"
	"github.com/tsim-dev/tsim/trace"
)

// Request is one job: flows grouped into documents (one report each),
// sharing one lab.
type Request struct {
	Facts *facts.Facts
	// Groups are the flows of each document (e.g. one line of a flows
	// file, or the services of one -s/-d/-p question).
	Groups [][]*doc.Flow
	// Output is the PDF path; "" skips the report.
	Output string
	Paper  string
	Now    time.Time // report date (SOURCE_DATE_EPOCH)
	// ProbeTimeout bounds each probe (0: reach's default).
	ProbeTimeout time.Duration
	Scope        string // hosts.ScopePath ("": path when traced) or hosts.ScopeAll
	// IsolateAll tests every router of a path in its own harness, also
	// those the end-to-end probe crossed (whose answer it already gave
	// from the same packet's counters); slower, same verdicts.
	IsolateAll bool
	// Registry overrides the lab registry directory (tests).
	Registry string
	// Label is recorded with the lab (hosts.Options.Label).
	Label string
	// Given, when not nil, holds per group the traces to use instead of
	// simulating (a path the user supplied): Given[g][i] is the trace of
	// Groups[g][i]; its Flow is set to the flow's id. A nil group is traced.
	Given [][]*doc.Trace
}

// Deps are the shared machinery a job runs on.
type Deps struct {
	Pool     *pool.Pool
	Progress progress.Sink
	Log      zerolog.Logger
	// Reached, when set, receives the documents once every probe has
	// answered, before the reports are drawn (serve shows test results
	// while the PDF is still being written). It must not keep or change them.
	Reached func(docs []*doc.Document)
}

// Result is what a job produced.
type Result struct {
	Docs   []*doc.Document
	Merged *doc.Merged
	LabID  string
}

// NewDoc starts a document that references facts f.
func NewDoc(f *facts.Facts) *doc.Document {
	d := doc.New()
	d.Facts = &doc.FactsRef{Source: f.Source, Digest: f.Digest, Routers: len(f.Routers)}
	return d
}

// Reachable reports whether every flow of d is reachable end to end.
func Reachable(d *doc.Document) bool { return reach.ExitCode(d.Reach) == tsimerr.ExitOK }

// Stage names and weights of the overall percentage.
var stageNames = []string{"trace", "hosts-up", "reach", "report", "hosts-down"}

func stageWeights() []float64 { return []float64{5, 25, 40, 25, 5} }

// Run executes the job. The lab is always removed, also on error and on
// cancellation (with a context that is not cancelled, so cleanup finishes).
func Run(ctx context.Context, req Request, deps Deps) (res *Result, err error) {
	if deps.Pool == nil {
		deps.Pool = pool.New(0, 0)
	}
	st := progress.NewStages(deps.Progress, stageNames, stageWeights())
	if len(req.Groups) == 0 {
		return nil, tsimerr.Inputf("no flows to run")
	}
	f := req.Facts
	eng := trace.New(f)
	res = &Result{}

	// 1. Trace: one document per group; flow ids unique across the job so
	// one lab serves every document.
	all := &doc.Document{Schema: doc.Schema}
	n := 0
	for gi, g := range req.Groups {
		d := NewDoc(f)
		for _, fl := range g {
			n++
			fl.ID = fmt.Sprintf("f%d", n)
			d.Flows = append(d.Flows, fl)
		}
		if gi < len(req.Given) && req.Given[gi] != nil {
			if len(req.Given[gi]) != len(g) {
				return nil, tsimerr.Inputf("group %d: %d given traces for %d flows", gi+1, len(req.Given[gi]), len(g))
			}
			for i, t := range req.Given[gi] {
				t.Flow = g[i].ID
				d.Trace = append(d.Trace, t)
			}
		} else {
			ts, err := eng.TraceAll(ctx, d.Flows)
			if err != nil {
				return nil, err
			}
			// Every trace is kept until the report is written: one copy of
			// each hop the ECMP branches share (a fifth of the memory on
			// generated networks, the same document).
			for _, t := range ts {
				trace.ShareHops(t)
			}
			d.Trace = ts
		}
		res.Docs = append(res.Docs, d)
		all.Flows = append(all.Flows, d.Flows...)
		all.Trace = append(all.Trace, d.Trace...)
		msg := fmt.Sprintf("%d flows traced", n)
		if len(req.Given) > 0 {
			msg = fmt.Sprintf("%d flows on the given path (simulation skipped)", n)
		}
		st.Report("trace", float64(gi+1)/float64(len(req.Groups)), "", msg)
	}
	all.Facts = res.Docs[0].Facts

	// 2. Lab.
	st.Report("hosts-up", 0, "", "building the lab")
	hopts := hosts.Options{Scope: req.Scope, RegistryDir: req.Registry, Log: deps.Log, Pool: deps.Pool, Label: req.Label}
	lab, err := hosts.Up(ctx, f, all, hopts)
	if err != nil {
		return nil, err
	}
	res.LabID = lab.ID
	defer func() {
		// Cleanup must finish even when ctx is cancelled or timed out.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		st.Report("hosts-down", 0, "", "removing lab "+lab.ID)
		if derr := hosts.Down(cctx, lab.ID, hopts); derr != nil && !errors.Is(derr, hosts.ErrNoLab) {
			err = errors.Join(err, derr)
		}
		for _, d := range res.Docs {
			d.Lab = cloneLab(lab)
			d.Lab.Removed = true
		}
		st.Report("hosts-down", 1, "", "lab removed")
	}()
	st.Report("hosts-up", 1, "", fmt.Sprintf("lab %s: %d routers, %d hosts", lab.ID, len(lab.Routers), len(lab.Hosts)))

	// 3. Reach, all flows at once on the one lab.
	all.Lab = lab
	ropts := reach.Options{Timeout: req.ProbeTimeout, Log: deps.Log, Pool: deps.Pool, ReuseEndToEnd: !req.IsolateAll}
	if err := reach.Run(ctx, f, all, ropts); err != nil {
		return res, err
	}
	byFlow := map[string]*doc.Reach{}
	for _, r := range all.Reach {
		byFlow[r.Flow] = r
	}
	for _, d := range res.Docs {
		for _, fl := range d.Flows {
			if r := byFlow[fl.ID]; r != nil {
				d.Reach = append(d.Reach, r)
			}
		}
		d.Lab = cloneLab(lab)
	}
	st.Report("reach", 1, "", "probes done")
	if deps.Reached != nil {
		deps.Reached(res.Docs)
	}

	if req.Output == "" {
		return res, nil
	}
	// 4. One PDF rendered from every document (CPU-bound, on a CPU slot),
	// with continuous page numbers and, for several documents, a contents
	// page; each document records its parts' pages in that file.
	if err := os.MkdirAll(filepath.Dir(req.Output), 0o755); err != nil {
		return res, tsimerr.Envf("report: %w", err)
	}
	st.Report("report", 0, "", fmt.Sprintf("rendering %d document(s)", len(res.Docs)))
	var rendered pdf.Rendered
	g, _ := deps.Pool.Group(ctx)
	g.GoCPU(func(ctx context.Context) error {
		var err error
		rendered, err = pdf.Merge(ctx, res.Docs, req.Output, pdf.Options{Paper: req.Paper, Now: req.Now,
			Progress: func(done, total int) { st.Report("report", float64(done)/float64(total), "", "") }})
		return err
	})
	if err := g.Wait(); err != nil {
		return res, err
	}
	res.Merged = &doc.Merged{PDF: req.Output, Pages: rendered.Pages, Documents: len(res.Docs)}
	for i, d := range res.Docs {
		d.Report = &doc.Report{PDF: req.Output, Pages: rendered.Pages, Sections: rendered.Sections[i]}
	}
	st.Report("report", 1, "", fmt.Sprintf("%s: %d pages", req.Output, rendered.Pages))
	return res, nil
}

func cloneLab(l *doc.Lab) *doc.Lab {
	c := *l
	return &c
}
