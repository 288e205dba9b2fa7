// Package trace owns the forwarding model (DESIGN §5): where a packet
// starts, policy routing, route lookup, the netfilter chains a real packet
// traverses (evaluated by netfilter.go), next-hop resolution and the
// disposition, hop by hop and explained. It also renders traces as text,
// reproduces the predecessor's legacy JSON, and builds flows from a SPEC or a
// flows file. It reads facts but never changes them, and never touches the
// kernel or the CLI.
package trace

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tsim-dev/tsim/internal/facts"
)

// Engine is the simulation model of one facts set. What it builds after
// New (a router's model, its firewall, the uplinks) is built once under a
// sync.Once and read-only afterwards, so one Engine may trace flows from
// many goroutines.
type Engine struct {
	facts   *facts.Facts
	routers []*rtr // sorted by name
	byName  map[string]*rtr
	// owners maps every interface address to the routers holding it,
	// in router-name order.
	owners map[netip.Addr][]owner
	// uplinks are ROUTER:IFACE pairs carrying a default route: where a
	// packet from outside the network would plausibly enter. Only an error
	// hint needs them, so they are found when first asked for.
	uplinksOnce sync.Once
	uplinks     []string
	// attached caches, per host address, the routers with it on a
	// connected subnet (attachedTo): every walk of every ECMP branch, the
	// reply's and the handshake ACK's too, starts by looking for them, a
	// scan of every router's connected prefixes.
	attachedMu sync.RWMutex
	attached   map[netip.Addr]attachment
	// walkEveryRequest turns off the reuse of a request's walk by the
	// ECMP branches that take its nexthops (tests compare both ways).
	walkEveryRequest bool
	// requestReuses counts the branches that reused a request's walk.
	requestReuses atomic.Int64
}

// attachment is what a walk's start needs of a host address: the routers
// with it on a connected subnet (each by its first such interface) and
// the longest of those subnets.
type attachment struct {
	cands []owner
	seg   netip.Prefix
}

// attachedTo returns the routers with a on a connected subnet; callers
// must not modify the result.
func (e *Engine) attachedTo(a netip.Addr) attachment {
	e.attachedMu.RLock()
	at, ok := e.attached[a]
	e.attachedMu.RUnlock()
	if ok {
		return at
	}
	for _, r := range e.routers {
		for _, c := range r.conns {
			if c.pfx.Contains(a) {
				at.cands = append(at.cands, owner{r, c.ifc})
				if !at.seg.IsValid() || c.pfx.Bits() > at.seg.Bits() {
					at.seg = c.pfx
				}
				break
			}
		}
	}
	e.attachedMu.Lock()
	if e.attached == nil {
		e.attached = map[netip.Addr]attachment{}
	}
	e.attached[a] = at
	e.attachedMu.Unlock()
	return at
}

type owner struct {
	r   *rtr
	ifc string
}

// rtr is one router prepared for lookups. New computes only what finding
// routers and neighbours needs; the routing model (prep) and the firewall
// are built when a packet first reaches the router, once: a trace crosses
// a few routers of many, and `tsim trace` as a process has a 10 ms budget.
type rtr struct {
	f          *facts.Router
	fwOnce     sync.Once
	fw         *Firewall
	prepOnce   sync.Once
	pr         *prep
	addrs      []ifAddr
	conns      []conn // connected prefixes (masked), as the kernel's prefix routes
	forwarding bool
	gateway    bool // metadata type gateway: its default route leads to the Internet
	// seed is the multipath hash seed when the facts pin none (SetHashSeed).
	seed uint32
	// neighbours per interface: other routers' interfaces on the same segment.
	neighbours map[string][]owner
}

// prep is a router's routing model: policy rules, tables with the kernel's
// own routes added and invalid routes marked, interface settings and the
// chains of its iptables.
type prep struct {
	rules  []prule
	tables map[int]*table
	// customRouting: rules beyond the kernel's three defaults or local
	// routes added by hand; the kernel then always validates sources by a
	// full reverse lookup (fib4_has_custom_rules, fib_has_custom_local_routes).
	customRouting bool
	ifconf        map[string]ifConf      // per interface, from the sysctls
	chains        map[chainKey]chainInfo // chains present in the facts
	rulePos       map[*facts.IptRule]string
}

