package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	ucli "github.com/urfave/cli/v3"

	"github.com/tsim-dev/tsim/hosts"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/portspec"
)

// completionFlag is what the completion scripts append to the words
// before the cursor to ask tsim what fits there.
const completionFlag = "--generate-shell-completion"

// completeValue answers a completion request whose cursor is on the value
// of a flag (`tsim trace --format <TAB>`): urfave/cli only completes
// commands and flag names. It reports whether it answered; the values are
// printed one per line as "value:description" like urfave/cli's own.
func (a *app) completeValue(ctx context.Context, root *ucli.Command, args []string) bool {
	n := len(args)
	if n < 3 || args[n-1] != completionFlag {
		return false
	}
	words := args[1 : n-1]
	prev := words[len(words)-1]
	if !strings.HasPrefix(prev, "-") || strings.Contains(prev, "=") {
		return false
	}
	cmd := root
	for _, w := range words {
		if strings.HasPrefix(w, "-") {
			continue
		}
		if c := findCommand(cmd, w); c != nil {
			cmd = c
		}
	}
	name := strings.TrimLeft(prev, "-")
	var flag ucli.Flag
	for c := cmd; c != nil && flag == nil; c = parentOf(root, c) {
		if k := slices.IndexFunc(c.Flags, func(f ucli.Flag) bool { return slices.Contains(f.Names(), name) }); k >= 0 {
			flag = c.Flags[k]
		}
	}
	if flag == nil {
		return false
	}
	if _, isBool := flag.(*ucli.BoolFlag); isBool {
		return false
	}
	vals := a.flagValues(ctx, cmd, flag.Names()[0], words)
	if vals == nil {
		return false
	}
	w := io.Writer(a.io.Out)
	for _, v := range vals {
		fmt.Fprintln(w, v)
	}
	return true
}

// parentOf finds c's parent in root's tree (nil for root).
func parentOf(root, c *ucli.Command) *ucli.Command {
	if root == c {
		return nil
	}
	for _, s := range root.Commands {
		if s == c {
			return root
		}
		if p := parentOf(s, c); p != nil {
			return p
		}
	}
	return nil
}

// flagValues are the values flag name of cmd can take; nil leaves the
// answer to the shell (a file name, a number).
func (a *app) flagValues(ctx context.Context, cmd *ucli.Command, name string, words []string) []string {
	switch name {
	case "format":
		if cmd.Name == "report" {
			return []string{"pdf:the PDF report", "dot:the path diagram as Graphviz dot", "mermaid:the path diagram as Mermaid"}
		}
		return []string{"json:the document", "text:hop by hop, for a person", "table:one row per flow", "csv:one row per flow, RFC 4180",
			"legacy-json:the predecessor's output and exit codes"}
	case "color":
		return []string{"auto:only on a terminal", "always", "never"}
	case "log-level":
		return []string{"debug", "info", "warn", "error"}
	case "progress":
		return []string{"auto:a bar on a terminal", "bar", "json:NDJSON on stderr", "none"}
	case "scope":
		return []string{"all:every router", "path:the routers on the traced paths"}
	case "paper":
		return []string{"a4", "letter"}
	case "role":
		return []string{"user", "admin"}
	case "services":
		names := portspec.Names()
		slices.Sort(names)
		return names
	case "ingress":
		return a.ingressValues(ctx, words)
	case "lab":
		labs, err := hosts.List(a.hostsOptions())
		if err != nil {
			return []string{}
		}
		out := make([]string, 0, len(labs))
		for _, l := range labs {
			out = append(out, fmt.Sprintf("%s:%d routers, created %s", l.ID, len(l.Routers), l.Created.Format("2006-01-02 15:04")))
		}
		return out
	}
	return nil
}

