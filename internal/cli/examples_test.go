package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	ucli "github.com/urfave/cli/v3"
)

// setUpTree returns tsim's command tree as Main runs it, after urfave/cli
// added its own commands (completions, help).
func setUpTree(t *testing.T) *ucli.Command {
	t.Helper()
	a := &app{io: Stdio{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard}, log: zerolog.Nop()}
	root := a.command()
	addHelpExamples(root, root.Name, nil)
	if err := root.Run(context.Background(), []string{"tsim", "--help"}); err != nil {
		t.Fatalf("tsim --help: %v", err)
	}
	return root
}

// shellWords splits a command line into words and operators (|, ;, &&,
// redirections), honouring quotes. Enough for the examples, not a shell.
func shellWords(s string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '\'' || ch == '"':
			j := strings.IndexByte(s[i+1:], ch)
			if j < 0 {
				j = len(s) - i - 1
			}
			cur.WriteString(s[i+1 : i+1+j])
			inWord = true
			i += j + 1
		case ch == ' ' || ch == '\t':
			flush()
		case (ch == '$' || ch == '<') && i+1 < len(s) && s[i+1] == '(' || ch == '(' || ch == ')':
			flush()
			if ch != '(' && ch != ')' { // $( and <( open a command
				i++
				ch = '('
			}
			words = append(words, string(ch))
		case strings.IndexByte("|;&<>", ch) >= 0:
			if ch == '>' && inWord && cur.String() == "2" { // 2>file
				cur.Reset()
				inWord = false
			}
			flush()
			op := string(ch)
			for i+1 < len(s) && strings.IndexByte("|&>", s[i+1]) >= 0 {
				i++
				op += string(s[i])
			}
			words = append(words, op)
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	flush()
	return words
}

// tsimInvocations returns the argument lists of every tsim command in a
// command line (after sudo and VAR=value prefixes).
func tsimInvocations(line string) [][]string {
	var out [][]string
	var cmd []string
	start, skipNext := true, false
	for _, w := range shellWords(line) {
		switch {
		case skipNext:
			skipNext = false
			continue
		case w == "<" || w == ">" || w == ">>" || w == "2>":
			skipNext = true
			continue
		case w == "|" || w == ";" || w == "&&" || w == "||" || w == "(" || w == "$" || w == ")":
			if cmd != nil {
				out = append(out, cmd)
			}
			cmd, start = nil, true
			continue
		}
		if start {
			if w == "sudo" || w == "do" || w == "then" || strings.Contains(w, "=") && !strings.HasPrefix(w, "-") {
				continue
			}
			start = false
			if w == "tsim" {
				cmd = []string{}
			}
			continue
		}
		if cmd != nil {
			cmd = append(cmd, w)
		}
	}
	if cmd != nil {
		out = append(out, cmd)
	}
	return out
}

// checkInvocation walks args through the command tree: every flag must exist
// on the command reached so far (or the root), every word that is not a flag
// value must be a subcommand or an argument of a leaf.
func checkInvocation(root *ucli.Command, args []string) (string, error) {
	c := root
	path := []string{"tsim"}
	findFlag := func(name string) ucli.Flag {
		for _, cmd := range []*ucli.Command{c, root} {
			for _, f := range cmd.Flags {
				if slices.Contains(f.Names(), name) {
					return f
				}
			}
		}
		return nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") && a != "-" {
			name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			f := findFlag(name)
			if f == nil {
				return strings.Join(path, " "), fmt.Errorf("%s: no flag %q", strings.Join(path, " "), a)
			}
			if df, ok := f.(ucli.DocGenerationFlag); ok && df.TakesValue() && !hasValue {
				i++
			}
			continue
		}
		var next *ucli.Command
		subs := 0
		for _, s := range c.Commands {
			if s.Name == "help" {
				continue
			}
			subs++
			if s.HasName(a) {
				next = s
			}
		}
		if next == nil {
			if subs > 0 {
				return strings.Join(path, " "), fmt.Errorf("%s: no subcommand %q", strings.Join(path, " "), a)
			}
			continue // a positional argument (user name, …)
		}
		c = next
		path = append(path, a)
	}
	return strings.Join(path, " "), nil
}

