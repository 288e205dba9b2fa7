package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v3"

	"github.com/tsim-dev/tsim/internal/testenv"
)

func corpusPath(t *testing.T, sub string) string {
	t.Helper()
	return testenv.Corpus(t, sub)
}

// run runs tsim in-process and returns stdout, stderr and the exit code.
func run(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), append([]string{"tsim"}, args...), Stdio{In: strings.NewReader(stdin), Out: &out, Err: &errb})
	return out.String(), errb.String(), code
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown flag", []string{"--nope"}, 2, "nope"},
		{"json and text", []string{"--json", "--text", "version"}, 2, "exclude"},
		{"bad log level", []string{"--log-level", "loud", "version"}, 2, "log-level"},
		{"stray argument", []string{"facts", "show", "extra"}, 2, "unexpected argument"},
		{"missing facts dir", []string{"--facts", "/nonexistent/facts", "facts", "show"}, 2, "/nonexistent/facts"},
		{"unknown command", []string{"tarce"}, 2, `no command "tarce" (see tsim --help); did you mean "trace"?`},
		{"unknown subcommand", []string{"hosts", "dwn"}, 2, `no command "hosts dwn" (see tsim hosts --help); did you mean "down"?`},
		{"help for an unknown command", []string{"help", "nosuch"}, 2, `no command "nosuch"`},
		{"unknown facts subcommand", []string{"facts", "nosuch"}, 2, `no command "facts nosuch"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errs, code := run(t, "", c.args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, c.code, errs)
			}
			if !strings.Contains(errs, c.msg) {
				t.Errorf("stderr %q does not mention %q", errs, c.msg)
			}
			if out != "" {
				t.Errorf("stdout not empty on error: %q", out)
			}
			if n := strings.Count(strings.TrimSpace(errs), "\n"); n > 0 && c.code == 2 && !strings.Contains(errs, "Incorrect Usage") {
				t.Errorf("error is not one line: %q", errs)
			}
		})
	}
}

func TestVersionJSON(t *testing.T) {
	out, _, code := run(t, "", "--json", "version")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var v struct{ Version, Go string }
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Version == "" || v.Go == "" {
		t.Fatalf("bad version JSON %q: %v", out, err)
	}
}

type showOut struct {
	Routers []struct {
		Name          string   `json:"name"`
		Interfaces    int      `json:"interfaces"`
		Addresses     int      `json:"addresses"`
		Rules         int      `json:"rules"`
		Tables        int      `json:"tables"`
		Routes        int      `json:"routes"`
		IptablesRules int      `json:"iptables_rules"`
		Ipsets        int      `json:"ipsets"`
		IpsetMembers  int      `json:"ipset_members"`
		Subnets       []string `json:"subnets"`
	} `json:"routers"`
}

// countSection counts lines starting with prefix inside the named sections
// of a raw facts file, independently of the parser.
func countSection(text string, sections map[string]bool, prefix *regexp.Regexp) int {
	n, in := 0, false
	for _, line := range strings.Split(text, "\n") {
		if m := regexp.MustCompile(`^=== TSIM_SECTION_START:(\S+) ===`).FindStringSubmatch(line); m != nil {
			in = sections[m[1]]
			continue
		}
		if strings.HasPrefix(line, "=== TSIM_SECTION_END:") {
			in = false
			continue
		}
		if in && prefix.MatchString(line) {
			n++
		}
	}
	return n
}

func TestFactsShowCorpusRaw(t *testing.T) {
	dir := corpusPath(t, "raw_facts")
	out, errs, code := run(t, "", "--facts", dir, "facts", "show", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var s showOut
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Routers) != 10 {
		t.Fatalf("%d routers, want 10", len(s.Routers))
	}
	for _, r := range s.Routers {
		b, err := os.ReadFile(filepath.Join(dir, r.Name+"_facts.txt"))
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		if want := countSection(text, map[string]bool{"iptables_save": true}, regexp.MustCompile(`^(\[\d+:\d+\] )?-A `)); r.IptablesRules != want {
			t.Errorf("%s: iptables_rules %d, want %d", r.Name, r.IptablesRules, want)
		}
		if want := countSection(text, map[string]bool{"ipset_save": true}, regexp.MustCompile(`^add `)); r.IpsetMembers != want {
			t.Errorf("%s: ipset_members %d, want %d", r.Name, r.IpsetMembers, want)
		}
		if want := countSection(text, map[string]bool{"policy_rules": true}, regexp.MustCompile(`^\d+:`)); r.Rules != want {
			t.Errorf("%s: rules %d, want %d", r.Name, r.Rules, want)
		}
		if len(r.Subnets) == 0 {
			t.Errorf("%s: no subnets", r.Name)
		}
	}
}

func TestFactsShowCorpusJSONAndExample(t *testing.T) {
	for _, src := range []string{corpusPath(t, "tsim_facts"), ""} {
		args := []string{"facts", "show", "--json"}
		if src != "" {
			args = append([]string{"--facts", src}, args...)
		}
		out, errs, code := run(t, "", args...)
		if code != 0 {
			t.Fatalf("%q: exit %d: %s", src, code, errs)
		}
		var s showOut
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatal(err)
		}
		if src != "" && len(s.Routers) != 10 || len(s.Routers) < 8 {
			t.Fatalf("%q: %d routers", src, len(s.Routers))
		}
		for _, r := range s.Routers {
			if r.Interfaces == 0 || r.Routes == 0 || len(r.Subnets) == 0 {
				t.Errorf("%q %s: empty counts %+v", src, r.Name, r)
			}
		}
	}
}

func TestFactsCheck(t *testing.T) {
	out, errs, code := run(t, "", "--facts", corpusPath(t, "raw_facts"), "facts", "check")
	if code != 1 {
		t.Fatalf("corpus check exit %d, want 1; stderr %s", code, errs)
	}
	// hq-gw's priority table routes 10.2.0.0/16 via 10.1.1.1 dev eth0, but
	// eth0 is 203.0.113.0/24: the kernel refuses it.
	re := regexp.MustCompile(`(?m)^\S*hq-gw_facts\.txt:\d+: error: route "10\.2\.0\.0/16 via 10\.1\.1\.1 dev eth0 metric 5".*gateway 10\.1\.1\.1 is not on a connected subnet of eth0`)
	if !re.MatchString(out) {
		t.Errorf("check output lacks the hq-gw gateway finding:\n%s", out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !regexp.MustCompile(`^\S+:\d+: (error|warning): .+`).MatchString(line) {
			t.Errorf("finding not in PATH:LINE: severity: message form: %q", line)
		}
	}
	out, errs, code = run(t, "", "facts", "check")
	if code != 0 {
		t.Fatalf("example check exit %d, want 0:\n%s%s", code, out, errs)
	}
}

func TestFactsParseRoundTrip(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "facts.json")
	_, errs, code := run(t, "", "--facts", corpusPath(t, "raw_facts"), "facts", "parse", "-o", file)
	if code != 0 {
		t.Fatalf("parse exit %d: %s", code, errs)
	}
	a, _, _ := run(t, "", "--facts", corpusPath(t, "raw_facts"), "facts", "show", "--json")
	b, errs, code := run(t, "", "--facts", file, "facts", "show", "--json")
	if code != 0 {
		t.Fatalf("show normalized exit %d: %s", code, errs)
	}
	var sa, sb showOut
	json.Unmarshal([]byte(a), &sa)
	json.Unmarshal([]byte(b), &sb)
	ja, _ := json.Marshal(sa)
	jb, _ := json.Marshal(sb)
	if !bytes.Equal(ja, jb) {
		t.Errorf("normalized facts show differs from raw:\n%s\n%s", ja, jb)
	}
	// A failing parse leaves nothing behind.
	bad := filepath.Join(dir, "bad.json")
	if _, _, code := run(t, "", "--facts", filepath.Join(dir, "missing"), "facts", "parse", "-o", bad); code != 2 {
		t.Errorf("parse of missing facts exit %d, want 2", code)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Errorf("failed parse left %s behind", bad)
	}
}

func TestFactsScriptIsPOSIX(t *testing.T) {
	out, _, code := run(t, "", "facts", "script")
	if code != 0 || !strings.HasPrefix(out, "#!") {
		t.Fatalf("exit %d, output %.40q", code, out)
	}
	for _, sh := range []string{"sh", "dash"} {
		if _, err := exec.LookPath(sh); err != nil {
			continue
		}
		cmd := exec.Command(sh, "-n")
		cmd.Stdin = strings.NewReader(out)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s -n: %v: %s", sh, err, b)
		}
	}
}

func TestManPagesEveryCommand(t *testing.T) {
	dir := t.TempDir()
	if _, errs, code := run(t, "", "man", "-o", dir); code != 0 {
		t.Fatalf("man exit %d: %s", code, errs)
	}
	// One page per visible command of the tree --help is made from.
	root := setUpTree(t)
	var want []string
	var walk func(c *ucli.Command, name string)
	walk = func(c *ucli.Command, name string) {
		want = append(want, name+".1")
		for _, s := range c.Commands {
			if !s.Hidden && s.Name != "help" {
				walk(s, name+"-"+s.Name)
			}
		}
	}
	walk(root, "tsim")
	for _, must := range []string{"tsim-facts-check.1", "tsim-trace.1", "tsim-completions-zsh.1"} {
		if !slices.Contains(want, must) {
			t.Fatalf("command tree lacks %s: %v", must, want)
		}
	}
	got, _ := filepath.Glob(filepath.Join(dir, "*.1"))
	if len(got) != len(want) {
		t.Errorf("%d pages, want %d (%v)", len(got), len(want), want)
	}
	hasMan := true
	if _, err := exec.LookPath("man"); err != nil {
		hasMan = false
		t.Log("man not installed: pages are not rendered")
	}
	for _, page := range want {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil {
			t.Fatalf("missing page: %v", err)
		}
		if !bytes.HasPrefix(b, []byte(".TH ")) {
			t.Errorf("%s is not roff", page)
		}
		for _, sec := range []string{"NAME", "SYNOPSIS", "EXIT STATUS", "ENVIRONMENT", "EXAMPLES", "SEE ALSO"} {
			if !bytes.Contains(b, []byte("\n.SH "+sec+"\n")) {
				t.Errorf("%s has no %s section", page, sec)
			}
		}
		if !hasMan {
			continue
		}
		cmd := exec.Command("man", "--warnings", "-l", filepath.Join(dir, page))
		// LC_ALL=C: the ASCII device, where groff-base has the fewest glyphs.
		cmd.Env = append(os.Environ(), "MANPAGER=cat", "MANWIDTH=80", "LC_ALL=C")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || !strings.Contains(string(out), "EXIT STATUS") || !strings.Contains(string(out), "EXAMPLES") {
			t.Errorf("man -l %s failed: %v\n%s%s", page, err, out, stderr.Bytes())
		}
		// groff warnings (bad escapes, unknown macros) mean a broken page.
		if stderr.Len() > 0 {
			t.Errorf("man -l %s warns: %s", page, stderr.Bytes())
		}
	}
	// Commands that touch files say which.
	for _, page := range []string{"tsim.1", "tsim-run.1", "tsim-hosts-up.1", "tsim-facts-check.1"} {
		b, _ := os.ReadFile(filepath.Join(dir, page))
		if !bytes.Contains(b, []byte("\n.SH FILES\n")) {
			t.Errorf("%s has no FILES section", page)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "tsim-hosts-up.1"))
	if !bytes.Contains(b, []byte(`/run/tsim/labs`)) {
		t.Errorf("tsim-hosts-up.1 does not name the lab registry")
	}
}

// TestLegacyVectorsThroughCLI runs every predecessor vector through the
// command, as scripts call it: same JSON, same exit code.
func TestLegacyVectorsThroughCLI(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(corpusPath(t, ""), "trace-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vf struct {
		Vectors []struct {
			ID         int             `json:"id"`
			Src        string          `json:"src"`
			Dst        string          `json:"dst"`
			ExitCode   int             `json:"exit_code"`
			LegacyJSON json.RawMessage `json:"legacy_json"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(b, &vf); err != nil {
		t.Fatal(err)
	}
	if len(vf.Vectors) != 30 {
		t.Fatalf("%d vectors, want 30", len(vf.Vectors))
	}
	facts := corpusPath(t, "tsim_facts")
	for _, v := range vf.Vectors {
		out, errs, code := run(t, "", "--facts", facts, "trace", "-s", v.Src, "-d", v.Dst, "--format", "legacy-json")
		if code != v.ExitCode {
			t.Errorf("vector %d: exit %d, want %d (%s)", v.ID, code, v.ExitCode, errs)
			continue
		}
		if len(v.LegacyJSON) == 0 || string(v.LegacyJSON) == "null" {
			continue
		}
		var got, want any
		json.Unmarshal([]byte(out), &got)
		json.Unmarshal(v.LegacyJSON, &want)
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		if !bytes.Equal(gb, wb) {
			t.Errorf("vector %d: JSON differs\n got %s\nwant %s", v.ID, gb, wb)
		}
	}
	_, _, code := run(t, "", "--facts", facts, "trace", "-s", "10.1.1.x", "-d", "10.1.2.1", "--format", "legacy-json")
	if code != 10 {
		t.Errorf("invalid IP: exit %d, want 10", code)
	}
}