// p returns the router's routing model, building it once.
func (r *rtr) p() *prep {
	r.prepOnce.Do(func() { r.pr = r.prepare() })
	return r.pr
}

type chainKey struct{ table, chain string }

type chainInfo struct {
	c      *facts.Chain
	policy string // "policy ACCEPT": the step text when the policy decides
}

type ifAddr struct {
	addr netip.Addr
	pfx  netip.Prefix // connected prefix, masked
	ifc  string
	str  string // addr.String(), for hops
}

type conn struct {
	pfx netip.Prefix
	ifc string
	src netip.Addr
}

type table struct {
	id     int
	name   string
	routes []*route // longest prefix first, then tos-specific first, then lowest metric
}

type route struct {
	r *facts.Route
	// invalid says why the kernel would refuse this route ("" = valid);
	// lookups skip such routes because they do not exist in a real router.
	invalid string
	pos     string // file:line, precomputed for steps
	note    string // "\"text\" (why invalid)" for steps that skip it
	use     string // "via G dev D", "dev D" or "local delivery": the step detail when chosen
	gw, dev string // the first path's gateway (as text) and device
}

// prule is a policy rule with what its steps need, precomputed.
type prule struct {
	*facts.Rule
	pos      string
	tname    string // table name for lookup rules
	fallNote string // detail when its table has no route
}

// New indexes the routers of f by address and segment; each router's
// routing model and firewall are built on first use.
func New(f *facts.Facts) *Engine {
	e := &Engine{facts: f, byName: map[string]*rtr{}, owners: map[netip.Addr][]owner{}}
	rs := slices.Clone(f.Routers)
	slices.SortStableFunc(rs, func(a, b *facts.Router) int { return strings.Compare(a.Name, b.Name) })
	for _, fr := range rs {
		r := newRouter(fr)
		e.routers = append(e.routers, r)
		e.byName[fr.Name] = r
		for _, a := range r.addrs {
			e.owners[a.addr] = append(e.owners[a.addr], owner{r, a.ifc})
		}
	}
	for _, r := range e.routers {
		r.neighbours = map[string][]owner{}
		for _, a := range r.addrs {
			if a.pfx.Bits() == a.pfx.Addr().BitLen() || isLoopback(r.f, a.ifc) {
				continue
			}
			for _, o := range e.routers {
				if o == r {
					continue
				}
				for _, b := range o.addrs {
					if b.pfx.Overlaps(a.pfx) && !isLoopback(o.f, b.ifc) && !hasOwner(r.neighbours[a.ifc], o, b.ifc) {
						r.neighbours[a.ifc] = append(r.neighbours[a.ifc], owner{o, b.ifc})
					}
				}
			}
		}
	}
	return e
}

// uplinkList returns the uplinks: default routes (of any table) towards a
// next hop no router of the facts owns.
func (e *Engine) uplinkList() []string {
	e.uplinksOnce.Do(func() {
		for _, r := range e.routers {
			for _, t := range sortedTables(r) {
				for _, rt := range t.routes {
					if rt.r.Dst.Bits() != 0 || rt.r.Type != facts.RouteUnicast || rt.invalid != "" {
						continue
					}
					gw, dev := firstHop(rt.r)
					if len(e.owners[gw]) > 0 || dev == "" {
						continue
					}
					if u := r.f.Name + ":" + dev; !slices.Contains(e.uplinks, u) {
						e.uplinks = append(e.uplinks, u)
					}
				}
			}
		}
	})
	return e.uplinks
}

func hasOwner(l []owner, r *rtr, ifc string) bool {
	for _, o := range l {
		if o.r == r && o.ifc == ifc {
			return true
		}
	}
	return false
}

func isLoopback(r *facts.Router, ifc string) bool {
	if ifc == "lo" {
		return true
	}
	i := r.Interface(ifc)
	return i != nil && i.Kind == "loopback"
}

