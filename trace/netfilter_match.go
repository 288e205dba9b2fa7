package trace

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/tsim-dev/tsim/internal/facts"
)

// compileMatch turns one match (a built-in option or a -m module with its
// options) into conditions, one per option.
func compileMatch(m *facts.Match, table string, fw *Firewall, sets map[string]*cSet) []cMatch {
	mod := m.Module
	var out []cMatch
	unknown := func(format string, a ...any) {
		out = append(out, cMatch{f: alwaysUnknown, module: mod, why: fmt.Sprintf(format, a...)})
	}
	add := func(neg bool, f matcher) {
		if neg {
			g := f
			f = func(p *Packet, e evalCtx) mres {
				switch g(p, e) {
				case mYes:
					return mNo
				case mNo:
					return mYes
				}
				return mUnknown
			}
		}
		out = append(out, cMatch{f: f, module: mod})
	}
	if reason, ok := unknownModules[mod]; ok {
		unknown("match -m %s is not simulated: %s", mod, reason)
		return out
	}
	switch mod {
	case "", "tcp", "udp", "icmp", "multiport", "conntrack", "state", "mark", "connmark", "comment",
		"limit", "hashlimit", "iprange", "addrtype", "set", "length", "tos", "dscp", "ttl", "pkttype", "policy":
	default:
		unknown("match -m %s is not understood", mod)
		return out
	}
	if mod == "comment" {
		return nil // a comment matches everything
	}
	if mod == "limit" || mod == "hashlimit" {
		// A single probe never exceeds a rate limit (the bucket starts full),
		// so the match matches; a lab sending many probes in a burst could.
		return nil
	}
	if mod == "set" {
		return compileSetMatch(m, sets)
	}
	if mod == "addrtype" {
		return compileAddrtype(m, fw)
	}
	// noCT is what the conntrack match answers for a packet without a
	// conntrack entry (see ctOnly).
	noCT := false
	for _, o := range m.Options {
		noCT = noCT || mod == "conntrack" && o.Name == "ctstate"
	}
	for _, o := range m.Options {
		arg := ""
		if len(o.Args) > 0 {
			arg = o.Args[0]
		}
		bad := func(err error) { unknown("%s --%s %s not understood: %v", modName(mod), o.Name, arg, err) }
		switch mod + "/" + o.Name {
		case "/source", "/destination":
			ps, err := parsePrefixList(arg)
			if err != nil {
				bad(err)
				continue
			}
			if o.Neg && len(ps) > 1 {
				bad(fmt.Errorf("! with several addresses (iptables refuses this)"))
				continue
			}
			src := o.Name == "source"
			add(o.Neg, func(p *Packet, _ evalCtx) mres {
				a := p.Dst
				if src {
					a = p.Src
				}
				for _, x := range ps {
					if x.Contains(a) {
						return mYes
					}
				}
				return mNo
			})
		case "/in-interface", "/out-interface":
			name, wild := strings.CutSuffix(arg, "+")
			in := o.Name == "in-interface"
			add(o.Neg, func(p *Packet, _ evalCtx) mres {
				i := p.OutIf
				if in {
					i = p.InIf
				}
				if i == name || wild && strings.HasPrefix(i, name) {
					return mYes
				}
				return mNo
			})
		case "/protocol":
			n, ok := protoNumber(arg)
			if !ok {
				bad(fmt.Errorf("unknown protocol"))
				continue
			}
			if n == 0 {
				continue // "all" matches everything, even negated (the kernel skips proto 0)
			}
			add(o.Neg, func(p *Packet, _ evalCtx) mres { return yes(p.Proto == n) })
		case "/fragment":
			// Probes are never non-first fragments.
			add(o.Neg, func(*Packet, evalCtx) mres { return mNo })
		case "tcp/sport", "tcp/source-port", "udp/sport", "udp/source-port", "tcp/dport", "tcp/destination-port", "udp/dport", "udp/destination-port":
			lo, hi, err := parsePortRange(arg)
			if err != nil {
				bad(err)
				continue
			}
			proto := 6
			if mod == "udp" {
				proto = 17
			}
			dst := strings.HasPrefix(o.Name, "d")
			neg := o.Neg
			// The kernel inverts only the port test, not the protocol check.
			add(false, func(p *Packet, _ evalCtx) mres {
				if p.Proto != proto {
					return mNo
				}
				port := p.SPort
				if dst {
					port = p.DPort
				}
				return yes((port >= lo && port <= hi) != neg)
			})
		case "tcp/tcp-flags", "tcp/syn":
			mask, comp := uint8(0x17), uint8(0x02) // --syn: FIN,SYN,RST,ACK SYN
			if o.Name == "tcp-flags" {
				var err1, err2 error
				mask, err1 = parseTCPFlags(arg)
				if len(o.Args) < 2 {
					err2 = fmt.Errorf("needs MASK COMP")
				} else {
					comp, err2 = parseTCPFlags(o.Args[1])
				}
				if err1 != nil || err2 != nil {
					bad(fmt.Errorf("%v %v", err1, err2))
					continue
				}
			}
			neg := o.Neg
			add(false, func(p *Packet, _ evalCtx) mres {
				if p.Proto != 6 {
					return mNo
				}
				f, err := parseTCPFlags(p.TCPFlags)
				if err != nil {
					return mUnknown
				}
				return yes((f&mask == comp) != neg)
			})
			out[len(out)-1].dynamic = "packet TCP flags not understood"
		case "icmp/icmp-type":
			typ, clo, chi, err := parseICMPType(arg)
			if err != nil {
				bad(err)
				continue
			}
			neg := o.Neg
			add(false, func(p *Packet, _ evalCtx) mres {
				if p.Proto != 1 {
					return mNo
				}
				m := typ == 0xff || p.ICMPType == typ && p.ICMPCode >= clo && p.ICMPCode <= chi
				return yes(m != neg)
			})
		case "multiport/ports", "multiport/sports", "multiport/source-ports", "multiport/dports", "multiport/destination-ports":
			var rs [][2]uint16
			var err error
			for _, x := range strings.Split(arg, ",") {
				lo, hi, e := parsePortRange(x)
				if e != nil || strings.HasSuffix(x, ":") || strings.HasPrefix(x, ":") {
					err = fmt.Errorf("bad port %q", x)
					break
				}
				rs = append(rs, [2]uint16{lo, hi})
			}
			if err != nil || len(rs) > 15 {
				if err == nil {
					err = fmt.Errorf("more than 15 ports")
				}
				bad(err)
				continue
			}
			which := o.Name[0] // p(orts), s(ports/source-ports), d(…)
			neg := o.Neg
			in := func(port uint16) bool {
				for _, r := range rs {
					if port >= r[0] && port <= r[1] {
						return true
					}
				}
				return false
			}
			add(false, func(p *Packet, _ evalCtx) mres {
				if !hasPorts(p.Proto) {
					return mNo
				}
				var m bool
				switch which {
				case 's':
					m = in(p.SPort)
				case 'd':
					m = in(p.DPort)
				default:
					m = in(p.SPort) || in(p.DPort)
				}
				return yes(m != neg)
			})
		case "conntrack/ctstate", "state/state":
			states := strings.Split(arg, ",")
			if i := slices.IndexFunc(states, func(s string) bool { return !knownStates[s] }); i >= 0 {
				bad(fmt.Errorf("unknown state %q", states[i]))
				continue
			}
			add(o.Neg, func(p *Packet, e evalCtx) mres {
				for _, s := range states {
					if ctStateHas(p, e, s) {
						return mYes
					}
				}
				return mNo
			})
		case "conntrack/ctproto":
			n, ok := protoNumber(arg)
			if !ok {
				bad(fmt.Errorf("unknown protocol"))
				continue
			}
			add(false, ctOnly(o.Neg, noCT, func(p *Packet) bool { return n == 0 || p.Proto == n }))
		case "conntrack/ctorigsrc", "conntrack/ctorigdst", "conntrack/ctreplsrc", "conntrack/ctrepldst":
			pr, err := ParsePrefix(arg)
			if err != nil {
				bad(err)
				continue
			}
			name := o.Name
			add(false, ctOnly(o.Neg, noCT, func(p *Packet) bool {
				// The reply tuple is the inverse of the current (translated)
				// one: its source is the packet's destination and vice versa.
				var a netip.Addr
				switch name {
				case "ctorigsrc":
					a = orig(p.OrigSrc, p.Src)
				case "ctorigdst":
					a = orig(p.OrigDst, p.Dst)
				case "ctreplsrc":
					a = p.Dst
					if p.Reply {
						a = p.ReplSrc
					}
				default:
					a = p.Src
					if p.Reply {
						a = p.ReplDst
					}
				}
				return pr.Contains(a)
			}))
		case "conntrack/ctorigsrcport", "conntrack/ctorigdstport", "conntrack/ctreplsrcport", "conntrack/ctrepldstport":
			lo, hi, err := parsePortRange(arg)
			if err != nil {
				bad(err)
				continue
			}
			name := o.Name
			add(false, ctOnly(o.Neg, noCT, func(p *Packet) bool {
				var port uint16
				switch name {
				case "ctorigsrcport":
					port = origPort(p.OrigSrc, p.OrigSPort, p.SPort)
				case "ctorigdstport":
					port = origPort(p.OrigSrc, p.OrigDPort, p.DPort)
				case "ctreplsrcport":
					port = p.DPort
					if p.Reply {
						port = p.ReplSPort
					}
				default:
					port = p.SPort
					if p.Reply {
						port = p.ReplDPort
					}
				}
				return port >= lo && port <= hi
			}))
		case "conntrack/ctdir":
			orig := arg == "ORIGINAL"
			if !orig && arg != "REPLY" {
				bad(fmt.Errorf("want ORIGINAL or REPLY"))
				continue
			}
			add(false, ctOnly(o.Neg, noCT, func(p *Packet) bool { return orig != p.Reply }))
		case "mark/mark", "connmark/mark":
			v, m, _, err := parseValMask(arg, 0xffffffff)
			if err != nil {
				bad(err)
				continue
			}
			if mod == "mark" {
				add(o.Neg, func(p *Packet, _ evalCtx) mres { return yes(p.Mark&m == v) })
			} else {
				add(false, ctOnly(o.Neg, noCT, func(p *Packet) bool { return p.CTMark&m == v }))
			}
		case "iprange/src-range", "iprange/dst-range":
			lo, hi, err := parseIPRange(arg)
			if err != nil {
				bad(err)
				continue
			}
			src := o.Name == "src-range"
			add(o.Neg, func(p *Packet, _ evalCtx) mres {
				a := p.Dst
				if src {
					a = p.Src
				}
				return yes(a.Is4() && !a.Less(lo) && !hi.Less(a))
			})
		case "length/length":
			lo, hi, err := parseRange32(arg, 0xffff)
			if err != nil {
				bad(err)
				continue
			}
			add(o.Neg, func(p *Packet, _ evalCtx) mres { return yes(uint32(p.Length) >= lo && uint32(p.Length) <= hi) })
		case "tos/tos":
			var v, m uint32
			if s, ok := tosSymbol(arg); ok {
				v, m = s, 0x3f
			} else {
				var err error
				if v, m, _, err = parseValMask(arg, 0xff); err != nil {
					bad(err)
					continue
				}
			}
			add(o.Neg, func(p *Packet, _ evalCtx) mres { return yes(uint32(p.TOS)&m == v) })
		case "dscp/dscp", "dscp/dscp-class":
			var d uint32
			var err error
			if o.Name == "dscp" {
				d, err = parseUint(arg, 0x3f)
			} else if c, ok := dscpClass(arg); ok {
				d = c
			} else {
				err = fmt.Errorf("unknown class")
			}
			if err != nil {
				bad(err)
				continue
			}
			add(o.Neg, func(p *Packet, _ evalCtx) mres { return yes(uint32(p.TOS>>2) == d) })
		case "ttl/ttl-eq", "ttl/ttl-lt", "ttl/ttl-gt":
			n, err := parseUint(arg, 255)
			if err != nil {
				bad(err)
				continue
			}
			op := o.Name
			add(o.Neg, func(p *Packet, _ evalCtx) mres {
				if p.TTL == 0 {
					return mUnknown
				}
				t := uint32(p.TTL)
				switch op {
				case "ttl-eq":
					return yes(t == n)
				case "ttl-lt":
					return yes(t < n)
				}
				return yes(t > n)
			})
			out[len(out)-1].dynamic = "the packet's TTL at this hook is not known"
		case "pkttype/pkt-type":
			want := strings.ToLower(arg)
			switch want {
			case "unicast", "host", "broadcast", "multicast", "otherhost":
			default:
				bad(fmt.Errorf("unknown packet type"))
				continue
			}
			add(o.Neg, func(p *Packet, _ evalCtx) mres {
				got := "unicast"
				if p.Dst.IsMulticast() {
					got = "multicast"
				} else if p.Dst == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
					got = "broadcast"
				}
				return yes(got == want || want == "host" && got == "unicast")
			})
		case "policy/pol":
			// Probes carry no IPsec: "none" matches, "ipsec" does not.
			switch arg {
			case "none":
				add(o.Neg, func(*Packet, evalCtx) mres { return mYes })
			case "ipsec":
				add(o.Neg, func(*Packet, evalCtx) mres { return mNo })
			default:
				bad(fmt.Errorf("want none or ipsec"))
			}
		case "policy/dir", "policy/strict", "policy/reqid", "policy/spi", "policy/proto",
			"policy/mode", "policy/tunnel-src", "policy/tunnel-dst", "policy/next":
			// Only meaningful for IPsec policies, which probes never have;
			// --pol decides.
		case "conntrack/ctstatus", "conntrack/ctexpire":
			unknown("conntrack --%s is not simulated", o.Name)
		default:
			unknown("%s option --%s is not understood", modName(mod), o.Name)
		}
	}
	return out
}

