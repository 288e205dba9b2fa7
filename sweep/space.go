package sweep

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/tsim-dev/tsim/internal/portspec"
	"github.com/tsim-dev/tsim/internal/tsimerr"
)

// Range is an inclusive range of IPv4 addresses (as numbers) or ports.
type Range struct{ Lo, Hi uint32 }

// Size is the number of values in r.
func (r Range) Size() uint64 { return uint64(r.Hi) - uint64(r.Lo) + 1 }

// Contains reports whether v is in r.
func (r Range) Contains(v uint32) bool { return v >= r.Lo && v <= r.Hi }

// Proto is one protocol of a space with the destination ports it covers
// (none for icmp: one echo request per address pair).
type Proto struct {
	Name  string  // tcp, udp or icmp
	Ports []Range // sorted, disjoint; nil for icmp
}

// Space is a header space: every source of Src to every destination of
// Dst, for each protocol and its destination ports. Flows from an address
// to itself are not part of it (they never cross a router).
type Space struct {
	Src, Dst Range
	Protos   []Proto
	// Ingress is ROUTER:IFACE where sources outside the network enter
	// (as trace --ingress); "" for sources inside it.
	Ingress string
}

// Flows is the number of flows in the space (a float: the whole IPv4
// space on every port is more than 2^64).
func (s Space) Flows() float64 {
	pairs := float64(s.Src.Size()) * float64(s.Dst.Size())
	if lo, hi := max(s.Src.Lo, s.Dst.Lo), min(s.Src.Hi, s.Dst.Hi); lo <= hi {
		pairs -= float64(uint64(hi) - uint64(lo) + 1)
	}
	var n float64
	for _, p := range s.Protos {
		if p.Name == "icmp" {
			n += pairs
			continue
		}
		for _, r := range p.Ports {
			n += pairs * float64(r.Size())
		}
	}
	return n
}

// ParseRange parses an IPv4 address, a prefix (10.1.0.0/16) or a range
// (10.1.0.1-10.1.0.99) into a Range.
func ParseRange(s string) (Range, error) {
	s = strings.TrimSpace(s)
	if lo, hi, ok := strings.Cut(s, "-"); ok {
		a, e1 := netip.ParseAddr(strings.TrimSpace(lo))
		z, e2 := netip.ParseAddr(strings.TrimSpace(hi))
		if e1 != nil || e2 != nil || !a.Is4() || !z.Is4() || z.Less(a) {
			return Range{}, fmt.Errorf("%q is not an IPv4 range LO-HI", s)
		}
		return Range{u32(a), u32(z)}, nil
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() {
			return Range{}, fmt.Errorf("%q is not an IPv4 prefix", s)
		}
		p = p.Masked()
		lo := u32(p.Addr())
		return Range{lo, lo | hostMask(p.Bits())}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return Range{}, fmt.Errorf("%q is not an IPv4 address, prefix or range", s)
	}
	return Range{u32(a), u32(a)}, nil
}

// IsRange reports whether s names more than one address (a prefix shorter
// than /32 or a LO-HI range), for commands that take one address.
func IsRange(s string) bool {
	r, err := ParseRange(s)
	return err == nil && r.Lo != r.Hi
}

// ParseSpec parses a sweep SPEC: a comma list of PORT[/PROTO],
// A-B[/PROTO] (any size: 1-65535/tcp), service names, a bare protocol
// (tcp, udp: every port) and icmp/ping. The protocol defaults to tcp.
func ParseSpec(spec string) ([]Proto, error) {
	if strings.TrimSpace(spec) == "" {
		return []Proto{{Name: "icmp"}}, nil
	}
	ports := map[string][]Range{}
	icmp := false
	for _, raw := range strings.Split(spec, ",") {
		tok := strings.ToLower(strings.TrimSpace(raw))
		switch tok {
		case "tcp", "udp":
			ports[tok] = append(ports[tok], Range{1, 65535})
			continue
		case "icmp", "ping":
			icmp = true
			continue
		}
		body, proto, hasProto := strings.Cut(tok, "/")
		if !hasProto {
			proto = ""
		}
		if lo, hi, isRange := strings.Cut(body, "-"); isRange {
			if proto == "" {
				proto = "tcp"
			}
			if proto != "tcp" && proto != "udp" {
				return nil, tsimerr.Inputf("port spec: token %q: protocol %q (want tcp or udp)", tok, proto)
			}
			l, e1 := strconv.Atoi(lo)
			h, e2 := strconv.Atoi(hi)
			if e1 != nil || e2 != nil || l < 1 || h > 65535 || l > h {
				return nil, tsimerr.Inputf("port spec: token %q: want a range A-B within 1-65535", tok)
			}
			ports[proto] = append(ports[proto], Range{uint32(l), uint32(h)})
			continue
		}
		svcs, err := portspec.Parse(tok)
		if err != nil {
			return nil, err
		}
		for _, s := range svcs {
			if s.Proto == "icmp" {
				icmp = true
				continue
			}
			ports[s.Proto] = append(ports[s.Proto], Range{uint32(s.Port), uint32(s.Port)})
		}
	}
	var out []Proto
	for _, name := range []string{"tcp", "udp"} {
		if rs := ports[name]; len(rs) > 0 {
			out = append(out, Proto{Name: name, Ports: normalize(rs)})
		}
	}
	if icmp {
		out = append(out, Proto{Name: "icmp"})
	}
	return out, nil
}

// normalize sorts ranges and merges overlapping or adjacent ones.
func normalize(rs []Range) []Range {
	s := append([]Range(nil), rs...)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].Lo < s[j-1].Lo; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	var out []Range
	for _, r := range s {
		if n := len(out); n > 0 && uint64(r.Lo) <= uint64(out[n-1].Hi)+1 {
			out[n-1].Hi = max(out[n-1].Hi, r.Hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

// AddrString renders an address range as a prefix when it is one, else
// LO-HI.
func AddrString(r Range) string {
	if r.Lo == r.Hi {
		return addrOf(r.Lo).String()
	}
	size := r.Size()
	if size&(size-1) == 0 && uint64(r.Lo)%size == 0 {
		bits := 32
		for s := size; s > 1; s >>= 1 {
			bits--
		}
		return netip.PrefixFrom(addrOf(r.Lo), bits).String()
	}
	return addrOf(r.Lo).String() + "-" + addrOf(r.Hi).String()
}

// PortString renders a port range as P or A-B.
func PortString(r Range) string {
	if r.Lo == r.Hi {
		return strconv.Itoa(int(r.Lo))
	}
	return strconv.Itoa(int(r.Lo)) + "-" + strconv.Itoa(int(r.Hi))
}
