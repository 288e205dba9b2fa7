package trace

// Netfilter evaluation: one router's iptables compiled once (CompileFirewall)
// and walked per packet (Traverse) with the kernel's semantics, so that a
// simulated verdict equals what a lab built from the same facts does.
//
// Laziness: a rule's matches are all evaluated; the rule matches only when
// every one of them matches. A match the evaluator does not understand only
// turns the verdict into UNKNOWN when all understood matches of that rule
// match — when one of them fails the kernel would not match the rule either,
// whatever the unknown match says, so the walk goes on.

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/tsim-dev/tsim/internal/facts"
)

// Packet is the header a netfilter rule can match on; the evaluator may
// change Dst/DPort (DNAT), Src/SPort (SNAT), Mark, CTMark, TOS, TTL and
// CTState (NOTRACK).
type Packet struct {
	Src, Dst           netip.Addr
	Proto              int // 1 icmp, 6 tcp, 17 udp
	SPort, DPort       uint16
	ICMPType, ICMPCode int    // for proto 1; echo request = 8/0
	TCPFlags           string // "SYN" for a new connection
	InIf, OutIf        string // "" when not applicable on this hook
	Mark               uint32
	TOS                uint8 // DSCP<<2
	// CTState is the conntrack state: "NEW" for a request, "ESTABLISHED"
	// for the reply of a connection the router saw, "NEW" or "INVALID" for
	// a reply it did not see, "UNTRACKED" after NOTRACK.
	CTState string
	Length  int // bytes, for length matches (default 60)

	// Additions. Zero values are safe defaults.

	// TTL is the IP TTL as this hook sees it; 0 = unknown (ttl matches
	// are then UNKNOWN).
	TTL uint8
	// CTMark is the connection's mark (connmark match, CONNMARK target);
	// a new connection starts at 0.
	CTMark uint32
	// Gateway is the next hop chosen by routing, if known: MASQUERADE
	// picks the out interface's address on the gateway's subnet.
	Gateway netip.Addr
	// DNATed/SNATed say a NAT binding changed the destination/source of
	// the connection (conntrack's DNAT/SNAT virtual states); set by Traverse.
	DNATed, SNATed bool
	// OrigSrc/OrigDst/OrigSPort/OrigDPort are the connection's original
	// tuple, set by Traverse before its first NAT rewrite (invalid/0 until
	// then, meaning "same as Src/Dst/ports").
	OrigSrc, OrigDst     netip.Addr
	OrigSPort, OrigDPort uint16
	// Reply says the packet travels in the connection's reply direction
	// (--ctdir REPLY); ReplSrc/ReplDst/ReplSPort/ReplDPort are then the
	// connection's reply tuple (for an original-direction packet it is the
	// inverse of the current header).
	Reply                bool
	ReplSrc, ReplDst     netip.Addr
	ReplSPort, ReplDPort uint16
}

// Verdicts.
const (
	VerdictAccept  = "ACCEPT"
	VerdictDrop    = "DROP"
	VerdictReject  = "REJECT"
	VerdictUnknown = "UNKNOWN"
)

// ChainResult is the outcome of one Traverse.
type ChainResult struct {
	Verdict      string // ACCEPT, DROP, REJECT, UNKNOWN ("ACCEPT" also when the table/chain does not exist)
	Table, Chain string // the chain holding the deciding rule (a user chain if it decided there)
	Index        int    // 1-based index of the deciding rule in Chain; 0 = the built-in chain's policy
	Rule         *facts.IptRule
	Reason       string    // for UNKNOWN: which rule and which match/target is not understood
	NAT          *NAT      // DNAT/SNAT/MASQUERADE/REDIRECT/NETMAP applied (non-nil only in nat table)
	Marked       bool      // MARK/CONNMARK changed p.Mark
	Visited      []RuleHit // every rule whose matches all matched, in order
	// RejectWith is REJECT's --reject-with (default icmp-port-unreachable).
	RejectWith string
}

// NAT is one address translation, e.g. Kind "DNAT", From "10.0.0.1:80",
// To "10.1.1.10:8080" (ports only for protocols that have them).
type NAT struct{ Kind, From, To string }

// RuleHit is one rule whose matches all matched.
type RuleHit struct {
	Table, Chain string
	Index        int
	Text, Target string
}

// Firewall is one router's iptables compiled once for fast evaluation.
type Firewall struct {
	tables   map[string]*cTable
	chains   []*cChain // in the facts' order, for Unknowns
	router   *facts.Router
	ifaces   map[string]*facts.Interface
	local    []localRoute // the local routing table, for addrtype
	setsOnce sync.Once
	sets     map[string]*cSet
}