var knownStates = map[string]bool{"NEW": true, "ESTABLISHED": true, "RELATED": true, "INVALID": true,
	"UNTRACKED": true, "SNAT": true, "DNAT": true}

func alwaysUnknown(*Packet, evalCtx) mres { return mUnknown }

func yes(b bool) mres {
	if b {
		return mYes
	}
	return mNo
}

func modName(mod string) string {
	if mod == "" {
		return "rule"
	}
	return "-m " + mod
}

// unknownModules are matches whose answer depends on things a simulation
// does not have; the reason says what.
var unknownModules = map[string]string{
	"physdev":     "bridge ports are not modelled",
	"mac":         "the probe's MAC address is not modelled",
	"owner":       "the sending socket's owner is not modelled",
	"recent":      "it depends on earlier packets",
	"connlimit":   "it depends on other connections",
	"connbytes":   "it depends on the connection's history",
	"quota":       "it depends on earlier traffic",
	"statistic":   "it is random or depends on earlier packets",
	"time":        "it depends on the clock",
	"u32":         "raw header bytes are not modelled",
	"string":      "payloads are not modelled",
	"bpf":         "payloads are not modelled",
	"helper":      "conntrack helpers are not modelled",
	"rpfilter":    "reverse path lookups are not simulated here",
	"socket":      "local sockets are not modelled",
	"cgroup":      "local processes are not modelled",
	"tcpmss":      "TCP options are not modelled",
	"ecn":         "ECN bits are not modelled",
	"devgroup":    "device groups are not modelled",
	"realm":       "routing realms are not modelled",
	"cluster":     "cluster hashing is not modelled",
	"ipvs":        "IPVS is not modelled",
	"osf":         "OS fingerprints are not modelled",
	"geoip":       "GeoIP databases are not available",
	"nfacct":      "it depends on accounting objects",
	"rateest":     "it depends on traffic rates",
	"esp":         "IPsec is not modelled",
	"ah":          "IPsec is not modelled",
	"sctp":        "SCTP is not simulated",
	"dccp":        "DCCP is not simulated",
	"udplite":     "UDP-Lite is not simulated",
	"ipv4options": "IP options are not modelled",
	"hl":          "IPv6 is not simulated",
}

