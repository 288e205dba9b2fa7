// Package cli wires tsim's subcommands (one file each) to the domain
// packages: it parses flags, picks text or JSON output, sets up logging and
// maps errors to exit codes (through tsimerr) in one place. It holds no
// domain logic.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	ucli "github.com/urfave/cli/v3"

	"github.com/tsim-dev/tsim/internal/tsimerr"
)

// Stdio are the process's streams.
type Stdio struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// app is the state of one invocation: streams, logger and output mode.
type app struct {
	io  Stdio
	log zerolog.Logger
	// unknown is the usage error for a command name that does not exist
	// (urfave/cli reports it through CommandNotFound, not as an error).
	unknown error
}

// Main runs tsim with args and returns the exit code.
func Main(ctx context.Context, args []string, s Stdio) int {
	a := &app{io: s, log: zerolog.Nop()}
	root := a.rootFor(args)
	if a.completeValue(ctx, root, args) {
		return tsimerr.ExitOK
	}
	err := unknownCommand(root, args)
	if err == nil {
		err = root.Run(ctx, args)
	}
	if err == nil {
		err = a.unknown
	}
	err = asInterrupt(ctx, err)
	code := tsimerr.ExitCode(err)
	if err != nil && !tsimerr.Silent(err) {
		msg := err.Error()
		if code == tsimerr.ExitInterrupted {
			msg = "interrupted"
		}
		fmt.Fprintf(s.Err, "tsim: %s\n", strings.TrimSpace(msg))
	}
	return code
}

// rootFor builds the command tree that runs args: interrupt handling on the
// commands that create something, help examples on the commands args name,
// and, when args name a top-level command for sure, only that command.
func (a *app) rootFor(args []string) *ucli.Command {
	root := a.command()
	pruneTo(root, args)
	handleInterrupts(root, root.Name)
	addHelpExamples(root, root.Name, wordsOf(args))
	a.reportUnknownCommands(root, root.Name)
	onUsageErrors(root)
	return root
}

// reportUnknownCommands makes an unknown subcommand of c or its groups a
// usage error (exit 2) with urfave/cli's suggestion; by default urfave/cli
// exits 3, which tsim reserves for environment errors.
func (a *app) reportUnknownCommands(c *ucli.Command, path string) {
	if len(c.Commands) == 0 {
		return
	}
	c.CommandNotFound = func(_ context.Context, cmd *ucli.Command, name string) {
		full := strings.TrimPrefix(path+" "+name, "tsim ")
		msg := fmt.Sprintf("no command %q (see %s --help)", full, path)
		if s := closestCommand(cmd, name); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		a.unknown = tsimerr.Inputf("%s", msg)
	}
	for _, sub := range c.Commands {
		a.reportUnknownCommands(sub, path+" "+sub.Name)
	}
}

// pruneTo keeps only the top-level command args run, when args name one
// for sure and it does not read the whole tree (man). urfave/cli sets up
// every command of the tree before it runs one: 0.7 ms of `tsim trace`'s
// 10 ms budget. Help printed for a command shows only that command and its
// subcommands, so nothing printed changes.
func pruneTo(root *ucli.Command, args []string) {
	name := invokedCommand(root, args)
	if name == "" || name == "man" {
		return
	}
	for _, c := range root.Commands {
		if c.Name == name {
			root.Commands = []*ucli.Command{c}
			return
		}
	}
}

// invokedCommand returns the first word of args after the program name and
// the root's own flags, or "" when a word is not one of those flags (so it
// cannot tell which argument is a flag's value).
func invokedCommand(root *ucli.Command, args []string) string {
	if i := invokedAt(root, args); i > 0 {
		return args[i]
	}
	return ""
}

// invokedAt is the index in args of the word invokedCommand returns, or -1.
func invokedAt(root *ucli.Command, args []string) int {
	for i := 1; i < len(args); i++ {
		w := args[i]
		if !strings.HasPrefix(w, "-") {
			return i
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(w, "-"), "=")
		k := slices.IndexFunc(root.Flags, func(f ucli.Flag) bool { return slices.Contains(f.Names(), name) })
		if k < 0 { // also "-" and "--", which name no flag
			return -1
		}
		flag := root.Flags[k]
		if _, isBool := flag.(*ucli.BoolFlag); !isBool && !hasValue {
			i++ // the flag's value
		}
	}
	return -1
}

// wordsOf is the set of args.
func wordsOf(args []string) map[string]bool {
	m := make(map[string]bool, len(args))
	for _, w := range args {
		m[w] = true
	}
	return m
}

