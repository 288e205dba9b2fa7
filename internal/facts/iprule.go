package facts

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ipProtoNames are the protocol names `ip rule` prints (from /etc/protocols).
var ipProtoNames = map[string]int{
	"ip": 0, "hopopt": 0, "icmp": 1, "igmp": 2, "ipencap": 4, "ipip": 4, "tcp": 6, "egp": 8,
	"udp": 17, "dccp": 33, "ipv6": 41, "ipv6-route": 43, "ipv6-frag": 44, "rsvp": 46,
	"gre": 47, "esp": 50, "ah": 51, "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59,
	"ipv6-opts": 60, "ospf": 89, "ospfigp": 89, "pim": 103, "vrrp": 112, "l2tp": 115,
	"sctp": 132, "udplite": 136, "mpls-in-ip": 137, "mptcp": 262,
}

// ParseIPProto resolves a protocol as `ip rule` prints it: a name, a number,
// or "ipproto-N".
func ParseIPProto(s string) (int, bool) {
	s = strings.ToLower(s)
	if n, ok := ipProtoNames[s]; ok {
		return n, true
	}
	s = strings.TrimPrefix(s, "ipproto-")
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 255 {
		return 0, false
	}
	return n, true
}

// ParseDSField reads a tos/dsfield value as ip prints it: a number, or a
// name from iproute2's stock rt_dsfield file (AF11…AF43, CS1…CS7, EF, default).
func ParseDSField(s string) (uint8, bool) {
	if n, err := strconv.ParseUint(s, 0, 8); err == nil {
		return uint8(n), true
	}
	u := strings.ToUpper(s)
	switch {
	case u == "DEFAULT":
		return 0, true
	case u == "EF":
		return 0xb8, true
	case len(u) == 3 && u[:2] == "CS" && u[2] >= '1' && u[2] <= '7':
		return (u[2] - '0') << 5, true
	case len(u) == 4 && u[:2] == "AF" && u[2] >= '1' && u[2] <= '4' && u[3] >= '1' && u[3] <= '3':
		// AFxy is DSCP 8x+2y, shifted into the TOS byte.
		return ((u[2]-'0')*8 + (u[3]-'0')*2) << 2, true
	}
	return 0, false
}

// resolveTable maps a table as printed ("main", "100", "priority_table") to
// its id through names (which holds the reserved names too).
func resolveTable(s string, names map[string]int) (int, bool) {
	// Only digits can parse; trying a name would build an error to drop.
	if !isDigits(s) {
		id, ok := names[s]
		return id, ok
	}
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return int(n), true
	}
	id, ok := names[s]
	return id, ok
}

// ParseIPRule parses `ip rule show` output. Table names resolve through
// names; a name that does not resolve is an error naming file:line.
func ParseIPRule(file string, lines []Line, names map[string]int) ([]*Rule, error) {
	var (
		out []*Rule
		e   errs
	)
	for _, l := range lines {
		text := strings.TrimSpace(l.Text)
		if text == "" {
			continue
		}
		pos := Pos{File: file, Line: l.N}
		r, err := parseRuleLine(text, names)
		if err != nil {
			e.addf(pos, "policy rule %s: %v", quoteLine(text), err)
			continue
		}
		r.Pos = pos
		out = append(out, r)
	}
	return out, e.err()
}

