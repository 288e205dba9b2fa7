package hosts

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/vishvananda/netns"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/netx"
)

// restoreLine is one line of a restore file and where it came from.
type restoreLine struct {
	text  string
	pos   string // facts file:line ("" for structural lines)
	table int    // iptables: index of its table block
	rule  bool   // iptables: an -A line (may be dropped on refusal)
	set   string // ipset: the set a line belongs to
	iscr  bool   // ipset: a create line
}

func joinLines(ls []restoreLine) []byte {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.text)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// ipsetLines rebuilds `ipset save` text from the model. Timeouts are
// dropped (entries would expire while the lab stands) and maxelem is raised
// when the facts hold more members than it allows.
func ipsetLines(r *facts.Router) []restoreLine {
	var out []restoreLine
	for _, s := range r.Ipsets {
		opts := stripTimeout(s.Options)
		for i := 0; i+1 < len(opts); i++ {
			if opts[i] == "maxelem" {
				if n, err := strconv.Atoi(opts[i+1]); err == nil && n < len(s.Members) {
					for n < len(s.Members) {
						n *= 2
					}
					opts[i+1] = strconv.Itoa(n)
				}
			}
		}
		out = append(out, restoreLine{text: strings.TrimSpace(strings.Join(append([]string{"create", s.Name, s.Type}, opts...), " ")),
			pos: s.Pos.String(), set: s.Name, iscr: true})
		for _, m := range s.Members {
			w := []string{"add", s.Name, m.Value}
			w = append(w, stripTimeout(m.Options)...)
			if m.Nomatch && !contains(w, "nomatch") {
				w = append(w, "nomatch")
			}
			out = append(out, restoreLine{text: strings.Join(w, " "), pos: m.Pos.String(), set: s.Name})
		}
	}
	return out
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func stripTimeout(opts []string) []string {
	out := make([]string, 0, len(opts))
	for i := 0; i < len(opts); i++ {
		if opts[i] == "timeout" && i+1 < len(opts) {
			i++
			continue
		}
		out = append(out, opts[i])
	}
	return out
}

// applyIpsets runs `ipset restore` in ns, dropping each line the kernel
// refuses (and the members of a set it could not create) and retrying.
func applyIpsets(ctx context.Context, ns netns.NsHandle, r *facts.Router) ([]*doc.Refusal, error) {
	lines := ipsetLines(r)
	var refused []*doc.Refusal
	for len(lines) > 0 {
		if err := ctx.Err(); err != nil {
			return refused, err
		}
		_, stderr, err := netx.Exec(ctx, ns, joinLines(lines), "ipset", "-exist", "restore")
		if err == nil {
			return refused, nil
		}
		if ctx.Err() != nil {
			return refused, ctx.Err()
		}
		// Compiled here, on the error path, not at start-up of every command.
		m := regexp.MustCompile(`Error in line (\d+):\s*(.*)`).FindStringSubmatch(string(stderr))
		n := 0
		if m != nil {
			n, _ = strconv.Atoi(m[1])
		}
		if n < 1 || n > len(lines) {
			// No attributable line: refuse the whole restore.
			refused = append(refused, &doc.Refusal{What: "ipset", Line: r.File, Error: firstLine(err.Error())})
			return refused, nil
		}
		bad := lines[n-1]
		msg := strings.TrimSpace(m[2])
		keep := lines[:0:0]
		dropped := 0
		for i, l := range lines {
			switch {
			case i == n-1:
			case bad.iscr && l.set == bad.set:
				dropped++
			default:
				keep = append(keep, l)
			}
		}
		if dropped > 0 {
			msg += fmt.Sprintf(" (its %d members skipped)", dropped)
		}
		refused = append(refused, &doc.Refusal{What: "ipset", Line: posOr(bad), Error: msg})
		lines = keep
	}
	return refused, nil
}

func posOr(l restoreLine) string {
	if l.pos != "" && l.pos != "<facts>" {
		return l.pos
	}
	return l.text
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// iptablesLines rebuilds iptables-save text from the model (counters
// zeroed: the lab counts its own probes). A user chain only used, never
// declared, stays undeclared so iptables-restore refuses its rules as the
// real one would.
func iptablesLines(r *facts.Router) []restoreLine {
	var out []restoreLine
	for ti, t := range r.Iptables {
		out = append(out, restoreLine{text: "*" + t.Name, pos: t.Pos.String(), table: ti})
		for _, c := range t.Chains {
			switch {
			case c.Builtin():
				out = append(out, restoreLine{text: ":" + c.Name + " " + c.Policy + " [0:0]", pos: c.Pos.String(), table: ti})
			case !undeclared(c):
				out = append(out, restoreLine{text: ":" + c.Name + " - [0:0]", pos: c.Pos.String(), table: ti})
			}
		}
		for _, c := range t.Chains {
			for _, rule := range c.Rules {
				out = append(out, restoreLine{text: appendForm(rule), pos: rule.Pos.String(), table: ti, rule: true})
			}
		}
		out = append(out, restoreLine{text: "COMMIT", pos: t.Pos.String(), table: ti})
	}
	return out
}

// undeclared reports a user chain that only rule lines created.
func undeclared(c *facts.Chain) bool {
	for _, r := range c.Rules {
		if r.Pos == c.Pos {
			return true
		}
	}
	return false
}

// appendForm turns a rule's text (-A C …, -I C [n] …) into "-A C …": the
// model already holds the chain in final order.
func appendForm(r *facts.IptRule) string {
	text := strings.TrimSpace(r.Text)
	rest := text
	word := func() string {
		rest = strings.TrimLeft(rest, " \t")
		i := strings.IndexAny(rest, " \t")
		if i < 0 {
			w := rest
			rest = ""
			return w
		}
		w := rest[:i]
		rest = rest[i:]
		return w
	}
	switch word() {
	case "-A", "--append":
		if rest = strings.TrimLeft(rest, " \t"); rest == "" {
			return "-A " + r.Chain
		}
		return "-A " + rest
	case "-I", "--insert":
		word() // chain
		save := rest
		if _, err := strconv.Atoi(word()); err != nil {
			rest = save
		}
		return "-A " + r.Chain + rest
	}
	return "-A " + r.Chain + " " + text
}

// applyIptables runs iptables-restore once in ns; on failure it drops the
// line the tool names (or, for a commit-time error it cannot attribute,
// bisects that table's rules) and retries, so every acceptable rule is
// applied and each refused one is recorded.
func applyIptables(ctx context.Context, ns netns.NsHandle, r *facts.Router) ([]*doc.Refusal, error) {
	lines := iptablesLines(r)
	var refused []*doc.Refusal
	restore := func(ls []restoreLine) (string, error) {
		_, stderr, err := netx.Exec(ctx, ns, joinLines(ls), "iptables-restore")
		return string(stderr), err
	}
	for attempt := 0; len(lines) > 0; attempt++ {
		if err := ctx.Err(); err != nil {
			return refused, err
		}
		stderr, err := restore(lines)
		if err == nil {
			return refused, nil
		}
		if ctx.Err() != nil {
			return refused, ctx.Err()
		}
		n, msg := iptErrLine(stderr)
		if n >= 1 && n <= len(lines) && lines[n-1].rule {
			refused = append(refused, &doc.Refusal{What: "iptables", Line: posOr(lines[n-1]), Error: msg})
			lines = append(lines[:n-1:n-1], lines[n:]...)
			continue
		}
		// Find the table block at fault (the named line's, else try each).
		bad := -1
		if n >= 1 && n <= len(lines) {
			bad = lines[n-1].table
		} else {
			for ti := range r.Iptables {
				if _, e := restore(tableBlock(lines, ti, -1)); e != nil {
					bad = ti
					break
				}
			}
		}
		if bad < 0 {
			refused = append(refused, &doc.Refusal{What: "iptables", Line: r.File, Error: firstLine(msg)})
			return refused, nil
		}
		idx := ruleIndexes(lines, bad)
		// Smallest prefix of the table's rules that fails.
		lo, hi := 0, len(idx) // invariant: prefix lo passes (0 rules assumed), prefix hi fails
		if _, e := restore(tableBlock(lines, bad, 0)); e != nil {
			// Even without rules the table fails (a bad chain line).
			refused = append(refused, &doc.Refusal{What: "iptables", Line: posOr(lines[firstOfTable(lines, bad)]), Error: firstLine(msg)})
			lines = dropTable(lines, bad)
			continue
		}
		for hi-lo > 1 {
			mid := (lo + hi) / 2
			if _, e := restore(tableBlock(lines, bad, mid)); e != nil {
				hi = mid
			} else {
				lo = mid
			}
		}
		if hi == 0 || hi > len(idx) {
			refused = append(refused, &doc.Refusal{What: "iptables", Line: r.File, Error: firstLine(msg)})
			return refused, nil
		}
		k := idx[hi-1]
		refused = append(refused, &doc.Refusal{What: "iptables", Line: posOr(lines[k]), Error: msg})
		lines = append(lines[:k:k], lines[k+1:]...)
	}
	return refused, nil
}

// iptErrLine extracts the line number and message from iptables-restore's
// stderr (legacy and nft variants word it differently).
func iptErrLine(stderr string) (int, string) {
	msg := ""
	for _, l := range strings.Split(stderr, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "Try `") || strings.HasPrefix(l, "Error occurred at line") {
			continue
		}
		if msg == "" {
			msg = l
		}
	}
	if m := regexp.MustCompile(`Error occurred at line: (\d+)`).FindStringSubmatch(stderr); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n, trimTool(msg)
	}
	if m := regexp.MustCompile(`line (\d+) failed:?\s*(.*)`).FindStringSubmatch(stderr); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n, trimTool(msg)
	}
	return 0, trimTool(msg)
}

func trimTool(s string) string {
	if i := strings.Index(s, "): "); i >= 0 && strings.HasPrefix(s, "iptables-restore") {
		return s[i+3:]
	}
	return s
}

func ruleIndexes(lines []restoreLine, table int) []int {
	var idx []int
	for i, l := range lines {
		if l.table == table && l.rule {
			idx = append(idx, i)
		}
	}
	return idx
}

func firstOfTable(lines []restoreLine, table int) int {
	for i, l := range lines {
		if l.table == table {
			return i
		}
	}
	return 0
}

// tableBlock returns one table's block with only its first n rules (n < 0:
// all of them).
func tableBlock(lines []restoreLine, table, n int) []restoreLine {
	var out []restoreLine
	for _, l := range lines {
		if l.table != table {
			continue
		}
		if l.rule {
			if n == 0 {
				continue
			}
			n--
		}
		out = append(out, l)
	}
	return out
}

func dropTable(lines []restoreLine, table int) []restoreLine {
	var out []restoreLine
	for _, l := range lines {
		if l.table != table {
			out = append(out, l)
		}
	}
	return out
}
