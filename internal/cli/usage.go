package cli

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	ucli "github.com/urfave/cli/v3"

	"github.com/tsim-dev/tsim/internal/tsimerr"
)

// Usage errors are one line on stderr, nothing on stdout, exit 2: flags
// are written with their dashes (--format, -s), a misspelled flag or
// command gets a "did you mean" when one is close, and the line ends with
// where to read more.

// onUsageErrors makes every command of c's tree report its parse errors
// (unknown flag, missing value, missing required flag, bad value) as
// tsim's one-line usage errors instead of urfave/cli's help on stdout.
func onUsageErrors(c *ucli.Command) {
	c.OnUsageError = func(_ context.Context, cmd *ucli.Command, err error, _ bool) error {
		return usageError(cmd, err)
	}
	for _, sub := range c.Commands {
		onUsageErrors(sub)
	}
}

var (
	reUndefined = regexp.MustCompile(`^flag provided but not defined: -+(.*)$`)
	reNeedsArg  = regexp.MustCompile(`^flag needs an argument: -*(.*)$`)
	reRequired  = regexp.MustCompile(`^Required flags? (.*) not set$`)
	reInvalid   = regexp.MustCompile(`^invalid value (".*") for flag -+([^:]+): (.*)$`)
	reQuoted    = regexp.MustCompile(`"([^"]+)"`)
)

// usageError rewrites one of urfave/cli's parse errors for cmd.
func usageError(cmd *ucli.Command, err error) error {
	var te *tsimerr.Error
	if errors.As(err, &te) {
		return err
	}
	where := commandPath(cmd)
	msg := err.Error()
	switch {
	case reUndefined.MatchString(msg):
		name := reUndefined.FindStringSubmatch(msg)[1]
		msg = "unknown flag " + dashed(name)
		if s := closestFlag(cmd, name); s != "" && len(name) > 1 {
			msg += "; did you mean " + dashed(s) + "?"
		}
	case reNeedsArg.MatchString(msg):
		msg = dashed(reNeedsArg.FindStringSubmatch(msg)[1]) + " needs a value"
	case reRequired.MatchString(msg):
		var names []string
		for _, m := range reQuoted.FindAllStringSubmatch(msg, -1) {
			for _, n := range strings.Split(m[1], ",") {
				names = append(names, dashed(strings.TrimSpace(n)))
			}
		}
		msg = "missing required flag " + strings.Join(names, ", ")
		if len(names) > 1 {
			msg = "missing required flags " + strings.Join(names, ", ")
		}
	case reInvalid.MatchString(msg):
		m := reInvalid.FindStringSubmatch(msg)
		why := m[3]
		if strings.Contains(why, "strconv.") {
			why = "not a number"
		}
		msg = fmt.Sprintf("%s %s: %s", dashed(m[2]), m[1], why)
	}
	if where != cmd.Root().Name {
		msg = strings.TrimPrefix(where, cmd.Root().Name+" ") + ": " + msg
	}
	return tsimerr.Inputf("%s (see %s --help)", msg, where)
}

// commandPath is "tsim hosts down".
func commandPath(cmd *ucli.Command) string {
	var names []string
	for _, c := range cmd.Lineage() {
		names = append(names, c.Name)
	}
	slices.Reverse(names)
	return strings.Join(names, " ")
}

// dashed writes a flag name as typed: -s, --format.
func dashed(name string) string {
	if len([]rune(name)) == 1 {
		return "-" + name
	}
	return "--" + name
}

// closestFlag is the flag name of cmd (or of a command above it) nearest
// to name, when it is near enough to be a typo.
func closestFlag(cmd *ucli.Command, name string) string {
	var names []string
	for _, c := range cmd.Lineage() {
		for _, f := range c.Flags {
			names = append(names, f.Names()...)
		}
	}
	names = append(names, "help")
	return closest(name, names)
}

// closest returns the candidate within a small edit distance of word
// (about one typo per three letters), or "".
func closest(word string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if len(c) < 2 && len(word) > 1 {
			continue
		}
		if d := editDistance(word, c); d < bestD {
			best, bestD = c, d
		}
	}
	if bestD <= max(1, len(word)/3) {
		return best
	}
	return ""
}

// editDistance is the Damerau-Levenshtein distance (adjacent swaps cost
// one), in bytes.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// unknownCommand finds a misspelled command before urfave/cli parses
// flags meant for it as the parent's (`tsim tarce -s A` would say "flag
// provided but not defined: -s"): the first word that should name a
// command of root, or of a command group, and names none.
func unknownCommand(root *ucli.Command, args []string) error {
	i := invokedAt(root, args)
	if i < 0 {
		return nil
	}
	cur, path := root, root.Name
	for cur != nil && len(cur.Commands) > 0 && i < len(args) {
		w := args[i]
		if strings.HasPrefix(w, "-") {
			return nil
		}
		next := findCommand(cur, w)
		if next == nil {
			// help, and the completions command urfave/cli adds when it
			// runs (its own CommandNotFound reports a wrong shell).
			if w == "help" || (cur == root && w == root.ShellCompletionCommandName) || (cur != root && cur.Action != nil) {
				return nil
			}
			full := strings.TrimPrefix(path+" "+w, "tsim ")
			msg := fmt.Sprintf("no command %q (see %s --help)", full, path)
			if s := closestCommand(cur, w); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			return tsimerr.Inputf("%s", msg)
		}
		cur, path = next, path+" "+next.Name
		i++
	}
	return nil
}

func findCommand(c *ucli.Command, name string) *ucli.Command {
	for _, s := range c.Commands {
		if slices.Contains(s.Names(), name) {
			return s
		}
	}
	return nil
}

func closestCommand(c *ucli.Command, name string) string {
	var names []string
	for _, s := range c.Commands {
		if !s.Hidden {
			names = append(names, s.Names()...)
		}
	}
	return closest(name, names)
}