// firewall returns the router's compiled iptables, compiling them once.
func (r *rtr) firewall() *Firewall {
	r.fwOnce.Do(func() { r.fw = CompileFirewall(r.f) })
	return r.fw
}

func newRouter(fr *facts.Router) *rtr {
	r := &rtr{f: fr}
	r.gateway = strings.EqualFold(fr.Metadata.Type, "gateway")
	r.forwarding = strings.TrimSpace(fr.Sysctls["net.ipv4.ip_forward"]) != "0" &&
		strings.TrimSpace(fr.Sysctls["net.ipv4.conf.all.forwarding"]) != "0"
	for _, ifc := range fr.Interfaces {
		for _, a := range ifc.Addrs {
			if !a.Prefix.Addr().Is4() {
				continue // IPv6 is carried by the model but not simulated
			}
			p := a.Prefix.Masked()
			if a.Peer.IsValid() {
				p = a.Peer.Masked()
			}
			r.addrs = append(r.addrs, ifAddr{addr: a.Prefix.Addr(), pfx: p, ifc: ifc.Name, str: a.Prefix.Addr().String()})
			if p.Bits() < 32 && !isLoopback(fr, ifc.Name) {
				r.conns = append(r.conns, conn{pfx: p, ifc: ifc.Name, src: a.Prefix.Addr()})
			}
		}
	}
	return r
}

// prepare builds the routing model of r.
func (r *rtr) prepare() *prep {
	fr := r.f
	p := &prep{tables: map[int]*table{}, chains: map[chainKey]chainInfo{}, rulePos: map[*facts.IptRule]string{}}
	for _, t := range fr.Iptables {
		for _, c := range t.Chains {
			pol := c.Policy
			if pol == "" {
				pol = "ACCEPT"
			}
			p.chains[chainKey{t.Name, c.Name}] = chainInfo{c: c, policy: "policy " + pol}
			for _, ir := range c.Rules {
				p.rulePos[ir] = posString(ir.Pos)
			}
		}
	}
	rules := slices.Clone(fr.Rules)
	if len(rules) == 0 {
		// No `ip rule` facts: the kernel's three default rules apply.
		rules = []*facts.Rule{
			{Priority: 0, Action: facts.ActionLookup, Table: facts.TableLocal, TableName: "local", SuppressPrefixLen: -1, Text: "0:\tfrom all lookup local"},
			{Priority: 32766, Action: facts.ActionLookup, Table: facts.TableMain, TableName: "main", SuppressPrefixLen: -1, Text: "32766:\tfrom all lookup main"},
			{Priority: 32767, Action: facts.ActionLookup, Table: facts.TableDefault, TableName: "default", SuppressPrefixLen: -1, Text: "32767:\tfrom all lookup default"},
		}
	}
	slices.SortStableFunc(rules, func(a, b *facts.Rule) int { return a.Priority - b.Priority })
	for _, ru := range rules {
		tn := tableName(fr, ru.Table, ru.TableName)
		p.rules = append(p.rules, prule{Rule: ru, pos: posString(ru.Pos), tname: tn, fallNote: "no route in table " + tn + "; fall through"})
	}
	for _, ft := range fr.Tables {
		t := &table{id: ft.ID, name: tableName(fr, ft.ID, ft.Name)}
		for _, x := range ft.Routes {
			t.routes = append(t.routes, &route{r: x, pos: posString(x.Pos)})
		}
		p.tables[ft.ID] = t
	}
	for _, ru := range p.rules {
		def := ru.Priority == 0 && ru.Table == facts.TableLocal || ru.Priority == 32766 && ru.Table == facts.TableMain ||
			ru.Priority == 32767 && ru.Table == facts.TableDefault
		if !def || ru.Action != facts.ActionLookup || ru.Not || ru.From.IsValid() && ru.From.Bits() > 0 || ru.To.IsValid() && ru.To.Bits() > 0 ||
			ru.IIF != "" || ru.OIF != "" || ru.HasFwmark || ru.HasTOS || ru.IPProto != 0 || !ru.SPort.Any() || !ru.DPort.Any() {
			p.customRouting = true
		}
	}
	for _, t := range p.tables {
		for _, rt := range t.routes {
			if rt.r.Type == facts.RouteLocal && rt.r.Proto != "kernel" {
				p.customRouting = true
			}
		}
	}
	p.ifconf = map[string]ifConf{}
	for _, i := range fr.Interfaces {
		p.ifconf[i.Name] = r.ifConfOf(i.Name)
	}
	r.addKernelRoutes(p)
	for _, t := range p.tables {
		for _, rt := range t.routes {
			if rt.invalid = r.validate(p, t.id, rt.r); rt.invalid != "" {
				rt.note = strconv.Quote(rt.r.Text) + " (" + rt.invalid + ")"
			}
			gw, dev := r.hopOf(rt.r)
			rt.dev = dev
			if gw.IsValid() {
				rt.gw = gw.String()
			}
			switch {
			case rt.r.Type == facts.RouteBroadcast:
				rt.use = "a broadcast address of " + r.f.Name + ": received as a broadcast (local delivery), never forwarded"
			case rt.r.Type == facts.RouteLocal || rt.r.Type == facts.RouteAnycast:
				rt.use = "local delivery"
			case gw.IsValid():
				rt.use = "via " + rt.gw + " dev " + dev
			default:
				rt.use = "dev " + dev
			}
		}
	}
	for _, t := range p.tables {
		slices.SortStableFunc(t.routes, func(a, b *route) int {
			if d := b.r.Dst.Bits() - a.r.Dst.Bits(); d != 0 {
				return d
			}
			if d := int(b.r.TOS) - int(a.r.TOS); d != 0 {
				return d
			}
			return a.r.Metric - b.r.Metric
		})
	}
	return p
}