func TestShellWords(t *testing.T) {
	cases := []struct {
		in   string
		want [][]string
	}{
		{"tsim trace -s 1 -d 2", [][]string{{"trace", "-s", "1", "-d", "2"}}},
		{"sudo tsim run -o '' | tsim report -o out/", [][]string{{"run", "-o", ""}, {"report", "-o", "out/"}}},
		{"SOURCE_DATE_EPOCH=1 tsim report -o out/ < done.json", [][]string{{"report", "-o", "out/"}}},
		{`tsim x --json | jq -r '.a | "\(.b)"' > f`, [][]string{{"x", "--json"}}},
		{"echo pw | tsim users add a --users u && tsim users ls", [][]string{{"users", "add", "a", "--users", "u"}, {"users", "ls"}}},
		{"tsim run --progress=json 2>p.ndjson", [][]string{{"run", "--progress=json"}}},
		{"source <(tsim completions bash)", [][]string{{"completions", "bash"}}},
		{`ls "$(tsim x)" $(tsim y -o f)`, [][]string{{"y", "-o", "f"}}},
		{"for r in a b; do tsim facts script | ssh root@$r sh > f; done", [][]string{{"facts", "script"}}},
	}
	for _, c := range cases {
		if got := tsimInvocations(c.in); !slices.EqualFunc(got, c.want, slices.Equal) {
			t.Errorf("%q: %q, want %q", c.in, got, c.want)
		}
	}
}

// TestExamplesParse checks every example against the command definitions:
// an example naming a flag or subcommand that does not exist fails, and
// every example of a command invokes that command (or shows its input).
func TestExamplesParse(t *testing.T) {
	root := setUpTree(t)
	paths := map[string]bool{}
	var walk func(c *ucli.Command, path string)
	walk = func(c *ucli.Command, path string) {
		paths[path] = true
		for _, s := range c.Commands {
			if !s.Hidden && s.Name != "help" {
				walk(s, path+" "+s.Name)
			}
		}
	}
	walk(root, "tsim")
	all := commandExamples()
	for path := range paths {
		if len(all[path]) == 0 {
			t.Errorf("%s has no examples", path)
		}
	}
	for path, exs := range all {
		if !paths[path] {
			t.Errorf("examples for %q, which is not a command", path)
			continue
		}
		uses := false
		for _, e := range exs {
			for _, args := range tsimInvocations(e.Cmd) {
				reached, err := checkInvocation(root, args)
				if err != nil {
					t.Errorf("%s: example %q: %v", path, e.Cmd, err)
				}
				uses = uses || reached == path || strings.HasPrefix(reached, path+" ")
			}
		}
		if !uses {
			t.Errorf("%s: no example runs it", path)
		}
	}
}

func TestHelpShowsExamples(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"trace", "--help"}, {"help", "trace"}, {"facts", "--help"}, {"facts", "check", "--help"}, {"completions", "--help"}} {
		out, errs, code := run(t, "", args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
		if !strings.Contains(strings.ToLower(out), "examples:\n") {
			t.Errorf("%v: no examples in help:\n%s", args, out)
		}
		// The examples come from the table, unchanged.
		key := "tsim"
		if args[0] == "help" {
			key += " " + args[1]
		} else if args[0] != "--help" {
			key += " " + strings.Join(args[:len(args)-1], " ")
		}
		for _, e := range commandExamples()[key] {
			if !strings.Contains(out, e.Cmd+"\n") {
				t.Errorf("%v: help lacks example %q", args, e.Cmd)
			}
		}
	}
}

// TestHelpExamplesEveryWay: Main adds examples only to the commands named
// on the command line. Every way of asking for (or provoking) help prints
// exactly what it prints with the examples added to every command.
func TestHelpExamplesEveryWay(t *testing.T) {
	runWith := func(args []string, named map[string]bool) string {
		var out strings.Builder
		a := &app{io: Stdio{In: strings.NewReader(""), Out: &out, Err: &out}, log: zerolog.Nop()}
		root := a.command()
		addHelpExamples(root, root.Name, named)
		err := root.Run(context.Background(), args)
		return fmt.Sprintf("%s\nerr: %v", out.String(), err)
	}
	for _, args := range [][]string{
		{"tsim"}, {"tsim", "--help"}, {"tsim", "trace", "--help"}, {"tsim", "trace", "-h"},
		{"tsim", "help", "trace"}, {"tsim", "trace", "--bogus"}, {"tsim", "hosts", "up", "--help"},
		{"tsim", "help", "hosts", "up"}, {"tsim", "hosts"}, {"tsim", "hosts", "--help"},
		{"tsim", "facts", "check", "--nope"}, {"tsim", "users", "add", "--help"}, {"tsim", "nosuch"},
		{"tsim", "completions", "--help"}, {"tsim", "--json", "hosts", "down", "-h"},
	} {
		want := runWith(args, nil)
		if got := runWith(args, wordsOf(args)); got != want {
			t.Errorf("%v prints, with examples for the named commands only:\n%s\nwith every command's examples:\n%s", args, got, want)
		}
	}
	// And the examples are there at all.
	if out := runWith([]string{"tsim", "hosts", "up", "--help"}, wordsOf([]string{"tsim", "hosts", "up", "--help"})); !strings.Contains(out, commandExamples()["tsim hosts up"][0].Cmd) {
		t.Errorf("tsim hosts up --help lacks its first example:\n%s", out)
	}
}
