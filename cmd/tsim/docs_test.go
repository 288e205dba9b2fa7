package main

// The shell examples of README.md and docs/*.md are run, so what the docs
// show is what tsim does.
//
// Convention (also in docs/README.md):
//   - Every fenced block whose info string is exactly `sh` is run with bash
//     (set -e -o pipefail), the built tsim first on PATH, in a temporary
//     directory shared by the blocks of one file, in order — a later block
//     may use files an earlier one wrote.
//   - A block that uses sudo needs root; as root `sudo` is a no-op function
//     (CI runs as root and has no sudo), otherwise the block is skipped.
//   - An HTML comment on the line before the fence adjusts it (invisible on
//     GitHub): `<!-- docs-test: skip REASON -->`, `<!-- docs-test: exit N -->`
//     (expected exit status, default 0), `<!-- docs-test: root -->`.
//   - Blocks with any other info string (console, json, text, ini, yaml …)
//     are shown, not run; one right after `<!-- docs-test: output -->` is
//     the stdout of the sh block before it, and asserted: line by line,
//     where a line `...` stands for any number of lines and `[...]` inside
//     a line for any text.
//   - Only the files in docsRun are run: examples are real commands (some
//     start servers or install packages), so a page's author decides, with
//     markers, what runs here. A page with sh blocks that is in neither
//     docsRun nor docsPending fails the test.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tsim-dev/tsim/internal/testenv"
)

type docBlock struct {
	file   string
	line   int // line of the opening fence
	code   string
	skip   string // reason, when skipped
	exit   int
	root   bool
	marker string
	want   string // the shown stdout, from an output block ("" when none)
	wantAt int    // line of the output block's fence
}

// docsRun are the pages whose sh examples are run, relative to the repo.
var docsRun = []string{
	"README.md",
	"docs/diff.md",
	"docs/document.md",
	"docs/exit-codes.md",
	"docs/facts.md",
	"docs/migration.md",
	"docs/scale-out.md",
	"docs/scale.md",
	"docs/serve.md",
	"docs/api.md",
}

// docsPending are pages with sh blocks not marked up for the docs test
// yet, and why; their examples are not run.
var docsPending = map[string]string{}

var markerRE = regexp.MustCompile(`^<!--\s*docs-test:\s*(.*?)\s*-->$`)

// docBlocks extracts the sh blocks of a markdown file.
func docBlocks(path string) ([]docBlock, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var blocks []docBlock
	var cur *docBlock
	var code strings.Builder
	prev := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			info := strings.TrimSpace(strings.TrimPrefix(line, "```"))
			if info != "sh" {
				// Skip a block that is not run, so its content is not
				// mistaken for fences or markers; an output block is kept.
				m := markerRE.FindStringSubmatch(strings.TrimSpace(prev))
				isOutput := m != nil && m[1] == "output"
				if m != nil && !isOutput {
					return nil, fmt.Errorf("%s:%d: docs-test marker %q on a %q block that is not run", path, n-1, m[1], info)
				}
				if isOutput && len(blocks) == 0 {
					return nil, fmt.Errorf("%s:%d: docs-test: output without an sh block before it", path, n-1)
				}
				at := n
				var out strings.Builder
				for sc.Scan() {
					n++
					if strings.HasPrefix(strings.TrimSpace(sc.Text()), "```") {
						break
					}
					out.WriteString(sc.Text() + "\n")
				}
				if isOutput {
					last := &blocks[len(blocks)-1]
					if last.want != "" {
						return nil, fmt.Errorf("%s:%d: a second output block for the sh block at line %d", path, at, last.line)
					}
					last.want, last.wantAt = out.String(), at
				}
				prev = ""
				continue
			}
			cur = &docBlock{file: path, line: n}
			if m := markerRE.FindStringSubmatch(strings.TrimSpace(prev)); m != nil {
				cur.marker = m[1]
				word, rest, _ := strings.Cut(m[1], " ")
				switch word {
				case "skip":
					cur.skip = strings.TrimSpace(rest)
					if cur.skip == "" {
						return nil, fmt.Errorf("%s:%d: docs-test: skip needs a reason", path, n-1)
					}
				case "exit":
					cur.exit, err = strconv.Atoi(strings.TrimSpace(rest))
					if err != nil {
						return nil, fmt.Errorf("%s:%d: docs-test: exit %q: %v", path, n-1, rest, err)
					}
				case "root":
					cur.root = true
				case "output":
					return nil, fmt.Errorf("%s:%d: docs-test: output belongs before the shown output, not before an sh block", path, n-1)
				default:
					return nil, fmt.Errorf("%s:%d: unknown docs-test marker %q", path, n-1, m[1])
				}
			}
			code.Reset()
		case cur != nil && strings.TrimSpace(line) == "```":
			cur.code = code.String()
			if regexp.MustCompile(`(^|[\s|;&(])sudo\s`).MatchString(cur.code) {
				cur.root = true
			}
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			code.WriteString(line)
			code.WriteString("\n")
		}
		if strings.TrimSpace(line) != "" {
			prev = line
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: code block not closed", path, cur.line)
	}
	return blocks, sc.Err()
}