// ingressValues are ROUTER:IFACE of the facts the command line names
// (--facts, else TSIM_FACTS, else the built-in example).
func (a *app) ingressValues(ctx context.Context, words []string) []string {
	src := os.Getenv("TSIM_FACTS")
	for i, w := range words {
		if v, ok := strings.CutPrefix(w, "--facts="); ok {
			src = v
		} else if w == "--facts" && i+1 < len(words) {
			src = words[i+1]
		}
	}
	f, err := facts.Load(ctx, src)
	if err != nil {
		return []string{}
	}
	var out []string
	for _, r := range f.Routers {
		for _, ifc := range r.Interfaces {
			if ifc.Name == "lo" {
				continue
			}
			var addrs []string
			for _, ad := range ifc.Addrs {
				addrs = append(addrs, ad.Prefix.String())
			}
			// The scripts split value and description at the first colon
			// not escaped (patchCompletionScript).
			out = append(out, r.Name+`\:`+ifc.Name+":"+strings.Join(addrs, " "))
		}
	}
	return out
}

// patchedCompletion wraps the action that prints shell's completion
// script so that the script printed is patched (patchCompletionScript).
func patchedCompletion(shell string, print ucli.ActionFunc) ucli.ActionFunc {
	return func(ctx context.Context, cmd *ucli.Command) error {
		root := cmd.Root()
		w := root.Writer
		var buf bytes.Buffer
		root.Writer = &buf
		err := print(ctx, cmd)
		root.Writer = w
		if err != nil {
			return err
		}
		_, err = io.WriteString(w, patchCompletionScript(shell, buf.String()))
		return err
	}
}

// patchCompletionScript adapts urfave/cli's completion script for shell so
// that a value may hold a colon (--ingress ROUTER:IFACE), written "\:" in
// the protocol: the scripts split value and description at the first
// colon that is not escaped. bash also reads the words with colons joined
// (bash splits them at ':', COMP_WORDBREAKS) and trims the completion to
// what follows the last colon of the word, as bash-completion's
// __ltrim_colon_completions does. zsh's _describe already reads "\:".
func patchCompletionScript(shell, script string) string {
	switch shell {
	case "bash":
		return strings.NewReplacer(
			`  local -a words_before_cursor=("${COMP_WORDS[@]:0:${COMP_CWORD}}")
  local current_word="${COMP_WORDS[COMP_CWORD]}"`,
			`  # words and cword: the caller's, with the words bash split at ':' joined
  local -a words_before_cursor=("${words[@]:0:${cword}}")
  local current_word="${words[cword]}"`,
			`      if [[ "${line}" == *:* ]]; then
        token="${line%%:*}"
        description="${line#*:}"
      fi`,
			`      # Split at the first ':' not escaped as '\:' (values such as ROUTER:IFACE).
      local escaped="${line//\\:/$'\x01'}"
      if [[ "${escaped}" == *:* ]]; then
        token="${escaped%%:*}"
        description="${escaped#*:}"
      else
        token="${escaped}"
      fi
      token="${token//$'\x01'/:}"
      description="${description//$'\x01'/:}"`,
			`    local matches=( $(compgen -W "${__cli_completion_tokens[*]}" -- "${cur}") )`,
			`    local matches=( $(compgen -W "${__cli_completion_tokens[*]}" -- "${cur}") )
    # bash inserts the part after the word's last ':' (COMP_WORDBREAKS).
    if [[ "${cur}" == *:* && "${COMP_WORDBREAKS}" == *:* ]]; then
      local i
      for i in "${!matches[@]}"; do matches[i]="${matches[i]#"${cur%"${cur##*:}"}"}"; done
    fi`,
		).Replace(script)
	case "fish":
		return strings.Replace(script, `            set -l parts (string split -m 1 ":" -- "$line")`,
			`            # Split at the first ':' not escaped as '\:' (values such as ROUTER:IFACE).
            set -l parts (string split -m 1 \t -- (string replace -r '(?<!\\\\):' \t -- "$line"))
            set parts (string replace -a '\\:' ':' -- $parts)`, 1)
	}
	return script
}
