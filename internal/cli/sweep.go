package cli

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/tsim-dev/tsim/internal/tsimerr"
	"github.com/tsim-dev/tsim/sweep"
	"github.com/tsim-dev/tsim/trace"
)

func (a *app) sweepCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "sweep",
		Usage: "header-space reachability: which flows of SRC × DST × SPEC are delivered, which denied, by which rule",
		UsageText: "tsim sweep -s PREFIX -d PREFIX [-p SPEC] [--format text|json|csv]\n" +
			"tsim sweep -s 10.1.10.0/24 -d 10.3.0.0/16 -p 1-65535/tcp,udp,icmp",
		Description: "-s and -d take an address, a prefix (10.1.0.0/16) or a range (10.1.0.1-10.1.0.99).\n" +
			"SPEC is a comma list of PORT[/PROTO], A-B[/PROTO] of any size, service names, tcp or udp\n" +
			"alone (every port) and icmp; default: icmp. The space is not enumerated: it is split into\n" +
			"classes whose members every route, policy rule, iptables rule and ipset of the routers\n" +
			"they cross treats alike, one representative of each class is traced, and adjacent classes\n" +
			"with the same answer are merged. One line per rectangle of the space:\n" +
			"  SRC → DST PROTO: PORTS ANSWER, PORTS ANSWER, …\n" +
			"Flows from an address to itself are left out. Exit 0 when every flow is delivered (or\n" +
			"leaves the network), 1 otherwise.",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "src", Aliases: []string{"s"}, Usage: "source address, prefix or range"},
			&ucli.StringFlag{Name: "dst", Aliases: []string{"d"}, Usage: "destination address, prefix or range"},
			&ucli.StringFlag{Name: "services", Aliases: []string{"p"}, Usage: "SPEC, e.g. 1-65535/tcp,53/udp,icmp (default: icmp)"},
			&ucli.StringFlag{Name: "ingress", Usage: "ROUTER:IFACE where sources outside the network enter (as trace --ingress)"},
			&ucli.StringFlag{Name: "format", Usage: "text, json or csv (default by --json/--text/TTY)"},
			&ucli.BoolFlag{Name: "by-rule", Usage: "print one line per answer (deciding router and rule) with the flows it takes, instead of the rectangles"},
		},
		Action: a.sweep,
	}
}

// spaceFromFlags reads -s/-d/-p as a header space.
func spaceFromFlags(cmd *ucli.Command) (sweep.Space, error) {
	var sp sweep.Space
	for _, x := range []struct {
		flag string
		dst  *sweep.Range
	}{{"src", &sp.Src}, {"dst", &sp.Dst}} {
		v := cmd.String(x.flag)
		if v == "" {
			return sp, tsimerr.Inputf("%s: missing required flag --%s (see %s --help)",
				strings.TrimPrefix(commandPath(cmd), "tsim "), x.flag, commandPath(cmd))
		}
		r, err := sweep.ParseRange(v)
		if err != nil {
			return sp, tsimerr.Inputf("--%s: %v", x.flag, err)
		}
		*x.dst = r
	}
	protos, err := sweep.ParseSpec(cmd.String("services"))
	if err != nil {
		return sp, err
	}
	sp.Protos = protos
	if in := cmd.String("ingress"); in != "" {
		if !strings.Contains(in, ":") {
			return sp, tsimerr.Inputf("--ingress %q: want ROUTER:IFACE", in)
		}
		sp.Ingress = in
	}
	return sp, nil
}

// outFormat resolves --format among text, json and csv.
func (a *app) outFormat(cmd *ucli.Command) (string, error) {
	switch f := cmd.String("format"); f {
	case "":
		if a.textOut(cmd) {
			return "text", nil
		}
		return "json", nil
	case "text", "json", "csv":
		return f, nil
	default:
		return "", tsimerr.Inputf("--format %q: want text, json or csv", f)
	}
}

