package facts

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
)

// ParseIPAddr parses `ip addr show` output into interfaces. IPv6 addresses
// are parsed and kept (IfAddr.Prefix.Addr().Is6()); the simulator models IPv4
// only. Lines ip prints that carry nothing the model needs (valid_lft,
// altname, link details) are skipped.
func ParseIPAddr(file string, lines []Line) ([]*Interface, error) {
	var (
		out []*Interface
		cur *Interface
		e   errs
		// fieldBuf holds a line's fields: the model keeps the strings,
		// never the slice.
		fieldBuf [16]string
	)
	for _, l := range lines {
		pos := Pos{File: file, Line: l.N}
		text := strings.TrimSpace(l.Text)
		if text == "" {
			continue
		}
		indented := l.Text[0] == ' ' || l.Text[0] == '\t'
		if !indented {
			ifc, err := parseIfHeader(text)
			if err != "" {
				e.addf(pos, "interfaces: %s: %s", err, quoteLine(text))
				cur = nil
				continue
			}
			ifc.Pos = pos
			out = append(out, ifc)
			cur = ifc
			continue
		}
		f := appendFields(fieldBuf[:0], text)
		switch {
		case strings.HasPrefix(f[0], "link/"):
			if cur == nil {
				e.addf(pos, "interfaces: link line before any interface: %s", quoteLine(text))
				continue
			}
			cur.Kind = strings.TrimPrefix(f[0], "link/")
			if len(f) > 1 && strings.Count(f[1], ":") == 5 {
				cur.MAC = f[1]
			}
		case f[0] == "inet" || f[0] == "inet6":
			if cur == nil {
				e.addf(pos, "interfaces: address line before any interface: %s", quoteLine(text))
				continue
			}
			a, msg := parseIfAddr(f)
			if msg != "" {
				e.addf(pos, "interfaces: %s: %s", msg, quoteLine(text))
				continue
			}
			a.Pos = pos
			cur.Addrs = append(cur.Addrs, a)
		}
	}
	return out, e.err()
}

// parseIfHeader parses "2: eth0@if5: <FLAGS> mtu 1500 qdisc … state UP …".
func parseIfHeader(text string) (*Interface, string) {
	idxS, rest, ok := strings.Cut(text, ":")
	if !ok {
		return nil, "expected \"N: NAME: <FLAGS> …\""
	}
	idx, err := strconv.Atoi(strings.TrimSpace(idxS))
	if err != nil || idx <= 0 {
		return nil, "bad interface index"
	}
	name, rest, ok := strings.Cut(strings.TrimSpace(rest), ":")
	if !ok || name == "" {
		return nil, "missing interface name"
	}
	if at := strings.IndexByte(name, '@'); at > 0 {
		name = name[:at] // veth/vlan peer suffix is not part of the name
	}
	ifc := &Interface{Name: name, Index: idx}
	rest = strings.TrimSpace(rest)
	if strings.HasPrefix(rest, "<") {
		end := strings.IndexByte(rest, '>')
		if end < 0 {
			return nil, "unterminated flag list"
		}
		if fl := rest[1:end]; fl != "" {
			ifc.Flags = strings.Split(fl, ",")
		}
		rest = rest[end+1:]
	}
	var fieldBuf [24]string
	f := appendFields(fieldBuf[:0], rest)
	for i := 0; i+1 < len(f); i++ {
		switch f[i] {
		case "mtu":
			n, err := strconv.Atoi(f[i+1])
			if err != nil || n < 0 {
				return nil, "bad mtu"
			}
			ifc.MTU = n
			i++
		case "state":
			ifc.State = f[i+1]
			i++
		}
	}
	return ifc, ""
}

// parseIfAddr parses "inet A/L [peer P/L] [brd B] [scope S] [secondary] … [label]".
func parseIfAddr(f []string) (*IfAddr, string) {
	if len(f) < 2 {
		return nil, "address missing"
	}
	a := &IfAddr{}
	p, err := parsePrefixOrAddr(f[1])
	if err != nil {
		return nil, "bad address " + strconv.Quote(f[1])
	}
	if (f[0] == "inet6") != p.Addr().Is6() {
		return nil, "address family does not match " + f[0]
	}
	a.Prefix = p
	for i := 2; i < len(f); i++ {
		switch f[i] {
		case "peer":
			if i+1 >= len(f) {
				return nil, "peer without address"
			}
			pp, err := parsePrefixOrAddr(f[i+1])
			if err != nil {
				return nil, "bad peer " + strconv.Quote(f[i+1])
			}
			a.Peer = pp
			i++
		case "scope":
			if i+1 < len(f) {
				a.Scope = f[i+1]
				i++
			}
		case "brd", "metric", "label":
			i++
		case "secondary":
			a.Secondary = true
		}
	}
	return a, ""
}

// parsePrefixOrAddr parses "A/L" or a bare address (host prefix).
func parsePrefixOrAddr(s string) (netip.Prefix, error) {
	if strings.IndexByte(s, '/') >= 0 {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	p := netip.PrefixFrom(a.WithZone(""), a.BitLen())
	if !p.IsValid() {
		return p, errInvalidPrefix
	}
	return p, nil
}

var errInvalidPrefix = errors.New("invalid prefix")