func (a *app) command() *ucli.Command {
	return &ucli.Command{
		Name:  "tsim",
		Usage: "can host A reach service B through these Linux routers? (simulate and emulate)",
		Description: "tsim answers reachability questions from router facts (ip addr, ip rule, every routing\n" +
			"table, iptables-save, ipset save) twice: by simulating the Linux forwarding path\n" +
			"(trace) and by rebuilding the routers as network namespaces and sending real packets\n" +
			"(hosts up, reach). Every stage reads one JSON document on stdin and writes one on stdout.\n\n" +
			"Exit codes: 0 positive answer, 1 negative answer (denied, unreachable, lint errors, a failed\n" +
			"expectation), 2 usage or input error, 3 environment error (no CAP_NET_ADMIN/CAP_SYS_ADMIN,\n" +
			"missing tool) or any unclassified error, 130 interrupted.",
		Version:                    versionString(),
		EnableShellCompletion:      true,
		ShellCompletionCommandName: "completions",
		ConfigureShellCompletionCommand: func(c *ucli.Command) {
			c.Hidden = false
			c.Usage = "print a shell completion script (bash, zsh, fish)"
			c.Description = "Prints a script that completes subcommands and flags; the script asks tsim itself\n" +
				"(tsim ... --generate-shell-completion) what fits at the cursor."
			for _, s := range c.Commands {
				s.Hidden = s.Name == "pwsh" // not tested here; still there for who needs it
				s.Action = patchedCompletion(s.Name, s.Action)
			}
			addHelpExamples(c, "tsim completions", nil)
			a.reportUnknownCommands(c, "tsim completions")
			onUsageErrors(c)
		},
		Writer:    a.io.Out,
		ErrWriter: a.io.Err,
		Reader:    a.io.In,
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "facts", Usage: "facts directory or normalized facts file (default: the built-in example network)", Sources: ucli.EnvVars("TSIM_FACTS"), TakesFile: true},
			&ucli.BoolFlag{Name: "json", Usage: "print JSON on stdout even on a terminal"},
			&ucli.BoolFlag{Name: "text", Usage: "print human-readable text on stdout even into a pipe"},
			&ucli.StringFlag{Name: "log-level", Value: "warn", Usage: "stderr log level: debug, info, warn, error"},
			&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only errors on stderr, no progress"},
			&ucli.StringFlag{Name: "color", Value: "auto", Usage: "colour: auto (only on a terminal, not with NO_COLOR or TERM=dumb), always or never"},
		},
		Before: a.before,
		// Errors are printed once, by Main.
		ExitErrHandler: func(context.Context, *ucli.Command, error) {},
		Commands: []*ucli.Command{
			a.factsCommand(),
			a.traceCommand(),
			a.sweepCommand(),
			a.diffCommand(),
			a.runCommand(),
			a.hostsCommand(),
			a.reachCommand(),
			a.reportCommand(),
			a.mergeCommand(),
			a.serveCommand(),
			a.usersCommand(),
			a.manCommand(),
			a.versionCommand(),
		},
	}
}

func (a *app) before(ctx context.Context, cmd *ucli.Command) (context.Context, error) {
	if cmd.Bool("json") && cmd.Bool("text") {
		return ctx, tsimerr.Inputf("--json and --text exclude each other")
	}
	lvl, err := zerolog.ParseLevel(strings.ToLower(cmd.String("log-level")))
	if err != nil || lvl == zerolog.NoLevel {
		return ctx, tsimerr.Inputf("bad --log-level %q (want debug, info, warn or error)", cmd.String("log-level"))
	}
	if cmd.Bool("quiet") {
		lvl = zerolog.ErrorLevel
	}
	switch c := cmd.String("color"); c {
	case "auto", "always", "never":
	default:
		return ctx, tsimerr.Inputf("--color %q: want auto, always or never", c)
	}
	var w io.Writer = a.io.Err
	if isTerminal(a.io.Err) {
		w = zerolog.ConsoleWriter{Out: a.io.Err, TimeFormat: "15:04:05", NoColor: !a.colorOn(cmd, a.io.Err)}
	}
	a.log = zerolog.New(w).Level(lvl).With().Timestamp().Logger()
	return ctx, nil
}

// textOut reports whether stdout gets the human rendering.
func (a *app) textOut(cmd *ucli.Command) bool {
	switch {
	case cmd.Bool("json"):
		return false
	case cmd.Bool("text"):
		return true
	}
	return isTerminal(a.io.Out)
}

// color reports whether stdout gets ANSI colours.
func (a *app) color(cmd *ucli.Command) bool { return a.colorOn(cmd, a.io.Out) }

// colorOn reports whether w gets ANSI colours: --color always or never
// decide; auto colours a terminal unless NO_COLOR is set (no-color.org) or
// TERM is dumb.
func (a *app) colorOn(cmd *ucli.Command, w any) bool {
	switch cmd.String("color") {
	case "always":
		return true
	case "never":
		return false
	}
	return isTerminal(w) && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// noArgs rejects stray positional arguments.
func noArgs(cmd *ucli.Command) error {
	if cmd.Args().Len() > 0 {
		return tsimerr.Inputf("%s: unexpected argument %q", strings.TrimPrefix(commandPath(cmd), cmd.Root().Name+" "), cmd.Args().First())
	}
	return nil
}