// ctOnly wraps a conntrack-entry condition with its negation. Without a
// conntrack entry (raw table, NOTRACK) the kernel does not evaluate it:
// the conntrack match then answers whether it has a --ctstate option
// (noCT), the connmark match answers false, whatever the negation.
func ctOnly(neg, noCT bool, f func(p *Packet) bool) matcher {
	return func(p *Packet, e evalCtx) mres {
		if !hasConntrack(p, e) {
			return yes(noCT)
		}
		return yes(f(p) != neg)
	}
}

// ctStateHas reports whether the packet's conntrack state includes s: a
// request is NEW (plus DNAT once a DNAT binding exists), a reply
// ESTABLISHED, NEW or INVALID as conntrack decided; in the raw table a
// packet has no conntrack entry yet, which the kernel reports as INVALID.
func ctStateHas(p *Packet, e evalCtx, s string) bool {
	switch {
	case p.CTState == "UNTRACKED":
		return s == "UNTRACKED"
	case e.table == "raw":
		return s == "INVALID"
	case s == "DNAT":
		return p.DNATed
	case s == "SNAT":
		return p.SNATed
	}
	return s == p.CTState
}

func orig(o, cur netip.Addr) netip.Addr {
	if o.IsValid() {
		return o
	}
	return cur
}

