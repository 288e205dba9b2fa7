package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/flowtest"
	"github.com/tsim-dev/tsim/internal/fsx"
	"github.com/tsim-dev/tsim/internal/tsimerr"
	"github.com/tsim-dev/tsim/trace"
)

// flowFlags are the flags of one question (-s/-d/-p/--sport), shared by
// trace, run and hosts up.
func flowFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "src", Aliases: []string{"s"}, Usage: "source IPv4 address"},
		&ucli.StringFlag{Name: "dst", Aliases: []string{"d"}, Usage: "destination IPv4 address"},
		&ucli.StringFlag{Name: "services", Aliases: []string{"p"}, Usage: "service SPEC, e.g. 22/tcp,https,53/udp,8000-8010/tcp (default: ICMP echo)"},
		&ucli.IntFlag{Name: "sport", Usage: "source port of tcp/udp flows (default: an ephemeral port)"},
	}
}

// flowsFromFlags builds one flow per service of -s/-d/-p.
func flowsFromFlags(cmd *ucli.Command) ([]*doc.Flow, error) {
	for _, fl := range []string{"src", "dst"} {
		if cmd.String(fl) == "" {
			alt := ""
			if slices.ContainsFunc(cmd.Flags, func(f ucli.Flag) bool { return slices.Contains(f.Names(), "flows") }) {
				alt = " (or --flows FILE)"
			}
			return nil, tsimerr.Inputf("%s: missing required flag --%s%s (see %s --help)",
				strings.TrimPrefix(commandPath(cmd), "tsim "), fl, alt, commandPath(cmd))
		}
	}
	src, err := parseIPv4("src", cmd.String("src"))
	if err != nil {
		return nil, err
	}
	dst, err := parseIPv4("dst", cmd.String("dst"))
	if err != nil {
		return nil, err
	}
	sport := cmd.Int("sport")
	if sport < 0 || sport > 65535 {
		return nil, tsimerr.Inputf("--sport %d: want 0-65535", sport)
	}
	return trace.FlowsFromSpec(src.String(), dst.String(), cmd.String("services"), sport)
}

// flowsFile reads --flows FILE (CSV or NDJSON), which excludes -s/-d/-p.
func flowsFile(cmd *ucli.Command) (*flowtest.File, error) {
	if cmd.IsSet("src") || cmd.IsSet("dst") || cmd.IsSet("services") {
		return nil, tsimerr.Inputf("--flows excludes -s/-d/-p")
	}
	path := cmd.String("flows")
	fh, err := os.Open(path)
	if err != nil {
		return nil, tsimerr.Inputf("--flows: %w", err)
	}
	defer fh.Close()
	f, err := flowtest.Read(fh, path)
	if err != nil {
		return nil, err
	}
	if sh := cmd.String("shard"); sh != "" {
		i, n, err := flowtest.ParseShard(sh)
		if err != nil {
			return nil, err
		}
		if f = f.Shard(i, n); len(f.Lines) == 0 {
			return nil, tsimerr.Inputf("--shard %s: %s has fewer than %d lines of flows", sh, path, i)
		}
	}
	return f, nil
}

// shardFlag is --shard I/N of the test runners.
func shardFlag() ucli.Flag {
	return &ucli.StringFlag{Name: "shard", Usage: "with --flows: run only shard I of N (every Nth line, starting at the Ith), to split a file between N machines or CI jobs"}
}

// junitFlag is --junit FILE of the test runners (trace --flows, run --flows).
func junitFlag() ucli.Flag {
	return &ucli.StringFlag{Name: "junit", Usage: "with --flows: also write the results as JUnit XML to FILE (one testcase per flows-file line) for GitLab, Jenkins, GitHub", TakesFile: true}
}

// testRun is a finished run of a flows file's tests.
type testRun struct {
	name, file string
	cases      []*flowtest.Case
	start      time.Time
	props      [][2]string
	csv        *flowtest.CSVWriter // the csv view's writer, when format is csv
	trailer    string              // appended to the summary line (the report)
	facts      *facts.Facts        // for the note on errors while loading
}

// finishTests ends a test runner's output: the table, the summary line
// `N passed, N failed, N unknown` (on stdout after a text or table view;
// on stderr, with the lines that did not pass, when stdout carries JSON or
// CSV), the JUnit file; exit 1 unless every expectation holds.
func (a *app) finishTests(cmd *ucli.Command, w *bufio.Writer, format string, run testRun) error {
	switch format {
	case "table":
		if err := flowtest.WriteTable(w, run.cases, true); err != nil {
			return err
		}
	case "csv":
		if err := run.csv.Flush(); err != nil {
			return err
		}
	}
	if run.facts != nil {
		if err := w.Flush(); err != nil {
			return err
		}
		a.factsNote(run.facts, format == "text" || format == "table")
	}
	sum := flowtest.Summarize(run.cases)
	line := sum.String() + run.trailer
	if format == "text" || format == "table" {
		fmt.Fprintf(w, "\n%s\n", line)
	} else if !cmd.Bool("quiet") {
		var b strings.Builder
		color := a.colorOn(cmd, a.io.Err)
		for _, c := range run.cases {
			if c.Status == flowtest.Fail || c.Status == flowtest.Unknown {
				b.WriteString(caseLine(c, color) + "\n")
			}
		}
		b.WriteString(line + "\n")
		if err := w.Flush(); err != nil {
			return err
		}
		io.WriteString(a.io.Err, b.String())
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if path := cmd.String("junit"); path != "" {
		var buf bytes.Buffer
		err := flowtest.WriteJUnit(&buf, flowtest.Suite{Name: run.name, File: run.file, Timestamp: run.start,
			Time: time.Since(run.start), Properties: run.props, Cases: run.cases})
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return tsimerr.Envf("--junit: %w", err)
		}
		if err := fsx.WriteFileAtomic(path, buf.Bytes(), 0o644); err != nil {
			return tsimerr.Envf("--junit: %w", err)
		}
	}
	if !sum.OK() {
		return tsimerr.ErrNegative
	}
	return nil
}

// statusStyle colours a test status.
var statusStyle = map[flowtest.Status]string{
	flowtest.Pass: "\x1b[32m", flowtest.Fail: "\x1b[1;31m", flowtest.Unknown: "\x1b[33m", flowtest.Info: "\x1b[2m",
}

// caseLine is one test's line: status, FILE:LINE, the question, and for a
// line that did not pass why (what it got, the deciding router and rule
// with its FILE:LINE in the facts, or the reason).
func caseLine(c *flowtest.Case, color bool) string {
	st := fmt.Sprintf("%-7s", c.Status)
	if color {
		st = statusStyle[c.Status] + st + "\x1b[0m"
	}
	s := fmt.Sprintf("%s  %s:%d  %s", st, c.File, c.Line, c.Name)
	switch c.Status {
	case flowtest.Pass:
		s += "  got " + c.Got()
	default:
		s += "  " + c.Message()
	}
	return s
}