func parseRuleLine(text string, names map[string]int) (*Rule, error) {
	prioS, rest, ok := strings.Cut(text, ":")
	if !ok {
		return nil, fmt.Errorf("expected \"PRIORITY: selectors action\"")
	}
	prio, err := strconv.ParseUint(strings.TrimSpace(prioS), 10, 32)
	if err != nil {
		return nil, fmt.Errorf("bad priority %q", prioS)
	}
	r := &Rule{Priority: int(prio), SuppressPrefixLen: -1, Text: text}
	var fieldBuf [24]string
	f := appendFields(fieldBuf[:0], rest)
	arg := func(i int) (string, error) {
		if i+1 >= len(f) {
			return "", fmt.Errorf("%s needs a value", f[i])
		}
		return f[i+1], nil
	}
	for i := 0; i < len(f); i++ {
		kw := f[i]
		switch kw {
		case "not":
			r.Not = true
			continue
		case "l3mdev":
			r.L3MDev = true
			continue
		case "blackhole", "unreachable", "prohibit", "nop":
			if r.Action != "" {
				return nil, fmt.Errorf("second action %q", kw)
			}
			r.Action = kw
			continue
		case "[detached]", "[unresolved]":
			continue
		}
		v, err := arg(i)
		if err != nil {
			return nil, err
		}
		i++
		switch kw {
		case "from", "to":
			var p netip.Prefix
			if v != "all" {
				if p, err = parsePrefixOrAddr(v); err != nil {
					return nil, fmt.Errorf("bad %s prefix %q", kw, v)
				}
				p = p.Masked()
			}
			if kw == "from" {
				r.From = p
			} else {
				r.To = p
			}
		case "iif":
			r.IIF = v
		case "oif":
			r.OIF = v
		case "fwmark":
			ms, mk, hasMask := strings.Cut(v, "/")
			m, err := strconv.ParseUint(ms, 0, 32)
			if err != nil {
				return nil, fmt.Errorf("bad fwmark %q", v)
			}
			r.HasFwmark, r.Fwmark, r.FwmarkMask = true, uint32(m), 0xffffffff
			if hasMask {
				mm, err := strconv.ParseUint(mk, 0, 32)
				if err != nil {
					return nil, fmt.Errorf("bad fwmark mask %q", v)
				}
				r.FwmarkMask = uint32(mm)
			}
		case "tos", "dsfield":
			t, ok := ParseDSField(v)
			if !ok {
				return nil, fmt.Errorf("bad %s %q", kw, v)
			}
			r.HasTOS, r.TOS = true, t
		case "ipproto":
			p, ok := ParseIPProto(v)
			if !ok {
				return nil, fmt.Errorf("unknown ipproto %q", v)
			}
			r.IPProto = p
		case "sport", "dport":
			pr, err := parsePortRange(v)
			if err != nil {
				return nil, fmt.Errorf("bad %s %q", kw, v)
			}
			if kw == "sport" {
				r.SPort = pr
			} else {
				r.DPort = pr
			}
		case "uidrange":
			r.UIDRange = v
		case "lookup", "table":
			if r.Action != "" {
				return nil, fmt.Errorf("second action %q", kw)
			}
			r.Action = ActionLookup
			r.TableName = v
			if v == "[l3mdev-table]" {
				r.L3MDev = true
				r.TableName = ""
				continue
			}
			id, ok := resolveTable(v, names)
			if !ok {
				return nil, fmt.Errorf("unknown routing table %q (not in rt_tables, not a section title, not a reserved name)", v)
			}
			r.Table = id
		case "goto":
			if r.Action != "" {
				return nil, fmt.Errorf("second action %q", kw)
			}
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("bad goto target %q", v)
			}
			r.Action, r.Goto = ActionGoto, int(n)
		case "suppress_prefixlength":
			n, err := strconv.Atoi(v)
			if err != nil || n < -1 || n > 128 {
				return nil, fmt.Errorf("bad suppress_prefixlength %q", v)
			}
			r.SuppressPrefixLen = n
		case "suppress_ifgroup":
			r.SuppressIfGroup = v
		case "realms":
			r.Realms = v
		case "proto", "protocol":
			r.Protocol = v
		case "map-to":
			// obsolete route NAT; the kernel no longer acts on it
		default:
			return nil, fmt.Errorf("unknown keyword %q", kw)
		}
	}
	if r.Action == "" {
		return nil, fmt.Errorf("no action (lookup, goto, nop, blackhole, unreachable, prohibit)")
	}
	return r, nil
}

// parsePortRange parses "N" or "A-B".
func parsePortRange(s string) (PortRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	l, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return PortRange{}, err
	}
	h := l
	if isRange {
		if h, err = strconv.ParseUint(hi, 10, 16); err != nil {
			return PortRange{}, err
		}
	}
	if h < l {
		return PortRange{}, fmt.Errorf("empty range %q", s)
	}
	return PortRange{Lo: uint16(l), Hi: uint16(h)}, nil
}
