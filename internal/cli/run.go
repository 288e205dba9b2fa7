package cli

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/flowtest"
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
			"tsim run --flows FILE [--junit FILE] -o report.pdf",
		Description: "Single question: prints the final document (a rendering on a terminal); exit 0 when every\n" +
			"service is reachable end to end, 1 otherwise.\n" +
			"Flows file (the format of `tsim trace --flows`): every line becomes one report (all lines\n" +
			"share one lab) and one test: PASS, FAIL or UNKNOWN by the live probes (INFO without an\n" +
			"expectation), then `N passed, N failed, N unknown`, like a test runner (--json prints one\n" +
			"document per line instead, the summary on stderr); exit 0 only when every expectation holds.\n" +
			"Ctrl-C or --timeout stop the run and remove the lab (exit 130, or 3 on timeout).",
		Flags: append(flowFlags(),
			&ucli.StringFlag{Name: "flows", Usage: "test every line of FILE (CSV or NDJSON) against its expect column", TakesFile: true},
			junitFlag(),
			shardFlag(),
			&ucli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "report.pdf", Usage: "the PDF report of every document (\"\" to skip the report)", TakesFile: true},
			&ucli.StringFlag{Name: "paper", Value: "a4", Usage: "a4 or letter"},
			&ucli.StringFlag{Name: "scope", Value: "path", Usage: "lab scope: path (only the routers the flows can touch: request, reply, every ECMP branch) or all (every router)"},
			&ucli.DurationFlag{Name: "timeout", Usage: "stop the whole run after this long (exit 3), e.g. 30s"},
			&ucli.DurationFlag{Name: "probe-timeout", Usage: "per-probe timeout (default: reach's)"},
			isolateAllFlag(),
			&ucli.StringFlag{Name: "progress", Value: "auto", Usage: "auto (a bar on a terminal, not with TERM=dumb), bar, json (NDJSON on stderr) or none"},
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
		// The bar redraws its line with escape codes a dumb terminal lacks.
		if isTerminal(a.io.Err) && os.Getenv("TERM") != "dumb" {
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
	if !cmd.IsSet("scope") {
		scope = "" // path, or every router when the flows cross none
	}
	var groups [][]*doc.Flow
	var file *flowtest.File
	batch := cmd.String("flows") != ""
	if batch {
		if file, err = flowsFile(cmd); err != nil {
			return err
		}
		for _, l := range file.Lines {
			groups = append(groups, l.Flows)
		}
	} else {
		for _, fl := range []string{"junit", "shard"} {
			if cmd.IsSet(fl) {
				return tsimerr.Inputf("--%s needs --flows FILE", fl)
			}
		}
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
		return a.runBatchOutput(cmd, file, f, res, start)
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

func (a *app) runBatchOutput(cmd *ucli.Command, file *flowtest.File, f *facts.Facts, res *pipeline.Result, start time.Time) error {
	format := "text"
	if cmd.Bool("json") {
		format = "json"
	}
	w := bufio.NewWriter(a.io.Out)
	defer w.Flush()
	color := a.color(cmd)
	cases := make([]*flowtest.Case, 0, len(res.Docs))
	for i, d := range res.Docs {
		c := flowtest.ReachCase(file.Name, file.Lines[i], d, 0)
		cases = append(cases, c)
		if format == "json" {
			if err := doc.WriteCompact(w, d); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintln(w, caseLine(c, color))
	}
	run := testRun{name: "tsim run --flows " + file.Name, file: file.Name, cases: cases, start: start,
		props: [][2]string{{"facts", f.Source}, {"facts.digest", f.Digest}, {"lab", res.LabID}}, facts: f}
	if res.Merged != nil {
		run.trailer = fmt.Sprintf("; report %s (%d pages)", res.Merged.PDF, res.Merged.Pages)
	}
	return a.finishTests(cmd, w, format, run)
}

// refusedText lists what the kernel refused to apply in a lab, one line
// each: the live answers of those routers may differ from the facts.
func refusedText(l *doc.Lab) string {
	if l == nil {
		return ""
	}
	var b strings.Builder
	for _, r := range l.Routers {
		for _, x := range r.Refused {
			fmt.Fprintf(&b, "  refused on %s: %s %s: %s\n", r.Name, x.What, x.Line, x.Error)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return "\nthe lab differs from the facts where the kernel refused:\n" + b.String()
}

// renderRun is the terminal view of a finished run: the trace, then the
// live verdicts.
func renderRun(d *doc.Document) string {
	var b strings.Builder
	trace.RenderText(&b, d, false)
	b.WriteString("\n")
	for _, r := range d.Reach {
		b.WriteString(liveText(r))
		for _, rr := range r.Routers {
			agree := ""
			if !rr.Agrees {
				agree = "  ≠ predicted " + rr.Predicted
			}
			rule := ""
			if rr.Rule != nil {
				rule = fmt.Sprintf("  %s %s #%d", rr.Rule.Table, rr.Rule.Chain, rr.Rule.Index)
			}
			why := ""
			if rr.Reason != "" && (rr.Verdict != doc.Allowed || !rr.Agrees) {
				why = "  (" + rr.Reason + ")"
			}
			fmt.Fprintf(&b, "    %-16s %-8s%s%s%s\n", rr.Router, rr.Verdict, rule, agree, why)
		}
	}
	b.WriteString(refusedText(d.Lab))
	if d.Report != nil {
		fmt.Fprintf(&b, "\nreport: %s (%d pages)\n", d.Report.PDF, d.Report.Pages)
	}
	return b.String()
}
