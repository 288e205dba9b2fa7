package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v3"

	"github.com/tsim-dev/tsim/hosts"
	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/pipeline"
	"github.com/tsim-dev/tsim/internal/tsimerr"
	"github.com/tsim-dev/tsim/trace"
)

func (a *app) hostsCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "hosts",
		Usage: "build, list and remove labs: routers rebuilt as network namespaces (root)",
		Description: "A lab is an isolated copy of the routers (one network namespace each, with the facts'\n" +
			"interfaces, addresses, policy rules, routing tables, ipsets and iptables) plus endpoint\n" +
			"hosts for each flow. Every namespace carries the lab id; the registry lives in\n" +
			"/run/tsim/labs. Needs root (CAP_NET_ADMIN + CAP_SYS_ADMIN).",
		Commands: []*ucli.Command{
			{
				Name:      "up",
				Usage:     "build a lab for the flows of the document on stdin (or -s/-d/-p)",
				UsageText: "tsim trace -s SRC -d DST -p SPEC | tsim hosts up [--scope all|path] [--strict] [--hash-seed N]",
				Flags: append([]ucli.Flag{
					&ucli.StringFlag{Name: "scope", Value: "path", Usage: "path: only the routers the flows can touch (request, reply, every ECMP branch); all: every router of the facts"},
					&ucli.BoolFlag{Name: "strict", Usage: "exit 3 (after removing the lab) when the kernel refused any line"},
					&ucli.Uint32Flag{Name: "hash-seed", Usage: "pin net.ipv4.fib_multipath_hash_seed to `N` on every router whose facts pin none (default 1; recorded in .lab.routers[].hash_seed; `tsim trace --hash-seed N` names the ECMP branch the lab takes)"},
				}, flowFlags()...),
				Action: a.hostsUp,
			},
			{
				Name:      "down",
				Usage:     "remove a lab: the one of the document on stdin, --lab ID, --all or --stale",
				UsageText: "tsim hosts down < doc.json | tsim hosts down --lab ID | --all | --stale",
				Flags: []ucli.Flag{
					&ucli.StringFlag{Name: "lab", Usage: "remove the lab with this id"},
					&ucli.BoolFlag{Name: "all", Usage: "remove every lab in the registry"},
					&ucli.BoolFlag{Name: "stale", Usage: "remove labs whose owner process is gone"},
				},
				Action: a.hostsDown,
			},
			{
				Name:   "ls",
				Usage:  "list labs",
				Action: a.hostsLs,
			},
		},
	}
}

// flowDoc builds a traced document from -s/-d/-p, for stages that accept
// either flags or a document.
func (a *app) flowDoc(ctx context.Context, cmd *ucli.Command) (*doc.Document, error) {
	flows, err := flowsFromFlags(cmd)
	if err != nil {
		return nil, err
	}
	f, err := a.loadFacts(ctx, cmd)
	if err != nil {
		return nil, err
	}
	d := pipeline.NewDoc(f)
	d.Flows = flows
	eng := trace.New(f)
	for _, fl := range flows {
		d.Trace = append(d.Trace, eng.Trace(ctx, fl))
	}
	return d, nil
}

func (a *app) hostsOptions() hosts.Options {
	return hosts.Options{Log: a.log, OwnerPID: os.Getppid()}
}

func (a *app) hostsUp(ctx context.Context, cmd *ucli.Command) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	scope := cmd.String("scope")
	if scope != hosts.ScopeAll && scope != hosts.ScopePath {
		return tsimerr.Inputf("--scope %q: want all or path", scope)
	}
	var d *doc.Document
	var err error
	if cmd.IsSet("src") || cmd.IsSet("dst") {
		d, err = a.flowDoc(ctx, cmd)
	} else {
		d, err = a.readDoc("hosts up")
	}
	if err != nil {
		return err
	}
	if len(d.Flows) == 0 {
		return tsimerr.Inputf("hosts up: the document has no flows: run `tsim trace` first")
	}
	if d.Lab != nil && !d.Lab.Removed {
		return tsimerr.Inputf("hosts up: the document already has lab %s: run `tsim hosts down` first", d.Lab.ID)
	}
	f, err := a.factsForDoc(ctx, cmd, d)
	if err != nil {
		return err
	}
	if d.Trace == nil {
		eng := trace.New(f)
		for _, fl := range d.Flows {
			d.Trace = append(d.Trace, eng.Trace(ctx, fl))
		}
	}
	opts := a.hostsOptions()
	if !cmd.IsSet("scope") {
		scope = "" // path, or every router without a trace or when the flows cross none
	}
	opts.Scope, opts.Strict, opts.HashSeed = scope, cmd.Bool("strict"), cmd.Uint32("hash-seed")
	d.Lab = nil
	if _, err := hosts.Up(ctx, f, d, opts); err != nil {
		return err
	}
	return a.emit(cmd, d, renderLab)
}

