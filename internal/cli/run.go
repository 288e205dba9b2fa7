package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/pipeline"
	"github.com/tsim-dev/tsim/internal/pool"
	"github.com/tsim-dev/tsim/internal/progress"
	"github.com/tsim-dev/tsim/internal/tsimerr"
	"github.com/tsim-dev/tsim/trace"
)

func (a *app) runCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "run",
		Usage: "the whole pipeline in one process: trace, lab, probes, PDF report, lab removed (root)",
		UsageText: "tsim run -s SRC -d DST -p SPEC -o report.pdf\n" +
			"tsim run --flows FILE -o report.pdf     (NDJSON or CSV src,dst,spec[,expect]; expect = allow|deny)",
		Description: "Single question: prints the final document (a rendering on a terminal); exit 0 when every\n" +
			"service is reachable end to end, 1 otherwise.\n" +
			"Flows file: every line becomes one report (all lines share one lab); prints one PASS/FAIL\n" +
			"line per line that has an expectation (INFO otherwise) and a summary, like a test runner\n" +
			"(--json prints one document per line instead); exit 1 if any expectation fails.\n" +
			"Ctrl-C or --timeout stop the run and remove the lab (exit 130, or 3 on timeout).",
		Flags: append(flowFlags(),
			&ucli.StringFlag{Name: "flows", Usage: "run every flow of FILE", TakesFile: true},
			&ucli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "report.pdf", Usage: "the merged PDF report (\"\" to skip the report)", TakesFile: true},
			&ucli.StringFlag{Name: "paper", Value: "a4", Usage: "a4 or letter"},
			&ucli.StringFlag{Name: "scope", Value: "path", Usage: "lab scope: path (only the routers the flows can touch: request, reply, every ECMP branch) or all (every router)"},
			&ucli.DurationFlag{Name: "timeout", Usage: "stop the whole run after this long (exit 3), e.g. 30s"},
			&ucli.DurationFlag{Name: "probe-timeout", Usage: "per-probe timeout (default: reach's)"},
			isolateAllFlag(),
			&ucli.StringFlag{Name: "progress", Value: "auto", Usage: "auto (a bar on a terminal), bar, json (NDJSON on stderr) or none"},
		),
		Action: a.run,
	}
}

// progressSink picks where progress events go.
func (a *app) progressSink(cmd *ucli.Command) (progress.Sink, error) {
	mode := cmd.String("progress")
	if cmd.Bool("quiet") && mode == "auto" {
		mode = "none"
	}
	switch mode {
	case "auto":
		if isTerminal(a.io.Err) {
			return progress.NewBar(a.io.Err), nil
		}
		return progress.Nop{}, nil
	case "bar":
		return progress.NewBar(a.io.Err), nil
	case "json":
		return progress.NewJSON(a.io.Err), nil
	case "none":
		return progress.Nop{}, nil
	}
	return nil, tsimerr.Inputf("--progress %q: want auto, bar, json or none", mode)
}

// groupFlows splits a flows file into documents, one per line of the file.
func groupFlows(flows []*doc.Flow) [][]*doc.Flow {
	var out [][]*doc.Flow
	for _, f := range flows {
		if n := len(out); n > 0 && out[n-1][0].Line == f.Line {
			out[n-1] = append(out[n-1], f)
			continue
		}
		out = append(out, []*doc.Flow{f})
	}
	return out
}

func (a *app) run(ctx context.Context, cmd *ucli.Command) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	paper, err := paperName(cmd.String("paper"))
	if err != nil {
		return err
	}
	now, err := reportTime()
	if err != nil {
		return err
	}
	sink, err := a.progressSink(cmd)
	if err != nil {
		return err
	}
	scope := cmd.String("scope")
	if scope != "all" && scope != "path" {
		return tsimerr.Inputf("--scope %q: want all or path", scope)
	}
	var groups [][]*doc.Flow
	batch := cmd.String("flows") != ""
	if batch {
		flows, err := flowsFromFile(cmd)
		if err != nil {
			return err
		}
		groups = groupFlows(flows)
	} else {
		flows, err := flowsFromFlags(cmd)
		if err != nil {
			return err
		}
		groups = [][]*doc.Flow{flows}
	}
	f, err := a.loadFacts(ctx, cmd)
	if err != nil {
		return err
	}
	if t := cmd.Duration("timeout"); t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	start := time.Now()
	res, err := pipeline.Run(ctx, pipeline.Request{
		Facts: f, Groups: groups, Output: cmd.String("output"), Paper: paper, Now: now,
		ProbeTimeout: cmd.Duration("probe-timeout"), Scope: scope, IsolateAll: cmd.Bool("isolate-all"),
	}, pipeline.Deps{Pool: pool.New(0, 0), Progress: sink, Log: a.log})
	sink.Emit(progress.Event{Time: time.Now().UTC(), Stage: "done", Percent: 100})
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return tsimerr.Envf("run: --timeout %s reached; the lab was removed", cmd.Duration("timeout"))
		}
		return err
	}
	a.log.Info().Dur("took", time.Since(start)).Str("lab", res.LabID).Msg("run finished")
	if batch {
		return a.runBatchOutput(cmd, res)
	}
	d := res.Docs[0]
	if err := a.emit(cmd, d, renderRun); err != nil {
		return err
	}
	if !pipeline.Reachable(d) {
		return tsimerr.ErrNegative
	}
	return nil
}

