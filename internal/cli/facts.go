package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v3"

	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/fsx"
	"github.com/tsim-dev/tsim/internal/tsimerr"
	"github.com/tsim-dev/tsim/sweep"
)

func (a *app) factsCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "facts",
		Usage: "load, check, show and collect router facts",
		Description: "Facts are accepted as a directory of raw section files (<router>_facts.txt, as written\n" +
			"by `tsim facts script`), a directory of the predecessor's JSON facts (<router>.json),\n" +
			"or one normalized facts file written by `tsim facts parse`. Without --facts the\n" +
			"built-in example network is used.",
		Commands: []*ucli.Command{
			{
				Name:      "show",
				Usage:     "print routers, interfaces, subnets and counts",
				UsageText: "tsim facts show [--facts PATH] [--json]",
				Action:    a.factsShow,
			},
			{
				Name:      "check",
				Usage:     "lint the facts: one PATH:LINE: error|warning: message per finding; exit 1 on any error",
				UsageText: "tsim facts check [--facts PATH] [--json] [--unreachable-rules]",
				Description: "Prints one finding per line and the summary `N errors, M warnings` (on stderr when\n" +
					"stdout is not a terminal, so scripts read only findings; --text puts it on stdout).\n" +
					"--json prints {\"findings\":[{\"pos\":{\"file\",\"line\"},\"severity\",\"router\",\"message\"}],\"errors\":N,\"warnings\":M}.\n" +
					"Warns, among others, about iptables rules that can never match because earlier rules of\n" +
					"their chain with terminating targets match everything they match (shadowed).\n" +
					"--unreachable-rules also sweeps every flow the simulation traces through the whole network\n" +
					"(as `tsim sweep`) and warns about filter rules that decide none of them.",
				Flags: []ucli.Flag{
					&ucli.BoolFlag{Name: "unreachable-rules", Usage: "also report filter rules no traced flow of the whole network reaches (slower: sweeps every flow)"},
				},
				Action: a.factsCheck,
			},
			{
				Name:      "parse",
				Usage:     "normalize any accepted facts input to one JSON file",
				UsageText: "tsim facts parse [--facts PATH] [-o FILE]",
				Flags: []ucli.Flag{
					&ucli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to FILE (atomically) instead of stdout", TakesFile: true},
				},
				Action: a.factsParse,
			},
			{
				Name:      "script",
				Usage:     "print the POSIX sh collector to run as root on a router",
				UsageText: "tsim facts script > collect.sh; sh collect.sh > $(hostname)_facts.txt",
				Action: func(ctx context.Context, cmd *ucli.Command) error {
					if err := noArgs(cmd); err != nil {
						return err
					}
					_, err := io.WriteString(a.io.Out, facts.CollectorScript())
					return err
				},
			},
		},
	}
}

// loadFacts loads the facts named by --facts (or the built-in example).
func (a *app) loadFacts(ctx context.Context, cmd *ucli.Command) (*facts.Facts, error) {
	f, err := facts.Load(ctx, cmd.String("facts"))
	if err != nil {
		return nil, err
	}
	a.log.Debug().Str("source", f.Source).Int("routers", len(f.Routers)).Msg("facts loaded")
	return f, nil
}

// showRouter is one router of `facts show --json` (DESIGN §14).
type showRouter struct {
	Name string `json:"name"`
	Type string `json:"type,omitempty"`
	facts.RouterCounts
}