type cTable struct {
	name   string
	chains map[string]*cChain
}

// cChain is one chain. Its rules are compiled when a packet first enters
// it (ready): a trace walks a few chains of many, and `tsim trace` as a
// process has a 10 ms budget.
type cChain struct {
	table, name string
	policy      string
	ct          *cTable
	fw          *Firewall
	src         *facts.Chain
	once        sync.Once
	rules       []cRule // contiguous: a walk reads them in order
	unknowns    []facts.Finding
}

// ready compiles the chain's rules once and returns the chain.
func (c *cChain) ready() *cChain {
	c.once.Do(c.compile)
	return c
}

func (c *cChain) compile() {
	fw := c.fw
	c.rules = make([]cRule, 0, len(c.src.Rules))
	for _, ir := range c.src.Rules {
		cr := cRule{r: ir, chain: c}
		for _, m := range ir.Matches {
			if cr.inline(m) {
				continue
			}
			cr.matches = append(cr.matches, compileMatch(m, c.table, fw, fw.ipsets())...)
		}
		cr.tgt = compileTarget(ir.Target, c.ct, fw)
		for _, m := range cr.matches {
			if m.why != "" {
				c.unknowns = append(c.unknowns, facts.Finding{Pos: ir.Pos, Severity: facts.SevWarning, Router: fw.router.Name,
					Message: fmt.Sprintf("%s/%s rule %d: %s (verdict UNKNOWN when the rest of the rule matches): %s", c.table, c.name, ir.Index, m.why, ir.Text)})
			}
		}
		if cr.tgt.why != "" {
			c.unknowns = append(c.unknowns, facts.Finding{Pos: ir.Pos, Severity: facts.SevWarning, Router: fw.router.Name,
				Message: fmt.Sprintf("%s/%s rule %d: %s (verdict UNKNOWN when the rule matches): %s", c.table, c.name, ir.Index, cr.tgt.why, ir.Text)})
		}
		c.rules = append(c.rules, cr)
	}
}

// ipsets returns the router's compiled ipsets, compiling them once.
func (fw *Firewall) ipsets() map[string]*cSet {
	fw.setsOnce.Do(func() { fw.sets = compileSets(fw.router) })
	return fw.sets
}

// mres is a match result: no, yes, or not understood.
type mres uint8

const (
	mNo mres = iota
	mYes
	mUnknown
)

// matcher tests one condition of a rule. hook is the built-in chain being
// traversed, for the few matches whose meaning depends on it.
type matcher func(p *Packet, e evalCtx) mres

// evalCtx is passed by value: matchers are indirect calls, so a pointer
// would make it escape to the heap on every Traverse.
type evalCtx struct {
	table string
	hook  string
}

type cMatch struct {
	f       matcher
	module  string
	why     string // set: the match is never understood (listed by Unknowns)
	dynamic string // why f may answer mUnknown for some packets
}

type cRule struct {
	r     *facts.IptRule
	chain *cChain
	// The common built-in matches are tested inline before the others,
	// which saves an indirect call per rule on long chains.
	src, dst       netip.Prefix // invalid: not in the rule
	srcNeg, dstNeg bool
	srcNet, dstNet uint32 // src/dst as numbers, masked
	srcMask        uint32
	dstMask        uint32
	proto          int // 0: any
	protoNeg       bool
	matches        []cMatch
	tgt            cTarget
}

// fast reports whether the inline matches hold; s and d are p's addresses
// as numbers when v4.
func (cr *cRule) fast(p *Packet, s, d uint32, v4 bool) bool {
	if cr.proto != 0 && (p.Proto == cr.proto) == cr.protoNeg {
		return false
	}
	if cr.src.IsValid() {
		in := s&cr.srcMask == cr.srcNet
		if !v4 {
			in = cr.src.Contains(p.Src)
		}
		if in == cr.srcNeg {
			return false
		}
	}
	if cr.dst.IsValid() {
		in := d&cr.dstMask == cr.dstNet
		if !v4 {
			in = cr.dst.Contains(p.Dst)
		}
		if in == cr.dstNeg {
			return false
		}
	}
	return true
}

// v4 returns p's addresses as numbers, and whether both are IPv4.
func v4(p *Packet) (uint32, uint32, bool) {
	if !p.Src.Is4() || !p.Dst.Is4() {
		return 0, 0, false
	}
	return u32(p.Src), u32(p.Dst), true
}