// flowLabel names a document's question: "10.1.10.5 → 10.3.20.10 ssh,https".
func flowLabel(d *doc.Document) string {
	var svcs []string
	for _, f := range d.Flows {
		s := f.Service
		if s == "" {
			s = f.Proto
			if f.DPort != 0 {
				s = fmt.Sprintf("%d/%s", f.DPort, f.Proto)
			}
		}
		svcs = append(svcs, s)
	}
	return fmt.Sprintf("%s → %s %s", d.Flows[0].Src, d.Flows[0].Dst, strings.Join(svcs, ","))
}

func (a *app) runBatchOutput(cmd *ucli.Command, res *pipeline.Result) error {
	if cmd.Bool("json") {
		for _, d := range res.Docs {
			if err := doc.WriteCompact(a.io.Out, d); err != nil {
				return err
			}
		}
	}
	pass, fail, info := 0, 0, 0
	var b strings.Builder
	for _, d := range res.Docs {
		got := "deny"
		if pipeline.Reachable(d) {
			got = "allow"
		}
		want := d.Flows[0].Expect
		status := "INFO"
		switch {
		case want == "":
			info++
		case want == got:
			status = "PASS"
			pass++
		default:
			status = "FAIL"
			fail++
		}
		line := fmt.Sprintf("%-4s  %s  got %s", status, flowLabel(d), got)
		if want != "" {
			line += ", want " + want
		}
		if why := blockedBy(d); why != "" && got == "deny" {
			line += "  (" + why + ")"
		}
		b.WriteString(line + "\n")
	}
	fmt.Fprintf(&b, "\n%d passed, %d failed", pass, fail)
	if info > 0 {
		fmt.Fprintf(&b, ", %d without expectation", info)
	}
	if res.Merged != nil {
		fmt.Fprintf(&b, "; report %s (%d pages)", res.Merged.PDF, res.Merged.Pages)
	}
	b.WriteString("\n")
	w := a.io.Out
	if cmd.Bool("json") {
		w = a.io.Err
	}
	if _, err := fmt.Fprint(w, b.String()); err != nil {
		return err
	}
	if fail > 0 {
		return tsimerr.ErrNegative
	}
	return nil
}

// blockedBy summarizes where the first unreachable service was stopped.
func blockedBy(d *doc.Document) string {
	for _, r := range d.Reach {
		if r.E2E != nil && r.E2E.BlockedBy != nil {
			bb := r.E2E.BlockedBy
			return fmt.Sprintf("%s %s %s #%d", bb.Router, bb.Table, bb.Chain, bb.Index)
		}
		if r.E2E != nil && r.E2E.Verdict != doc.Reachable && r.E2E.Reason != "" {
			return r.E2E.Reason
		}
	}
	return ""
}

// renderRun is the terminal view of a finished run: the trace, then the
// live verdicts.
func renderRun(d *doc.Document) string {
	var b strings.Builder
	trace.RenderText(&b, d, false)
	b.WriteString("\n")
	for _, r := range d.Reach {
		v := "?"
		if r.E2E != nil {
			v = r.E2E.Verdict
		}
		fmt.Fprintf(&b, "%s  live %s", r.Flow, v)
		if r.E2E != nil && r.E2E.BlockedBy != nil {
			bb := r.E2E.BlockedBy
			fmt.Fprintf(&b, " — blocked by %s %s %s #%d: %s", bb.Router, bb.Table, bb.Chain, bb.Index, bb.Rule)
		}
		b.WriteString("\n")
		for _, rr := range r.Routers {
			agree := ""
			if !rr.Agrees {
				agree = "  ≠ predicted " + rr.Predicted
			}
			rule := ""
			if rr.Rule != nil {
				rule = fmt.Sprintf("  %s %s #%d", rr.Rule.Table, rr.Rule.Chain, rr.Rule.Index)
			}
			fmt.Fprintf(&b, "    %-16s %-8s%s%s\n", rr.Router, rr.Verdict, rule, agree)
		}
	}
	if d.Report != nil {
		fmt.Fprintf(&b, "\nreport: %s (%d pages)\n", d.Report.PDF, d.Report.Pages)
	}
	return b.String()
}
