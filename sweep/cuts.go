package sweep

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/trace"
)

// A cut is where an interval of addresses (or ports) may be treated
// differently from the value just below it: a span [lo, hi] of the facts
// gives the cuts lo and hi+1. Cuts are over-approximations: a token of the
// facts that merely looks like an address (in a comment, a log prefix)
// adds a cut that costs one more class, never a wrong answer.

// cutSet is the sorted, deduplicated address and port cuts of one router
// (or of the whole network, for the global set).
type cutSet struct {
	addr []uint64 // in (0, 1<<32]
	port []uint32 // in (0, 65536]
	// netmaps are the NETMAP translations of the router: what a later
	// router's address cut means before the translation.
	netmaps []netip.Prefix
}

type cutBuilder struct {
	addr map[uint64]bool
	port map[uint32]bool
	nm   []netip.Prefix
}

func newCutBuilder() *cutBuilder {
	return &cutBuilder{addr: map[uint64]bool{}, port: map[uint32]bool{}}
}

func (b *cutBuilder) span(lo, hi uint32) {
	if lo > hi {
		lo, hi = hi, lo
	}
	b.addr[uint64(lo)] = true
	b.addr[uint64(hi)+1] = true
}

func (b *cutBuilder) prefix(p netip.Prefix) {
	if !p.IsValid() || !p.Addr().Is4() {
		return
	}
	p = p.Masked()
	lo := u32(p.Addr())
	hi := lo | hostMask(p.Bits())
	b.span(lo, hi)
}

func (b *cutBuilder) addrOnly(a netip.Addr) {
	if a.IsValid() && a.Unmap().Is4() {
		v := u32(a.Unmap())
		b.span(v, v)
	}
}

func (b *cutBuilder) ports(lo, hi uint32) {
	if lo > hi {
		lo, hi = hi, lo
	}
	b.port[lo] = true
	b.port[hi+1] = true
}

func (b *cutBuilder) build() *cutSet {
	c := &cutSet{netmaps: b.nm}
	for v := range b.addr {
		if v > 0 && v <= 1<<32 {
			c.addr = append(c.addr, v)
		}
	}
	for v := range b.port {
		if v > 0 && v <= 65536 {
			c.port = append(c.port, v)
		}
	}
	slices.Sort(c.addr)
	slices.Sort(c.port)
	return c
}

