package facts

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// builtinChains lists each table's built-in chains: iptables-restore knows
// them without a ":CHAIN" line, so rules for them need no declaration.
var builtinChains = map[string][]string{
	"filter":   {"INPUT", "FORWARD", "OUTPUT"},
	"nat":      {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	"mangle":   {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
	"raw":      {"PREROUTING", "OUTPUT"},
	"security": {"INPUT", "FORWARD", "OUTPUT"},
}

// IsBuiltinChain reports whether chain is a built-in chain of table.
func IsBuiltinChain(table, chain string) bool {
	for _, c := range builtinChains[table] {
		if c == chain {
			return true
		}
	}
	return false
}

// shortOpts maps iptables' short and alias option names of the built-in
// matches and commands to the long names the model uses.
var shortOpts = map[string]string{
	"-s": "source", "--source": "source", "--src": "source",
	"-d": "destination", "--destination": "destination", "--dst": "destination",
	"-i": "in-interface", "--in-interface": "in-interface",
	"-o": "out-interface", "--out-interface": "out-interface",
	"-p": "protocol", "--protocol": "protocol",
	"-f": "fragment", "--fragment": "fragment",
	"-m": "match", "--match": "match",
	"-j": "jump", "--jump": "jump",
	"-g": "goto", "--goto": "goto",
	"-c": "set-counters", "--set-counters": "set-counters",
}

// optArity is the number of arguments of options that do not take exactly
// one. Options not listed take one argument, except that an unknown option
// followed by another option (or the end) takes none.
var optArity = map[string]int{
	"fragment": 0, "syn": 0, "tcp-flags": 2, "match-set": 2, "set-counters": 2,
	"random": 0, "random-fully": 0, "persistent": 0, "fully-random": 0,
	"log-tcp-sequence": 0, "log-tcp-options": 0, "log-ip-options": 0, "log-uid": 0, "log-macdecode": 0,
	"save-mark": 0, "restore-mark": 0, "notrack": 0, "clamp-mss-to-pmtu": 0,
	"rcheck": 0, "update": 0, "set": 0, "remove": 0, "rsource": 0, "rdest": 0, "rttl": 0, "reap": 0,
	"return-nomatch": 0, "update-counters": 0, "update-subcounters": 0,
	"exist": 0, "physdev-is-in": 0, "physdev-is-out": 0, "physdev-is-bridged": 0,
	"nfmask": 1, "ctmask": 1, "checksum-fill": 0, "strict": 0, "next": 0, "kerneltz": 0,
	"socket-exists": 0, "transparent": 0, "nowildcard": 0, "restore": 0,
	"mss": 1, "connlimit-saddr": 0, "connlimit-daddr": 0, "hashlimit-rate-match": 0,
	"loose": 0, "validmark": 0, "accept-local": 0, "invert": 0, "ignore-udp": 0,
	// Free text that may start with "-": always exactly one argument.
	"log-prefix": 1, "comment": 1, "nflog-prefix": 1, "ulog-prefix": 1,
}

// protoOpts are the options of the tcp, udp and icmp matches: after
// "-p tcp -m conntrack …" iptables still gives "--dport" to the tcp match.
var protoOpts = map[string]bool{"sport": true, "dport": true, "source-port": true, "destination-port": true,
	"tcp-flags": true, "syn": true, "tcp-option": true, "icmp-type": true}

// implicitProtos are the protocols whose match module iptables loads
// implicitly after "-p PROTO".
var implicitProtos = map[string]bool{"tcp": true, "udp": true, "icmp": true, "udplite": true, "sctp": true, "dccp": true, "icmpv6": true, "ipv6-icmp": true}

// TokenizeIptables splits one iptables-restore line into words the way
// iptables-restore does (xtables add_param_to_argv): whitespace separates
// words; a double quote opens or closes a quoted part (closing one ends the
// word, so "" is an empty word); inside quotes a backslash escapes the next
// character; outside quotes a backslash is an ordinary character.
func TokenizeIptables(line string) ([]string, error) {
	var out []string
	var buf []byte
	quote, escaped, inWord := false, false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		if quote {
			switch {
			case escaped:
				buf = append(buf, c)
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				quote = false
				out = append(out, string(buf))
				buf, inWord = buf[:0], false
			default:
				buf = append(buf, c)
			}
			continue
		}
		switch c {
		case '"':
			quote, inWord = true, true
		case ' ', '\t', '\n', '\r':
			if inWord {
				out = append(out, string(buf))
				buf, inWord = buf[:0], false
			}
		default:
			buf = append(buf, c)
			inWord = true
		}
	}
	if quote {
		return nil, fmt.Errorf("unterminated quote")
	}
	if inWord {
		out = append(out, string(buf))
	}
	return out, nil
}

// iptParser holds the state of one ParseIptablesSave call.
type iptParser struct {
	file     string
	tables   []*IPTable
	findings []Finding
	cur      *IPTable
	curLine  int
	declared map[string]bool // chains of cur declared or built-in
	warned   map[string]bool // undeclared chains already reported
}

func (p *iptParser) pos(line int) Pos { return Pos{File: p.file, Line: line} }

func (p *iptParser) find(line int, sev Severity, format string, args ...any) {
	p.findings = append(p.findings, Finding{Pos: p.pos(line), Severity: sev, Message: fmt.Sprintf(format, args...)})
}

// ParseIptablesSave parses iptables-save output (with or without -c
// counters). firstLine is the line number of text's first line in file.
// Lines iptables-restore would refuse become findings; only text that
// cannot even be split into words is an error.
func ParseIptablesSave(file string, firstLine int, text string) ([]*IPTable, []Finding, error) {
	p := &iptParser{file: file}
	lines := strings.Split(text, "\n")
	for i, raw := range lines {
		n := firstLine + i
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' {
			continue
		}
		if err := p.line(n, line); err != nil {
			return nil, nil, err
		}
	}
	if p.cur != nil {
		p.find(p.curLine, SevWarning, "table %s has no COMMIT (iptables-restore would not apply it)", p.cur.Name)
		p.finishTable()
	}
	return p.tables, p.findings, nil
}

