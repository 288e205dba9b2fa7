package cli

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/flowtest"
	"github.com/tsim-dev/tsim/internal/pipeline"
	"github.com/tsim-dev/tsim/internal/tsimerr"
	"github.com/tsim-dev/tsim/sweep"
	"github.com/tsim-dev/tsim/trace"
)

func (a *app) traceCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "trace",
		Usage: "simulate connections hop by hop: policy rules, routes, firewall rules, NAT, conntrack; the reply and every ECMP branch",
		UsageText: "tsim trace -s SRC -d DST [-p SPEC] [--sport N] [--ingress ROUTER:IFACE] [--hash-seed N] [--format json|text|table|csv|legacy-json]\n" +
			"tsim trace --flows FILE [--junit FILE] [--format text|table|csv|json]",
		Description: "SPEC is a comma list of PORT[/PROTO], A-B[/PROTO] or service names (ssh, https, dns …);\n" +
			"protocols tcp, udp, icmp; default: one ICMP echo flow. Each flow is a connection: the request,\n" +
			"then the reply from the destination back (routers that saw the request match it as\n" +
			"ESTABLISHED, others as NEW or INVALID like the kernel's conntrack), down every ECMP branch.\n" +
			"Exit 0 when every flow's request is delivered (or leaves the network through a gateway) and\n" +
			"its reply comes back on every branch, 1 otherwise. --format table and csv print one\n" +
			"row per flow: src, dst, service, disposition, deciding router and rule, its FILE:LINE.\n" +
			"--format legacy-json: the request alone, one path, as the predecessor printed it.\n\n" +
			"--flows FILE runs firewall unit tests without root: FILE is CSV with a header row\n" +
			"(src,dst,spec,expect and optionally ingress, sport, name; quoted fields, empty cells, CRLF)\n" +
			"or NDJSON. expect is allow|permit|accept|pass or deny|block|drop|reject, or empty. Every\n" +
			"line prints PASS, FAIL or UNKNOWN (an UNKNOWN never passes) and the run ends with\n" +
			"`N passed, N failed, N unknown`; exit 0 only when every expectation holds. --json (or\n" +
			"--format json) prints one document per line instead, the summary on stderr.",
		Flags: append(flowFlags(),
			&ucli.StringFlag{Name: "ingress", Usage: "ROUTER:IFACE where a source outside the network enters"},
			&ucli.StringFlag{Name: "format", Usage: "json, text, table, csv or legacy-json (the predecessor's output and exit codes); default: text on a terminal, else json (--flows: text unless --json)"},
			&ucli.StringFlag{Name: "flows", Usage: "test every line of FILE (CSV or NDJSON) against its expect column", TakesFile: true},
			junitFlag(),
			shardFlag(),
			&ucli.Uint32Flag{Name: "hash-seed", Usage: "net.ipv4.fib_multipath_hash_seed of routers whose facts pin none (e.g. a lab's): names the ECMP branch the kernel takes"},
		),
		Action: a.trace,
	}
}

// traceFormats are the values of trace --format.
var traceFormats = []string{"json", "text", "table", "csv", "legacy-json"}

func parseIPv4(flag, s string) (netip.Addr, error) {
	ip, err := netip.ParseAddr(s)
	if err != nil && sweep.IsRange(s) {
		return netip.Addr{}, tsimerr.Inputf("--%s %s is a range of addresses; this command takes one address: `tsim sweep -s SRC -d DST -p SPEC` answers for ranges", flag, s)
	}
	if err != nil {
		return netip.Addr{}, tsimerr.Inputf("--%s %q is not an IP address", flag, s)
	}
	if !ip.Is4() {
		return netip.Addr{}, tsimerr.Inputf("--%s %s: IPv6 is parsed in facts but not simulated yet", flag, s)
	}
	return ip, nil
}

