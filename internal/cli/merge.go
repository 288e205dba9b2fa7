package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	ucli "github.com/urfave/cli/v3"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/tsimerr"
	"github.com/tsim-dev/tsim/pdf"
	"github.com/tsim-dev/tsim/trace"
)

func (a *app) mergeCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "merge",
		Usage:     "render one PDF of one or more documents (concatenated on stdin), with a contents page",
		UsageText: "cat a.json b.json | tsim merge -o all.pdf [--paper a4|letter]",
		Description: "Renders the PDF from the documents alone (each needs flows and a trace; reach adds the live\n" +
			"verdicts): no report PDF is read, so documents written on other machines merge anywhere.\n" +
			"With more than one document a contents page lists every document and service with the page\n" +
			"it starts on; pages are numbered through the whole file and bookmarked per document and\n" +
			"service. With SOURCE_DATE_EPOCH set, the same documents give a byte-identical PDF.\n" +
			"Prints {\"schema\",\"merged\":{\"pdf\",\"pages\",\"documents\"}}.",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "the PDF file", Required: true, TakesFile: true},
			&ucli.StringFlag{Name: "paper", Value: "a4", Usage: "a4 or letter"},
		},
		Action: a.merge,
	}
}

func (a *app) merge(ctx context.Context, cmd *ucli.Command) error {
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
	if f, ok := a.io.In.(*os.File); ok && isTerminal(f) {
		return tsimerr.Inputf("merge reads documents on stdin (the output of `tsim trace`, `tsim reach`, `tsim report` or `tsim run --json`)")
	}
	docs, err := doc.ReadAll(a.io.In)
	if err != nil {
		return tsimerr.Inputf("merge: stdin: %w", err)
	}
	simOnly := 0
	for i, d := range docs {
		if err := pdf.Check(d); err != nil {
			return tsimerr.Inputf("merge: document %d: %w", i+1, err)
		}
		for _, t := range d.Trace {
			trace.ShareHops(t) // every document is held until the PDF is written
		}
		if len(d.Reach) == 0 {
			simOnly++
		}
	}
	if simOnly > 0 {
		a.log.Warn().Int("documents", simOnly).Msg("documents without a reach section: their pages show the simulation only")
	}
	out := cmd.String("output")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return tsimerr.Envf("merge: %w", err)
	}
	r, err := pdf.Merge(ctx, docs, out, pdf.Options{Paper: paper, Now: now})
	if err != nil {
		return err
	}
	a.log.Info().Str("pdf", out).Int("pages", r.Pages).Int("documents", len(docs)).Msg("merged report written")
	res := doc.New()
	res.Merged = &doc.Merged{PDF: out, Pages: r.Pages, Documents: len(docs)}
	return a.emit(cmd, res, func(d *doc.Document) string {
		m := d.Merged
		return fmt.Sprintf("merged %d %s into %s (%d pages)\n", m.Documents, plural(m.Documents, "document", "documents"), m.PDF, m.Pages)
	})
}