// addKernelRoutes adds the routes the kernel creates by itself when an
// address is configured and that facts may lack: local routes for every
// address and broadcast routes for every subnet broadcast (table local),
// and the prefix route of every connected subnet (table main).
func (r *rtr) addKernelRoutes(p *prep) {
	local := p.tables[facts.TableLocal]
	if local == nil || len(local.routes) == 0 {
		local = &table{id: facts.TableLocal, name: "local"}
		p.tables[facts.TableLocal] = local
		lo := "lo"
		for _, i := range r.f.Interfaces {
			if i.Kind == "loopback" {
				lo = i.Name
			}
		}
		local.routes = append(local.routes, &route{r: &facts.Route{Type: facts.RouteLocal,
			Dst: netip.MustParsePrefix("127.0.0.0/8"), Dev: lo, Scope: "host", Proto: "kernel",
			Src: netip.MustParseAddr("127.0.0.1"), Text: "local 127.0.0.0/8 dev " + lo + " proto kernel scope host src 127.0.0.1"}})
		for _, a := range r.addrs {
			s := a.addr.String()
			local.routes = append(local.routes, &route{r: &facts.Route{Type: facts.RouteLocal,
				Dst: netip.PrefixFrom(a.addr, 32), Dev: a.ifc, Scope: "host", Proto: "kernel", Src: a.addr,
				Text: "local " + s + " dev " + a.ifc + " proto kernel scope host src " + s}})
		}
		// The subnet broadcast of every primary address with a prefix
		// shorter than /31 (fib_add_ifaddr): the kernel adds it whatever
		// brd says, and brd is the subnet broadcast unless set by hand.
		seen := map[netip.Addr]bool{}
		for _, i := range r.f.Interfaces {
			for _, a := range i.Addrs {
				if !a.Prefix.Addr().Is4() || a.Secondary {
					continue
				}
				p := a.Prefix.Masked()
				if a.Peer.IsValid() {
					p = a.Peer.Masked()
				}
				if p.Bits() >= 31 || p.Addr().IsUnspecified() {
					continue
				}
				bc := addrFromU32(u32(p.Addr()) | ^uint32(0)>>p.Bits())
				if seen[bc] {
					continue
				}
				seen[bc] = true
				src := a.Prefix.Addr().String()
				local.routes = append(local.routes, &route{r: &facts.Route{Type: facts.RouteBroadcast,
					Dst: netip.PrefixFrom(bc, 32), Dev: i.Name, Scope: "link", Proto: "kernel", Src: a.Prefix.Addr(),
					Text: "broadcast " + bc.String() + " dev " + i.Name + " proto kernel scope link src " + src}})
			}
		}
	}
	main := p.tables[facts.TableMain]
	if main == nil {
		main = &table{id: facts.TableMain, name: "main"}
		p.tables[facts.TableMain] = main
	}
	for _, c := range r.conns {
		found := false
		for _, rt := range main.routes {
			if rt.r.Dst == c.pfx && rt.r.Dev == c.ifc {
				found = true
				break
			}
		}
		if !found {
			main.routes = append(main.routes, &route{r: &facts.Route{Type: facts.RouteUnicast, Dst: c.pfx,
				Dev: c.ifc, Scope: "link", Proto: "kernel", Src: c.src,
				Text: c.pfx.String() + " dev " + c.ifc + " proto kernel scope link src " + c.src.String()}})
		}
	}
}

