package main

// The completion scripts load in real shells, and completing a word asks the
// built binary (urfave/cli's --generate-shell-completion protocol).

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/internal/testenv"
)

// shell runs script in the named shell with the built tsim first on PATH
// and returns stdout; any stderr output fails the test.
func shell(t *testing.T, sh string, script string) string {
	t.Helper()
	testenv.NeedTools(t, sh)
	path, _ := exec.LookPath(sh)
	cmd := exec.Command(path, "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(tsimBin)+":"+os.Getenv("PATH"), "HOME="+t.TempDir())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil || errb.Len() > 0 {
		t.Fatalf("%s -c %q: %v\nstdout: %s\nstderr: %s", sh, script, err, out.Bytes(), errb.Bytes())
	}
	return out.String()
}

func TestCompletionsBash(t *testing.T) {
	const bc = "/usr/share/bash-completion/bash_completion"
	if _, err := os.Stat(bc); err != nil {
		t.Skipf("%s missing (package bash-completion; scripts/install-deps.sh installs it)", bc)
	}
	// complete LINE: what bash would offer for the last word of LINE.
	script := `set -e
source ` + bc + `
source <(tsim completions bash)
complete -p tsim
complete_line() {
  read -ra COMP_WORDS <<< "$1"
  [[ "$1" == *" " ]] && COMP_WORDS+=("")
  COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMP_LINE="$1"; COMP_POINT=${#1}
  __tsim_bash_autocomplete
  echo "$1 => ${COMPREPLY[*]}"
}
complete_line "tsim fa"
complete_line "tsim facts ch"
complete_line "tsim trace --sp"
complete_line "tsim hosts "
complete_line "tsim trace --format t"
complete_line "tsim trace -p ht"
# bash splits a word at ':' (COMP_WORDBREAKS): COMP_WORDS holds the pieces,
# COMP_LINE the line as typed.
complete_split() {
  COMP_LINE="$1"; shift; COMP_WORDS=("$@")
  COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMP_POINT=${#COMP_LINE}
  __tsim_bash_autocomplete
  echo "$COMP_LINE => ${COMPREPLY[*]}"
}
complete_split "tsim trace --ingress hq-g" tsim trace --ingress hq-g
complete_split "tsim trace --ingress hq-gw:e" tsim trace --ingress hq-gw : e
`
	out := shell(t, "bash", script)
	for _, want := range []string{
		"complete -o bashdefault -o default -F __tsim_bash_autocomplete tsim\n",
		"tsim fa => facts\n",
		"tsim facts ch => check\n",
		"tsim trace --sp => --sport\n",
		"tsim hosts  => up down ls help\n",
		"tsim trace --format t => text table\n",
		"tsim trace -p ht => http http-alt https https-alt\n",
		"tsim trace --ingress hq-g => hq-gw:eth0 hq-gw:eth1 hq-gw:eth2 hq-gw:wg0\n",
		// bash replaces only the part after the colon
		"tsim trace --ingress hq-gw:e => eth0 eth1 eth2\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("bash completion: want %q in\n%s", want, out)
		}
	}
}

func TestCompletionsZsh(t *testing.T) {
	out := shell(t, "zsh", `autoload -U compinit; compinit -u; source <(tsim completions zsh); whence -w _tsim; print -r -- ${_comps[tsim]}`)
	if out != "_tsim: function\n_tsim\n" {
		t.Errorf("zsh: _tsim not defined and registered for tsim: %q", out)
	}
}

func TestCompletionsFish(t *testing.T) {
	out := shell(t, "fish", `tsim completions fish | source; complete -C"tsim fa"; complete -C"tsim facts ch"; complete -C"tsim trace --sp"; complete -C"tsim trace --ingress hq-gw:e"; complete -C"tsim trace --format c"`)
	for _, want := range []string{"facts\tload, check", "check\tlint the facts", "--sport\tsource port",
		"hq-gw:eth0\t10.1.0.2/29\n", "csv\tone row per flow"} {
		if !strings.Contains(out, want) {
			t.Errorf("fish completion: want %q in\n%s", want, out)
		}
	}
}

// TestCompletionProtocol checks the words the scripts get from tsim: one
// "word:description" per line for subcommands, flags for a "-" prefix.
func TestCompletionProtocol(t *testing.T) {
	cases := []struct {
		args []string
		want []string
		not  []string
	}{
		{[]string{"--generate-shell-completion"}, []string{"facts:load, check", "trace:simulate", "completions:print a shell completion"}, []string{"pwsh"}},
		{[]string{"facts", "--generate-shell-completion"}, []string{"show:", "check:", "parse:", "script:"}, []string{"trace:"}},
		{[]string{"trace", "--s", "--generate-shell-completion"}, []string{"--src:", "--services:", "--sport:"}, []string{"--dst:"}},
		{[]string{"completions", "--generate-shell-completion"}, []string{"bash:", "zsh:", "fish:"}, []string{"pwsh:"}},
	}
	for _, c := range cases {
		r := tsim(t, "", c.args...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("tsim %v: exit %d, stderr %q", c.args, r.code, r.stderr)
		}
		for _, w := range c.want {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("tsim %v: want %q in\n%s", c.args, w, r.stdout)
			}
		}
		for _, w := range c.not {
			if strings.Contains(r.stdout, w) {
				t.Errorf("tsim %v: unexpected %q in\n%s", c.args, w, r.stdout)
			}
		}
	}
}

// The committed scripts are what the binary prints (make check-generated
// does the same for CI; this catches it in plain go test too).
func TestCompletionsCommitted(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		want, err := os.ReadFile(filepath.Join("..", "..", "completions", "tsim."+sh))
		if err != nil {
			t.Fatal(err)
		}
		if r := tsim(t, "", "completions", sh); r.stdout != string(want) {
			t.Errorf("completions/tsim.%s is stale: run make generate", sh)
		}
	}
}
