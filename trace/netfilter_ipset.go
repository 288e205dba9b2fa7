package trace

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/tsim-dev/tsim/internal/facts"
)

// Set membership follows the kernel's ipset types: each type has
// dimensions (ip/net, port, iface, mark) taken from the packet by the
// match's src/dst flags; net dimensions use the most specific element
// (so a nomatch /32 inside a matching /24 wins). Entry timeouts are
// ignored: facts are a snapshot, every listed member is assumed present.

type dimKind uint8

const (
	dNet dimKind = iota // ip or net: an element prefix (ip elements are /netmask)
	dPort
	dIface
	dMark
)

var setDims = map[string][]dimKind{
	"hash:ip":           {dNet},
	"hash:net":          {dNet},
	"bitmap:ip":         {dNet},
	"hash:ip,port":      {dNet, dPort},
	"hash:net,port":     {dNet, dPort},
	"hash:ip,port,ip":   {dNet, dPort, dNet},
	"hash:ip,port,net":  {dNet, dPort, dNet},
	"hash:net,port,net": {dNet, dPort, dNet},
	"hash:net,net":      {dNet, dNet},
	"hash:net,iface":    {dNet, dIface},
	"hash:ip,mark":      {dNet, dMark},
	"bitmap:port":       {dPort},
}

type setElem struct {
	nets           [2]netip.Prefix
	proto          int
	portLo, portHi uint16
	iface          string
	mark           uint32
	nomatch        bool
}

// cSet is one compiled ipset.
type cSet struct {
	name, typ string
	dims      []dimKind
	why       string // set: membership cannot be simulated
	v6        bool   // an inet6 set never matches IPv4 packets
	markmask  uint32
	hasMark   bool
	elems     []setElem
	// Fast path for one-dimensional address sets: element by prefix,
	// prefix lengths most specific first.
	byPrefix map[netip.Prefix]int
	lens     []int
	members  []string // list:set
	all      map[string]*cSet
}

func compileSets(r *facts.Router) map[string]*cSet {
	all := map[string]*cSet{}
	for _, s := range r.Ipsets {
		all[s.Name] = compileSet(s, all)
	}
	return all
}

func compileSet(s *facts.Ipset, all map[string]*cSet) *cSet {
	cs := &cSet{name: s.Name, typ: s.Type, markmask: 0xffffffff, all: all}
	netmask := 32
	for i := 0; i+1 < len(s.Options); i++ {
		switch s.Options[i] {
		case "family":
			cs.v6 = s.Options[i+1] == "inet6"
		case "netmask":
			if n, err := strconv.Atoi(s.Options[i+1]); err == nil && n >= 0 && n <= 32 {
				netmask = n
			}
		case "markmask":
			if v, err := parseUint(s.Options[i+1], 0xffffffff); err == nil {
				cs.markmask = v
			}
		}
	}
	switch {
	case s.Type == "list:set":
		for _, m := range s.Members {
			cs.members = append(cs.members, m.Value)
		}
		return cs
	case strings.Contains(s.Type, "mac"):
		cs.why = fmt.Sprintf("ipset %s is of type %s: the probe's MAC address is not modelled", s.Name, s.Type)
		return cs
	}
	dims, ok := setDims[s.Type]
	if !ok {
		cs.why = fmt.Sprintf("ipset %s has type %s, which is not simulated", s.Name, s.Type)
		return cs
	}
	cs.dims = dims
	cs.hasMark = slices.Contains(dims, dMark)
	if cs.v6 {
		return cs
	}
	for _, m := range s.Members {
		es, err := parseElem(m.Value, s.Type, dims, netmask)
		if err != nil {
			cs.why = fmt.Sprintf("ipset %s member %q (%s): %v", s.Name, m.Value, m.Pos, err)
			return cs
		}
		for _, e := range es {
			e.nomatch = m.Nomatch
			cs.elems = append(cs.elems, e)
		}
	}
	if len(dims) == 1 && dims[0] == dNet {
		cs.byPrefix = map[netip.Prefix]int{}
		for i, e := range cs.elems {
			if _, dup := cs.byPrefix[e.nets[0]]; !dup {
				cs.byPrefix[e.nets[0]] = i
			}
			if !slices.Contains(cs.lens, e.nets[0].Bits()) {
				cs.lens = append(cs.lens, e.nets[0].Bits())
			}
		}
		slices.SortFunc(cs.lens, func(a, b int) int { return b - a })
	}
	return cs
}