func maskOf(bits int) uint32 {
	if bits <= 0 {
		return 0
	}
	return ^uint32(0) << (32 - bits)
}

// inline moves a built-in -s/-d/-p with one value into cr's inline fields.
func (cr *cRule) inline(m *facts.Match) bool {
	if m.Module != "" || len(m.Options) != 1 || len(m.Options[0].Args) != 1 {
		return false
	}
	o := m.Options[0]
	switch o.Name {
	case "source", "destination":
		if strings.Contains(o.Args[0], ",") {
			return false
		}
		pr, err := ParsePrefix(o.Args[0])
		if err != nil {
			return false
		}
		if o.Name == "source" {
			cr.src, cr.srcNeg, cr.srcMask, cr.srcNet = pr, o.Neg, maskOf(pr.Bits()), u32(pr.Addr())
		} else {
			cr.dst, cr.dstNeg, cr.dstMask, cr.dstNet = pr, o.Neg, maskOf(pr.Bits()), u32(pr.Addr())
		}
		return true
	case "protocol":
		n, ok := protoNumber(o.Args[0])
		if !ok {
			return false
		}
		cr.proto, cr.protoNeg = n, o.Neg
		return true
	}
	return false
}

// maxSteps bounds a walk: iptables-restore refuses chain loops, but
// facts that were never loaded into a kernel may have them.
const maxSteps = 100000

// CompileFirewall compiles r's iptables and ipsets, each chain (and the
// ipsets) when first used. It never fails: what it cannot compile becomes a
// rule that is UNKNOWN when it matches, listed by Unknowns.
func CompileFirewall(r *facts.Router) *Firewall {
	fw := &Firewall{tables: map[string]*cTable{}, router: r, ifaces: map[string]*facts.Interface{}}
	for _, i := range r.Interfaces {
		fw.ifaces[i.Name] = i
	}
	fw.local = localRoutes(r)
	for _, t := range r.Iptables {
		ct := &cTable{name: t.Name, chains: map[string]*cChain{}}
		for _, c := range t.Chains {
			cc := &cChain{table: t.Name, name: c.Name, policy: c.Policy, ct: ct, fw: fw, src: c}
			ct.chains[c.Name] = cc
			fw.chains = append(fw.chains, cc)
		}
		fw.tables[t.Name] = ct
	}
	return fw
}

// Unknowns lists every rule with a match or target the evaluator does not
// understand (or understands only in some cases), as warnings.
func (fw *Firewall) Unknowns() []facts.Finding {
	var out []facts.Finding
	for _, c := range fw.chains {
		out = append(out, c.ready().unknowns...)
	}
	return out
}