func (p *iptParser) line(n int, line string) error {
	switch {
	case line[0] == '*':
		name := strings.TrimSpace(line[1:])
		if p.cur != nil {
			p.find(p.curLine, SevWarning, "table %s has no COMMIT before *%s (iptables-restore would not apply it)", p.cur.Name, name)
			p.finishTable()
		}
		if _, ok := builtinChains[name]; !ok {
			p.find(n, SevError, "unknown table %q", name)
		}
		p.cur = &IPTable{Name: name, Pos: p.pos(n)}
		p.curLine = n
		p.declared = map[string]bool{}
		p.warned = map[string]bool{}
		for _, c := range builtinChains[name] {
			p.declared[c] = true
		}
		return nil
	case line == "COMMIT":
		if p.cur == nil {
			p.find(n, SevError, "COMMIT outside a table")
			return nil
		}
		p.finishTable()
		return nil
	}
	if p.cur == nil {
		p.find(n, SevError, "line outside a table (no *table line before it): %s", line)
		return nil
	}
	p.curLine = n
	if line[0] == ':' {
		p.declare(n, line)
		return nil
	}
	var pk, by uint64
	text := line
	if line[0] == '[' {
		end := strings.IndexByte(line, ']')
		var ok bool
		if end > 0 {
			pk, by, ok = parseCounters(line[:end+1])
		}
		if !ok {
			p.find(n, SevError, "bad counters in %q", line)
			return nil
		}
		text = strings.TrimSpace(line[end+1:])
	}
	words, err := TokenizeIptables(text)
	if err != nil {
		return fmt.Errorf("%s: %w in %q", p.pos(n), err, text)
	}
	if len(words) == 0 {
		return nil
	}
	switch words[0] {
	case "-A", "--append", "-I", "--insert":
		if len(words) < 2 {
			p.find(n, SevError, "%s without a chain", words[0])
			return nil
		}
		chain := p.chainFor(n, words[1])
		rest := words[2:]
		at := len(chain.Rules) + 1
		if words[0] == "-I" || words[0] == "--insert" {
			at = 1
			if len(rest) > 0 {
				if v, err := strconv.Atoi(rest[0]); err == nil {
					if v < 1 || v > len(chain.Rules)+1 {
						p.find(n, SevError, "insert position %d out of range for chain %s", v, chain.Name)
						return nil
					}
					at, rest = v, rest[1:]
				}
			}
		}
		r, msg := parseRule(rest)
		if msg != "" {
			p.find(n, SevError, "%s", msg)
		}
		r.Chain, r.Text, r.Pos, r.Packets, r.Bytes = chain.Name, text, p.pos(n), pk, by
		if r.Target != nil && r.Target.Name == "" {
			r.Target = nil
		}
		rs, msg := expandAddrLists(r)
		if msg != "" {
			p.find(n, SevError, "%s", msg)
		}
		chain.Rules = slices.Insert(chain.Rules, at-1, rs...)
		for i, x := range chain.Rules {
			x.Index = i + 1
		}
	case "-N", "--new-chain":
		if len(words) < 2 {
			p.find(n, SevError, "-N without a chain")
			return nil
		}
		p.addChain(words[1], "", n)
	case "-P", "--policy":
		if len(words) < 3 {
			p.find(n, SevError, "-P needs a chain and a policy")
			return nil
		}
		if !IsBuiltinChain(p.cur.Name, words[1]) {
			p.find(n, SevError, "-P on %s, which is not a built-in chain of table %s", words[1], p.cur.Name)
			return nil
		}
		p.chainFor(n, words[1]).Policy = words[2]
	default:
		p.find(n, SevError, "unsupported iptables-restore command %q", words[0])
	}
	return nil
}

