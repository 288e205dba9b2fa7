package cli

import (
	"context"
	"fmt"
	"os"

	ucli "github.com/urfave/cli/v3"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/pipeline"
	"github.com/tsim-dev/tsim/internal/tsimerr"
)

// readDoc reads the one document a stage takes on stdin. A terminal on
// stdin means nobody piped a document in: say which command makes one.
func (a *app) readDoc(stage string) (*doc.Document, error) {
	if f, ok := a.io.In.(*os.File); ok && isTerminal(f) {
		return nil, tsimerr.Inputf("%s reads a document on stdin (pipe in the output of `tsim trace`, e.g. `tsim trace -s A -d B | tsim %s`)", stage, stage)
	}
	d, err := doc.Read(a.io.In)
	if err != nil {
		return nil, tsimerr.Inputf("%s: stdin: %w", stage, err)
	}
	return d, nil
}

// factsForDoc loads the facts a document was made from (or --facts when
// given) and refuses facts whose digest no longer matches.
func (a *app) factsForDoc(ctx context.Context, cmd *ucli.Command, d *doc.Document) (*facts.Facts, error) {
	src := cmd.String("facts")
	if src == "" && d.Facts != nil && d.Facts.Source != "builtin:example" {
		src = d.Facts.Source
	}
	f, err := facts.Load(ctx, src)
	if err != nil {
		return nil, err
	}
	if d.Facts != nil && d.Facts.Digest != "" && d.Facts.Digest != f.Digest {
		return nil, tsimerr.Inputf("facts %s changed since the document was made (digest %s, document says %s): trace again",
			f.Source, shortDigest(f.Digest), shortDigest(d.Facts.Digest))
	}
	if d.Facts == nil {
		d.Facts = pipeline.NewDoc(f).Facts
	}
	return f, nil
}

// emit writes the document as JSON (pipeline stages always hand JSON on,
// unless --text asks for a rendering).
func (a *app) emit(cmd *ucli.Command, d *doc.Document, render func(*doc.Document) string) error {
	if cmd.Bool("text") || (isTerminal(a.io.Out) && !cmd.Bool("json") && render != nil) {
		_, err := fmt.Fprint(a.io.Out, render(d))
		return err
	}
	return doc.Write(a.io.Out, d)
}
