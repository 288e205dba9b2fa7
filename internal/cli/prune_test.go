package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestPrunedTreeChangesNothing: Main builds only the invoked top-level
// command when it can tell which one args name. Every kind of command
// line prints exactly what the whole tree prints.
func TestPrunedTreeChangesNothing(t *testing.T) {
	dir := t.TempDir()
	runWith := func(args []string, pruned bool) string {
		var out, errOut strings.Builder
		a := &app{io: Stdio{In: strings.NewReader(""), Out: &out, Err: &errOut}, log: zerolog.Nop()}
		root := a.command()
		if pruned {
			root = a.rootFor(args)
		} else {
			handleInterrupts(root, root.Name)
			addHelpExamples(root, root.Name, nil)
			a.reportUnknownCommands(root, root.Name)
			onUsageErrors(root)
		}
		err := root.Run(context.Background(), args)
		if err == nil {
			err = a.unknown
		}
		return fmt.Sprintf("stdout:\n%s\nstderr:\n%s\nerr: %v", out.String(), errOut.String(), err)
	}
	for _, args := range [][]string{
		{"tsim"}, {"tsim", "--help"}, {"tsim", "-h"}, {"tsim", "help"}, {"tsim", "help", "trace"},
		{"tsim", "trace", "--help"}, {"tsim", "trace", "-s", "10.1.10.5", "-d", "10.1.50.10", "-p", "https,ssh", "--json"},
		{"tsim", "--json", "trace", "-s", "10.1.10.5", "-d", "10.1.50.10"},
		{"tsim", "--log-level", "info", "trace", "-s", "10.1.10.5", "-d", "10.1.50.10", "--format", "text"},
		{"tsim", "--log-level=debug", "-q", "trace", "-s", "10.1.10.5", "-d", "10.9.9.9"},
		{"tsim", "--facts", "trace", "trace", "-s", "1.2.3.4", "-d", "10.1.50.10"},
		{"tsim", "--bogus", "trace"}, {"tsim", "trace", "--bogus"}, {"tsim", "-h", "trace"},
		{"tsim", "trace", "-s", "10.1.10.5", "-d", "10.1.50.10", "-p", "nosuchservice"},
		{"tsim", "trace", "--generate-shell-completion"}, {"tsim", "--generate-shell-completion"},
		{"tsim", "hosts"}, {"tsim", "hosts", "--help"}, {"tsim", "hosts", "up", "--help"},
		{"tsim", "hosts", "--generate-shell-completion"},
		{"tsim", "facts", "show", "--json"}, {"tsim", "facts", "check"}, {"tsim", "facts", "nosuch"},
		{"tsim", "users", "ls", "--users", filepath.Join(dir, "none.json")},
		{"tsim", "version"}, {"tsim", "version", "--json"}, {"tsim", "nosuch"}, {"tsim", "tr"},
		{"tsim", "completions", "bash"}, {"tsim", "report", "--help"}, {"tsim", "merge", "-h"},
		{"tsim", "--", "trace"}, {"tsim", "-", "trace"},
	} {
		want := runWith(args, false)
		if got := runWith(args, true); got != want {
			t.Errorf("%q with only the invoked command:\n%s\nwith the whole tree:\n%s", args, got, want)
		}
	}
	// man reads the whole tree: it is never pruned.
	for i, pruned := range []bool{false, true} {
		out := filepath.Join(dir, fmt.Sprint("man", i))
		runWith([]string{"tsim", "man", "-o", out}, pruned)
	}
	a, _ := os.ReadDir(filepath.Join(dir, "man0"))
	b, _ := os.ReadDir(filepath.Join(dir, "man1"))
	if len(a) < 10 || len(a) != len(b) {
		t.Errorf("man pages: %d from the whole tree, %d from Main's", len(a), len(b))
	}
	for _, e := range a {
		x, _ := os.ReadFile(filepath.Join(dir, "man0", e.Name()))
		y, _ := os.ReadFile(filepath.Join(dir, "man1", e.Name()))
		if string(x) != string(y) {
			t.Errorf("man page %s differs", e.Name())
		}
	}
}

func TestInvokedCommand(t *testing.T) {
	root := (&app{log: zerolog.Nop()}).command()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"tsim", "trace", "-s", "x"}, "trace"},
		{[]string{"tsim", "--facts", "dir", "hosts", "up"}, "hosts"},
		{[]string{"tsim", "--facts=dir", "--json", "-q", "reach"}, "reach"},
		{[]string{"tsim", "--facts", "trace", "run"}, "run"},
		{[]string{"tsim", "--log-level", "debug", "version"}, "version"},
		{[]string{"tsim", "--bogus", "trace"}, ""},
		{[]string{"tsim", "-h", "trace"}, ""},
		{[]string{"tsim", "--", "trace"}, ""},
		{[]string{"tsim"}, ""},
		{[]string{"tsim", "--facts"}, ""},
	}
	for _, tc := range tests {
		if got := invokedCommand(root, tc.args); got != tc.want {
			t.Errorf("invokedCommand(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}