func origPort(o netip.Addr, op, cur uint16) uint16 {
	if o.IsValid() {
		return op
	}
	return cur
}

// ---- addrtype ----

// localRoute is one route of the local table, for address type lookups.
type localRoute struct {
	dst  netip.Prefix
	typ  string // LOCAL, BROADCAST, …
	dev  string
	bits int
}

// localRoutes returns the router's local routing table: the facts' table
// 255 when present, else what the kernel creates for the interface
// addresses (local /32s, subnet broadcasts, 127/8).
func localRoutes(r *facts.Router) []localRoute {
	var out []localRoute
	if t := r.Table(facts.TableLocal); t != nil && len(t.Routes) > 0 {
		for _, rt := range t.Routes {
			if rt.Dst.Addr().Is4() {
				out = append(out, localRoute{dst: rt.Dst.Masked(), typ: strings.ToUpper(rt.Type), dev: rt.Dev})
			}
		}
	} else {
		out = append(out, localRoute{dst: netip.MustParsePrefix("127.0.0.0/8"), typ: "LOCAL", dev: "lo"})
		for _, i := range r.Interfaces {
			for _, a := range i.Addrs {
				if !a.Prefix.Addr().Is4() {
					continue
				}
				out = append(out, localRoute{dst: netip.PrefixFrom(a.Prefix.Addr(), 32), typ: "LOCAL", dev: i.Name})
				if b := a.Prefix.Bits(); b < 31 {
					bc := u32(a.Prefix.Masked().Addr()) | ^uint32(0)>>b
					out = append(out, localRoute{dst: netip.PrefixFrom(addrFromU32(bc), 32), typ: "BROADCAST", dev: i.Name})
				}
			}
		}
	}
	for k := range out {
		out[k].bits = out[k].dst.Bits()
	}
	// Longest prefix first, so the first hit is the lookup's answer.
	slices.SortStableFunc(out, func(a, b localRoute) int { return b.bits - a.bits })
	return out
}

