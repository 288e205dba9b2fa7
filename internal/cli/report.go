package cli

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/tsimerr"
	"github.com/tsim-dev/tsim/pdf"
)

func (a *app) reportCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "report",
		Usage: "write the PDF report of the document on stdin (summary matrix + one page per service)",
		UsageText: "… | tsim report -o DIR [--paper a4|letter]\n" +
			"… | tsim report --format dot|mermaid [--flow ID]   (the path diagram as text)",
		Description: "With SOURCE_DATE_EPOCH set, the same document gives a byte-identical PDF.",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: ".", Usage: "directory for the PDF", TakesFile: true},
			&ucli.StringFlag{Name: "paper", Value: "a4", Usage: "a4 or letter"},
			&ucli.StringFlag{Name: "format", Value: "pdf", Usage: "pdf, dot or mermaid"},
			&ucli.StringFlag{Name: "flow", Usage: "flow id for --format dot|mermaid (default: the first flow)"},
		},
		Action: a.report,
	}
}

// reportTime is SOURCE_DATE_EPOCH when set (reproducible builds'
// convention), else now.
func reportTime() (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, tsimerr.Inputf("SOURCE_DATE_EPOCH %q is not a number of seconds", s)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Now(), nil
}

func paperName(s string) (string, error) {
	switch s {
	case "a4", "A4":
		return "A4", nil
	case "letter", "Letter":
		return "Letter", nil
	}
	return "", tsimerr.Inputf("--paper %q: want a4 or letter", s)
}

func (a *app) report(ctx context.Context, cmd *ucli.Command) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	format := cmd.String("format")
	if format != "pdf" && format != "dot" && format != "mermaid" {
		return tsimerr.Inputf("--format %q: want pdf, dot or mermaid", format)
	}
	paper, err := paperName(cmd.String("paper"))
	if err != nil {
		return err
	}
	now, err := reportTime()
	if err != nil {
		return err
	}
	d, err := a.readDoc("report")
	if err != nil {
		return err
	}
	if len(d.Trace) == 0 {
		return tsimerr.Input(doc.Need("trace", "tsim trace"))
	}
	if format != "pdf" {
		id := cmd.String("flow")
		if id == "" && len(d.Flows) > 0 {
			id = d.Flows[0].ID
		}
		s, err := pdf.Diagram(d, id, format)
		if err != nil {
			return tsimerr.Input(err)
		}
		_, err = fmt.Fprint(a.io.Out, s)
		return err
	}
	dir := cmd.String("output")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return tsimerr.Envf("report: %w", err)
	}
	if len(d.Reach) == 0 {
		a.log.Warn().Msg("the document has no reach section: the report shows the simulation only (run `tsim hosts up | tsim reach` for live verdicts)")
	}
	path, pages, err := pdf.Report(ctx, d, pdf.Options{Dir: dir, Paper: paper, Now: now})
	if err != nil {
		return err
	}
	a.log.Info().Str("pdf", path).Int("pages", pages).Msg("report written")
	return a.emit(cmd, d, func(d *doc.Document) string {
		return fmt.Sprintf("report %s (%d pages)\n", path, pages)
	})
}
