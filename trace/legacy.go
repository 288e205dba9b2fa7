package trace

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"

	"github.com/tsim-dev/tsim/internal/facts"
)

// Exit codes of the predecessor's standalone CLI (reference trace.md §3.2).
const (
	LegacyExitOK        = 0
	LegacyExitReachable = 1  // "No route", but some router reaches the destination
	LegacyExitNoRoute   = 2  // "No route" and no router reaches it; unknown source
	LegacyExitInvalid   = 10 // invalid IP, no facts
)

// LegacyResult is what the predecessor's `--software-sim -j` printed.
type LegacyResult struct {
	Stdout []byte // the {"traceroute_path": […]} JSON, empty on error
	Stderr string // "Error: …\n" on error
	Exit   int
}

// LegacyJSON returns the predecessor's JSON output and exit code for SRC ->
// DST. On an error the output is empty; LegacyRun also gives the message.
func LegacyJSON(e *Engine, src, dst string) (out []byte, exit int) {
	r := LegacyRun(e, src, dst)
	return r.Stdout, r.Exit
}

// legacyHop is one 7-tuple of the original, in its JSON key order.
type legacyHop struct {
	Hop             int    `json:"hop"`
	RouterName      string `json:"router_name"`
	IPAddress       string `json:"ip_address"`
	Interface       string `json:"interface"`
	IsRouterOwned   bool   `json:"is_router_owned"`
	ConnectedRouter string `json:"connected_router"`
	OutIf           string `json:"outgoing_interface"`
}

// legacyRouter is a router as the original saw it: every route of every
// table in one list, a "primary" dev -> prefsrc map built from routes, and
// the interface addresses.
type legacyRouter struct {
	name    string
	routes  []*facts.Route
	primary []devIP // insertion-ordered dict dev -> ip, last write wins
	all     []devIP // interface addresses, non-loopback IPv4
}

type devIP struct {
	dev string
	ip  netip.Addr
}

type legacyModel struct {
	routers []*legacyRouter
	lookup  map[netip.Addr]*legacyRouter // comprehensive map, later routers win
}

// legacyModel rebuilds the original's view of the facts (reference
// trace.md §2.2): it ignores policy rules, metrics, tables and metadata on
// purpose, because legacy output must equal what the original printed.
func (e *Engine) legacyModel() *legacyModel {
	m := &legacyModel{lookup: map[netip.Addr]*legacyRouter{}}
	for _, r := range e.routers {
		lr := &legacyRouter{name: r.f.Name}
		for _, t := range r.f.Tables {
			if t.ID == facts.TableLocal {
				continue
			}
			lr.routes = append(lr.routes, t.Routes...)
		}
		for _, rt := range lr.routes {
			if rt.Src.IsValid() && rt.Dev != "" {
				lr.primary = setDevIP(lr.primary, rt.Dev, rt.Src)
			}
		}
		for _, ifc := range r.f.Interfaces {
			for _, a := range ifc.Addrs {
				ip := a.Prefix.Addr()
				if !ip.Is4() || ip.IsLoopback() {
					continue
				}
				lr.all = append(lr.all, devIP{ifc.Name, ip})
				m.lookup[ip] = lr
			}
		}
		m.routers = append(m.routers, lr)
	}
	return m
}

func setDevIP(l []devIP, dev string, ip netip.Addr) []devIP {
	for i := range l {
		if l[i].dev == dev {
			l[i].ip = ip
			return l
		}
	}
	return append(l, devIP{dev, ip})
}

func (lr *legacyRouter) primaryOf(dev string) (netip.Addr, bool) {
	for _, d := range lr.primary {
		if d.dev == dev {
			return d.ip, true
		}
	}
	return netip.Addr{}, false
}

func (lr *legacyRouter) primaryDev(ip netip.Addr) string {
	for _, d := range lr.primary {
		if d.ip == ip {
			return d.dev
		}
	}
	return ""
}

func connectedRoute(rt *facts.Route) bool {
	return rt.Proto == "kernel" && rt.Scope == "link" && rt.Dst.Bits() < 32
}