// Traverse evaluates table/chain (a built-in chain) for p, following jumps
// and gotos into user chains, RETURN, and the policy. It changes p as the
// kernel would (NAT, marks, TOS, TTL, NOTRACK).
func (fw *Firewall) Traverse(table, chain string, p *Packet) ChainResult {
	res := ChainResult{Verdict: VerdictAccept, Table: table, Chain: chain}
	t := fw.tables[table]
	if t == nil {
		return res
	}
	start := t.chains[chain]
	if start == nil {
		return res
	}
	if !facts.IsBuiltinChain(table, chain) {
		res.Verdict = VerdictUnknown
		res.Reason = fmt.Sprintf("%s/%s is not a built-in chain of table %s; the kernel only enters tables through built-in chains", table, chain, table)
		return res
	}
	if p.Length == 0 {
		p.Length = 60
	}
	if p.CTState == "" {
		p.CTState = "NEW"
	}
	mark0 := p.Mark
	e := evalCtx{table: table, hook: chain}
	// The jump stack holds where to continue after a user chain returns;
	// a goto does not push, so its chain returns to the caller's caller.
	type frame struct {
		c *cChain
		i int
	}
	var stackBuf [16]frame
	stack := stackBuf[:0]
	cur, i := start.ready(), 0
	policy := func() ChainResult {
		res.Verdict, res.Chain, res.Index, res.Rule = start.policy, chain, 0, nil
		if start.policy == "" {
			// Facts without policies (the predecessor's JSON) cannot say.
			res.Verdict = VerdictUnknown
			res.Reason = fmt.Sprintf("%s/%s: the facts do not give this built-in chain's policy", table, chain)
		}
		res.Marked = p.Mark != mark0
		return res
	}
	decide := func(cr *cRule, verdict string) ChainResult {
		res.Verdict, res.Chain, res.Index, res.Rule = verdict, cr.chain.name, cr.r.Index, cr.r
		res.Marked = p.Mark != mark0
		return res
	}
	sa, da, is4 := v4(p)
	for steps := 0; ; steps++ {
		if steps > maxSteps {
			res.Verdict, res.Chain, res.Index, res.Rule = VerdictUnknown, cur.name, 0, nil
			res.Reason = fmt.Sprintf("%s/%s: more than %d rule steps (a chain loop?)", table, chain, maxSteps)
			return res
		}
		if i >= len(cur.rules) {
			// The end of a user chain is an implicit RETURN.
			if len(stack) == 0 {
				return policy()
			}
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			cur, i = top.c, top.i
			continue
		}
		cr := &cur.rules[i]
		i++
		if !cr.fast(p, sa, da, is4) {
			continue
		}
		why := ""
		matched := true
		for k := range cr.matches {
			m := &cr.matches[k]
			r := m.f(p, e)
			if r == mNo {
				matched = false
				break
			}
			if r == mUnknown && why == "" {
				why = m.why
				if why == "" {
					why = m.dynamic
				}
			}
		}
		if !matched {
			continue
		}
		if why != "" {
			res.Verdict, res.Chain, res.Index, res.Rule = VerdictUnknown, cr.chain.name, cr.r.Index, cr.r
			res.Reason = fmt.Sprintf("%s/%s rule %d (%s, %s): %s", table, cr.chain.name, cr.r.Index, cr.r.Text, cr.r.Pos, why)
			res.Marked = p.Mark != mark0
			return res
		}
		tname := ""
		if cr.r.Target != nil {
			tname = cr.r.Target.Name
		}
		if res.Visited == nil {
			res.Visited = make([]RuleHit, 0, 8) // one allocation for typical walks
		}
		res.Visited = append(res.Visited, RuleHit{Table: table, Chain: cr.chain.name, Index: cr.r.Index, Text: cr.r.Text, Target: tname})
		tg := &cr.tgt
		switch tg.kind {
		case tNone:
		case tAccept:
			return decide(cr, VerdictAccept)
		case tDrop:
			return decide(cr, VerdictDrop)
		case tReject:
			res.RejectWith = tg.arg
			return decide(cr, VerdictReject)
		case tReturn:
			if len(stack) == 0 {
				return policy()
			}
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			cur, i = top.c, top.i
		case tJump:
			if !tg.isGoto {
				if len(stack) >= 1024 {
					res.Verdict, res.Chain, res.Index, res.Rule = VerdictUnknown, cr.chain.name, cr.r.Index, cr.r
					res.Reason = fmt.Sprintf("%s/%s rule %d: chains nested deeper than 1024 (a loop?)", table, cr.chain.name, cr.r.Index)
					return res
				}
				stack = append(stack, frame{cur, i})
			}
			cur, i = tg.chain.ready(), 0
		case tModify:
			a := tg.apply(p, e)
			sa, da, is4 = v4(p) // NAT may have changed the addresses
			if a.verdict != "" {
				if a.verdict == VerdictUnknown {
					res.Reason = fmt.Sprintf("%s/%s rule %d (%s, %s): %s", table, cr.chain.name, cr.r.Index, cr.r.Text, cr.r.Pos, a.reason)
				}
				res.NAT = a.nat
				return decide(cr, a.verdict)
			}
		case tUnknown:
			res.Verdict, res.Chain, res.Index, res.Rule = VerdictUnknown, cr.chain.name, cr.r.Index, cr.r
			res.Reason = fmt.Sprintf("%s/%s rule %d (%s, %s): %s", table, cr.chain.name, cr.r.Index, cr.r.Text, cr.r.Pos, tg.why)
			res.Marked = p.Mark != mark0
			return res
		}
	}
}

// ---- targets ----

type tKind uint8

const (
	tNone   tKind = iota // counting rule or a target that changes nothing we model (LOG …)
	tAccept              // also the end of a nat chain after NAT
	tDrop
	tReject
	tReturn
	tJump
	tModify // changes the packet; apply may end the chain
	tUnknown
)

// applied is what a packet-changing target did: verdict "" continues;
// otherwise the chain ends (with nat, or with reason when UNKNOWN).
type applied struct {
	verdict string
	nat     *NAT
	reason  string
}

type cTarget struct {
	kind   tKind
	chain  *cChain
	isGoto bool
	arg    string
	why    string
	// apply changes p; its verdict is "" to continue.
	apply func(p *Packet, e evalCtx) applied
}