// declare handles ":CHAIN POLICY [p:b]".
func (p *iptParser) declare(n int, line string) {
	f := strings.Fields(line[1:])
	if len(f) == 0 {
		p.find(n, SevError, "chain declaration without a name")
		return
	}
	pol := ""
	if len(f) > 1 && f[1] != "-" {
		pol = f[1]
	}
	builtin := IsBuiltinChain(p.cur.Name, f[0])
	switch {
	case builtin && pol == "":
		p.find(n, SevWarning, "built-in chain %s of table %s declared without a policy; assuming ACCEPT", f[0], p.cur.Name)
		pol = "ACCEPT"
	case !builtin && pol != "":
		p.find(n, SevError, "user chain %s cannot have a policy (%s)", f[0], pol)
		pol = ""
	case pol != "" && pol != "ACCEPT" && pol != "DROP":
		p.find(n, SevError, "bad policy %q for chain %s", pol, f[0])
	}
	c := p.addChain(f[0], pol, n)
	if len(f) > 2 {
		if pk, by, ok := parseCounters(f[2]); ok {
			c.Packets, c.Bytes = pk, by
		}
	}
}

func (p *iptParser) addChain(name, policy string, n int) *Chain {
	p.declared[name] = true
	if c := p.cur.Chain(name); c != nil {
		if policy != "" {
			c.Policy = policy
		}
		return c
	}
	c := &Chain{Name: name, Policy: policy, Pos: p.pos(n), Rules: []*IptRule{}}
	p.cur.Chains = append(p.cur.Chains, c)
	return c
}

// chainFor returns the chain a rule line names, creating it when the line
// is the first to mention it.
func (p *iptParser) chainFor(n int, name string) *Chain {
	if c := p.cur.Chain(name); c != nil {
		return c
	}
	if IsBuiltinChain(p.cur.Name, name) {
		return p.addChain(name, "ACCEPT", n)
	}
	if !p.declared[name] && !p.warned[name] {
		p.warned[name] = true
		p.find(n, SevWarning, "chain %s not declared in table %s (iptables-restore would refuse this line)", name, p.cur.Name)
	}
	c := p.addChain(name, "", n)
	p.declared[name] = false // still undeclared for the next ":" line
	return c
}

func (p *iptParser) finishTable() {
	for i, t := range p.tables {
		if t.Name == p.cur.Name {
			// iptables-restore flushes a table at each *table block.
			p.find(p.cur.Pos.Line, SevWarning, "table %s appears twice; the later block replaces the earlier", t.Name)
			p.tables = append(p.tables[:i], p.tables[i+1:]...)
			break
		}
	}
	p.tables = append(p.tables, p.cur)
	p.cur = nil
}

// parseCounters parses "[packets:bytes]".
func parseCounters(s string) (uint64, uint64, bool) {
	if len(s) < 5 || s[0] != '[' || s[len(s)-1] != ']' {
		return 0, 0, false
	}
	a, b, ok := strings.Cut(s[1:len(s)-1], ":")
	if !ok {
		return 0, 0, false
	}
	pk, err1 := strconv.ParseUint(a, 10, 64)
	by, err2 := strconv.ParseUint(b, 10, 64)
	return pk, by, err1 == nil && err2 == nil
}

// isOpt reports whether word is an option name rather than an argument.
func isOpt(w string) bool {
	if len(w) < 2 || w[0] != '-' {
		return false
	}
	if w[1] >= '0' && w[1] <= '9' {
		return false // a negative number
	}
	return true
}