func (a *app) sweep(ctx context.Context, cmd *ucli.Command) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	format, err := a.outFormat(cmd)
	if err != nil {
		return err
	}
	sp, err := spaceFromFlags(cmd)
	if err != nil {
		return err
	}
	f, err := a.loadFacts(ctx, cmd)
	if err != nil {
		return err
	}
	m := sweep.NewModel(f)
	if err := m.Engine.Validate(sweep.FlowAt("sweep", "icmp", sp.Src.Lo, sp.Dst.Lo, 0, sp.Ingress)); err != nil {
		return err
	}
	start := time.Now()
	cs, st, err := sweep.Run(ctx, sp, m)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	positive := true
	label := func(c *sweep.Class) (string, bool) {
		positive = positive && trace.Positive(c.Answers[0].Disposition)
		return c.Answers[0].Label(), true
	}
	if cmd.Bool("by-rule") {
		return a.sweepByRule(cmd, format, sweep.Tallies(cs, label), st, positive)
	}
	gs := sweep.Groups(cs, label)
	a.log.Info().Int("classes", st.Classes).Int("traces", st.Traces).Int("lines", len(gs)).Dur("took", elapsed).Msg("swept")
	w := bufio.NewWriterSize(a.io.Out, 1<<16)
	switch format {
	case "text":
		if err := sweep.WriteText(w, gs); err != nil {
			return err
		}
		fmt.Fprintf(w, "# %s flows in %d classes (%d traces), %d lines, %.2fs\n", flowCount(st.Flows), st.Classes, st.Traces, len(gs), elapsed.Seconds())
	case "csv":
		err = sweep.WriteCSV(w, gs, []string{"src", "dst", "proto", "ports", "answer"}, func(g sweep.Group, r sweep.PortRun) []string {
			ports := ""
			if g.Proto != "icmp" {
				ports = sweep.PortString(r.Ports)
			}
			return []string{sweep.AddrString(g.Src), sweep.AddrString(g.Dst), g.Proto, ports, r.Label}
		})
		if err != nil {
			return err
		}
	default:
		out := struct {
			Src     string        `json:"src"`
			Dst     string        `json:"dst"`
			Spec    string        `json:"spec"`
			Flows   string        `json:"flows"`
			Classes int           `json:"classes"`
			Traces  int           `json:"traces"`
			Seconds float64       `json:"seconds"`
			Groups  []sweep.Group `json:"groups"`
		}{sweep.AddrString(sp.Src), sweep.AddrString(sp.Dst), cmd.String("services"), flowCount(st.Flows),
			st.Classes, st.Traces, elapsed.Seconds(), gs}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(out); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if !positive {
		return tsimerr.ErrNegative
	}
	return nil
}

// sweepByRule prints one line per answer: its share of the space.
func (a *app) sweepByRule(cmd *ucli.Command, format string, ts []sweep.Tally, st sweep.Stats, positive bool) error {
	w := bufio.NewWriterSize(a.io.Out, 1<<16)
	switch format {
	case "text":
		for _, t := range ts {
			fmt.Fprintf(w, "%10s flows %9s%%  %s\n", flowCount(t.Flows), strconv.FormatFloat(100*t.Flows/st.Flows, 'g', 3, 64), t.Label)
		}
		fmt.Fprintf(w, "# %s flows in %d classes (%d traces), %d answers\n", flowCount(st.Flows), st.Classes, st.Traces, len(ts))
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write([]string{"answer", "flows", "classes"})
		for _, t := range ts {
			cw.Write([]string{t.Label, strconv.FormatFloat(t.Flows, 'f', 0, 64), strconv.Itoa(t.Classes)})
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return err
		}
	default:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(map[string]any{"flows": st.Flows, "classes": st.Classes, "traces": st.Traces, "answers": ts}); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if !positive {
		return tsimerr.ErrNegative
	}
	return nil
}

// flowCount prints a flow count compactly (1.8e19 for the whole space).
func flowCount(n float64) string {
	if n < 1e9 {
		return strconv.FormatFloat(n, 'f', 0, 64)
	}
	return strconv.FormatFloat(float64(n), 'g', 3, 64)
}