// passTargets change nothing the simulation models; the walk continues.
var passTargets = map[string]bool{
	"LOG": true, "NFLOG": true, "ULOG": true, "TCPMSS": true, "CLASSIFY": true, "AUDIT": true,
	"CHECKSUM": true, "TRACE": true, "IDLETIMER": true, "LED": true, "SECMARK": true,
	"CONNSECMARK": true, "RATEEST": true, "TEE": true, "NETFLOW": true,
}

func compileTarget(t *facts.Target, tb *cTable, fw *Firewall) cTarget {
	if t == nil {
		return cTarget{kind: tNone}
	}
	unknown := func(format string, a ...any) cTarget {
		return cTarget{kind: tUnknown, why: fmt.Sprintf(format, a...)}
	}
	if c := tb.chains[t.Name]; c != nil {
		if facts.IsBuiltinChain(tb.name, t.Name) {
			return unknown("target %s is a built-in chain (the kernel refuses jumps to built-in chains)", t.Name)
		}
		return cTarget{kind: tJump, chain: c, isGoto: t.Goto}
	}
	if t.Goto {
		return unknown("goto %s: no such chain in table %s", t.Name, tb.name)
	}
	opts := map[string]*facts.Option{}
	for _, o := range t.Options {
		opts[o.Name] = o
	}
	arg := func(name string) (string, bool) {
		o := opts[name]
		if o == nil || len(o.Args) == 0 {
			return "", false
		}
		return o.Args[0], true
	}
	switch t.Name {
	case "ACCEPT":
		return cTarget{kind: tAccept}
	case "DROP":
		return cTarget{kind: tDrop}
	case "RETURN":
		return cTarget{kind: tReturn}
	case "REJECT":
		w, ok := arg("reject-with")
		if !ok {
			w = "icmp-port-unreachable"
		}
		return cTarget{kind: tReject, arg: w}
	case "MARK":
		return compileMarkTarget(t, opts)
	case "CONNMARK":
		return compileConnmarkTarget(t, opts)
	case "TOS":
		return compileTOSTarget(t, opts)
	case "DSCP":
		v, ok := arg("set-dscp")
		n, err := parseUint(v, 0x3f)
		if !ok {
			c, ok2 := arg("set-dscp-class")
			n, ok = dscpClass(c)
			if !ok2 || !ok {
				return unknown("DSCP target options not understood")
			}
		} else if err != nil {
			return unknown("DSCP value %q not understood", v)
		}
		d := uint8(n)
		return cTarget{kind: tModify, apply: func(p *Packet, _ evalCtx) applied {
			p.TOS = p.TOS&0x03 | d<<2
			return applied{}
		}}
	case "TTL":
		return compileTTLTarget(opts)
	case "NOTRACK":
		return cTarget{kind: tModify, apply: notrack}
	case "CT":
		if opts["notrack"] != nil {
			return cTarget{kind: tModify, apply: notrack}
		}
		// Zones, helpers, timeouts and event masks do not change a
		// single probe's verdict.
		return cTarget{kind: tNone}
	case "DNAT", "SNAT", "MASQUERADE", "REDIRECT", "NETMAP":
		if tb.name != "nat" {
			return unknown("%s outside the nat table (the kernel refuses it)", t.Name)
		}
		return compileNAT(t, opts, fw)
	}
	if passTargets[t.Name] {
		return cTarget{kind: tNone}
	}
	return unknown("target %s is not understood (not a chain of table %s)", t.Name, tb.name)
}

func notrack(p *Packet, e evalCtx) applied {
	p.CTState = "UNTRACKED"
	return applied{}
}

// xmark is the kernel's mark arithmetic: v = (v & ^mask) ^ val.
type xmark struct{ val, mask uint32 }

// parseMarkOpt converts MARK/CONNMARK/TOS option forms to the kernel's
// (value, mask) pair the way iptables' userspace does.
func parseMarkOpt(name, arg string, full uint32) (xmark, error) {
	v, m, hasMask, err := parseValMask(arg, full)
	if err != nil {
		return xmark{}, err
	}
	if !hasMask {
		m = full
	}
	switch name {
	case "set-xmark", "set-tos":
		return xmark{v, m}, nil
	case "set-mark":
		return xmark{v, v | m}, nil
	case "and-mark", "and-tos":
		return xmark{0, ^v & full}, nil
	case "or-mark", "or-tos":
		return xmark{v, v}, nil
	case "xor-mark", "xor-tos":
		return xmark{v, 0}, nil
	}
	return xmark{}, fmt.Errorf("unknown option --%s", name)
}