func renderLab(d *doc.Document) string {
	var b strings.Builder
	l := d.Lab
	fmt.Fprintf(&b, "lab %s: %d routers, %d hosts\n", l.ID, len(l.Routers), len(l.Hosts))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, r := range l.Routers {
		fmt.Fprintf(tw, "  router\t%s\t%s\t%d refused\n", r.Name, r.Netns, len(r.Refused))
	}
	for _, h := range l.Hosts {
		fmt.Fprintf(tw, "  host\t%s\t%s\t%s via %s %s\n", h.Name, h.Netns, h.IP, h.Router, h.Iface)
	}
	tw.Flush()
	b.WriteString(refusedText(l))
	return b.String()
}

func (a *app) hostsDown(ctx context.Context, cmd *ucli.Command) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	opts := a.hostsOptions()
	n := 0
	for _, f := range []string{"lab", "all", "stale"} {
		if cmd.IsSet(f) {
			n++
		}
	}
	if n > 1 {
		return tsimerr.Inputf("hosts down: --lab, --all and --stale exclude each other")
	}
	var ids []string
	var err error
	switch {
	case cmd.Bool("all"):
		ids, err = hosts.DownAll(ctx, opts)
	case cmd.Bool("stale"):
		ids, err = hosts.DownStale(ctx, opts)
	case cmd.String("lab") != "":
		err = hosts.Down(ctx, cmd.String("lab"), opts)
		ids = []string{cmd.String("lab")}
	default:
		d, rerr := a.readDoc("hosts down")
		if rerr != nil {
			return rerr
		}
		if d.Lab == nil {
			return tsimerr.Inputf("hosts down: the document has no lab: nothing to remove (run `tsim hosts up` first, or use --lab/--all/--stale)")
		}
		if !d.Lab.Removed {
			if err := hosts.Down(ctx, d.Lab.ID, opts); err != nil && !errors.Is(err, hosts.ErrNoLab) {
				return err
			} else if err != nil {
				a.log.Warn().Str("lab", d.Lab.ID).Msg("lab already gone")
			}
		}
		d.Lab.Removed = true
		return a.emit(cmd, d, func(d *doc.Document) string { return fmt.Sprintf("removed lab %s\n", d.Lab.ID) })
	}
	if errors.Is(err, hosts.ErrNoLab) {
		return tsimerr.Input(err)
	}
	if err != nil {
		return err
	}
	for _, id := range ids {
		a.log.Info().Str("lab", id).Msg("lab removed")
	}
	if !a.textOut(cmd) {
		if ids == nil {
			ids = []string{}
		}
		b, _ := json.Marshal(map[string]any{"removed": ids})
		_, err := fmt.Fprintf(a.io.Out, "%s\n", b)
		return err
	}
	for _, id := range ids {
		fmt.Fprintf(a.io.Out, "removed lab %s\n", id)
	}
	return nil
}

func (a *app) hostsLs(ctx context.Context, cmd *ucli.Command) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	labs, err := hosts.List(a.hostsOptions())
	if err != nil {
		return err
	}
	if !a.textOut(cmd) {
		b, _ := json.MarshalIndent(map[string]any{"labs": labs}, "", "  ")
		_, err := fmt.Fprintf(a.io.Out, "%s\n", b)
		return err
	}
	tw := tabwriter.NewWriter(a.io.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tOWNER\tCREATED\tROUTERS\tHOSTS\tSTATE")
	for _, l := range labs {
		state := "up"
		switch {
		case l.Stale:
			state = "stale (owner gone; tsim hosts down --stale)"
		case !l.Complete:
			state = "building"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\n", l.ID, l.OwnerPID, l.Created.Format("2006-01-02 15:04:05"), len(l.Routers), len(l.Hosts), state)
	}
	return tw.Flush()
}
