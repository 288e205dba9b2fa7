package cli

import (
	"context"
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v3"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/pipeline"
	"github.com/tsim-dev/tsim/internal/tsimerr"
	"github.com/tsim-dev/tsim/reach"
)

func (a *app) reachCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "reach",
		Usage:     "send real probes through the lab of the document on stdin; verdicts and deciding rules from counters (root)",
		UsageText: "tsim trace -s SRC -d DST -p SPEC | tsim hosts up | tsim reach [--timeout D] | tsim hosts down",
		Description: "Two views per flow: end to end across the lab, and per router (each router tested alone\n" +
			"by hosts impersonating its neighbours). Each live verdict sits beside trace's prediction.\n" +
			"End to end, every router of the lab is watched: the path the request and the reply really\n" +
			"took is reported beside the predicted one (path_differs), a router is ALLOWED only when its\n" +
			"own counters moved, and a stopped connection names the router, the kernel's rule or the\n" +
			"routing cause, and the direction (request or reply). No answer and nothing moved is UNKNOWN.\n" +
			"Exit 0 when every flow is reachable end to end, 1 otherwise.",
		Flags: []ucli.Flag{
			&ucli.DurationFlag{Name: "timeout", Value: reach.DefaultTimeout, Usage: "per-probe timeout (a probe dropped by a rule ends as soon as the rule's counter moves)"},
			&ucli.BoolFlag{Name: "e2e-only", Usage: "skip the per-router view"},
			isolateAllFlag(),
		},
		Action: a.reach,
	}
}

func (a *app) reach(ctx context.Context, cmd *ucli.Command) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	if cmd.Duration("timeout") <= 0 {
		return tsimerr.Inputf("--timeout must be positive")
	}
	d, err := a.readDoc("reach")
	if err != nil {
		return err
	}
	if d.Lab == nil {
		return tsimerr.Input(doc.Need("lab", "tsim hosts up"))
	}
	if d.Lab.Removed {
		return tsimerr.Inputf("reach: lab %s was removed: run `tsim hosts up` again", d.Lab.ID)
	}
	f, err := a.factsForDoc(ctx, cmd, d)
	if err != nil {
		return err
	}
	if err := reach.Run(ctx, f, d, reach.Options{Timeout: cmd.Duration("timeout"), SkipPerRouter: cmd.Bool("e2e-only"),
		ReuseEndToEnd: !cmd.Bool("isolate-all"), Log: a.log}); err != nil {
		return err
	}
	if err := a.emit(cmd, d, renderReach); err != nil {
		return err
	}
	if !pipeline.Reachable(d) {
		return tsimerr.ErrNegative
	}
	return nil
}

// isolateAllFlag turns off the reuse of end-to-end counters for the
// per-router view (DESIGN §7: every router tested alone).
func isolateAllFlag() ucli.Flag {
	return &ucli.BoolFlag{Name: "isolate-all", Usage: "per-router view: test every router of the path in its own harness, also those the end-to-end probe crossed (default: their answer comes from the end-to-end probe's counters; same verdicts, several times faster)"}
}

func renderReach(d *doc.Document) string {
	return fmt.Sprintf("lab %s\n", d.Lab.ID) + renderRun(d)
}

// liveText is the end-to-end part of one flow's reach result: the live
// verdict, who stopped it (router, rule or routing cause, direction), and
// the paths when they differ from the prediction.
func liveText(r *doc.Reach) string {
	var b strings.Builder
	e := r.E2E
	if e == nil {
		return r.Flow + "  live ?\n"
	}
	fmt.Fprintf(&b, "%s  live %s", r.Flow, e.Verdict)
	switch bb := e.BlockedBy; {
	case bb != nil && bb.Chain != "":
		fmt.Fprintf(&b, " — blocked by %s %s %s #%d (the %s): %s", bb.Router, bb.Table, bb.Chain, bb.Index, bb.Direction, bb.Rule)
	case bb != nil:
		fmt.Fprintf(&b, " — stopped at %s (the %s, %s): %s", bb.Router, bb.Direction, e.Cause, bb.Rule)
	case e.Reason != "":
		fmt.Fprintf(&b, " — %s", e.Reason)
	}
	b.WriteString("\n")
	if e.PathDiffers {
		fmt.Fprintf(&b, "    path:  live %s; predicted %s\n", strings.Join(e.Path, " "), strings.Join(e.PredictedPath, " "))
		if len(e.ReplyPath) > 0 || len(e.PredictedReplyPath) > 0 {
			fmt.Fprintf(&b, "    reply: live %s; predicted %s\n", strings.Join(e.ReplyPath, " "), strings.Join(e.PredictedReplyPath, " "))
		}
		if len(e.AlsoSeen) > 0 {
			fmt.Fprintf(&b, "    also seen by %s\n", strings.Join(e.AlsoSeen, ", "))
		}
	}
	return b.String()
}