func compileMarkTarget(t *facts.Target, opts map[string]*facts.Option) cTarget {
	for _, name := range []string{"set-xmark", "set-mark", "and-mark", "or-mark", "xor-mark"} {
		if o := opts[name]; o != nil && len(o.Args) == 1 {
			x, err := parseMarkOpt(name, o.Args[0], 0xffffffff)
			if err != nil {
				return cTarget{kind: tUnknown, why: "MARK --" + name + ": " + err.Error()}
			}
			return cTarget{kind: tModify, apply: func(p *Packet, _ evalCtx) applied {
				p.Mark = p.Mark&^x.mask ^ x.val
				return applied{}
			}}
		}
	}
	return cTarget{kind: tUnknown, why: "MARK target options not understood"}
}

func compileConnmarkTarget(t *facts.Target, opts map[string]*facts.Option) cTarget {
	for _, name := range []string{"set-xmark", "set-mark", "and-mark", "or-mark", "xor-mark"} {
		if o := opts[name]; o != nil && len(o.Args) == 1 {
			x, err := parseMarkOpt(name, o.Args[0], 0xffffffff)
			if err != nil {
				return cTarget{kind: tUnknown, why: "CONNMARK --" + name + ": " + err.Error()}
			}
			return cTarget{kind: tModify, apply: func(p *Packet, e evalCtx) applied {
				if hasConntrack(p, e) {
					p.CTMark = p.CTMark&^x.mask ^ x.val
				}
				return applied{}
			}}
		}
	}
	for k := range opts {
		if strings.Contains(k, "shift") {
			return cTarget{kind: tUnknown, why: "CONNMARK --" + k + " is not simulated"}
		}
	}
	nf, ct := uint32(0xffffffff), uint32(0xffffffff)
	for _, o := range []struct {
		name string
		dst  []*uint32
	}{{"mask", []*uint32{&nf, &ct}}, {"nfmask", []*uint32{&nf}}, {"ctmask", []*uint32{&ct}}} {
		if op := opts[o.name]; op != nil && len(op.Args) == 1 {
			v, err := parseUint(op.Args[0], 0xffffffff)
			if err != nil {
				return cTarget{kind: tUnknown, why: "CONNMARK --" + o.name + " " + op.Args[0] + " not understood"}
			}
			for _, d := range o.dst {
				*d = uint32(v)
			}
		}
	}
	switch {
	case opts["save-mark"] != nil:
		return cTarget{kind: tModify, apply: func(p *Packet, e evalCtx) applied {
			if hasConntrack(p, e) {
				p.CTMark = p.CTMark&^ct ^ p.Mark&nf
			}
			return applied{}
		}}
	case opts["restore-mark"] != nil:
		return cTarget{kind: tModify, apply: func(p *Packet, e evalCtx) applied {
			if hasConntrack(p, e) {
				p.Mark = p.Mark&^nf ^ p.CTMark&ct
			}
			return applied{}
		}}
	}
	return cTarget{kind: tUnknown, why: "CONNMARK target options not understood"}
}

func compileTOSTarget(t *facts.Target, opts map[string]*facts.Option) cTarget {
	for _, name := range []string{"set-tos", "and-tos", "or-tos", "xor-tos"} {
		o := opts[name]
		if o == nil || len(o.Args) != 1 {
			continue
		}
		a := o.Args[0]
		var x xmark
		if v, ok := tosSymbol(a); ok && name == "set-tos" {
			x = xmark{v, 0x3f} // symbolic names leave the ECN bits alone
		} else {
			var err error
			if x, err = parseMarkOpt(name, a, 0xff); err != nil {
				return cTarget{kind: tUnknown, why: "TOS --" + name + ": " + err.Error()}
			}
		}
		return cTarget{kind: tModify, apply: func(p *Packet, _ evalCtx) applied {
			p.TOS = uint8((uint32(p.TOS)&^x.mask ^ x.val) & 0xff)
			return applied{}
		}}
	}
	return cTarget{kind: tUnknown, why: "TOS target options not understood"}
}

func compileTTLTarget(opts map[string]*facts.Option) cTarget {
	for _, name := range []string{"ttl-set", "ttl-dec", "ttl-inc"} {
		o := opts[name]
		if o == nil || len(o.Args) != 1 {
			continue
		}
		n, err := parseUint(o.Args[0], 255)
		if err != nil {
			return cTarget{kind: tUnknown, why: "TTL --" + name + " " + o.Args[0] + " not understood"}
		}
		return cTarget{kind: tModify, apply: func(p *Packet, _ evalCtx) applied {
			if p.TTL == 0 {
				return applied{} // unknown TTL stays unknown
			}
			v := int(p.TTL)
			switch name {
			case "ttl-set":
				v = int(n)
			case "ttl-dec":
				v = max(v-int(n), 0)
			case "ttl-inc":
				v = min(v+int(n), 255)
			}
			p.TTL = uint8(v)
			return applied{}
		}}
	}
	return cTarget{kind: tUnknown, why: "TTL target options not understood"}
}