func (a *app) trace(ctx context.Context, cmd *ucli.Command) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	format := cmd.String("format")
	switch format {
	case "":
		// A test run (--flows) prints its lines for a person or a CI log
		// unless --json asks for the documents, as run --flows does.
		format = "json"
		if a.textOut(cmd) || (cmd.String("flows") != "" && !cmd.Bool("json")) {
			format = "text"
		}
	case "json", "text", "table", "csv", "legacy-json":
	default:
		return tsimerr.Inputf("--format %q: want %s", format, strings.Join(traceFormats, ", "))
	}
	if cmd.String("flows") == "" {
		for _, fl := range []string{"junit", "shard"} {
			if cmd.IsSet(fl) {
				return tsimerr.Inputf("--%s needs --flows FILE", fl)
			}
		}
	}
	if cmd.String("flows") != "" {
		if format == "legacy-json" {
			return tsimerr.Inputf("--format legacy-json traces one src/dst pair; it does not take --flows")
		}
		return a.traceBatch(ctx, cmd, format)
	}
	if format == "legacy-json" {
		// The predecessor's path is routing only: no ports, no firewall.
		// Answering for -p would silently answer another question.
		for _, fl := range []string{"services", "sport", "ingress"} {
			if cmd.IsSet(fl) {
				name := "--" + fl
				if fl == "services" {
					name = "-p " + cmd.String("services")
				}
				return tsimerr.Inputf("--format legacy-json is the predecessor's routing-only path for the src/dst pair: it cannot answer for %s; drop it, or use --format json, text, table or csv", name)
			}
		}
		return a.traceLegacy(ctx, cmd)
	}
	flows, err := flowsFromFlags(cmd)
	if err != nil {
		return err
	}
	if in := cmd.String("ingress"); in != "" {
		if !strings.Contains(in, ":") {
			return tsimerr.Inputf("--ingress %q: want ROUTER:IFACE", in)
		}
		for _, f := range flows {
			f.Ingress = in
		}
	}
	f, err := a.loadFacts(ctx, cmd)
	if err != nil {
		return err
	}
	eng := trace.New(f)
	eng.SetHashSeed(cmd.Uint32("hash-seed"))
	d := pipeline.NewDoc(f)
	d.Flows = flows
	if d.Trace, err = eng.TraceAll(ctx, flows); err != nil {
		return err
	}
	switch format {
	case "table", "csv":
		err = a.traceRows(d, format)
	default:
		err = a.writeDoc(cmd, d, format == "text")
	}
	if err != nil {
		return err
	}
	a.factsNote(f, format == "text" || format == "table")
	if trace.ExitCode(d.Trace) != 0 {
		return tsimerr.ErrNegative
	}
	return nil
}

// legacyExit carries the predecessor's own exit code (1, 2 or 10); its
// message is already on stderr.
type legacyExit int

func (e legacyExit) Error() string { return fmt.Sprintf("exit %d", int(e)) }
func (e legacyExit) ExitCode() int { return int(e) }

// traceLegacy reproduces the predecessor's `--software-sim -j` output,
// messages and exit codes (0 path, 1 no route inside the network, 2 no route
// or unknown source, 10 invalid IP or no facts).
func (a *app) traceLegacy(ctx context.Context, cmd *ucli.Command) error {
	f, err := a.loadFacts(ctx, cmd)
	if err != nil {
		fmt.Fprintf(a.io.Err, "Error: %v\n", err)
		return &tsimerr.Error{Kind: tsimerr.KindNegative, Err: legacyExit(trace.LegacyExitInvalid)}
	}
	res := trace.LegacyRun(trace.New(f), cmd.String("src"), cmd.String("dst"))
	if _, err := a.io.Out.Write(res.Stdout); err != nil {
		return err
	}
	io.WriteString(a.io.Err, res.Stderr)
	if res.Exit != 0 {
		return &tsimerr.Error{Kind: tsimerr.KindNegative, Err: legacyExit(res.Exit)}
	}
	return nil
}