// parseElem parses one member value into elements (an address range
// becomes several prefixes).
func parseElem(v, typ string, dims []dimKind, netmask int) ([]setElem, error) {
	parts := strings.Split(v, ",")
	if len(parts) != len(dims) {
		return nil, fmt.Errorf("want %d comma-separated parts for %s", len(dims), typ)
	}
	out := []setElem{{}}
	ni := 0
	for k, d := range dims {
		x := parts[k]
		switch d {
		case dNet:
			ps, err := elemPrefixes(x, typ, netmask, k)
			if err != nil {
				return nil, err
			}
			var next []setElem
			for _, e := range out {
				for _, p := range ps {
					e.nets[ni] = p
					next = append(next, e)
				}
			}
			out = next
			ni++
		case dPort:
			proto, lo, hi, err := elemPort(x, typ)
			if err != nil {
				return nil, err
			}
			for i := range out {
				out[i].proto, out[i].portLo, out[i].portHi = proto, lo, hi
			}
		case dIface:
			if strings.HasPrefix(x, "physdev:") {
				return nil, fmt.Errorf("physdev interfaces are not modelled")
			}
			for i := range out {
				out[i].iface = x
			}
		case dMark:
			m, err := parseUint(x, 0xffffffff)
			if err != nil {
				return nil, err
			}
			for i := range out {
				out[i].mark = m
			}
		}
	}
	return out, nil
}

// elemPrefixes parses an ip/net part: ADDR, ADDR/BITS or FROM-TO. Plain
// ip dimensions (hash:ip…, bitmap:ip, the first part of hash:ip,port…) store
// the address masked by the set's netmask.
func elemPrefixes(x, typ string, netmask, k int) ([]netip.Prefix, error) {
	isIP := strings.HasPrefix(typ, "bitmap:ip") || strings.HasPrefix(typ, "hash:ip") && (k == 0 || typ == "hash:ip,port,ip")
	if a, b, ok := strings.Cut(x, "-"); ok {
		lo, err1 := netip.ParseAddr(a)
		hi, err2 := netip.ParseAddr(b)
		if err1 != nil || err2 != nil || !lo.Is4() || !hi.Is4() || hi.Less(lo) {
			return nil, fmt.Errorf("bad range %q", x)
		}
		return rangePrefixes(lo, hi), nil
	}
	p, err := ParsePrefix(x)
	if err != nil {
		return nil, err
	}
	if isIP && !strings.Contains(x, "/") {
		p, _ = p.Addr().Prefix(netmask)
	}
	return []netip.Prefix{p}, nil
}

// rangePrefixes covers lo..hi with CIDR blocks.
func rangePrefixes(lo, hi netip.Addr) []netip.Prefix {
	var out []netip.Prefix
	a, b := uint64(u32(lo)), uint64(u32(hi))
	for a <= b {
		bits := 32
		for bits > 0 {
			size := uint64(1) << (32 - (bits - 1))
			if a%size != 0 || a+size-1 > b {
				break
			}
			bits--
		}
		out = append(out, netip.PrefixFrom(addrFromU32(uint32(a)), bits))
		a += uint64(1) << (32 - bits)
	}
	return out
}

// elemPort parses PROTO:PORT[-PORT], PORT (tcp), icmp:TYPE/CODE or an ICMP
// name; ICMP "ports" are type<<8|code as ipset stores them.
func elemPort(x, typ string) (proto int, lo, hi uint16, err error) {
	name, port, hasProto := strings.Cut(x, ":")
	if !hasProto {
		name, port = "tcp", x
	}
	n, ok := protoNumber(name)
	if !ok {
		return 0, 0, 0, fmt.Errorf("unknown protocol %q", name)
	}
	if n == 1 {
		t, clo, _, err := parseICMPType(port)
		if err != nil || t == 0xff {
			return 0, 0, 0, fmt.Errorf("bad ICMP type %q", port)
		}
		v := uint16(t)<<8 | uint16(clo)
		return 1, v, v, nil
	}
	a, b, isRange := strings.Cut(port, "-")
	l, err := parsePort(a)
	if err != nil {
		return 0, 0, 0, err
	}
	h := l
	if isRange {
		if h, err = parsePort(b); err != nil || h < l {
			return 0, 0, 0, fmt.Errorf("bad port range %q", port)
		}
	}
	if typ == "bitmap:port" {
		n = 0 // bitmap:port stores ports for TCP and UDP alike
	}
	return n, l, h, nil
}

// setResult is a membership test's answer.
type setResult uint8

const (
	sNotFound setResult = iota
	sFound
	sNomatch // the most specific element is flagged nomatch
	sUnknown
)