func (a *app) factsShow(ctx context.Context, cmd *ucli.Command) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	f, err := a.loadFacts(ctx, cmd)
	if err != nil {
		return err
	}
	out := struct {
		Source  string       `json:"source"`
		Digest  string       `json:"digest"`
		Routers []showRouter `json:"routers"`
	}{Source: f.Source, Digest: f.Digest}
	for _, r := range f.Routers {
		out.Routers = append(out.Routers, showRouter{Name: r.Name, Type: r.Metadata.Type, RouterCounts: facts.Counts(r)})
	}
	if !a.textOut(cmd) {
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.io.Out, "%s\n", b)
		return err
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "facts %s (%s), %d routers\n\n", f.Source, shortDigest(f.Digest), len(f.Routers))
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTER\tTYPE\tIFACES\tADDRS\tRULES\tTABLES\tROUTES\tIPT RULES\tIPSETS\tMEMBERS\tSUBNETS")
	for _, r := range out.Routers {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", r.Name, orDash(r.Type), r.Interfaces, r.Addresses,
			r.Rules, r.Tables, r.Routes, r.IptablesRules, r.Ipsets, r.IpsetMembers, strings.Join(r.Subnets, " "))
	}
	tw.Flush()
	buf.WriteString("\n")
	for _, r := range f.Routers {
		fmt.Fprintf(&buf, "%s\n", r.Name)
		for _, i := range r.Interfaces {
			var addrs []string
			for _, ad := range i.Addrs {
				addrs = append(addrs, ad.Prefix.String())
			}
			state := i.State
			if state == "" {
				state = "-"
			}
			fmt.Fprintf(&buf, "  %-12s %-8s mtu %-5d %s\n", i.Name, state, i.MTU, strings.Join(addrs, " "))
		}
	}
	_, err = a.io.Out.Write(buf.Bytes())
	return err
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

func (a *app) factsCheck(ctx context.Context, cmd *ucli.Command) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	f, err := a.loadFacts(ctx, cmd)
	var pe *facts.ParseError
	if errors.As(err, &pe) {
		// Facts that do not load: list every problem, not just the first.
		if werr := a.writeFindings(cmd, pe.Findings); werr != nil {
			return werr
		}
		return err
	}
	if err != nil {
		return err
	}
	findings := a.lint(f)
	if cmd.Bool("unreachable-rules") {
		more, st, err := sweep.Undecided(ctx, f, findings)
		if err != nil {
			return err
		}
		a.log.Info().Int("classes", st.Classes).Int("traces", st.Traces).Msg("swept for unreachable rules")
		findings = append(findings, more...)
		facts.SortFindings(findings)
	}
	if err := a.writeFindings(cmd, findings); err != nil {
		return err
	}
	if errs, _ := countFindings(findings); errs > 0 {
		return tsimerr.ErrNegative
	}
	return nil
}

func countFindings(fs []facts.Finding) (errs, warns int) {
	for _, fd := range fs {
		if fd.Severity == facts.SevError {
			errs++
		} else {
			warns++
		}
	}
	return errs, warns
}

// writeFindings prints lint findings: one `PATH:LINE: error|warning:
// message` line each and the summary `N errors, M warnings` (on stdout
// for a person, on stderr when a script reads the lines), or with --json
// {"findings":[{"pos":{"file","line"},"severity","router","message"}],
// "errors","warnings"}.
func (a *app) writeFindings(cmd *ucli.Command, fs []facts.Finding) error {
	errs, warns := countFindings(fs)
	a.log.Info().Int("findings", len(fs)).Int("errors", errs).Msg("facts checked")
	if cmd.Bool("json") {
		if fs == nil {
			fs = []facts.Finding{}
		}
		b, err := json.MarshalIndent(map[string]any{"findings": fs, "errors": errs, "warnings": warns}, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.io.Out, "%s\n", b)
		return err
	}
	var buf bytes.Buffer
	for _, fd := range fs {
		buf.WriteString(fd.String())
		buf.WriteByte('\n')
	}
	summary := fmt.Sprintf("%d %s, %d %s\n", errs, plural(errs, "error", "errors"), warns, plural(warns, "warning", "warnings"))
	toOut := cmd.Bool("text") || isTerminal(a.io.Out)
	if toOut {
		buf.WriteString(summary)
	}
	if _, err := a.io.Out.Write(buf.Bytes()); err != nil {
		return err
	}
	if !toOut && !cmd.Bool("quiet") {
		io.WriteString(a.io.Err, summary)
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func (a *app) factsParse(ctx context.Context, cmd *ucli.Command) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	f, err := a.loadFacts(ctx, cmd)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := facts.WriteNormalized(&buf, f); err != nil {
		return err
	}
	out := cmd.String("output")
	if out == "" || out == "-" {
		_, err := a.io.Out.Write(buf.Bytes())
		return err
	}
	if err := fsx.WriteFileAtomic(out, buf.Bytes(), 0o644); err != nil {
		return tsimerr.Env(err)
	}
	return nil
}