// addrType is the kernel's inet_dev_addr_type: zeronet and limited
// broadcast are BROADCAST, 224/4 MULTICAST, else the local table's type
// (restricted to dev when given), else UNICAST.
func (fw *Firewall) addrType(a netip.Addr, dev string, limit bool) string {
	if !a.Is4() {
		return "UNSPEC"
	}
	b := a.As4()
	if b[0] == 0 || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return "BROADCAST"
	}
	if a.IsMulticast() {
		return "MULTICAST"
	}
	for _, r := range fw.local {
		if r.dst.Contains(a) {
			if limit && r.dev != dev {
				return "UNICAST"
			}
			return r.typ
		}
	}
	return "UNICAST"
}

var addrTypes = map[string]bool{"UNSPEC": true, "UNICAST": true, "LOCAL": true, "BROADCAST": true, "ANYCAST": true,
	"MULTICAST": true, "BLACKHOLE": true, "UNREACHABLE": true, "PROHIBIT": true, "THROW": true, "NAT": true, "XRESOLVE": true}

func compileAddrtype(m *facts.Match, fw *Firewall) []cMatch {
	limitIn, limitOut := false, false
	for _, o := range m.Options {
		limitIn = limitIn || o.Name == "limit-iface-in"
		limitOut = limitOut || o.Name == "limit-iface-out"
	}
	var out []cMatch
	for _, o := range m.Options {
		switch o.Name {
		case "limit-iface-in", "limit-iface-out":
			continue
		case "src-type", "dst-type":
		default:
			return []cMatch{{f: alwaysUnknown, module: "addrtype", why: "-m addrtype --" + o.Name + " is not understood"}}
		}
		var types []string
		for _, t := range strings.Split(strings.Join(o.Args, ","), ",") {
			t = strings.ToUpper(t)
			if !addrTypes[t] {
				return []cMatch{{f: alwaysUnknown, module: "addrtype", why: "-m addrtype type " + t + " is not understood"}}
			}
			types = append(types, t)
		}
		src, neg := o.Name == "src-type", o.Neg
		out = append(out, cMatch{module: "addrtype", f: func(p *Packet, _ evalCtx) mres {
			a, dev, lim := p.Dst, p.OutIf, limitOut
			if src {
				a = p.Src
			}
			if limitIn {
				dev, lim = p.InIf, true
			}
			t := fw.addrType(a, dev, lim)
			return yes(slices.Contains(types, t) != neg)
		}})
	}
	return out
}