// connectedDev is the dev of the first kernel/link route containing ip.
func (lr *legacyRouter) connectedDev(ip netip.Addr) (string, bool) {
	for _, rt := range lr.routes {
		if connectedRoute(rt) && rt.Dst.Contains(ip) {
			return rt.Dev, true
		}
	}
	return "", false
}

// reachable is is_destination_reachable without the (dead) gateway branch.
func (lr *legacyRouter) reachable(ip netip.Addr) (reach, owned bool) {
	for _, d := range lr.primary {
		if d.ip == ip {
			return true, true
		}
	}
	_, ok := lr.connectedDev(ip)
	return ok, false
}

// bestRoute is get_best_route: blackholes skipped, first default only,
// longest prefix with the earliest route winning ties.
func (lr *legacyRouter) bestRoute(dst netip.Addr) *facts.Route {
	var best *facts.Route
	bestLen := -1
	for _, rt := range lr.routes {
		if rt.Type == facts.RouteBlackhole || !rt.Dst.Addr().Is4() {
			continue
		}
		if rt.Dst.Contains(dst) && rt.Dst.Bits() > bestLen {
			best, bestLen = rt, rt.Dst.Bits()
		}
	}
	return best
}

func (m *legacyModel) label(ip netip.Addr) string {
	if r := m.lookup[ip]; r != nil {
		return r.name
	}
	return ip.String()
}

func (m *legacyModel) validReach(ip netip.Addr) bool {
	for _, r := range m.routers {
		if ok, _ := r.reachable(ip); ok {
			return true
		}
	}
	return false
}

// nextHop is get_next_hop.
func (m *legacyModel) nextHop(cur *legacyRouter, dst netip.Addr) (*legacyRouter, netip.Addr, string) {
	rt := cur.bestRoute(dst)
	if rt == nil {
		return nil, netip.Addr{}, ""
	}
	if rt.Gateway.IsValid() {
		return m.lookup[rt.Gateway], rt.Gateway, rt.Dev
	}
	if rt.Dev != "" {
		if _, ok := cur.primaryOf(rt.Dev); ok {
			for _, o := range m.routers {
				if o == cur {
					continue
				}
				for _, d := range o.primary {
					if d.ip == dst {
						return o, dst, rt.Dev
					}
				}
			}
		}
	}
	return nil, netip.Addr{}, rt.Dev
}