// hasConntrack reports whether the packet has a conntrack entry here: not
// in the raw table (conntrack runs after it), not after NOTRACK and not
// when conntrack found the packet INVALID (the kernel then attaches none).
func hasConntrack(p *Packet, e evalCtx) bool {
	return e.table != "raw" && p.CTState != "UNTRACKED" && p.CTState != "INVALID"
}

// ---- NAT ----

// natRange is --to-destination/--to-source/--to-ports: ADDR[-ADDR][:PORT[-PORT]].
type natRange struct {
	lo, hi         netip.Addr // invalid: keep the address
	portLo, portHi uint16     // 0: keep the port
}

func parseNATRange(s string, portsOnly bool) (natRange, error) {
	var r natRange
	host, ports := s, ""
	if portsOnly {
		host, ports = "", s
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, ports = s[:i], s[i+1:]
	}
	if host != "" {
		a, b, isRange := strings.Cut(host, "-")
		var err error
		if r.lo, err = netip.ParseAddr(a); err != nil || !r.lo.Is4() {
			return r, fmt.Errorf("bad address %q", a)
		}
		r.hi = r.lo
		if isRange {
			if r.hi, err = netip.ParseAddr(b); err != nil || !r.hi.Is4() || r.hi.Less(r.lo) {
				return r, fmt.Errorf("bad address range %q", host)
			}
		}
	}
	if ports != "" {
		a, b, isRange := strings.Cut(ports, "-")
		lo, err := strconv.ParseUint(a, 10, 16)
		if err != nil || lo == 0 {
			return r, fmt.Errorf("bad port %q", a)
		}
		hi := lo
		if isRange {
			if hi, err = strconv.ParseUint(b, 10, 16); err != nil || hi < lo {
				return r, fmt.Errorf("bad port range %q", ports)
			}
		}
		r.portLo, r.portHi = uint16(lo), uint16(hi)
	}
	return r, nil
}

func hasPorts(proto int) bool {
	return proto == 6 || proto == 17 || proto == 132 || proto == 136 || proto == 33
}

func hostPort(a netip.Addr, port uint16, proto int) string {
	if hasPorts(proto) {
		return netip.AddrPortFrom(a, port).String()
	}
	return a.String()
}

// pickPort applies a NAT port range the way the kernel does for the first
// connection of a tuple: a port already in the range is kept; a one-port
// range is that port; otherwise the kernel picks pseudo-randomly.
func pickPort(cur uint16, r natRange) (uint16, bool) {
	switch {
	case r.portLo == 0 || cur >= r.portLo && cur <= r.portHi:
		return cur, true
	case r.portLo == r.portHi:
		return r.portLo, true
	}
	return 0, false
}

