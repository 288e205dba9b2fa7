package cli

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"

	ucli "github.com/urfave/cli/v3"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/pipeline"
	"github.com/tsim-dev/tsim/internal/tsimerr"
	"github.com/tsim-dev/tsim/sweep"
	"github.com/tsim-dev/tsim/trace"
)

func (a *app) traceCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "trace",
		Usage: "simulate flows hop by hop: policy rules, routes, firewall rules, NAT",
		UsageText: "tsim trace -s SRC -d DST [-p SPEC] [--sport N] [--ingress ROUTER:IFACE] [--format json|text|legacy-json]\n" +
			"tsim trace --flows FILE            (NDJSON or CSV src,dst,spec[,expect]; one document per line)",
		Description: "SPEC is a comma list of PORT[/PROTO], A-B[/PROTO] or service names (ssh, https, dns …);\n" +
			"protocols tcp, udp, icmp; default: one ICMP echo flow. Exit 0 when every flow is delivered\n" +
			"(or leaves the network through a gateway), 1 otherwise.",
		Flags: append(flowFlags(),
			&ucli.StringFlag{Name: "ingress", Usage: "ROUTER:IFACE where a source outside the network enters"},
			&ucli.StringFlag{Name: "format", Usage: "json, text or legacy-json (the predecessor's output and exit codes); default by --json/--text/TTY"},
			&ucli.StringFlag{Name: "flows", Usage: "trace every flow of FILE (NDJSON or CSV), streaming one document per line", TakesFile: true},
		),
		Action: a.trace,
	}
}

func parseIPv4(flag, s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, tsimerr.Inputf("--%s is required", flag)
	}
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
		format = "json"
		if a.textOut(cmd) {
			format = "text"
		}
	case "json", "text", "legacy-json":
	default:
		return tsimerr.Inputf("--format %q: want json, text or legacy-json", format)
	}
	if cmd.String("flows") != "" {
		if format == "legacy-json" {
			return tsimerr.Inputf("--format legacy-json traces one src/dst pair; it does not take --flows")
		}
		return a.traceBatch(ctx, cmd, format)
	}
	if format == "legacy-json" {
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
	d := pipeline.NewDoc(f)
	d.Flows = flows
	if d.Trace, err = eng.TraceAll(ctx, flows); err != nil {
		return err
	}
	if err := a.writeDoc(d, format == "text"); err != nil {
		return err
	}
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
	flows, err := flowsFromFile(cmd)
	if err != nil {
		return err
	}
	f, err := a.loadFacts(ctx, cmd)
	if err != nil {
		return err
	}
	eng := trace.New(f)
	// Validate every flow before the first line goes out: a bad line fails
	// the batch without a half-written stream.
	for _, fl := range flows {
		if err := eng.Validate(fl); err != nil {
			return err
		}
	}
	w := bufio.NewWriterSize(a.io.Out, 1<<16)
	defer w.Flush()
	ok := true
	for i, fl := range flows {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		t := eng.Trace(ctx, fl)
		ok = ok && trace.Positive(t.Disposition)
		d := pipeline.NewDoc(f)
		d.Flows = []*doc.Flow{fl}
		d.Trace = []*doc.Trace{t}
		if format == "text" {
			var buf bytes.Buffer
			trace.RenderText(&buf, d, false)
			w.Write(buf.Bytes())
			continue
		}
		if err := doc.WriteCompact(w, d); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if !ok {
		return tsimerr.ErrNegative
	}
	return nil
}

// writeDoc prints the document: rendered text or indented JSON.
func (a *app) writeDoc(d *doc.Document, text bool) error {
	var buf bytes.Buffer
	if text {
		trace.RenderText(&buf, d, isTerminal(a.io.Out))
	} else if err := doc.Write(&buf, d); err != nil {
		return err
	}
	_, err := a.io.Out.Write(buf.Bytes())
	return err
}