// test looks p up in the set with the match's direction flags (true = src).
func (s *cSet) test(p *Packet, dirs []bool, depth int) (setResult, string) {
	if s.why != "" {
		return sUnknown, s.why
	}
	if s.typ == "list:set" {
		if depth > 8 {
			return sUnknown, "list:set nesting too deep"
		}
		for _, n := range s.members {
			m := s.all[n]
			if m == nil {
				continue
			}
			r, why := m.test(p, dirs, depth+1)
			switch r {
			case sFound, sUnknown:
				return r, why
			}
		}
		return sNotFound, ""
	}
	// The kernel does not match when the rule gives fewer flags than the
	// set has dimensions; extra flags are ignored.
	if s.v6 || len(dirs) < len(s.dims) {
		return sNotFound, ""
	}
	var addrs [2]netip.Addr
	var proto int
	var port uint16
	var iface string
	ni := 0
	for k, d := range s.dims {
		src := dirs[k]
		switch d {
		case dNet:
			addrs[ni] = p.Dst
			if src {
				addrs[ni] = p.Src
			}
			ni++
		case dPort:
			proto = p.Proto
			switch p.Proto {
			case 6, 17, 132, 136:
				port = p.DPort
				if src {
					port = p.SPort
				}
			case 1:
				port = uint16(p.ICMPType)<<8 | uint16(p.ICMPCode)
			}
			if s.typ == "bitmap:port" {
				if p.Proto != 6 && p.Proto != 17 {
					return sNotFound, ""
				}
				proto = 0
			}
		case dIface:
			iface = p.OutIf
			if src {
				iface = p.InIf
			}
			if iface == "" {
				return sNotFound, ""
			}
		}
	}
	if s.byPrefix != nil {
		for _, bits := range s.lens {
			k, _ := addrs[0].Prefix(bits)
			if i, ok := s.byPrefix[k]; ok {
				if s.elems[i].nomatch {
					return sNomatch, ""
				}
				return sFound, ""
			}
		}
		return sNotFound, ""
	}
	best, bestBits := -1, [2]int{-2, -2}
	for i := range s.elems {
		e := &s.elems[i]
		// Dimensions a set does not have are zero on both sides.
		if e.proto != proto || port < e.portLo || port > e.portHi || e.iface != iface {
			continue
		}
		if s.hasMark && e.mark != p.Mark&s.markmask {
			continue
		}
		ok := true
		for j := 0; j < ni; j++ {
			ok = ok && e.nets[j].Contains(addrs[j])
		}
		if !ok {
			continue
		}
		b := [2]int{e.nets[0].Bits(), e.nets[1].Bits()}
		if b[0] > bestBits[0] || b[0] == bestBits[0] && b[1] > bestBits[1] {
			best, bestBits = i, b
		}
	}
	switch {
	case best < 0:
		return sNotFound, ""
	case s.elems[best].nomatch:
		return sNomatch, ""
	}
	return sFound, ""
}

// compileSetMatch compiles -m set: each --match-set is one condition.
func compileSetMatch(m *facts.Match, sets map[string]*cSet) []cMatch {
	returnNomatch := false
	for _, o := range m.Options {
		if o.Name == "return-nomatch" {
			returnNomatch = true
		}
	}
	unknown := func(format string, a ...any) []cMatch {
		return []cMatch{{f: alwaysUnknown, module: "set", why: fmt.Sprintf(format, a...)}}
	}
	var out []cMatch
	for _, o := range m.Options {
		switch o.Name {
		case "return-nomatch", "update-counters", "update-subcounters":
			continue // counters do not change the answer
		case "match-set":
		default:
			return unknown("-m set --%s is not simulated (it depends on set counters)", o.Name)
		}
		if len(o.Args) != 2 {
			return unknown("-m set --match-set needs a set name and flags")
		}
		s := sets[o.Args[0]]
		if s == nil {
			return unknown("-m set: ipset %s is not in the facts (the kernel refuses such a rule)", o.Args[0])
		}
		var dirs []bool
		for _, f := range strings.Split(o.Args[1], ",") {
			switch f {
			case "src":
				dirs = append(dirs, true)
			case "dst":
				dirs = append(dirs, false)
			default:
				return unknown("-m set: flag %q is not src or dst", f)
			}
		}
		if len(dirs) > 6 {
			return unknown("-m set: more than 6 flags")
		}
		neg := o.Neg
		cm := cMatch{module: "set", f: func(p *Packet, _ evalCtx) mres {
			r, _ := s.test(p, dirs, 0)
			var m bool
			switch r {
			case sUnknown:
				return mUnknown
			case sFound:
				m = !returnNomatch
			case sNomatch:
				m = returnNomatch
			}
			return yes(m != neg)
		}}
		// Listed by Unknowns; f answers mUnknown only when the lookup
		// reaches the set it cannot simulate.
		cm.why = setWhy(s, 0)
		out = append(out, cm)
	}
	return out
}

// setWhy is the reason a set (or a list:set member) cannot be simulated.
func setWhy(s *cSet, depth int) string {
	if s.why != "" || depth > 8 {
		return s.why
	}
	for _, n := range s.members {
		if m := s.all[n]; m != nil {
			if w := setWhy(m, depth+1); w != "" {
				return w
			}
		}
	}
	return ""
}