func compileNAT(t *facts.Target, opts map[string]*facts.Option, fw *Firewall) cTarget {
	kind := t.Name
	unknown := func(format string, a ...any) cTarget {
		return cTarget{kind: tUnknown, why: kind + ": " + fmt.Sprintf(format, a...)}
	}
	var r natRange
	var err error
	var netmap netip.Prefix
	switch kind {
	case "DNAT", "SNAT":
		optName := "to-destination"
		if kind == "SNAT" {
			optName = "to-source"
		}
		o := opts[optName]
		if o == nil || len(o.Args) != 1 {
			return unknown("needs exactly one --%s", optName)
		}
		if r, err = parseNATRange(o.Args[0], false); err != nil {
			return unknown("%v", err)
		}
	case "MASQUERADE", "REDIRECT":
		if o := opts["to-ports"]; o != nil && len(o.Args) == 1 {
			if r, err = parseNATRange(o.Args[0], true); err != nil {
				return unknown("%v", err)
			}
		}
	case "NETMAP":
		o := opts["to"]
		if o == nil || len(o.Args) != 1 {
			return unknown("needs --to")
		}
		if netmap, err = ParsePrefix(o.Args[0]); err != nil {
			return unknown("%v", err)
		}
	}
	if r.lo.IsValid() && r.lo != r.hi {
		return unknown("address range %s-%s: the kernel picks an address by hash", r.lo, r.hi)
	}
	return cTarget{kind: tModify, apply: func(p *Packet, e evalCtx) applied {
		if !p.OrigSrc.IsValid() {
			p.OrigSrc, p.OrigDst, p.OrigSPort, p.OrigDPort = p.Src, p.Dst, p.SPort, p.DPort
		}
		dnat := kind == "DNAT" || kind == "REDIRECT" || kind == "NETMAP" && (e.hook == "PREROUTING" || e.hook == "OUTPUT")
		n := &NAT{Kind: kind}
		if dnat {
			n.From = hostPort(p.Dst, p.DPort, p.Proto)
		} else {
			n.From = hostPort(p.Src, p.SPort, p.Proto)
		}
		addr, port := r.lo, uint16(0)
		switch kind {
		case "MASQUERADE":
			addr = fw.masqAddr(p)
			if !addr.IsValid() {
				// The kernel drops when the out interface has no address.
				return applied{verdict: VerdictDrop}
			}
		case "REDIRECT":
			if p.InIf == "" {
				addr = netip.AddrFrom4([4]byte{127, 0, 0, 1})
			} else if addr = fw.firstAddr(p.InIf); !addr.IsValid() {
				return applied{verdict: VerdictDrop}
			}
		case "NETMAP":
			cur := p.Src
			if dnat {
				cur = p.Dst
			}
			addr = mapPrefix(cur, netmap)
		}
		cur := p.SPort
		if dnat {
			cur = p.DPort
		}
		if hasPorts(p.Proto) {
			var ok bool
			if port, ok = pickPort(cur, r); !ok {
				return applied{verdict: VerdictUnknown, reason: fmt.Sprintf("%s to port range %d-%d: the kernel picks a port pseudo-randomly", kind, r.portLo, r.portHi)}
			}
		}
		if dnat {
			if addr.IsValid() {
				p.Dst = addr
			}
			if hasPorts(p.Proto) {
				p.DPort = port
			}
			p.DNATed = true
			n.To = hostPort(p.Dst, p.DPort, p.Proto)
		} else {
			if addr.IsValid() {
				p.Src = addr
			}
			if hasPorts(p.Proto) {
				p.SPort = port
			}
			p.SNATed = true
			n.To = hostPort(p.Src, p.SPort, p.Proto)
		}
		return applied{verdict: VerdictAccept, nat: n}
	}}
}

func mapPrefix(a netip.Addr, to netip.Prefix) netip.Addr {
	if !a.Is4() || !to.Addr().Is4() {
		return a
	}
	m := ^uint32(0) << (32 - to.Bits())
	if to.Bits() == 0 {
		m = 0
	}
	v := u32(a)&^m | u32(to.Masked().Addr())&m
	return addrFromU32(v)
}

// ifAddrs returns the IPv4 addresses of an interface that inet_select_addr
// considers: primary (the first of each subnet) and not host- or link-scoped.
func (fw *Firewall) ifAddrs(name string) []netip.Prefix {
	i := fw.ifaces[name]
	if i == nil {
		return nil
	}
	var out []netip.Prefix
	for k, a := range i.Addrs {
		if !a.Prefix.Addr().Is4() || a.Scope == "host" || a.Scope == "link" {
			continue
		}
		secondary := false
		for _, b := range i.Addrs[:k] {
			if b.Prefix.Addr().Is4() && b.Prefix.Bits() == a.Prefix.Bits() && b.Prefix.Masked() == a.Prefix.Masked() {
				secondary = true
			}
		}
		if !secondary {
			out = append(out, a.Prefix)
		}
	}
	return out
}

// masqAddr is inet_select_addr(out, nexthop, universe): the first primary
// address on the next hop's subnet, else the first primary address.
func (fw *Firewall) masqAddr(p *Packet) netip.Addr {
	nh := p.Gateway
	if !nh.IsValid() {
		nh = p.Dst
	}
	as := fw.ifAddrs(p.OutIf)
	for _, a := range as {
		if a.Contains(nh) {
			return a.Addr()
		}
	}
	if len(as) > 0 {
		return as[0].Addr()
	}
	return netip.Addr{}
}

// firstAddr is REDIRECT's choice: the in device's first address.
func (fw *Firewall) firstAddr(name string) netip.Addr {
	i := fw.ifaces[name]
	if i == nil {
		return netip.Addr{}
	}
	for _, a := range i.Addrs {
		if a.Prefix.Addr().Is4() {
			return a.Prefix.Addr()
		}
	}
	return netip.Addr{}
}