func hostMask(bits int) uint32 {
	if bits >= 32 {
		return 0
	}
	return ^uint32(0) >> bits
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func addrOf(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// specialCuts are the kernel's special ranges (0/8, loopback, multicast,
// class E, limited broadcast), cut in both dimensions.
func specialCuts() *cutSet {
	b := newCutBuilder()
	for _, s := range []string{"0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32"} {
		b.prefix(netip.MustParsePrefix(s))
	}
	return b.build()
}

// sourceCuts are the cuts every trace depends on through its source,
// wherever it goes: where a source starts (connected subnets, router
// addresses).
func sourceCuts(f *facts.Facts) *cutSet {
	b := newCutBuilder()
	for _, r := range f.Routers {
		for _, i := range r.Interfaces {
			for _, a := range i.Addrs {
				ifAddrCuts(b, a)
			}
		}
	}
	return b.build()
}

func ifAddrCuts(b *cutBuilder, a *facts.IfAddr) {
	if !a.Prefix.Addr().Is4() {
		return
	}
	b.addrOnly(a.Prefix.Addr())
	for _, p := range []netip.Prefix{a.Prefix, a.Peer} {
		if !p.IsValid() || !p.Addr().Is4() {
			continue
		}
		b.prefix(p)
		m := p.Masked()
		lo := u32(m.Addr())
		hi := lo | hostMask(m.Bits())
		b.span(lo, lo) // network address
		b.span(hi, hi) // broadcast
	}
}

// routerCuts are the cuts of one router: base holds what every packet
// crossing it meets (its addresses, every route of every table, its policy
// rules), rules the cuts of each iptables rule with what it can match.
type routerCuts struct {
	base  *cutSet
	rules []*ruleCuts
	// jumps lists, per user chain (table/chain), the rules that jump or go to it.
	jumps map[string][]*ruleCuts
}

// ruleCuts is one iptables rule: its cuts and the static part of its
// matches that says whether a packet of a box can match it at all.
type ruleCuts struct {
	table, chain string
	builtin      bool
	cuts         *cutSet
	src, dst     []Range // non-negated -s/-d/--src-range/--dst-range; nil: any
	nsrc, ndst   []Range // negated -s/-d: the rule cannot match inside these
	proto        int     // non-negated -p; 0: any
	nat          bool    // a NAT target: addresses change after it
}

func newRouterCuts(f *facts.Facts, r *facts.Router) *routerCuts {
	rc := &routerCuts{jumps: map[string][]*ruleCuts{}}
	b := newCutBuilder()
	var conns []netip.Prefix
	for _, i := range r.Interfaces {
		for _, a := range i.Addrs {
			ifAddrCuts(b, a)
			if a.Prefix.Addr().Is4() {
				conns = append(conns, a.Prefix.Masked())
			}
		}
	}
	// The neighbours on its subnets: a packet for one of their addresses
	// is handed to that router, not to a host.
	for _, o := range f.Routers {
		for _, i := range o.Interfaces {
			for _, a := range i.Addrs {
				for _, c := range conns {
					if a.Prefix.Addr().Is4() && c.Overlaps(a.Prefix) {
						ifAddrCuts(b, a)
						break
					}
				}
			}
		}
	}
	for _, t := range r.Tables {
		for _, rt := range t.Routes {
			b.prefix(rt.Dst)
		}
	}
	for _, ru := range r.Rules {
		b.prefix(ru.From)
		b.prefix(ru.To)
		for _, pr := range []facts.PortRange{ru.SPort, ru.DPort} {
			if !pr.Any() {
				b.ports(uint32(pr.Lo), uint32(pr.Hi))
			}
		}
	}
	rc.base = b.build()
	sets := map[string]*facts.Ipset{}
	for _, s := range r.Ipsets {
		sets[s.Name] = s
	}
	for _, t := range r.Iptables {
		chains := map[string]bool{}
		for _, c := range t.Chains {
			chains[c.Name] = true
		}
		for _, c := range t.Chains {
			for _, ir := range c.Rules {
				x := ruleCutsOf(t.Name, c, ir, sets)
				rc.rules = append(rc.rules, x)
				if ir.Target != nil && chains[ir.Target.Name] {
					k := t.Name + "/" + ir.Target.Name
					rc.jumps[k] = append(rc.jumps[k], x)
				}
			}
		}
	}
	return rc
}

func ruleCutsOf(table string, c *facts.Chain, ir *facts.IptRule, sets map[string]*facts.Ipset) *ruleCuts {
	x := &ruleCuts{table: table, chain: c.Name, builtin: facts.IsBuiltinChain(table, c.Name)}
	b := newCutBuilder()
	for _, m := range ir.Matches {
		for _, o := range m.Options {
			optionCuts(b, o)
			if m.Module == "set" && o.Name == "match-set" && len(o.Args) > 0 {
				setCuts(b, o.Args[0], sets, map[string]bool{})
			}
			x.constrain(m.Module, o)
		}
	}
	if ir.Target != nil {
		switch ir.Target.Name {
		case "DNAT", "SNAT", "MASQUERADE", "REDIRECT", "NETMAP":
			x.nat = true
		}
		for _, o := range ir.Target.Options {
			optionCuts(b, o)
			if ir.Target.Name == "NETMAP" && o.Name == "to" && len(o.Args) > 0 {
				if p, ok := parsePrefix(o.Args[0]); ok {
					b.nm = append(b.nm, p)
				}
			}
			if o.Name == "add-set" || o.Name == "del-set" {
				x.nat = true // changes a set: later rules may see other members
			}
		}
	}
	x.cuts = b.build()
	return x
}

// constrain records what a built-in -s/-d/-p or an iprange option says
// about the packets the rule can match.
func (x *ruleCuts) constrain(mod string, o *facts.Option) {
	if len(o.Args) == 0 {
		return
	}
	var rs []Range
	switch mod + "/" + o.Name {
	case "/source", "/destination":
		for _, piece := range strings.Split(o.Args[0], ",") {
			p, ok := parsePrefix(piece)
			if !ok {
				return
			}
			p = p.Masked()
			lo := u32(p.Addr())
			rs = append(rs, Range{lo, lo | hostMask(p.Bits())})
		}
	case "iprange/src-range", "iprange/dst-range":
		lo, hi, ok := strings.Cut(o.Args[0], "-")
		a, e1 := netip.ParseAddr(lo)
		z := a
		var e2 error
		if ok {
			z, e2 = netip.ParseAddr(hi)
		}
		if e1 != nil || e2 != nil || !a.Is4() || !z.Is4() || o.Neg {
			return
		}
		rs = append(rs, Range{u32(a), u32(z)})
	case "/protocol":
		if !o.Neg {
			switch strings.ToLower(o.Args[0]) {
			case "tcp", "6":
				x.proto = 6
			case "udp", "17":
				x.proto = 17
			case "icmp", "1":
				x.proto = 1
			}
		}
		return
	default:
		return
	}
	src := o.Name == "source" || o.Name == "src-range"
	switch {
	case o.Neg && src:
		x.nsrc = append(x.nsrc, rs...)
	case o.Neg:
		x.ndst = append(x.ndst, rs...)
	case src:
		x.src = intersectAll(x.src, rs)
	default:
		x.dst = intersectAll(x.dst, rs)
	}
}

// intersectAll narrows have (nil: anything) to the values also in rs.
func intersectAll(have, rs []Range) []Range {
	if have == nil {
		return rs
	}
	out := []Range{}
	for _, a := range have {
		for _, b := range rs {
			if lo, hi := max(a.Lo, b.Lo), min(a.Hi, b.Hi); lo <= hi {
				out = append(out, Range{lo, hi})
			}
		}
	}
	return out
}

// mayMatch reports whether some packet of proto from s to d can match
// the rule's static part.
func (x *ruleCuts) mayMatch(proto int, s, d Range) bool {
	if x.proto != 0 && x.proto != proto {
		return false
	}
	return overlapsAny(s, x.src) && overlapsAny(d, x.dst) && !insideAny(s, x.nsrc) && !insideAny(d, x.ndst)
}

func overlapsAny(r Range, rs []Range) bool {
	if rs == nil {
		return true
	}
	for _, x := range rs {
		if r.Lo <= x.Hi && x.Lo <= r.Hi {
			return true
		}
	}
	return false
}

func insideAny(r Range, rs []Range) bool {
	for _, x := range rs {
		if x.Lo <= r.Lo && r.Hi <= x.Hi {
			return true
		}
	}
	return false
}

// setCuts adds the cuts of set name's members (and of the sets a list:set
// holds).
func setCuts(b *cutBuilder, name string, sets map[string]*facts.Ipset, seen map[string]bool) {
	s := sets[name]
	if s == nil || seen[name] {
		return
	}
	seen[name] = true
	portSet := strings.Contains(s.Type, "port")
	for _, m := range s.Members {
		if s.Type == "list:set" {
			setCuts(b, m.Value, sets, seen)
			continue
		}
		for _, piece := range strings.Split(m.Value, ",") {
			addrToken(b, piece)
			portToken(b, piece, portSet)
		}
	}
	for i := 0; i+1 < len(s.Options); i++ {
		if s.Options[i] == "range" {
			addrToken(b, s.Options[i+1])
			portToken(b, s.Options[i+1], portSet)
		}
	}
}

// relevant adds to dst the cuts of every rule of the router a packet of
// proto from s to d may meet: its static matches may hold, and its chain
// is a built-in one or reached by a jump that may match. all includes
// every rule (after a NAT, when the box's addresses are no longer the
// packet's).
func (rc *routerCuts) relevant(proto int, s, d Range, all bool, add func(*cutSet)) {
	add(rc.base)
	memo := map[string]bool{}
	var reach func(table, chain string, depth int) bool
	reach = func(table, chain string, depth int) bool {
		if facts.IsBuiltinChain(table, chain) || all {
			return true
		}
		k := table + "/" + chain
		if v, ok := memo[k]; ok {
			return v
		}
		if depth > 64 {
			return true
		}
		memo[k] = true // a cycle counts as reachable (conservative)
		v := false
		for _, j := range rc.jumps[k] {
			if j.mayMatch(proto, s, d) && reach(j.table, j.chain, depth+1) {
				v = true
				break
			}
		}
		memo[k] = v
		return v
	}
	for _, x := range rc.rules {
		if all || x.mayMatch(proto, s, d) && reach(x.table, x.chain, 0) {
			add(x.cuts)
		}
	}
}

// optionCuts adds the cuts of one iptables option: every argument piece
// that reads as an address, prefix or range, and, for port options (and
// NAT targets' ADDR:PORT), every port or port range.
func optionCuts(b *cutBuilder, o *facts.Option) {
	isPort := strings.Contains(o.Name, "port")
	nat := o.Name == "to-destination" || o.Name == "to-source" || o.Name == "to"
	for _, arg := range o.Args {
		for _, piece := range strings.Split(arg, ",") {
			host, ports := piece, ""
			if nat {
				if i := strings.LastIndexByte(piece, ':'); i >= 0 {
					host, ports = piece[:i], piece[i+1:]
				}
			}
			addrToken(b, host)
			switch {
			case isPort:
				portRange(b, piece, ":")
				portRange(b, piece, "-")
			case ports != "":
				portRange(b, ports, "-")
			}
		}
	}
}

// addrToken adds the cuts of ADDR, ADDR/BITS, ADDR/MASK or ADDR-ADDR.
func addrToken(b *cutBuilder, s string) {
	s = strings.TrimSpace(s)
	if s == "" || s[0] < '0' || s[0] > '9' {
		return
	}
	if lo, hi, ok := strings.Cut(s, "-"); ok {
		a, e1 := netip.ParseAddr(lo)
		z, e2 := netip.ParseAddr(hi)
		if e1 == nil && e2 == nil && a.Is4() && z.Is4() {
			b.span(u32(a), u32(z))
		}
		return
	}
	if p, ok := parsePrefix(s); ok {
		b.prefix(p)
	}
}

// portToken adds the cuts of an ipset member's port piece: tcp:80,
// udp:5060-5061, or a bare number or range in a set with ports.
func portToken(b *cutBuilder, s string, portSet bool) {
	if _, p, ok := strings.Cut(s, ":"); ok {
		portRange(b, p, "-")
		return
	}
	if portSet && !strings.Contains(s, ".") {
		portRange(b, s, "-")
	}
}

// portRange adds the cuts of P or A<sep>B (A or B may be empty, or a
// service name iptables knows).
func portRange(b *cutBuilder, s, sep string) {
	lo, hi, isRange := strings.Cut(s, sep)
	if !isRange {
		if p, ok := portNumber(s); ok {
			b.ports(p, p)
		}
		return
	}
	l, h := uint32(0), uint32(65535)
	var ok bool
	if lo != "" {
		if l, ok = portNumber(lo); !ok {
			return
		}
	}
	if hi != "" {
		if h, ok = portNumber(hi); !ok {
			return
		}
	}
	b.ports(l, h)
}

// portNames are the service names iptables-save may print in port options.
var portNames = map[string]uint32{"ssh": 22, "telnet": 23, "smtp": 25, "domain": 53, "http": 80, "www": 80, "pop3": 110,
	"ntp": 123, "imap": 143, "snmp": 161, "https": 443, "submission": 587, "imaps": 993, "pop3s": 995,
	"ftp": 21, "ftp-data": 20, "bgp": 179, "ldap": 389, "syslog": 514, "mysql": 3306, "postgresql": 5432, "rdp": 3389}

func portNumber(s string) (uint32, bool) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseUint(s, 10, 16); err == nil {
		return uint32(n), true
	}
	n, ok := portNames[s]
	return n, ok
}

// parsePrefix parses ADDR, ADDR/BITS or ADDR/DOTTED-MASK (IPv4) as trace does.
func parsePrefix(s string) (netip.Prefix, bool) {
	p, err := trace.ParsePrefix(strings.TrimSpace(s))
	return p, err == nil
}
