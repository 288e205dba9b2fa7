package hosts

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/netx"
)

// routerBuild is the state of one router while it is configured.
type routerBuild struct {
	rp      *routerPlan
	ns      netns.NsHandle
	idx     int             // the router's position in the plan
	rh      *netlink.Handle // in the router namespace
	fs      *netx.Socket    // route socket in the fabric namespace
	bridges map[string]int  // bridge name -> ifindex in the fabric
	index   map[string]int  // router interface name -> ifindex
	refused []*doc.Refusal
	usedIdx map[int]bool // router ifindexes taken
	log     zerolog.Logger
	// seed is the fib_multipath_hash_seed to pin (0: leave it random);
	// seeded reports what the kernel took (0 without the sysctl).
	seed, seeded uint32
}

func (b *routerBuild) refuse(what, line string, err error) {
	b.refused = append(b.refused, &doc.Refusal{What: what, Line: line, Error: errText(err)})
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return firstLine(err.Error())
}

// configure applies the router's facts inside its namespace. Kernel
// refusals are recorded; only environment failures are returned. ipsets and
// iptables (slow: each restore waits for the kernel's netfilter commit) run
// alongside the netlink work; they do not depend on the interfaces.
func (b *routerBuild) configure(ctx context.Context) error {
	type nfResult struct {
		refused []*doc.Refusal
		err     error
	}
	nfc := make(chan nfResult, 1)
	go func() {
		ref, err := b.netfilter(ctx)
		nfc <- nfResult{ref, err}
	}()
	err := b.links(ctx)
	nf := <-nfc
	b.refused = append(b.refused, nf.refused...)
	if err != nil {
		return err
	}
	return nf.err
}

func (b *routerBuild) netfilter(ctx context.Context) ([]*doc.Refusal, error) {
	r := b.rp.r
	var refused []*doc.Refusal
	t0 := time.Now()
	if len(r.Ipsets) > 0 {
		ref, err := applyIpsets(ctx, b.ns, r)
		refused = append(refused, ref...)
		if err != nil {
			return refused, err
		}
	}
	t1 := time.Now()
	if len(r.Iptables) > 0 {
		ref, err := applyIptables(ctx, b.ns, r)
		refused = append(refused, ref...)
		if err != nil {
			return refused, err
		}
	}
	b.log.Debug().Str("router", r.Name).Dur("ipset", t1.Sub(t0)).Dur("iptables", time.Since(t1)).Msg("router netfilter")
	return refused, nil
}