// validate says why the kernel would refuse route x of table tid
// (fib_check_nh): a device that does not exist, or a gateway that no
// link-scope route of the same table, else of the local and main tables,
// puts on the route's device.
func (r *rtr) validate(p *prep, tid int, x *facts.Route) string {
	if !x.Dst.Addr().Is4() {
		return "IPv6 is not simulated"
	}
	if x.Type != facts.RouteUnicast {
		return ""
	}
	check := func(gw netip.Addr, dev string, onlink bool) string {
		if dev != "" && r.f.Interface(dev) == nil {
			return "device " + dev + " does not exist on " + r.f.Name
		}
		if !gw.IsValid() || onlink {
			return ""
		}
		if tid != facts.TableMain && r.linkRoute(p.tables[tid], gw, dev) {
			return ""
		}
		if r.linkRoute(p.tables[facts.TableLocal], gw, dev) || r.linkRoute(p.tables[facts.TableMain], gw, dev) {
			return ""
		}
		if dev == "" {
			return "gateway " + gw.String() + " is not on a connected subnet"
		}
		return "gateway " + gw.String() + " is not reachable on " + dev + " by a link route"
	}
	if len(x.Nexthops) == 0 {
		return check(x.Gateway, x.Dev, x.Onlink)
	}
	for _, n := range x.Nexthops {
		if s := check(n.Gateway, n.Dev, n.Onlink); s != "" {
			return s
		}
	}
	return ""
}

// linkRoute reports whether table t has a gateway-less unicast or local
// route for gw on dev (any dev when dev is ""): what the kernel needs to
// accept gw as a next hop.
func (r *rtr) linkRoute(t *table, gw netip.Addr, dev string) bool {
	if t == nil {
		return false
	}
	for _, rt := range t.routes {
		x := rt.r
		if !x.Dst.Contains(gw) || x.Gateway.IsValid() || len(x.Nexthops) > 0 {
			continue
		}
		if x.Type != facts.RouteUnicast && x.Type != facts.RouteLocal {
			continue
		}
		if dev == "" || x.Dev == dev {
			return true
		}
	}
	return false
}

// tableName gives the name `ip` would print for a table id.
func tableName(fr *facts.Router, id int, name string) string {
	if name != "" {
		return name
	}
	switch id {
	case facts.TableMain:
		return "main"
	case facts.TableLocal:
		return "local"
	case facts.TableDefault:
		return "default"
	}
	best := ""
	for n, i := range fr.TableNames {
		if i == id && (best == "" || n < best) {
			best = n
		}
	}
	if best != "" {
		return best
	}
	return strconv.Itoa(id)
}

// sysctlInt reads an integer sysctl, def when absent or unparsable.
func (r *rtr) sysctlInt(key string, def int) int {
	if v, ok := r.f.Sysctls[key]; ok {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
			return n
		}
	}
	return def
}