func (a *app) traceBatch(ctx context.Context, cmd *ucli.Command, format string) error {
	file, err := flowsFile(cmd)
	if err != nil {
		return err
	}
	f, err := a.loadFacts(ctx, cmd)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(a.io.Out, 1<<16)
	defer w.Flush()
	csvw := flowtest.NewCSVWriter(w, true)
	color := a.color(cmd)
	var cases []*flowtest.Case
	start := time.Now()
	eng := trace.New(f)
	eng.SetHashSeed(cmd.Uint32("hash-seed"))
	err = flowtest.TraceFile(ctx, eng, file, func(c *flowtest.Case, ts []*doc.Trace) error {
		cases = append(cases, c)
		switch format {
		case "json":
			d := pipeline.NewDoc(f)
			d.Flows = flowsOf(c)
			d.Trace = ts
			return doc.WriteCompact(w, d)
		case "csv":
			return csvw.Write(c)
		case "text":
			_, err := fmt.Fprintln(w, caseLine(c, color))
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return a.finishTests(cmd, w, format, testRun{
		name: "tsim trace --flows " + file.Name, file: file.Name, cases: cases, start: start,
		props: [][2]string{{"facts", f.Source}, {"facts.digest", f.Digest}}, csv: csvw, facts: f,
	})
}

// factsNote ends a text view with the number of errors `tsim facts check`
// finds in the facts (facts.Lint: the firewall's unknown matches are only warnings), and the command
// that lists them: an answer may depend on a line the kernel would refuse.
func (a *app) factsNote(f *facts.Facts, text bool) {
	if !text {
		return
	}
	errs := 0
	for _, fd := range facts.Lint(f) {
		if fd.Severity == facts.SevError {
			errs++
		}
	}
	if errs == 0 {
		return
	}
	src := ""
	if f.Source != "builtin:example" {
		src = " --facts " + f.Source
	}
	fmt.Fprintf(a.io.Out, "\nnote: the facts have %d lint %s (answers that depend on those lines may be wrong): run `tsim facts check%s`\n",
		errs, plural(errs, "error", "errors"), src)
}

// refusedRoutes lists, after the hop view, the routes a router's table
// holds but the kernel would refuse (and the simulation therefore
// ignored), as the document's route steps record them: one line per
// router and table.
func refusedRoutes(d *doc.Document) string {
	var b strings.Builder
	seen := map[string]bool{}
	for _, t := range d.Trace {
		for _, h := range t.Hops {
			for _, st := range h.Steps {
				if st.Kind != doc.StepRoute || !strings.Contains(st.Detail, "the kernel refuses") {
					continue
				}
				line := fmt.Sprintf("  %s table %s: %s", h.Node, st.Table, strings.TrimSpace(st.Detail))
				if !seen[line] {
					seen[line] = true
					b.WriteString(line + "\n")
				}
			}
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return "\nroutes the kernel would refuse (ignored by the simulation):\n" + b.String()
}

// flowsOf returns the flows of a case, in order.
func flowsOf(c *flowtest.Case) []*doc.Flow {
	out := make([]*doc.Flow, len(c.Results))
	for i, r := range c.Results {
		out[i] = r.Flow
	}
	return out
}

// traceRows prints the one-row-per-flow views (table, csv) of a single
// question.
func (a *app) traceRows(d *doc.Document, format string) error {
	rs := make([]*flowtest.Result, 0, len(d.Trace))
	for i, t := range d.Trace {
		rs = append(rs, flowtest.FromTrace(d.Flows[i], t))
	}
	c := &flowtest.Case{Results: rs}
	var buf bytes.Buffer
	if format == "csv" {
		cw := flowtest.NewCSVWriter(&buf, false)
		if err := cw.Write(c); err != nil {
			return err
		}
		if err := cw.Flush(); err != nil {
			return err
		}
	} else if err := flowtest.WriteTable(&buf, []*flowtest.Case{c}, false); err != nil {
		return err
	}
	_, err := a.io.Out.Write(buf.Bytes())
	return err
}

// writeDoc prints the document: rendered text or indented JSON.
func (a *app) writeDoc(cmd *ucli.Command, d *doc.Document, text bool) error {
	var buf bytes.Buffer
	if text {
		trace.RenderText(&buf, d, a.color(cmd))
		buf.WriteString(refusedRoutes(d))
	} else if err := doc.Write(&buf, d); err != nil {
		return err
	}
	_, err := a.io.Out.Write(buf.Bytes())
	return err
}
