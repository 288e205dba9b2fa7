package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	ucli "github.com/urfave/cli/v3"

	"github.com/tsim-dev/tsim/internal/tsimerr"
)

func (a *app) manCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "man",
		Usage:     "write the man pages (tsim.1 and one page per subcommand)",
		UsageText: "tsim man -o DIR",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "man", Usage: "directory to write the pages into", TakesFile: true},
		},
		Action: func(ctx context.Context, cmd *ucli.Command) error {
			if err := noArgs(cmd); err != nil {
				return err
			}
			pages := ManPages(cmd.Root())
			dir := cmd.String("output")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return tsimerr.Envf("man: %w", err)
			}
			names := make([]string, 0, len(pages))
			for n := range pages {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				if err := os.WriteFile(filepath.Join(dir, n), pages[n], 0o644); err != nil {
					return tsimerr.Envf("man: %w", err)
				}
			}
			a.log.Info().Int("pages", len(pages)).Str("dir", dir).Msg("man pages written")
			return nil
		},
	}
}

// ManPages renders one roff page per command: tsim.1 for the root and
// tsim-<sub>[-<subsub>].1 for every visible subcommand, deterministic so CI
// can check the committed pages are current.
func ManPages(root *ucli.Command) map[string][]byte {
	pages := map[string][]byte{}
	var walk func(c *ucli.Command, path []string)
	walk = func(c *ucli.Command, path []string) {
		name := strings.Join(path, "-")
		pages[name+".1"] = manPage(root, c, path)
		for _, sub := range c.Commands {
			if sub.Hidden || sub.Name == "help" {
				continue
			}
			walk(sub, append(append([]string{}, path...), sub.Name))
		}
	}
	walk(root, []string{root.Name})
	return pages
}

// roffGlyphs spells the non-ASCII characters of tsim's help text as groff
// escapes that have an ASCII rendering too: groff-base (all a fresh Debian's
// man-db brings) in an ASCII locale warns on, and drops, characters such as
// U+2026 that it has no fallback for.
var roffGlyphs = strings.NewReplacer(
	"…", "...", "—", `\(em`, "–", `\(en`, "→", `\(->`, "←", `\(<-`, "⇒", `\(rA`,
	"×", `\(mu`, "≤", `\(<=`, "≥", `\(>=`, "“", `\(lq`, "”", `\(rq`, "‘", `\(oq`, "’", `\(cq`,
)

func roffEscape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	s = roffGlyphs.Replace(s)
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'") {
			line = `\&` + line
		}
		b.WriteString(line)
		b.WriteString("\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func manPage(root, c *ucli.Command, path []string) []byte {
	var b bytes.Buffer
	title := strings.ToUpper(strings.Join(path, "-"))
	fmt.Fprintf(&b, ".TH %s 1 \"\" \"tsim\" \"tsim manual\"\n", title)
	b.WriteString(".SH NAME\n")
	fmt.Fprintf(&b, "%s \\- %s\n", roffEscape(strings.Join(path, "-")), roffEscape(c.Usage))
	b.WriteString(".SH SYNOPSIS\n")
	usage := c.UsageText
	if usage == "" {
		usage = strings.Join(path, " ")
		if len(c.Commands) > 0 {
			usage += " COMMAND"
		}
		usage += " [OPTIONS]"
		if c.ArgsUsage != "" {
			usage += " " + c.ArgsUsage
		}
	}
	fmt.Fprintf(&b, ".nf\n%s\n.fi\n", roffEscape(usage))
	// Commands with subcommands carry their examples at the end of the
	// description for --help; here they have their own section.
	desc, _, _ := strings.Cut(c.Description, helpExamplesHeading)
	if desc != "" {
		b.WriteString(".SH DESCRIPTION\n")
		fmt.Fprintf(&b, ".nf\n%s\n.fi\n", roffEscape(desc))
	}
	var subs []*ucli.Command
	for _, s := range c.Commands {
		if !s.Hidden && s.Name != "help" {
			subs = append(subs, s)
		}
	}
	if len(subs) > 0 {
		b.WriteString(".SH COMMANDS\n")
		for _, s := range subs {
			fmt.Fprintf(&b, ".TP\n.B %s\n%s (see \\fB%s\\-%s\\fR(1))\n", roffEscape(s.Name), roffEscape(s.Usage), roffEscape(strings.Join(path, "-")), roffEscape(s.Name))
		}
	}
	writeFlags := func(section string, flags []ucli.Flag) {
		var visible []ucli.Flag
		for _, f := range flags {
			if vf, ok := f.(ucli.VisibleFlag); ok && !vf.IsVisible() {
				continue
			}
			if names := f.Names(); len(names) > 0 && (names[0] == "help" || names[0] == "version") {
				continue
			}
			visible = append(visible, f)
		}
		if len(visible) == 0 {
			return
		}
		fmt.Fprintf(&b, ".SH %s\n", section)
		for _, f := range visible {
			var names []string
			for _, n := range f.Names() {
				if len(n) == 1 {
					names = append(names, "-"+n)
				} else {
					names = append(names, "--"+n)
				}
			}
			usage := ""
			if df, ok := f.(ucli.DocGenerationFlag); ok {
				usage = df.GetUsage()
				if df.TakesValue() {
					names[0] += " VALUE"
				}
				if dv := df.GetDefaultText(); dv != "" && dv != `""` && dv != "false" {
					usage += " (default " + dv + ")"
				}
				if env := df.GetEnvVars(); len(env) > 0 {
					usage += " [env " + strings.Join(env, ", ") + "]"
				}
			}
			fmt.Fprintf(&b, ".TP\n.B %s\n%s\n", roffEscape(strings.Join(names, ", ")), roffEscape(usage))
		}
	}
	writeFlags("OPTIONS", c.Flags)
	if c != root {
		writeFlags("GLOBAL OPTIONS", root.Flags)
	}
	key := strings.Join(path, " ")
	writeExitStatus(&b, key)
	writeEnvironment(&b, key, c, root)
	writeFiles(&b, key)
	writeExamples(&b, commandExamples()[key])
	b.WriteString(".SH SEE ALSO\n")
	if c == root {
		var refs []string
		for _, s := range subs {
			refs = append(refs, fmt.Sprintf("\\fB%s\\-%s\\fR(1)", roffEscape(root.Name), roffEscape(s.Name)))
		}
		b.WriteString(strings.Join(refs, ", ") + "\n")
	} else {
		b.WriteString("\\fBtsim\\fR(1)\n")
	}
	return b.Bytes()
}