// conf is the kernel's per-interface setting: IN_DEV_MAXCONF for
// rp_filter, IN_DEV_ORCONF for the others; def is the kernel default for a
// value the facts do not give.
func (r *rtr) conf(ifc, name string, useMax bool, def int) int {
	all := r.sysctlInt("net.ipv4.conf.all."+name, def)
	dev := r.sysctlInt("net.ipv4.conf."+ifc+"."+name, def)
	if useMax {
		return max(all, dev)
	}
	if all != 0 || dev != 0 {
		return 1
	}
	return 0
}

// ifConf is an interface's effective settings for receiving packets.
type ifConf struct {
	forwarding    bool
	rpFilter      int
	acceptLocal   bool
	sendRedirects bool
	srcValidMark  bool
}

// ifConfOf computes the effective settings of ifc, once per interface.
func (r *rtr) ifConfOf(ifc string) ifConf {
	return ifConf{
		forwarding:    r.forwards(ifc),
		rpFilter:      r.conf(ifc, "rp_filter", true, 0),
		acceptLocal:   r.conf(ifc, "accept_local", false, 0) != 0,
		sendRedirects: r.conf(ifc, "send_redirects", false, 1) != 0,
		srcValidMark:  r.conf(ifc, "src_valid_mark", false, 0) != 0,
	}
}

// forwards reports whether packets arriving on ifc are forwarded
// (IN_DEV_FORWARD: the interface's forwarding, else ip_forward).
func (r *rtr) forwards(ifc string) bool {
	if v, ok := r.f.Sysctls["net.ipv4.conf."+ifc+".forwarding"]; ok {
		return strings.TrimSpace(v) != "0"
	}
	return r.forwarding
}

// table returns the table with id or nil.
func (r *rtr) table(id int) *table { return r.p().tables[id] }

// connectedOn reports the connected prefix of interface ifc containing a.
func (r *rtr) connectedOn(ifc string, a netip.Addr) (conn, bool) {
	for _, c := range r.conns {
		if c.ifc == ifc && c.pfx.Contains(a) {
			return c, true
		}
	}
	return conn{}, false
}

// addrString is a.String(), from the router's own addresses when a is one.
func (r *rtr) addrString(a netip.Addr) string {
	for i := range r.addrs {
		if r.addrs[i].addr == a {
			return r.addrs[i].str
		}
	}
	return a.String()
}

// addrOn returns the best source address of interface ifc towards a: one
// whose subnet contains a, else the first address.
func (r *rtr) addrOn(ifc string, a netip.Addr) netip.Addr {
	var first netip.Addr
	for _, x := range r.addrs {
		if x.ifc != ifc {
			continue
		}
		if a.IsValid() && x.pfx.Contains(a) {
			return x.addr
		}
		if !first.IsValid() {
			first = x.addr
		}
	}
	return first
}

// Routers returns the router names in the order the engine considers them.
func (e *Engine) Routers() []string {
	out := make([]string, len(e.routers))
	for i, r := range e.routers {
		out[i] = r.f.Name
	}
	return out
}

// Uplinks returns the ROUTER:IFACE pairs that carry a default route.
func (e *Engine) Uplinks() []string { return slices.Clone(e.uplinkList()) }

// Owner returns the router and interface holding address a ("" if none).
func (e *Engine) Owner(a netip.Addr) (router, iface string) {
	if o := e.owners[a]; len(o) > 0 {
		return o[0].r.f.Name, o[0].ifc
	}
	return "", ""
}

// Facts returns the facts the engine was built from.
func (e *Engine) Facts() *facts.Facts { return e.facts }

// sortedTables returns r's tables, main first, then by id, for
// deterministic walks.
func sortedTables(r *rtr) []*table {
	tables := r.p().tables
	out := make([]*table, 0, len(tables))
	for _, t := range tables {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *table) int {
		if (a.id == facts.TableMain) != (b.id == facts.TableMain) {
			if a.id == facts.TableMain {
				return -1
			}
			return 1
		}
		return a.id - b.id
	})
	return out
}