// LegacyRun reproduces the predecessor's `traceroute_simulator.py
// --software-sim -j -s SRC -d DST` (reference trace.md §2.4, §3): the same
// hops, messages and exit codes, quirks included.
func LegacyRun(e *Engine, src, dst string) LegacyResult {
	sIP, err := netip.ParseAddr(src)
	if err != nil {
		return legacyErr("Invalid IP address - "+pyRepr(src)+" does not appear to be an IPv4 or IPv6 address", LegacyExitInvalid)
	}
	dIP, err := netip.ParseAddr(dst)
	if err != nil {
		return legacyErr("Invalid IP address - "+pyRepr(dst)+" does not appear to be an IPv4 or IPv6 address", LegacyExitInvalid)
	}
	if len(e.routers) == 0 {
		return legacyErr("No router data found", LegacyExitInvalid)
	}
	m := e.legacyModel()
	if !m.validReach(sIP) {
		return legacyErr("Source IP "+src+" is not configured on any router or in any directly connected network", LegacyExitNoRoute)
	}
	path := m.simulate(sIP, dIP)
	exit := LegacyExitOK
	for _, h := range path {
		if h.RouterName == "* * *" || strings.Contains(h.IPAddress, "No route") {
			exit = LegacyExitNoRoute
			if m.validReach(dIP) {
				exit = LegacyExitReachable
			}
			break
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(struct {
		Path []*legacyHop `json:"traceroute_path"`
	}{path})
	return LegacyResult{Stdout: b.Bytes(), Exit: exit}
}

func legacyErr(msg string, code int) LegacyResult {
	return LegacyResult{Stderr: "Error: " + msg + "\n", Exit: code}
}

// pyRepr quotes s as Python's repr() of a str does (for the messages).
func pyRepr(s string) string {
	q := "'"
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		q = `"`
	}
	var b strings.Builder
	b.WriteString(q)
	for _, c := range s {
		switch {
		case c == '\\':
			b.WriteString(`\\`)
		case string(c) == q:
			b.WriteString(`\` + q)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\r':
			b.WriteString(`\r`)
		default:
			b.WriteRune(c)
		}
	}
	b.WriteString(q)
	return b.String()
}

func (m *legacyModel) simulate(src, dst netip.Addr) []*legacyHop {
	var cur *legacyRouter
	if r := m.lookup[src]; r != nil {
		cur = r
	} else {
		for _, r := range m.routers {
			if ok, _ := r.reachable(src); ok {
				cur = r
				break
			}
		}
	}
	sR, dR := m.lookup[src], m.lookup[dst]
	if sR != nil && sR == dR {
		devOf := func(ip netip.Addr) string {
			for _, d := range sR.all {
				if d.ip == ip {
					return d.dev
				}
			}
			return ""
		}
		return []*legacyHop{{Hop: 1, RouterName: m.label(src) + " -> " + m.label(dst),
			IPAddress: src.String() + " -> " + dst.String(), Interface: devOf(src) + " -> " + devOf(dst)}}
	}
	var path []*legacyHop
	visited := map[*legacyRouter]bool{}
	hop := 1
	if sR != nil {
		path = append(path, &legacyHop{Hop: 1, RouterName: sR.name, IPAddress: src.String(), Interface: sR.primaryDev(src), IsRouterOwned: true})
		cur = sR
	} else {
		sif, _ := cur.connectedDev(src)
		path = append(path, &legacyHop{Hop: 1, RouterName: m.label(src), IPAddress: src.String(), Interface: sif, ConnectedRouter: cur.name})
		hop = 2
		if rip, ok := cur.primaryOf(sif); ok {
			path = append(path, &legacyHop{Hop: 2, RouterName: cur.name, IPAddress: rip.String(), Interface: sif, IsRouterOwned: true})
		} else if len(cur.primary) > 0 {
			path = append(path, &legacyHop{Hop: 2, RouterName: cur.name, IPAddress: cur.primary[0].ip.String(), Interface: sif, IsRouterOwned: true})
		}
	}
	visited[cur] = true
	hop++
	setOut := func(dev string) {
		last := path[len(path)-1]
		if last.RouterName != "source" && last.RouterName != "destination" && !strings.Contains(last.RouterName, " -> ") {
			last.OutIf = dev
		}
	}
	for hop <= 30 {
		if reach, owned := cur.reachable(dst); reach {
			dev := ""
			if rt := cur.bestRoute(dst); rt != nil {
				dev = rt.Dev
			}
			setOut(dev)
			seen := false
			for _, h := range path {
				if h.IPAddress == dst.String() {
					seen = true
				}
			}
			if !seen {
				if owned {
					r := m.lookup[dst]
					name, dif := "", ""
					if r != nil {
						name, dif = r.name, r.primaryDev(dst)
					}
					path = append(path, &legacyHop{Hop: hop, RouterName: name, IPAddress: dst.String(), Interface: dif, IsRouterOwned: true})
				} else {
					dif, _ := cur.connectedDev(dst)
					path = append(path, &legacyHop{Hop: hop, RouterName: m.label(dst), IPAddress: dst.String(), Interface: dif, ConnectedRouter: cur.name})
				}
			}
			break
		}
		nr, nip, oif := m.nextHop(cur, dst)
		if !nip.IsValid() || nr == nil {
			path = append(path, &legacyHop{Hop: hop, RouterName: "* * *", IPAddress: "No route"})
			break
		}
		if visited[nr] {
			path = append(path, &legacyHop{Hop: hop, RouterName: nr.name, IPAddress: nip.String() + " (loop detected)", Interface: oif})
			break
		}
		setOut(oif)
		nin := oif
		if oif != "" {
			if outIP, ok := cur.primaryOf(oif); ok {
				nin, _ = nr.connectedDev(outIP)
			}
		}
		path = append(path, &legacyHop{Hop: hop, RouterName: nr.name, IPAddress: nip.String(), Interface: nin, IsRouterOwned: m.lookup[nip] != nil})
		visited[nr] = true
		cur = nr
		hop++
		if nip == dst {
			break
		}
	}
	return path
}