// ---- value parsers ----

func parseUint(s string, maxV uint32) (uint32, error) {
	v, err := strconv.ParseUint(s, 0, 32)
	if err != nil || uint32(v) > maxV {
		return 0, fmt.Errorf("bad number %q", s)
	}
	return uint32(v), nil
}

// parseValMask parses "v[/m]" (decimal or 0x hex); hasMask says a mask was given.
func parseValMask(s string, full uint32) (v, m uint32, hasMask bool, err error) {
	a, b, hasMask := strings.Cut(s, "/")
	if v, err = parseUint(a, full); err != nil {
		return
	}
	m = full
	if hasMask {
		m, err = parseUint(b, full)
	}
	return
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func addrFromU32(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// ParsePrefix parses ADDR, ADDR/BITS or ADDR/DOTTED-MASK (IPv4), as iptables
// and ipset write them; the sweep cuts the header space with the same parser.
func ParsePrefix(s string) (netip.Prefix, error) {
	a, m, hasMask := strings.Cut(s, "/")
	addr, err := netip.ParseAddr(a)
	if err != nil || !addr.Is4() {
		return netip.Prefix{}, fmt.Errorf("not an IPv4 address: %q", a)
	}
	bits := 32
	if hasMask {
		if n, err := strconv.Atoi(m); err == nil {
			bits = n
		} else if mk, err := netip.ParseAddr(m); err == nil && mk.Is4() {
			v := u32(mk)
			bits = 0
			for v&0x80000000 != 0 {
				bits, v = bits+1, v<<1
			}
			if v != 0 {
				return netip.Prefix{}, fmt.Errorf("non-contiguous mask %q", m)
			}
		} else {
			return netip.Prefix{}, fmt.Errorf("bad mask %q", m)
		}
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad prefix %q", s)
	}
	return p, nil
}

func parsePrefixList(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, x := range strings.Split(s, ",") {
		p, err := ParsePrefix(x)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func parseIPRange(s string) (netip.Addr, netip.Addr, error) {
	a, b, ok := strings.Cut(s, "-")
	lo, err := netip.ParseAddr(a)
	if err != nil || !lo.Is4() {
		return lo, lo, fmt.Errorf("bad range %q", s)
	}
	hi := lo
	if ok {
		if hi, err = netip.ParseAddr(b); err != nil || !hi.Is4() {
			return lo, hi, fmt.Errorf("bad range %q", s)
		}
	}
	return lo, hi, nil
}

var services = map[string]uint16{"ssh": 22, "telnet": 23, "smtp": 25, "domain": 53, "http": 80, "www": 80, "pop3": 110,
	"ntp": 123, "imap": 143, "snmp": 161, "https": 443, "submission": 587, "imaps": 993, "pop3s": 995,
	"ftp": 21, "ftp-data": 20, "bgp": 179, "ldap": 389, "syslog": 514, "mysql": 3306, "postgresql": 5432, "rdp": 3389}

func parsePort(s string) (uint16, error) {
	if n, err := strconv.ParseUint(s, 10, 16); err == nil {
		return uint16(n), nil
	}
	if n, ok := services[s]; ok {
		return n, nil
	}
	return 0, fmt.Errorf("bad port %q", s)
}

// parsePortRange parses "P", "A:B", ":B" or "A:" like iptables.
func parsePortRange(s string) (uint16, uint16, error) {
	a, b, isRange := strings.Cut(s, ":")
	if !isRange {
		p, err := parsePort(s)
		return p, p, err
	}
	lo, hi := uint16(0), uint16(65535)
	var err error
	if a != "" {
		if lo, err = parsePort(a); err != nil {
			return 0, 0, err
		}
	}
	if b != "" {
		if hi, err = parsePort(b); err != nil {
			return 0, 0, err
		}
	}
	if lo > hi {
		// iptables swaps an inverted range.
		lo, hi = hi, lo
	}
	return lo, hi, nil
}

func parseRange32(s string, maxV uint32) (uint32, uint32, error) {
	a, b, isRange := strings.Cut(s, ":")
	lo, err := parseUint(a, maxV)
	if err != nil {
		return 0, 0, err
	}
	hi := lo
	if isRange {
		if hi, err = parseUint(b, maxV); err != nil {
			return 0, 0, err
		}
	}
	return lo, hi, nil
}

var protoNumbers = map[string]int{"all": 0, "icmp": 1, "igmp": 2, "ipip": 4, "tcp": 6, "egp": 8, "udp": 17, "ipv6": 41,
	"gre": 47, "esp": 50, "ah": 51, "icmpv6": 58, "ipv6-icmp": 58, "ospf": 89, "pim": 103, "vrrp": 112,
	"l2tp": 115, "sctp": 132, "udplite": 136, "dccp": 33, "mh": 135}

func protoNumber(s string) (int, bool) {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 && n < 256 {
		return n, true
	}
	n, ok := protoNumbers[strings.ToLower(s)]
	return n, ok
}

var tcpFlagBits = map[string]uint8{"FIN": 0x01, "SYN": 0x02, "RST": 0x04, "PSH": 0x08, "ACK": 0x10, "URG": 0x20,
	"ALL": 0x3f, "NONE": 0} // iptables knows no ECE/CWR names; ALL is these six

func parseTCPFlags(s string) (uint8, error) {
	var f uint8
	if s == "" {
		return 0, nil
	}
	for _, x := range strings.Split(s, ",") {
		b, ok := tcpFlagBits[strings.ToUpper(x)]
		if !ok {
			return 0, fmt.Errorf("unknown TCP flag %q", x)
		}
		f |= b
	}
	return f, nil
}

// icmpTypes are iptables' ICMP names: type, code range.
var icmpTypes = map[string][3]int{
	"any": {0xff, 0, 0xff}, "echo-reply": {0, 0, 0xff}, "pong": {0, 0, 0xff},
	"destination-unreachable": {3, 0, 0xff}, "network-unreachable": {3, 0, 0}, "host-unreachable": {3, 1, 1},
	"protocol-unreachable": {3, 2, 2}, "port-unreachable": {3, 3, 3}, "fragmentation-needed": {3, 4, 4},
	"source-route-failed": {3, 5, 5}, "network-unknown": {3, 6, 6}, "host-unknown": {3, 7, 7},
	"network-prohibited": {3, 9, 9}, "host-prohibited": {3, 10, 10}, "TOS-network-unreachable": {3, 11, 11},
	"TOS-host-unreachable": {3, 12, 12}, "communication-prohibited": {3, 13, 13},
	"host-precedence-violation": {3, 14, 14}, "precedence-cutoff": {3, 15, 15},
	"source-quench": {4, 0, 0xff}, "redirect": {5, 0, 0xff}, "network-redirect": {5, 0, 0},
	"host-redirect": {5, 1, 1}, "TOS-network-redirect": {5, 2, 2}, "TOS-host-redirect": {5, 3, 3},
	"echo-request": {8, 0, 0xff}, "ping": {8, 0, 0xff}, "router-advertisement": {9, 0, 0xff},
	"router-solicitation": {10, 0, 0xff}, "time-exceeded": {11, 0, 0xff}, "ttl-exceeded": {11, 0, 0xff},
	"ttl-zero-during-transit": {11, 0, 0}, "ttl-zero-during-reassembly": {11, 1, 1},
	"parameter-problem": {12, 0, 0xff}, "ip-header-bad": {12, 0, 0}, "required-option-missing": {12, 1, 1},
	"timestamp-request": {13, 0, 0xff}, "timestamp-reply": {14, 0, 0xff},
	"address-mask-request": {17, 0, 0xff}, "address-mask-reply": {18, 0, 0xff},
}

// parseICMPType parses --icmp-type NAME, TYPE or TYPE/CODE.
func parseICMPType(s string) (typ, codeLo, codeHi int, err error) {
	if v, ok := icmpTypes[s]; ok {
		return v[0], v[1], v[2], nil
	}
	// iptables-save prints types as numbers: those skip the name scan.
	if s == "" || s[0] < '0' || s[0] > '9' {
		for k, v := range icmpTypes {
			if strings.EqualFold(k, s) {
				return v[0], v[1], v[2], nil
			}
		}
	}
	t, c, hasCode := strings.Cut(s, "/")
	n, err := strconv.Atoi(t)
	if err != nil || n < 0 || n > 255 {
		return 0, 0, 0, fmt.Errorf("unknown ICMP type %q", s)
	}
	if !hasCode {
		return n, 0, 0xff, nil
	}
	cn, err := strconv.Atoi(c)
	if err != nil || cn < 0 || cn > 255 {
		return 0, 0, 0, fmt.Errorf("bad ICMP code %q", s)
	}
	return n, cn, cn, nil
}

var tosSymbols = map[string]uint32{"minimize-delay": 0x10, "maximize-throughput": 0x08,
	"maximize-reliability": 0x04, "minimize-cost": 0x02, "normal-service": 0x00}

func tosSymbol(s string) (uint32, bool) {
	v, ok := tosSymbols[strings.ToLower(s)]
	return v, ok
}

func dscpClass(s string) (uint32, bool) {
	s = strings.ToUpper(s)
	switch {
	case s == "EF":
		return 46, true
	case len(s) == 3 && s[:2] == "CS" && s[2] >= '0' && s[2] <= '7':
		return uint32(s[2]-'0') * 8, true
	case len(s) == 4 && s[:2] == "AF" && s[2] >= '1' && s[2] <= '4' && s[3] >= '1' && s[3] <= '3':
		return uint32(s[2]-'0')*8 + uint32(s[3]-'0')*2, true
	}
	return 0, false
}
