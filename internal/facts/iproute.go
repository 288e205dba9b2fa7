package facts

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ParsedRoute is a route with the table its line named (`table X`, as in
// `ip route show table all`); Table is -1 when the line named none.
type ParsedRoute struct {
	Route *Route
	Table int
}

// routeTypes are the type keywords that may start a route line.
func isRouteType(s string) bool {
	switch s {
	case RouteUnicast, RouteLocal, RouteBroadcast, RouteMulticast, RouteAnycast,
		RouteBlackhole, RouteUnreachable, RouteProhibit, RouteThrow, RouteNAT:
		return true
	}
	return false
}

// routeFlags are bare words ip prints after a route or nexthop.
func isRouteFlag(s string) bool {
	switch s {
	case "onlink", "linkdown", "dead", "pervasive", "offload", "trap", "offload_failed",
		"rt_offload", "rt_trap", "rt_offload_failed", "notify", "unresolved":
		return true
	}
	return false
}

// routeKnownOneArg are keywords with one value the model does not keep as a
// field; they go to Extra without a warning.
func routeKnownOneArg(s string) bool {
	switch s {
	case "expires", "error", "pref", "hoplimit", "advmss", "rtt", "rttvar", "reordering",
		"window", "cwnd", "initcwnd", "initrwnd", "ssthresh", "realms", "rto_min",
		"quickack", "congctl", "features", "fastopen_no_cookie", "nhid", "from", "ttl-propagate",
		"cache", "age", "used", "users":
		return true
	}
	return false
}

// ParseIPRoute parses `ip route show` / `ip -o route show` output, joining
// multipath continuations (lines ending in `\`, indented `nexthop` lines, and
// the `\` tokens of -o output). Unknown keywords are kept in Route.Extra with
// a warning finding; lines that cannot be understood at all are errors.
func ParseIPRoute(file string, lines []Line, names map[string]int) ([]ParsedRoute, []Finding, error) {
	var (
		out  []ParsedRoute
		warn []Finding
		e    errs
	)
	// Join continuation lines first, remembering the first line's number.
	type logical struct {
		n    int
		text string
	}
	logs := make([]logical, 0, len(lines))
	cont := false
	for _, l := range lines {
		t := strings.TrimRight(l.Text, " \t")
		if strings.TrimSpace(t) == "" {
			cont = false
			continue
		}
		indented := t[0] == ' ' || t[0] == '\t'
		trimmed := strings.TrimSpace(t)
		if len(logs) > 0 && (cont || indented && strings.HasPrefix(trimmed, "nexthop")) {
			logs[len(logs)-1].text += " " + trimmed
		} else {
			logs = append(logs, logical{n: l.N, text: trimmed})
		}
		cont = strings.HasSuffix(trimmed, `\`)
	}
	// The routes are cut from one chunk (see slab): a table's routes live
	// and die together.
	routes := make([]Route, len(logs))
	out = make([]ParsedRoute, 0, len(logs))
	for k, lg := range logs {
		pos := Pos{File: file, Line: lg.n}
		r := &routes[k]
		table, w, err := parseRouteLine(r, lg.text, names)
		if err != nil {
			e.addf(pos, "route %s: %v", quoteLine(lg.text), err)
			continue
		}
		r.Pos = pos
		if w != "" {
			warn = append(warn, warnf(pos, "route %s: %s (kept, not simulated)", quoteLine(lg.text), w))
		}
		out = append(out, ParsedRoute{Route: r, Table: table})
	}
	if len(out) == 0 {
		out = nil // as when no route was read
	}
	return out, warn, e.err()
}

// parseRouteLine reads one logical route line into r.
func parseRouteLine(r *Route, text string, names map[string]int) (table int, warn string, err error) {
	// The words, without the "\" continuation marks of -o output.
	var fieldBuf [32]string
	f := appendFields(fieldBuf[:0], text)
	k := 0
	for _, t := range f {
		if t != `\` {
			f[k] = strings.TrimSuffix(t, `\`)
			k++
		}
	}
	f = f[:k]
	*r = Route{Type: RouteUnicast, Text: joinFields(text, f)}
	table = -1
	i := 0
	if i < len(f) && isRouteType(f[i]) {
		r.Type = f[i]
		i++
	}
	if i >= len(f) {
		return 0, "", fmt.Errorf("no destination")
	}
	dst := f[i]
	i++
	if dst == "default" {
		r.Dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	} else {
		p, perr := parsePrefixOrAddr(dst)
		if perr != nil {
			return 0, "", fmt.Errorf("bad destination %q", dst)
		}
		r.Dst = p.Masked()
	}
	var unknown []string
	var nh *Nexthop // the nexthop being read, nil while reading the route itself
	arg := func() (string, error) {
		if i+1 >= len(f) {
			return "", fmt.Errorf("%s needs a value", f[i])
		}
		i++
		return f[i], nil
	}
	for ; i < len(f); i++ {
		kw := f[i]
		switch {
		case kw == "nexthop":
			nh = &Nexthop{}
			r.Nexthops = append(r.Nexthops, nh)
			continue
		case isRouteFlag(kw):
			if kw == "onlink" {
				if nh != nil {
					nh.Onlink = true
				} else {
					r.Onlink = true
				}
			} else if nh != nil {
				nh.Flags = append(nh.Flags, kw)
			} else {
				r.Flags = append(r.Flags, kw)
			}
			continue
		}
		switch kw {
		case "via":
			v, err := arg()
			if err != nil {
				return 0, "", err
			}
			if v == "inet" || v == "inet6" {
				if v, err = arg(); err != nil {
					return 0, "", err
				}
			}
			gw, perr := netip.ParseAddr(v)
			if perr != nil {
				return 0, "", fmt.Errorf("bad gateway %q", v)
			}
			if nh != nil {
				nh.Gateway = gw
			} else {
				r.Gateway = gw
			}
		case "dev", "oif":
			v, err := arg()
			if err != nil {
				return 0, "", err
			}
			if nh != nil {
				nh.Dev = v
			} else {
				r.Dev = v
			}
		case "weight":
			v, err := arg()
			if err != nil {
				return 0, "", err
			}
			w, perr := strconv.Atoi(v)
			if perr != nil || w < 1 || nh == nil {
				return 0, "", fmt.Errorf("bad weight %q", v)
			}
			nh.Weight = w
		case "proto", "protocol":
			if r.Proto, err = arg(); err != nil {
				return 0, "", err
			}
		case "scope":
			if r.Scope, err = arg(); err != nil {
				return 0, "", err
			}
		case "src":
			v, err := arg()
			if err != nil {
				return 0, "", err
			}
			if r.Src, err = netip.ParseAddr(v); err != nil {
				return 0, "", fmt.Errorf("bad src %q", v)
			}
		case "metric", "preference", "priority":
			v, err := arg()
			if err != nil {
				return 0, "", err
			}
			m, perr := strconv.ParseUint(v, 10, 32)
			if perr != nil {
				return 0, "", fmt.Errorf("bad metric %q", v)
			}
			r.Metric = int(m)
		case "table":
			v, err := arg()
			if err != nil {
				return 0, "", err
			}
			id, ok := resolveTable(v, names)
			if !ok {
				return 0, "", fmt.Errorf("unknown routing table %q", v)
			}
			table = id
		case "tos", "dsfield":
			v, err := arg()
			if err != nil {
				return 0, "", err
			}
			t, ok := ParseDSField(v)
			if !ok {
				return 0, "", fmt.Errorf("bad %s %q", kw, v)
			}
			r.TOS = t
		case "mtu":
			v, err := arg()
			if err != nil {
				return 0, "", err
			}
			if v == "lock" {
				if v, err = arg(); err != nil {
					return 0, "", err
				}
			}
			m, perr := strconv.Atoi(v)
			if perr != nil || m < 0 {
				return 0, "", fmt.Errorf("bad mtu %q", v)
			}
			r.MTU = m
		default:
			if routeKnownOneArg(kw) {
				v, err := arg()
				if err != nil {
					return 0, "", err
				}
				if v == "lock" && i+1 < len(f) {
					i++
					v += " " + f[i]
				}
				r.Extra = append(r.Extra, kw+" "+v)
				continue
			}
			// Unknown: keep it and everything up to the next known keyword.
			j := i + 1
			for j < len(f) && !isRouteKeyword(f[j]) {
				j++
			}
			item := strings.Join(f[i:j], " ")
			r.Extra = append(r.Extra, item)
			unknown = append(unknown, strconv.Quote(item))
			i = j - 1
		}
	}
	for k, h := range r.Nexthops {
		if !h.Gateway.IsValid() && h.Dev == "" {
			return 0, "", fmt.Errorf("nexthop %d has neither via nor dev", k+1)
		}
	}
	if dst == "default" && (r.Gateway.Is6() || r.Src.Is6() || len(r.Nexthops) > 0 && r.Nexthops[0].Gateway.Is6()) {
		r.Dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	if len(unknown) > 0 {
		warn = "unknown route keyword " + strings.Join(unknown, ", ")
	}
	return table, warn, nil
}

// joinFields is strings.Join(f, " "), or text itself when that is what the
// join would build, as it is for nearly every route line.
func joinFields(text string, f []string) string {
	pos := 0
	for i, w := range f {
		if i > 0 {
			if pos >= len(text) || text[pos] != ' ' {
				return strings.Join(f, " ")
			}
			pos++
		}
		if !strings.HasPrefix(text[pos:], w) {
			return strings.Join(f, " ")
		}
		pos += len(w)
	}
	if pos != len(text) {
		return strings.Join(f, " ")
	}
	return text
}

// isRouteKeyword reports any word the route parser knows.
func isRouteKeyword(s string) bool {
	switch s {
	case "nexthop", "via", "dev", "oif", "weight", "proto", "protocol", "scope", "src", "metric",
		"preference", "priority", "table", "tos", "dsfield", "mtu":
		return true
	}
	return isRouteFlag(s) || routeKnownOneArg(s)
}
