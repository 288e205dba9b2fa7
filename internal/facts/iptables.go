package facts

import (
	"cmp"
	"fmt"
	"math"
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

// longOpt maps iptables' short and alias option names of the built-in
// matches and commands to the long names the model uses. (Switches, not
// maps: this runs for every word of every rule.)
func longOpt(w string) (string, bool) {
	switch w {
	case "-s", "--source", "--src":
		return "source", true
	case "-d", "--destination", "--dst":
		return "destination", true
	case "-i", "--in-interface":
		return "in-interface", true
	case "-o", "--out-interface":
		return "out-interface", true
	case "-p", "--protocol":
		return "protocol", true
	case "-f", "--fragment":
		return "fragment", true
	case "-m", "--match":
		return "match", true
	case "-j", "--jump":
		return "jump", true
	case "-g", "--goto":
		return "goto", true
	case "-c", "--set-counters":
		return "set-counters", true
	}
	return "", false
}

// optArity is the number of arguments of options that do not take exactly
// one. Options not listed take one argument, except that an unknown option
// followed by another option (or the end) takes none.
func optArity(name string) (int, bool) {
	switch name {
	case "fragment", "syn",
		"random", "random-fully", "persistent", "fully-random",
		"log-tcp-sequence", "log-tcp-options", "log-ip-options", "log-uid", "log-macdecode",
		"save-mark", "restore-mark", "notrack", "clamp-mss-to-pmtu",
		"rcheck", "update", "set", "remove", "rsource", "rdest", "rttl", "reap",
		"return-nomatch", "update-counters", "update-subcounters",
		"exist", "physdev-is-in", "physdev-is-out", "physdev-is-bridged",
		"checksum-fill", "strict", "next", "kerneltz",
		"socket-exists", "transparent", "nowildcard", "restore",
		"connlimit-saddr", "connlimit-daddr", "hashlimit-rate-match",
		"loose", "validmark", "accept-local", "invert", "ignore-udp":
		return 0, true
	case "nfmask", "ctmask", "mss",
		// Free text that may start with "-": always exactly one argument.
		"log-prefix", "comment", "nflog-prefix", "ulog-prefix":
		return 1, true
	case "tcp-flags", "match-set", "set-counters":
		return 2, true
	}
	return 0, false
}

// isProtoOpt reports the options of the tcp, udp and icmp matches: after
// "-p tcp -m conntrack …" iptables still gives "--dport" to the tcp match.
func isProtoOpt(name string) bool {
	switch name {
	case "sport", "dport", "source-port", "destination-port", "tcp-flags", "syn", "tcp-option", "icmp-type":
		return true
	}
	return false
}

// isImplicitProto reports the protocols whose match module iptables loads
// implicitly after "-p PROTO".
func isImplicitProto(proto string) bool {
	switch proto {
	case "tcp", "udp", "icmp", "udplite", "sctp", "dccp", "icmpv6", "ipv6-icmp":
		return true
	}
	return false
}

// TokenizeIptables splits one iptables-restore line into words the way
// iptables-restore does (xtables add_param_to_argv): whitespace separates
// words; a double quote opens or closes a quoted part (closing one ends the
// word, so "" is an empty word); inside quotes a backslash escapes the next
// character; outside quotes a backslash is an ordinary character.
func TokenizeIptables(line string) ([]string, error) {
	return tokenizeIptables(nil, line)
}

// isIptSpace reports the bytes iptables-restore separates words with.
func isIptSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// tokenizeIptables appends the words of line to out. Words that are one
// piece of the line (no escapes, no quoted part glued to other text) are
// substrings of it, so only the rare other words allocate.
func tokenizeIptables(out []string, line string) ([]string, error) {
	i := 0
	for {
		for i < len(line) && isIptSpace(line[i]) {
			i++
		}
		if i == len(line) {
			return out, nil
		}
		if line[i] == '"' {
			j := i + 1
			for j < len(line) && line[j] != '"' && line[j] != '\\' {
				j++
			}
			if j < len(line) && line[j] == '"' {
				out, i = append(out, line[i+1:j]), j+1
				continue
			}
		} else {
			j := i
			for j < len(line) && !isIptSpace(line[j]) && line[j] != '"' {
				j++
			}
			if j == len(line) || line[j] != '"' {
				out, i = append(out, line[i:j]), j
				continue
			}
		}
		var (
			w   string
			err error
		)
		w, i, err = iptWord(line, i)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
}

// iptWord reads the word starting at line[i] (not a blank) byte by byte:
// the general case of tokenizeIptables, for words with escapes or with a
// quoted part glued to other text. It returns the word and where reading
// goes on.
func iptWord(line string, i int) (string, int, error) {
	var buf []byte
	quote, escaped := false, false
	for ; i < len(line); i++ {
		c := line[i]
		if quote {
			switch {
			case escaped:
				buf = append(buf, c)
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				return string(buf), i + 1, nil
			default:
				buf = append(buf, c)
			}
			continue
		}
		switch {
		case c == '"':
			quote = true
		case isIptSpace(c):
			return string(buf), i, nil
		default:
			buf = append(buf, c)
		}
	}
	if quote {
		return "", i, fmt.Errorf("unterminated quote")
	}
	return string(buf), i, nil
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

	// Scratch space reused from line to line: the model keeps strings
	// from it, never the slices.
	words   []string
	matches []*Match
	owned   []ownedOpt

	// Where the rules' objects are cut from (see slab).
	chains   slab[Chain]
	rulePtrs slab[*IptRule]
	rules    slab[IptRule]
	targets  slab[Target]
	matchObj slab[Match]
	options  slab[Option]
	matchPtr slab[*Match]
	optPtr   slab[*Option]
	strs     slab[string]
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
	p := &iptParser{file: file, words: make([]string, 0, 32)}
	// Size the first chunks from the text: a rule per "-A" starting a
	// line (with or without counters), and rules have about two options,
	// arguments and matches each. (Searches that start with a common byte,
	// such as " -", would cost more than the waste they save.)
	rules := strings.Count(text, "\n-A") + strings.Count(text, "] -A") + 1
	opts := 2*rules + slabMin
	p.rules.next, p.targets.next = rules, rules
	p.rulePtrs.next = 3 * rules // the chains' lists, outgrown ones included
	p.options.next, p.optPtr.next, p.strs.next, p.matchObj.next, p.matchPtr.next = opts, opts, opts, opts, opts
	for n, rest, more := firstLine, text, true; more; n++ {
		var raw string
		raw, rest, more = strings.Cut(rest, "\n")
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
	words, err := tokenizeIptables(p.words[:0], text)
	if err != nil {
		return fmt.Errorf("%s: %w in %q", p.pos(n), err, text)
	}
	p.words = words
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
		r, msg := p.parseRule(rest)
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
		if rs == nil {
			rs = []*IptRule{r}
		}
		p.roomForRules(chain, len(rs))
		chain.Rules = slices.Insert(chain.Rules, at-1, rs...)
		// Only the rules from the insertion point on moved.
		for i := at - 1; i < len(chain.Rules); i++ {
			chain.Rules[i].Index = i + 1
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
	var fieldBuf [4]string
	f := appendFields(fieldBuf[:0], line[1:])
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
	c := p.chains.new()
	*c = Chain{Name: name, Policy: policy, Pos: p.pos(n), Rules: []*IptRule{}}
	p.cur.Chains = append(p.cur.Chains, c)
	return c
}

// roomForRules makes room for n more rules in c: a chain's rule list grows
// by doubling, like append, but its arrays are cut from a chunk.
func (p *iptParser) roomForRules(c *Chain, n int) {
	if len(c.Rules)+n <= cap(c.Rules) {
		return
	}
	grown := p.rulePtrs.make(max(2*cap(c.Rules), len(c.Rules)+n, 4))
	c.Rules = grown[:copy(grown, c.Rules)]
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

// ownedOpt is an option of the rule being parsed and who gets it: the
// match with that index in the rule, or (negative) the target, numbered -1,
// -2, … as a rule may wrongly name more than one and only the last counts.
type ownedOpt struct {
	owner int
	opt   *Option
}

// noOwner is the owner before the first -m, -j or -g of a rule.
const noOwner = math.MinInt

// parseRule parses the words after "-A CHAIN" into matches and a target.
// It returns the rule and, when iptables would refuse the words, a message.
// Options are collected with their owner first and handed out at the end,
// so that each match's option list is cut from a chunk in one piece.
func (p *iptParser) parseRule(words []string) (*IptRule, string) {
	r := p.rules.new()
	matches, owned := p.matches[:0], p.owned[:0]
	owner := noOwner // where module/target options go
	target := 0      // the owner number of r.Target, 0 while there is none
	implicit := -1   // the index of the protocol's match
	var proto string
	neg := false
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	newMatch := func(module string) int {
		m := p.matchObj.new()
		m.Module = module
		matches = append(matches, m)
		return len(matches) - 1
	}
	give := func(to int, o Option, args []string) {
		op := p.options.new()
		*op = o
		op.Args = p.strs.clone(args)
		owned = append(owned, ownedOpt{to, op})
	}
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
		name, short := longOpt(w)
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
		arity, known := optArity(name)
		if !known {
			arity = 1
		}
		if short && (name == "match" || name == "jump" || name == "goto") {
			arity = 1
		}
		first := i + 1
		for k := 0; k < arity && i+1 < len(words); k++ {
			if !known && isOpt(words[i+1]) {
				break // an option we do not know that takes no argument
			}
			i++
		}
		args := words[first : i+1]
		if len(args) < arity && known {
			bad("option --%s needs %d argument(s)", name, arity)
		}
		opt := Option{Name: name, Neg: neg}
		neg = false
		switch {
		case short && (name == "jump" || name == "goto"):
			if target != 0 {
				bad("more than one target")
			}
			if opt.Neg {
				bad("cannot negate a target")
			}
			tn := ""
			if len(args) > 0 {
				tn = args[0]
			}
			r.Target = p.targets.new()
			*r.Target = Target{Name: tn, Goto: name == "goto"}
			target--
			owner = target
		case short && name == "match":
			if len(args) == 0 {
				bad("-m without a module")
				continue
			}
			owner = newMatch(args[0])
			if args[0] == proto {
				implicit = owner
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
			give(newMatch(""), opt, args)
		case owner != noOwner && !(isProtoOpt(name) && isImplicitProto(proto) && target == 0 && (len(matches) == 0 || matches[len(matches)-1].Module != proto)):
			give(owner, opt, args)
		case isImplicitProto(proto):
			if implicit < 0 {
				implicit = newMatch(proto)
			}
			give(implicit, opt, args)
		default:
			bad("option --%s belongs to no match or target", name)
			give(newMatch("?"), opt, args)
		}
	}
	if neg {
		bad("\"!\" at the end of the rule")
	}

	// Hand each match and the target its options in their order.
	slices.SortStableFunc(owned, func(a, b ownedOpt) int { return cmp.Compare(a.owner, b.owner) })
	all := p.optPtr.make(len(owned))
	for k := range owned {
		all[k] = owned[k].opt
	}
	for k := 0; k < len(owned); {
		e := k + 1
		for e < len(owned) && owned[e].owner == owned[k].owner {
			e++
		}
		switch o := owned[k].owner; {
		case o >= 0:
			matches[o].Options = all[k:e:e]
		case o == target:
			r.Target.Options = all[k:e:e]
		}
		k = e
	}
	for _, m := range matches {
		if m.Options == nil {
			m.Options = []*Option{}
		}
	}
	if r.Target != nil && r.Target.Options == nil {
		r.Target.Options = []*Option{}
	}
	r.Matches = []*Match{}
	if len(matches) > 0 {
		r.Matches = p.matchPtr.clone(matches)
	}
	p.matches, p.owned = matches, owned
	return r, strings.Join(problems, "; ")
}

// expandAddrLists turns a rule with comma lists in -s/-d into one rule per
// address pair (sources outer, destinations inner), as iptables does
// before loading it: the kernel — and its counters and rule numbers — sees
// the expanded rules. Each keeps the line's text and position. It returns
// nil when r stays as it is, the common case.
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
			return nil, "! not allowed with multiple source or destination IP addresses"
		}
		if o.Name == "source" {
			srcs, si = strings.Split(o.Args[0], ","), i
		} else {
			dsts, di = strings.Split(o.Args[0], ","), i
		}
	}
	if si < 0 && di < 0 {
		return nil, ""
	}
	if len(srcs)*max(len(dsts), 1) > 4096 {
		return nil, "address lists expand to more than 4096 rules"
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