func TestDocBlocksParser(t *testing.T) {
	md := "# x\n\n```sh\ntsim version\n```\n\n<!-- docs-test: exit 1 -->\n```sh\ntsim trace -s a\n```\n\n```json\n{\"a\": 1}\n```\n\n" +
		"<!-- docs-test: skip needs a router -->\n```sh\nssh r\n```\n\n```sh\nsudo tsim run\n```\n\n```console\n$ tsim\n```\n"
	p := filepath.Join(t.TempDir(), "x.md")
	os.WriteFile(p, []byte(md), 0o644)
	bl, err := docBlocks(p)
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, b := range bl {
		got += fmt.Sprintf("%d exit=%d root=%v skip=%q %q\n", b.line, b.exit, b.root, b.skip, b.code)
	}
	want := `3 exit=0 root=false skip="" "tsim version\n"
8 exit=1 root=false skip="" "tsim trace -s a\n"
17 exit=0 root=false skip="needs a router" "ssh r\n"
21 exit=0 root=true skip="" "sudo tsim run\n"
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	os.WriteFile(p, []byte("<!-- docs-test: sometimes -->\n```sh\nx\n```\n"), 0o644)
	if _, err := docBlocks(p); err == nil {
		t.Error("unknown marker accepted")
	}
}

func TestOutputMatches(t *testing.T) {
	tests := []struct {
		shown, got string
		ok         bool
	}{
		{"a\nb\n", "a\nb\n", true},
		{"a\nb\n", "a\nc\n", false},
		{"a\nb\n", "a\n", false},
		{"a\n...\nz\n", "a\nb\nc\nz\n", true},
		{"a\n...\nz\n", "a\nz\n", true},
		{"a\n...\nz\n", "a\nb\n", false},
		{"report [...] (3 pages)\n", "report out/x.pdf (3 pages)\n", true},
		{"report [...] (3 pages)\n", "report out/x.pdf (4 pages)\n", false},
		{"1+1 (x)\n", "1+1 (x)\n", true},
		{"1+1 (x)\n", "11 (x)\n", false},
	}
	for _, tt := range tests {
		if got := outputMatches(tt.shown, tt.got); got != tt.ok {
			t.Errorf("outputMatches(%q, %q) = %v", tt.shown, tt.got, got)
		}
	}
	md := "```sh\ntsim version\n```\n<!-- docs-test: output -->\n```text\ntsim [...]\n```\n"
	p := filepath.Join(t.TempDir(), "x.md")
	os.WriteFile(p, []byte(md), 0o644)
	bl, err := docBlocks(p)
	if err != nil || len(bl) != 1 || bl[0].want != "tsim [...]\n" || bl[0].wantAt != 5 {
		t.Fatalf("output block: %+v %v", bl, err)
	}
	for _, bad := range []string{"<!-- docs-test: output -->\n```text\nx\n```\n", "<!-- docs-test: output -->\n```sh\nx\n```\n",
		"```sh\nx\n```\n<!-- docs-test: exit 1 -->\n```text\nx\n```\n"} {
		os.WriteFile(p, []byte(bad), 0o644)
		if _, err := docBlocks(p); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDocsExamples(t *testing.T) {
	all, _ := filepath.Glob("../../docs/*.md")
	for _, f := range all {
		name := strings.TrimPrefix(f, "../../")
		if slices.Contains(docsRun, name) {
			continue
		}
		blocks, err := docBlocks(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(blocks) == 0 {
			continue
		}
		if why, ok := docsPending[name]; ok {
			t.Logf("%s: %d sh examples not run: %s", name, len(blocks), why)
			continue
		}
		t.Errorf("%s has sh examples the docs test does not run: mark them up and add the page to docsRun (cmd/tsim/docs_test.go)", name)
	}
	testenv.NeedTools(t, "bash")
	bash, _ := exec.LookPath("bash")
	// Examples see the tsim under test, as "tsim" and (for the README's
	// quick start) as ./tsim.
	bin := filepath.Dir(tsimBin)
	ran := 0
	for _, name := range docsRun {
		f := filepath.Join("..", "..", name)
		blocks, err := docBlocks(f)
		if err != nil {
			t.Error(err)
			continue
		}
		if len(blocks) == 0 {
			continue
		}
		dir := t.TempDir()
		if err := os.Symlink(tsimBin, filepath.Join(dir, "tsim")); err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks {
			if b.skip != "" {
				// Not a test: the page says why it cannot run here.
				t.Logf("%s:%d not run: %s", name, b.line, b.skip)
				continue
			}
			t.Run(fmt.Sprintf("%s:%d", name, b.line), func(t *testing.T) {
				if b.root {
					testenv.NeedRoot(t, "sudo make test")
				}
				for _, tool := range []string{"jq", "curl", "openssl", "systemd-analyze", "ansible-playbook", "setpriv"} {
					if regexp.MustCompile(`\b` + tool + `\b`).MatchString(b.code) {
						testenv.NeedTools(t, tool)
					}
				}
				script := "set -e -o pipefail\n"
				if os.Geteuid() == 0 {
					script += "sudo() { \"$@\"; }\n"
				}
				script += b.code
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, bash, "-c", script)
				cmd.Dir = dir
				// Its own process group, killed as a whole on timeout, so
				// nothing an example starts outlives the test.
				cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
				cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
				cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
				start := time.Now()
				r := runCommand(t, cmd)
				if ctx.Err() != nil {
					t.Fatalf("timed out after %v", time.Since(start))
				}
				if r.code != b.exit {
					t.Errorf("%s:%d: exit %d, want %d\n--- script\n%s--- stdout\n%s--- stderr\n%s", name, b.line, r.code, b.exit, b.code, r.stdout, r.stderr)
				}
				if b.want != "" && !outputMatches(b.want, r.stdout) {
					t.Errorf("%s:%d: stdout is not the output shown at line %d\n--- shown\n%s--- stdout\n%s--- stderr\n%s", name, b.line, b.wantAt, b.want, r.stdout, r.stderr)
				}
				if d := time.Since(start); d > 10*time.Second {
					t.Logf("slow example (%v): keep doc examples to a few seconds", d.Round(time.Millisecond))
				}
			})
			ran++
		}
	}
	if ran == 0 {
		t.Fatal("no sh examples found in README.md and docs/")
	}
}

// outputMatches reports whether got is the output a page shows: line by
// line, a shown line `...` matches any number of lines, and `[...]` in a
// line matches any text.
func outputMatches(shown, got string) bool {
	want := strings.Split(strings.TrimRight(shown, "\n"), "\n")
	have := strings.Split(strings.TrimRight(got, "\n"), "\n")
	var match func(w, h []string) bool
	match = func(w, h []string) bool {
		if len(w) == 0 {
			return len(h) == 0
		}
		if strings.TrimSpace(w[0]) == "..." {
			for k := 0; k <= len(h); k++ {
				if match(w[1:], h[k:]) {
					return true
				}
			}
			return false
		}
		return len(h) > 0 && lineMatches(w[0], h[0]) && match(w[1:], h[1:])
	}
	return match(want, have)
}

func lineMatches(shown, got string) bool {
	parts := strings.Split(strings.TrimRight(shown, " "), "[...]")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".*") + "$").MatchString(strings.TrimRight(got, " "))
}

// runCommand runs cmd and returns its output and exit status; failing to
// start it fails the test.
func runCommand(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}
