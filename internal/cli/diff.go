package cli

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v3"

	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/tsimerr"
	"github.com/tsim-dev/tsim/pdf"
	"github.com/tsim-dev/tsim/sweep"
)

func (a *app) diffCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "diff",
		Usage: "change impact: every flow whose answer differs between two facts sets",
		UsageText: "tsim diff --facts NEW --reference OLD --flows FILE [--format text|json|csv] [-o FILE.pdf]\n" +
			"tsim diff --facts NEW --reference OLD -s PREFIX -d PREFIX [-p SPEC]",
		Description: "Traces the same flows with the reference facts (before a change) and with --facts (after\n" +
			"it, or with a proposed iptables-save edited by hand) and lists every flow whose answer\n" +
			"differs: disposition, deciding router/rule, path, or the rules that accepted it. The flows\n" +
			"come from a flows file (as `tsim trace --flows`) or from a header space as `tsim sweep`\n" +
			"takes it (-s/-d prefixes or ranges, -p SPEC of any size): the space is split into classes\n" +
			"both facts sets treat alike, so it is never enumerated. One line per changed flow (or\n" +
			"rectangle of flows); -o writes the PDF section \"what this change does\".\n" +
			"Exit 0 when nothing changed, 1 when something did.",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "reference", Aliases: []string{"r"}, Usage: "facts before the change (directory or normalized file; \"example\": the built-in example)", TakesFile: true},
			&ucli.StringFlag{Name: "flows", Usage: "compare the flows of FILE (NDJSON or CSV src,dst,spec[,expect])", TakesFile: true},
			&ucli.StringFlag{Name: "src", Aliases: []string{"s"}, Usage: "source address, prefix or range (header space)"},
			&ucli.StringFlag{Name: "dst", Aliases: []string{"d"}, Usage: "destination address, prefix or range (header space)"},
			&ucli.StringFlag{Name: "services", Aliases: []string{"p"}, Usage: "SPEC of the space, e.g. 1-65535/tcp,icmp (default: icmp)"},
			&ucli.StringFlag{Name: "ingress", Usage: "ROUTER:IFACE where sources of the space outside the network enter"},
			&ucli.StringFlag{Name: "format", Usage: "text, json or csv (default by --json/--text/TTY)"},
			&ucli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "also write the PDF \"what this change does\" to FILE", TakesFile: true},
			&ucli.StringFlag{Name: "paper", Value: "A4", Usage: "PDF paper size: A4 or Letter"},
		},
		Action: a.diff,
	}
}

func (a *app) diff(ctx context.Context, cmd *ucli.Command) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	format, err := a.outFormat(cmd)
	if err != nil {
		return err
	}
	refPath := cmd.String("reference")
	if refPath == "" {
		return tsimerr.Inputf("diff: missing required flag --reference, the facts before the change (see tsim diff --help)")
	}
	paper, err := paperName(cmd.String("paper"))
	if err != nil {
		return err
	}
	now, err := reportTime()
	if err != nil {
		return err
	}
	byFile := cmd.String("flows") != ""
	var sp sweep.Space
	if !byFile {
		if sp, err = spaceFromFlags(cmd); err != nil {
			return tsimerr.Inputf("give --flows FILE or a space (-s, -d, -p): %w", err)
		}
	}
	cur, err := a.loadFacts(ctx, cmd)
	if err != nil {
		return err
	}
	if refPath == "example" {
		refPath = ""
	}
	ref, err := facts.Load(ctx, refPath)
	if err != nil {
		return fmt.Errorf("--reference: %w", err)
	}
	rm, cm := sweep.NewModel(ref), sweep.NewModel(cur)
	res := &sweep.DiffResult{Reference: ref.Source, New: cur.Source}
	if byFile {
		ff, err := flowsFile(cmd)
		if err != nil {
			return err
		}
		flows := ff.Flows()
		for _, fl := range flows {
			for _, m := range []*sweep.Model{rm, cm} {
				if err := m.Engine.Validate(fl); err != nil {
					return err
				}
			}
		}
		res.Scope = "flows " + cmd.String("flows")
		res.Flows = float64(len(flows))
		if res.Changes, err = sweep.DiffFlows(ctx, rm, cm, flows); err != nil {
			return err
		}
	} else {
		spec := cmd.String("services")
		if spec == "" {
			spec = "icmp"
		}
		for _, m := range []*sweep.Model{rm, cm} {
			if err := m.Engine.Validate(sweep.FlowAt("diff", "icmp", sp.Src.Lo, sp.Dst.Lo, 0, sp.Ingress)); err != nil {
				return err
			}
		}
		res.Scope = sweep.AddrString(sp.Src) + " → " + sweep.AddrString(sp.Dst) + " " + spec
		if sp.Ingress != "" {
			res.Scope += " entering at " + sp.Ingress
		}
		var st sweep.Stats
		if res.Changes, st, err = sweep.DiffSpace(ctx, sp, rm, cm); err != nil {
			return err
		}
		res.Flows, res.Classes = st.Flows, st.Classes
	}
	if out := cmd.String("output"); out != "" {
		if _, err := pdf.WriteDiff(ctx, res, out, pdf.Options{Paper: paper, Now: now}); err != nil {
			return tsimerr.Env(err)
		}
	}
	w := bufio.NewWriterSize(a.io.Out, 1<<16)
	switch format {
	case "text":
		for _, c := range res.Changes {
			fmt.Fprintln(w, c.Line())
		}
		if byFile {
			fmt.Fprintf(w, "# %d changed of %s flows (%s)\n", len(res.Changes), flowCount(res.Flows), res.Scope)
		} else {
			fmt.Fprintf(w, "# %s changed of %s flows in %d lines (%s)\n", flowCount(res.ChangedFlows()), flowCount(res.Flows), len(res.Changes), res.Scope)
		}
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write([]string{"src", "dst", "proto", "ports", "what", "old", "new"})
		for _, c := range res.Changes {
			src, dst, proto, ports := "", "", "", ""
			if c.Flow != nil {
				src, dst, proto = c.Flow.Src, c.Flow.Dst, c.Flow.Proto
				if proto != "icmp" {
					ports = fmt.Sprint(c.Flow.DPort)
				}
			} else {
				g := c.Group
				src, dst, proto = sweep.AddrString(g.Src), sweep.AddrString(g.Dst), g.Proto
				if proto != "icmp" {
					ports = sweep.PortString(g.Runs[0].Ports)
				}
			}
			cw.Write([]string{src, dst, proto, ports, strings.Join(c.What, " "), c.Old.String(), c.New.String()})
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return err
		}
	default:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(res); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if res.Changed() {
		return tsimerr.ErrNegative
	}
	return nil
}