// links builds interfaces, addresses, sysctls, rules and routes.
func (b *routerBuild) links(ctx context.Context) error {
	r := b.rp.r
	t0 := time.Now()
	b.index = map[string]int{"lo": 1}
	b.refused = append(b.refused, b.rp.refused...)
	err := netx.Do(b.ns, func() error {
		// Sysctls that new interfaces copy ("default") come first.
		b.sysctls(false)
		lo, err := b.rh.LinkByName("lo")
		if err != nil {
			return fmt.Errorf("router %s: loopback: %w", r.Name, err)
		}
		if err := b.rh.LinkSetUp(lo); err != nil {
			return fmt.Errorf("router %s: loopback up: %w", r.Name, err)
		}
		b.index["lo"] = lo.Attrs().Index
		for _, ifc := range r.Interfaces {
			if ifc.Name == "lo" || ifc.Kind == "loopback" {
				b.addrs(lo, ifc)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	b.usedIdx = map[int]bool{}
	for k, ip := range b.rp.ifaces {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := b.iface(ip, k); err != nil {
			return err
		}
	}
	if err := netx.Do(b.ns, func() error { b.sysctls(true); return nil }); err != nil {
		return err
	}
	t1 := time.Now()
	b.rules()
	b.routes()
	b.log.Debug().Str("router", r.Name).Dur("links", t1.Sub(t0)).Dur("routing", time.Since(t1)).Msg("router links")
	return nil
}

// sysctls: ip_forward=1 always (it is a router); rp_filter and the other
// net.ipv4.conf.* values, and icmp_echo_ignore_broadcasts, as collected. When rp_filter was not collected it
// is written 0 explicitly: the trace engine assumes no reverse-path filter
// unless the facts say otherwise, and a fresh namespace may otherwise
// inherit the host's values (net.core.devconf_inherit_init_net).
func (b *routerBuild) sysctls(perIface bool) {
	r := b.rp.r
	if !perIface {
		// ip_forward and IPv6 were set while the namespace was created
		// (nsInit): they spin on the rtnl lock.
		for _, k := range []string{"all", "default"} {
			key := "net.ipv4.conf." + k + ".rp_filter"
			v, ok := r.Sysctls[key]
			if !ok {
				v = "0"
			}
			if err := netx.SetSysctl(key, v); err != nil {
				b.refuse("sysctl", r.File, err)
			}
		}
		b.multipath()
		// Whether the router answers an echo sent to a broadcast
		// address (a new namespace starts at the kernel default 1).
		if v, ok := r.Sysctls["net.ipv4.icmp_echo_ignore_broadcasts"]; ok {
			if err := netx.SetSysctl("net.ipv4.icmp_echo_ignore_broadcasts", v); err != nil {
				b.refuse("sysctl", r.File, err)
			}
		}
	}
	for k, v := range r.Sysctls {
		rest, ok := strings.CutPrefix(k, "net.ipv4.conf.")
		if !ok {
			continue
		}
		dev, _, _ := strings.Cut(rest, ".")
		isDefault := dev == "all" || dev == "default"
		if isDefault == perIface || isDefault && strings.HasSuffix(k, ".rp_filter") {
			continue
		}
		if perIface && b.index[dev] == 0 {
			continue
		}
		if err := netx.SetSysctl(k, v); err != nil {
			b.refuse("sysctl", r.File, err)
		}
	}
}

// Multipath hash sysctls: the facts' policy and fields are applied as
// collected, and the seed is pinned so that an ECMP route picks the same
// nexthop on every run (DESIGN §7; the kernel's default is a random seed
// per namespace).
const (
	sysHashPolicy = "net.ipv4.fib_multipath_hash_policy"
	sysHashFields = "net.ipv4.fib_multipath_hash_fields"
	sysHashSeed   = "net.ipv4.fib_multipath_hash_seed"
)

func (b *routerBuild) multipath() {
	r := b.rp.r
	for _, k := range []string{sysHashPolicy, sysHashFields} {
		if v, ok := r.Sysctls[k]; ok {
			if err := netx.SetSysctl(k, v); err != nil {
				b.refuse("sysctl", r.File, err)
			}
		}
	}
	if b.seed == 0 {
		return
	}
	if _, err := os.Stat("/proc/sys/" + strings.ReplaceAll(sysHashSeed, ".", "/")); err != nil {
		return // kernel before 6.11: no seed to pin
	}
	if err := netx.SetSysctl(sysHashSeed, strconv.FormatUint(uint64(b.seed), 10)); err != nil {
		b.refuse("sysctl", r.File, err)
		return
	}
	b.seeded = b.seed
}

// DefaultHashSeed is the multipath hash seed a lab pins on routers whose
// facts have none (a random seed on the real router) when Options.HashSeed
// does not say: `tsim trace --hash-seed 1` names the ECMP branch such a
// lab's kernels take.
const DefaultHashSeed = 1

// HashSeed is the multipath hash seed a lab pins on a router: the facts'
// collected seed when the router had a fixed one (non-zero), else
// opts.HashSeed, else DefaultHashSeed — the same rule trace applies with
// SetHashSeed, so trace can name the branch the lab's kernels take.
func HashSeed(r *facts.Router, opts Options) uint32 {
	if v, ok := r.Sysctls[sysHashSeed]; ok {
		f := strings.Fields(v)
		if len(f) > 0 {
			if n, err := strconv.ParseUint(f[0], 10, 32); err == nil && n != 0 {
				return uint32(n)
			}
		}
	}
	if opts.HashSeed != 0 {
		return opts.HashSeed
	}
	return DefaultHashSeed
}

// iface creates one veth in a single request: the fabric end (short
// generated name, on the segment's bridge, up) and the router end (the
// facts' name, index, MTU, MAC and admin state) in the router namespace;
// then its addresses.
func (b *routerBuild) iface(ip *ifPlan, k int) error {
	ifc := ip.ifc
	pos := ifc.Pos.String()
	v := &netx.Veth{Name: ip.fabric, Index: fabricIndex(b.idx, k), Up: true,
		PeerName: ifc.Name, PeerNS: b.ns, PeerIndex: b.peerIndex(ifc)}
	if ifc.MTU >= 68 && ifc.MTU <= 65535 {
		v.MTU, v.PeerMTU = ifc.MTU, ifc.MTU
	}
	if ip.seg != nil {
		v.Master = b.bridges[ip.seg.bridge]
	}
	if mac, err := net.ParseMAC(ifc.MAC); err == nil && len(mac) == 6 && mac[0]&1 == 0 && !allZero(mac) {
		v.PeerMAC = mac
	}
	err := b.fs.AddVeth(v)
	if err != nil && v.PeerMAC != nil {
		v.PeerMAC = nil // retry without the collected MAC before giving up
		err = b.fs.AddVeth(v)
	}
	if err != nil {
		b.refuse("interface", pos, fmt.Errorf("create %s: %w", ifc.Name, err))
		return nil
	}
	var link netlink.Link = &netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: ifc.Name, Index: v.PeerIndex}}
	if v.PeerIndex == 0 {
		if link, err = b.rh.LinkByName(ifc.Name); err != nil {
			return fmt.Errorf("router %s: veth %s missing after creation: %w", b.rp.r.Name, ifc.Name, err)
		}
	}
	b.index[ifc.Name] = link.Attrs().Index
	if ifc.Up() {
		if err := b.rh.LinkSetUp(link); err != nil {
			b.refuse("interface", pos, fmt.Errorf("set %s up: %w", ifc.Name, err))
		}
	}
	b.addrs(link, ifc)
	return nil
}

// fabricIndex numbers the fabric ends so that the lab never needs to ask
// the kernel for them: router i, interface k.
func fabricIndex(i, k int) int { return 10000 + i*1000 + k }

// peerIndex keeps the facts' ifindex (`2: eth0`) when it is usable, so the
// lab's `ip link` shows the router's numbering; 0 lets the kernel choose.
func (b *routerBuild) peerIndex(ifc *facts.Interface) int {
	if ifc.Index < 2 || b.usedIdx[ifc.Index] {
		return 0
	}
	b.usedIdx[ifc.Index] = true
	return ifc.Index
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

var scopes = map[string]netlink.Scope{
	"global": netlink.SCOPE_UNIVERSE, "universe": netlink.SCOPE_UNIVERSE, "site": netlink.SCOPE_SITE,
	"link": netlink.SCOPE_LINK, "host": netlink.SCOPE_HOST, "nowhere": netlink.SCOPE_NOWHERE,
}

func (b *routerBuild) addrs(link netlink.Link, ifc *facts.Interface) {
	for _, a := range ifc.Addrs {
		if !a.Prefix.Addr().Is4() {
			continue // IPv6 is not modelled by the lab
		}
		if link.Attrs().Name == "lo" && a.Prefix.Addr() == netip.MustParseAddr("127.0.0.1") {
			continue // the kernel adds it when lo comes up
		}
		na := &netlink.Addr{IPNet: ipNet(a.Prefix)}
		if a.Peer.IsValid() {
			na.Peer = ipNet(a.Peer)
		}
		if s, ok := scopes[a.Scope]; ok {
			na.Scope = int(s)
		} else if n, err := strconv.Atoi(a.Scope); err == nil {
			na.Scope = n
		}
		if err := b.rh.AddrAdd(link, na); err != nil && !errors.Is(err, unix.EEXIST) {
			b.refuse("address", a.Pos.String(), fmt.Errorf("%s on %s: %w", a.Prefix, ifc.Name, err))
		}
	}
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func isDefaultRule(r *facts.Rule) bool {
	plain := !r.Not && !r.From.IsValid() && !r.To.IsValid() && r.IIF == "" && r.OIF == "" && !r.HasFwmark &&
		!r.HasTOS && r.IPProto == 0 && r.SPort.Any() && r.DPort.Any() && r.UIDRange == "" && !r.L3MDev &&
		r.Action == facts.ActionLookup && r.SuppressPrefixLen < 0 && r.SuppressIfGroup == ""
	if !plain {
		return false
	}
	return r.Priority == 0 && r.Table == facts.TableLocal ||
		r.Priority == 32766 && r.Table == facts.TableMain ||
		r.Priority == 32767 && r.Table == facts.TableDefault
}

var ruleActions = map[string]uint8{
	facts.ActionLookup: unix.FR_ACT_TO_TBL, facts.ActionGoto: unix.FR_ACT_GOTO, facts.ActionNop: unix.FR_ACT_NOP,
	facts.ActionBlackhole: unix.FR_ACT_BLACKHOLE, facts.ActionUnreachable: unix.FR_ACT_UNREACHABLE,
	facts.ActionProhibit: unix.FR_ACT_PROHIBIT,
}

// rules installs the policy rules. The kernel's three default rules are
// kept when the facts have them and removed when the facts do not.
func (b *routerBuild) rules() {
	r := b.rp.r
	if len(r.Rules) == 0 {
		return
	}
	have := map[int]bool{}
	for _, fr := range r.Rules {
		if isDefaultRule(fr) {
			have[fr.Priority] = true
			continue
		}
		nr, err := toNetlinkRule(fr)
		if err == nil {
			err = b.rh.RuleAdd(nr)
		}
		if err != nil {
			b.refuse("rule", fr.Pos.String(), fmt.Errorf("%s: %w", strings.TrimSpace(fr.Text), err))
		}
	}
	for prio, table := range map[int]int{0: facts.TableLocal, 32766: facts.TableMain, 32767: facts.TableDefault} {
		if have[prio] {
			continue
		}
		nr := netlink.NewRule()
		nr.Priority, nr.Table, nr.Family = prio, table, unix.AF_INET
		if err := b.rh.RuleDel(nr); err != nil && !errors.Is(err, unix.ENOENT) {
			b.refuse("rule", r.File, fmt.Errorf("remove default rule %d: %w", prio, err))
		}
	}
}

func toNetlinkRule(fr *facts.Rule) (*netlink.Rule, error) {
	nr := netlink.NewRule()
	nr.Family = unix.AF_INET
	nr.Priority = fr.Priority
	nr.Invert = fr.Not
	if fr.From.IsValid() {
		nr.Src = ipNet(fr.From)
	}
	if fr.To.IsValid() {
		nr.Dst = ipNet(fr.To)
	}
	nr.IifName, nr.OifName = fr.IIF, fr.OIF
	if fr.HasFwmark {
		nr.Mark = fr.Fwmark
		if fr.FwmarkMask != 0xffffffff || fr.Fwmark == 0 {
			m := fr.FwmarkMask
			nr.Mask = &m
		}
	}
	if fr.HasTOS {
		nr.Tos = uint(fr.TOS)
	}
	nr.IPProto = fr.IPProto
	if !fr.SPort.Any() {
		nr.Sport = netlink.NewRulePortRange(fr.SPort.Lo, fr.SPort.Hi)
	}
	if !fr.DPort.Any() {
		nr.Dport = netlink.NewRulePortRange(fr.DPort.Lo, fr.DPort.Hi)
	}
	if fr.UIDRange != "" {
		lo, hi, _ := strings.Cut(fr.UIDRange, "-")
		a, err1 := strconv.ParseUint(lo, 10, 32)
		z, err2 := strconv.ParseUint(hi, 10, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("bad uidrange %q", fr.UIDRange)
		}
		nr.UIDRange = netlink.NewRuleUIDRange(uint32(a), uint32(z))
	}
	if fr.L3MDev {
		return nil, errors.New("l3mdev rules are not supported by the lab")
	}
	act, ok := ruleActions[fr.Action]
	if !ok {
		return nil, fmt.Errorf("unknown rule action %q", fr.Action)
	}
	nr.Type = act
	switch fr.Action {
	case facts.ActionLookup:
		if fr.Table == 0 {
			return nil, fmt.Errorf("table %q has no numeric id (not in rt_tables or a section title)", fr.TableName)
		}
		nr.Table = fr.Table
	case facts.ActionGoto:
		nr.Goto = fr.Goto
	}
	if fr.SuppressPrefixLen >= 0 {
		nr.SuppressPrefixlen = fr.SuppressPrefixLen
	}
	if fr.SuppressIfGroup != "" {
		g, err := strconv.Atoi(fr.SuppressIfGroup)
		if err != nil {
			return nil, fmt.Errorf("suppress_ifgroup %q is not numeric", fr.SuppressIfGroup)
		}
		nr.SuppressIfgroup = g
	}
	return nr, nil
}

var routeTypes = map[string]int{
	"": unix.RTN_UNICAST, facts.RouteUnicast: unix.RTN_UNICAST, facts.RouteLocal: unix.RTN_LOCAL,
	facts.RouteBroadcast: unix.RTN_BROADCAST, facts.RouteMulticast: unix.RTN_MULTICAST,
	facts.RouteAnycast: unix.RTN_ANYCAST, facts.RouteBlackhole: unix.RTN_BLACKHOLE,
	facts.RouteUnreachable: unix.RTN_UNREACHABLE, facts.RouteProhibit: unix.RTN_PROHIBIT,
	facts.RouteThrow: unix.RTN_THROW, facts.RouteNAT: unix.RTN_NAT,
}

var routeProtos = map[string]int{
	"redirect": 1, "kernel": 2, "boot": 3, "static": 4, "gated": 8, "ra": 9, "mrt": 10, "zebra": 11,
	"bird": 12, "dnrouted": 13, "xorp": 14, "ntk": 15, "dhcp": 16, "keepalived": 18, "babel": 42,
	"openr": 99, "bgp": 186, "isis": 187, "ospf": 188, "rip": 189, "eigrp": 192,
}

type pendingRoute struct {
	rt    *facts.Route
	table int
	nr    *netlink.Route
	err   error
}

// routes installs every table. Routes without a gateway go first, then
// gateway routes, then multipath (a gateway must be reachable when its
// route is added, as on the real router where connected routes come from
// the addresses); refused routes are retried while others still succeed.
func (b *routerBuild) routes() {
	r := b.rp.r
	var pend [3][]*pendingRoute
	for _, t := range r.Tables {
		for _, rt := range t.Routes {
			if !rt.Dst.Addr().Is4() {
				continue
			}
			pr := &pendingRoute{rt: rt, table: t.ID}
			pr.nr, pr.err = b.toNetlinkRoute(rt, t.ID)
			if pr.err != nil {
				b.refuse("route", rt.Pos.String(), fmt.Errorf("%s: %w", routeText(rt, t.ID), pr.err))
				continue
			}
			switch {
			case len(rt.Nexthops) > 0:
				pend[2] = append(pend[2], pr)
			case rt.Gateway.IsValid():
				pend[1] = append(pend[1], pr)
			default:
				pend[0] = append(pend[0], pr)
			}
		}
	}
	todo := append(append(pend[0], pend[1]...), pend[2]...)
	for {
		var left []*pendingRoute
		for _, pr := range todo {
			err := b.rh.RouteAdd(pr.nr)
			if errors.Is(err, unix.EEXIST) {
				// Same destination, tos and metric already there: the facts
				// list both, so the router had both (`ip route append`);
				// only an identical route is refused again.
				err = b.rh.RouteAppend(pr.nr)
				if errors.Is(err, unix.EEXIST) && pr.rt.Proto == "kernel" {
					err = nil // the kernel made it from an address already
				}
			}
			if err != nil {
				pr.err = err
				left = append(left, pr)
			}
		}
		if len(left) == 0 || len(left) == len(todo) {
			todo = left
			break
		}
		todo = left
	}
	for _, pr := range todo {
		b.refuse("route", pr.rt.Pos.String(), fmt.Errorf("%s: %w", routeText(pr.rt, pr.table), pr.err))
	}
}

func routeText(rt *facts.Route, table int) string {
	s := strings.TrimSpace(rt.Text)
	if table != facts.TableMain && !strings.Contains(s, " table ") {
		s += " table " + strconv.Itoa(table)
	}
	return s
}

func (b *routerBuild) dev(name string) (int, error) {
	if name == "" {
		return 0, nil
	}
	if i := b.index[name]; i != 0 {
		return i, nil
	}
	return 0, fmt.Errorf("device %s does not exist in the lab", name)
}

func (b *routerBuild) toNetlinkRoute(rt *facts.Route, table int) (*netlink.Route, error) {
	typ, ok := routeTypes[rt.Type]
	if !ok {
		return nil, fmt.Errorf("unknown route type %q", rt.Type)
	}
	nr := &netlink.Route{Table: table, Type: typ, Family: unix.AF_INET, Dst: ipNet(rt.Dst.Masked()),
		Priority: rt.Metric, Tos: int(rt.TOS), MTU: rt.MTU}
	if rt.Gateway.IsValid() {
		nr.Gw = net.IP(rt.Gateway.AsSlice())
	}
	idx, err := b.dev(rt.Dev)
	if err != nil {
		return nil, err
	}
	nr.LinkIndex = idx
	if rt.Src.IsValid() {
		nr.Src = net.IP(rt.Src.AsSlice())
	}
	if rt.Onlink {
		nr.Flags |= unix.RTNH_F_ONLINK
	}
	if rt.Proto != "" {
		if p, ok := routeProtos[rt.Proto]; ok {
			nr.Protocol = netlink.RouteProtocol(p)
		} else if p, err := strconv.Atoi(rt.Proto); err == nil && p >= 0 && p < 256 {
			nr.Protocol = netlink.RouteProtocol(p)
		}
	}
	if s, ok := scopes[rt.Scope]; ok {
		nr.Scope = s
	} else if n, err := strconv.Atoi(rt.Scope); err == nil {
		nr.Scope = netlink.Scope(n)
	} else {
		// ip route's defaults.
		switch {
		case typ == unix.RTN_LOCAL || typ == unix.RTN_NAT:
			nr.Scope = netlink.SCOPE_HOST
		case typ == unix.RTN_BROADCAST || typ == unix.RTN_MULTICAST || typ == unix.RTN_ANYCAST:
			nr.Scope = netlink.SCOPE_LINK
		case typ == unix.RTN_UNICAST && !rt.Gateway.IsValid() && len(rt.Nexthops) == 0:
			nr.Scope = netlink.SCOPE_LINK
		default:
			nr.Scope = netlink.SCOPE_UNIVERSE
		}
	}
	for _, nh := range rt.Nexthops {
		ni := &netlink.NexthopInfo{}
		if nh.Gateway.IsValid() {
			ni.Gw = net.IP(nh.Gateway.AsSlice())
		}
		if ni.LinkIndex, err = b.dev(nh.Dev); err != nil {
			return nil, err
		}
		if nh.Weight > 1 {
			ni.Hops = nh.Weight - 1
		}
		if nh.Onlink {
			ni.Flags |= unix.RTNH_F_ONLINK
		}
		nr.MultiPath = append(nr.MultiPath, ni)
	}
	return nr, nil
}

// noIPv6 turns IPv6 off in the calling thread's namespace before any
// interface exists: the lab does not model it, and addrconf on every new
// link (link-local addresses, DAD, MLD) costs time and puts noise on the
// bridges.
func noIPv6() {
	netx.SetSysctl("net.ipv6.conf.default.disable_ipv6", "1")
}