// parseRule parses the words after "-A CHAIN" into matches and a target.
// It returns the rule and, when iptables would refuse the words, a message.
func parseRule(words []string) (*IptRule, string) {
	r := &IptRule{Matches: []*Match{}}
	var owner *[]*Option // where module/target options go
	var proto string
	var implicit *Match
	neg := false
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for i := 0; i < len(words); i++ {
		w := words[i]
		if w == "!" {
			if neg {
				bad("double negation")
			}
			neg = true
			continue
		}
		if !isOpt(w) {
			bad("unexpected argument %q", w)
			neg = false
			continue
		}
		name, short := shortOpts[w]
		if !short {
			if !strings.HasPrefix(w, "--") {
				bad("unknown option %q", w)
				neg = false
				continue
			}
			name = w[2:]
		}
		// The legacy form puts "!" after the option name: "-s ! 1.2.3.4".
		if i+1 < len(words) && words[i+1] == "!" {
			neg = !neg
			i++
		}
		arity, known := optArity[name]
		if !known {
			arity = 1
		}
		var args []string
		switch {
		case short && name == "match", short && name == "jump", short && name == "goto":
			arity = 1
		}
		for k := 0; k < arity && i+1 < len(words); k++ {
			if !known && isOpt(words[i+1]) {
				break // an option we do not know that takes no argument
			}
			i++
			args = append(args, words[i])
		}
		if len(args) < arity && known {
			bad("option --%s needs %d argument(s)", name, arity)
		}
		opt := &Option{Name: name, Neg: neg, Args: args}
		neg = false
		switch {
		case short && (name == "jump" || name == "goto"):
			if r.Target != nil {
				bad("more than one target")
			}
			if opt.Neg {
				bad("cannot negate a target")
			}
			tn := ""
			if len(args) > 0 {
				tn = args[0]
			}
			r.Target = &Target{Name: tn, Goto: name == "goto", Options: []*Option{}}
			owner = &r.Target.Options
		case short && name == "match":
			if len(args) == 0 {
				bad("-m without a module")
				continue
			}
			m := &Match{Module: args[0], Options: []*Option{}}
			r.Matches = append(r.Matches, m)
			owner = &m.Options
			if args[0] == proto {
				implicit = m
			}
		case short && name == "set-counters":
			if len(args) == 2 {
				r.Packets, _ = strconv.ParseUint(args[0], 10, 64)
				r.Bytes, _ = strconv.ParseUint(args[1], 10, 64)
			}
		case short:
			if name == "protocol" && len(args) > 0 {
				proto = strings.ToLower(args[0])
			}
			r.Matches = append(r.Matches, &Match{Options: []*Option{opt}})
		case owner != nil && !(protoOpts[name] && implicitProtos[proto] && r.Target == nil && (len(r.Matches) == 0 || r.Matches[len(r.Matches)-1].Module != proto)):
			*owner = append(*owner, opt)
		case implicitProtos[proto]:
			if implicit == nil {
				implicit = &Match{Module: proto, Options: []*Option{}}
				r.Matches = append(r.Matches, implicit)
			}
			implicit.Options = append(implicit.Options, opt)
		default:
			bad("option --%s belongs to no match or target", name)
			r.Matches = append(r.Matches, &Match{Module: "?", Options: []*Option{opt}})
		}
	}
	if neg {
		bad("\"!\" at the end of the rule")
	}
	return r, strings.Join(problems, "; ")
}

// expandAddrLists turns a rule with comma lists in -s/-d into one rule per
// address pair (sources outer, destinations inner), as iptables does
// before loading it: the kernel — and its counters and rule numbers — sees
// the expanded rules. Each keeps the line's text and position.
func expandAddrLists(r *IptRule) ([]*IptRule, string) {
	var srcs, dsts []string
	si, di := -1, -1
	for i, m := range r.Matches {
		if m.Module != "" || len(m.Options) != 1 || len(m.Options[0].Args) != 1 {
			continue
		}
		o := m.Options[0]
		if o.Name != "source" && o.Name != "destination" || !strings.Contains(o.Args[0], ",") {
			continue
		}
		if o.Neg {
			return []*IptRule{r}, "! not allowed with multiple source or destination IP addresses"
		}
		if o.Name == "source" {
			srcs, si = strings.Split(o.Args[0], ","), i
		} else {
			dsts, di = strings.Split(o.Args[0], ","), i
		}
	}
	if si < 0 && di < 0 {
		return []*IptRule{r}, ""
	}
	if len(srcs)*max(len(dsts), 1) > 4096 {
		return []*IptRule{r}, "address lists expand to more than 4096 rules"
	}
	if si < 0 {
		srcs = []string{""}
	}
	if di < 0 {
		dsts = []string{""}
	}
	var out []*IptRule
	for _, s := range srcs {
		for _, d := range dsts {
			c := *r
			c.Matches = slices.Clone(r.Matches)
			for _, set := range []struct {
				i int
				v string
			}{{si, s}, {di, d}} {
				if set.i >= 0 {
					o := *r.Matches[set.i].Options[0]
					o.Args = []string{set.v}
					c.Matches[set.i] = &Match{Options: []*Option{&o}}
				}
			}
			out = append(out, &c)
		}
	}
	return out, ""
}
