package reach

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/netx"
)

// The per-router harness (DESIGN §7, docs/reach.md). While it runs, each
// router interface a flow enters or leaves by is taken out of the lab: the
// fabric-side end of its veth is moved out of the lab's fabric namespace
// into a "side", an anonymous namespace that impersonates the neighbour on
// that link. The side on the ingress link owns the packet's source (and
// the gateway the router routes it back through), the side on the egress
// link owns the next hop and the destination and runs the echo listener.
// So the real neighbours, which own the same addresses, never see a
// harness packet, each router's counters move only for its own probes, and
// every router of a path gets its answer, also behind one that blocks.
// Moving a link costs the kernel far less than creating and deleting a
// bridge and a veth per side. Before Run returns, every end is moved back
// onto its lab bridge; the anonymous namespaces die with their handles.

// harnessItem is one router visit of one flow.
type harnessItem struct {
	fp   *flowPlan
	hp   *hopPlan
	slot **doc.RouterReach
	n    int
	// addresses the sides must own: ingress (prev) and egress (next).
	prev, next []netip.Addr
}

// isoPort is one router interface taken out of the lab for the harness.
type isoPort struct {
	iface      string
	rLink      netlink.Link
	fabName    string         // the fabric-side veth end
	origMaster int            // its lab bridge
	gw         netip.Addr     // the router's address on it
	prefixes   []netip.Prefix // its connected prefixes
	// in is the side holding the fabric end now (nil: in the fabric).
	in *side
}

// side is one impersonating neighbour.
type side struct {
	port *isoPort
	ns   nsRef
	nl   *netlink.Handle
	sock *netx.Socket
}

func (r *runner) perRouter(ctx context.Context, plans []*flowPlan, results []*doc.Reach) error {
	by := map[string][]*harnessItem{}
	for i, fp := range plans {
		res := results[i]
		hh := fp.harnessHops()
		res.Routers = make([]*doc.RouterReach, len(hh))
		for j, hp := range hh {
			it := &harnessItem{fp: fp, hp: hp, slot: &res.Routers[j], n: j}
			if fp.problem != "" {
				*it.slot = &doc.RouterReach{Router: hp.router, In: hp.in, Out: hp.out, Verdict: doc.Unknown, Reason: fp.problem}
				continue
			}
			if v := reusable(r.opts, res.E2E, hp); v != nil {
				*it.slot = v
				continue
			}
			by[hp.router] = append(by[hp.router], it)
		}
	}
	if !r.fabric.h.IsOpen() {
		// Never fall back to the current namespace: the harness moves links.
		for _, items := range by {
			for _, it := range items {
				*it.slot = &doc.RouterReach{Router: it.hp.router, In: it.hp.in, Out: it.hp.out, Verdict: doc.Unknown,
					Reason: "lab " + r.d.Lab.ID + " names no fabric namespace: no per-router harness"}
			}
		}
		by = nil
	}
	names := make([]string, 0, len(by))
	for n := range by {
		names = append(names, n)
	}
	sort.Strings(names)
	err := forEach(ctx, r.opts.Pool, r.opts.Workers, names, func(ctx context.Context, name string) error {
		return r.harness(ctx, r.routers[name], by[name])
	})
	for i, fp := range plans {
		for j, hp := range fp.harnessHops() {
			v := results[i].Routers[j]
			if v == nil {
				v = &doc.RouterReach{Router: hp.router, In: hp.in, Out: hp.out, Verdict: doc.Unknown, Reason: "not probed"}
				if err != nil {
					v.Reason = "not probed: " + err.Error()
				}
				results[i].Routers[j] = v
			}
			if v.Predicted == "" {
				v.Predicted = doc.Unknown
				if hp.hasPred {
					v.Predicted = hp.pred.Verdict
					v.Agrees = agrees(v, hp.pred.Verdict, hp.pred.Rule)
				} else {
					v.Agrees = v.Verdict == doc.Unknown
				}
			}
		}
	}
	return err
}

// reusable returns a copy of the end-to-end view of hop j when
// Options.ReuseEndToEnd allows it and the end-to-end probe crossed that
// router the same way (same interfaces) with a decisive answer (the router
// passed the packet on or stopped it).
func reusable(o Options, e *doc.E2E, hp *hopPlan) *doc.RouterReach {
	if !o.ReuseEndToEnd || e == nil {
		return nil
	}
	for _, x := range e.Routers {
		if x.Router != hp.router || x.In != hp.in || x.Out != hp.out {
			continue
		}
		v := *x
		if v.Verdict != doc.Allowed && v.Verdict != doc.Blocked {
			return nil
		}
		if v.Verdict == doc.Blocked && e.Cause == causeLoop {
			return nil // the loop is the lab's, not this router's alone
		}
		v.Reason = joinReason(v.Reason, "from the end-to-end probe's counters")
		v.Predicted, v.Agrees = "", false
		return &v
	}
	return nil
}

// harness tests one router alone for every flow crossing it.
func (r *runner) harness(ctx context.Context, lr *labRouter, items []*harnessItem) (err error) {
	fr := r.f.Router(lr.name)
	fab, err := netlink.NewHandleAt(r.fabric.h)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", r.fabric.name, err)
	}
	defer fab.Close()
	fabSock, err := netx.OpenSocket(r.fabric.h)
	if err != nil {
		return err
	}
	defer fabSock.Close()
	ports := map[string]*isoPort{}
	defer func() {
		for _, p := range ports {
			if rerr := r.restorePort(fab, lr, p); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
	}()
	owned := map[netip.Addr]bool{}
	for _, ifc := range fr.Interfaces {
		for _, a := range ifc.Addrs {
			owned[a.Prefix.Addr()] = true
		}
	}
	fail := func(it *harnessItem, why string) {
		*it.slot = &doc.RouterReach{Router: lr.name, In: it.hp.in, Out: it.hp.out, Verdict: doc.Unknown, Reason: why}
	}
	var ready []*harnessItem
	for _, it := range items {
		hp := it.hp
		if hp.kind != hopOutput {
			p, err := r.isolate(fab, lr, fr, hp.in, ports)
			if err != nil {
				fail(it, err.Error())
				continue
			}
			it.prev = appendAddr(it.prev, hp.srcIn, owned)
			if gw, ok := r.returnGateway(lr, hp, p); ok {
				it.prev = appendAddr(it.prev, gw, owned)
			}
		}
		if hp.kind != hopInput && hp.out != "" {
			p, err := r.isolate(fab, lr, fr, hp.out, ports)
			if err != nil {
				fail(it, err.Error())
				continue
			}
			if hp.hasNext {
				it.next = appendAddr(it.next, hp.dstOut.Addr(), owned)
			}
			opts := &netlink.RouteGetOptions{SrcAddr: hp.srcIn.AsSlice()}
			if hp.kind == hopForward {
				opts.Iif = hp.in
			}
			if rt, err := lr.nl.RouteGetWithOptions(hp.dstOut.Addr().AsSlice(), opts); err == nil && len(rt) > 0 && rt[0].Gw != nil && rt[0].LinkIndex == p.rLink.Attrs().Index {
				if a, ok := netip.AddrFromSlice(rt[0].Gw); ok {
					it.next = appendAddr(it.next, a.Unmap(), owned)
				}
			}
			if hp.nextIP.IsValid() {
				it.next = appendAddr(it.next, hp.nextIP, owned)
			}
		}
		ready = append(ready, it)
	}
	// Rounds: an address lives on one side at a time; a flow whose
	// addresses clash with the round's waits for a later round.
	t0, rounds := time.Now(), 0
	defer func() {
		r.opts.Log.Debug().Str("router", lr.name).Int("flows", len(items)).Int("rounds", rounds).Dur("took", time.Since(t0)).Msg("harness")
	}()
	for len(ready) > 0 {
		rounds++
		owner := map[netip.Addr]string{}
		var round, later []*harnessItem
		for _, it := range ready {
			if fits(owner, it) {
				round = append(round, it)
			} else {
				later = append(later, it)
			}
		}
		if err := r.runRound(ctx, lr, fab, fabSock, ports, round, owner); err != nil {
			return err
		}
		ready = later
	}
	return nil
}

// returnGateway asks the router's kernel where a reply to the source
// goes: as the reply arrives (on the egress interface, from the
// destination), so policy rules see what they will see; the side on the
// ingress link owns that gateway when it is on that link.
func (r *runner) returnGateway(lr *labRouter, hp *hopPlan, p *isoPort) (netip.Addr, bool) {
	var tries []*netlink.RouteGetOptions
	if hp.out != "" {
		tries = append(tries, &netlink.RouteGetOptions{Iif: hp.out, SrcAddr: hp.dstOut.Addr().AsSlice()})
	}
	tries = append(tries, &netlink.RouteGetOptions{})
	for _, o := range tries {
		rt, err := lr.nl.RouteGetWithOptions(hp.srcIn.AsSlice(), o)
		if err != nil || len(rt) == 0 {
			continue
		}
		if rt[0].LinkIndex != p.rLink.Attrs().Index || rt[0].Gw == nil {
			return netip.Addr{}, false
		}
		a, ok := netip.AddrFromSlice(rt[0].Gw)
		return a.Unmap(), ok
	}
	return netip.Addr{}, false
}

func appendAddr(l []netip.Addr, a netip.Addr, owned map[netip.Addr]bool) []netip.Addr {
	if !a.IsValid() || owned[a] {
		return l
	}
	for _, x := range l {
		if x == a {
			return l
		}
	}
	return append(l, a)
}

// fits claims it's addresses in owner when none clashes.
func fits(owner map[netip.Addr]string, it *harnessItem) bool {
	want := map[netip.Addr]string{}
	for _, a := range it.prev {
		want[a] = it.hp.in
	}
	out := it.hp.outKey()
	for _, a := range it.next {
		if w, ok := want[a]; ok && w != out {
			return false
		}
		want[a] = out
	}
	for a, ifc := range want {
		if o, ok := owner[a]; ok && o != ifc {
			return false
		}
	}
	for a, ifc := range want {
		owner[a] = ifc
	}
	return true
}

// isolate moves the router's fabric end of iface onto a private bridge
// (once per Run and interface).
func (r *runner) isolate(fab *netlink.Handle, lr *labRouter, fr *facts.Router, iface string, ports map[string]*isoPort) (*isoPort, error) {
	if p := ports[iface]; p != nil {
		return p, nil
	}
	rl, err := lr.nl.LinkByName(iface)
	if err != nil {
		return nil, fmt.Errorf("interface %s is not in the lab's %s (refused?): %w", iface, lr.name, err)
	}
	// The fabric end must be this veth's peer in the lab's fabric: only
	// such a link is ever moved. It is a bridge port, or on no bridge when
	// the interface is alone on its segment (hosts: segment.lone).
	fl, err := fab.LinkByIndex(rl.Attrs().ParentIndex)
	if _, veth := fl.(*netlink.Veth); err != nil || !veth || fl.Attrs().ParentIndex != rl.Attrs().Index {
		return nil, fmt.Errorf("%s %s has no fabric end in the lab fabric", lr.name, iface)
	}
	p := &isoPort{iface: iface, rLink: rl, fabName: fl.Attrs().Name, origMaster: fl.Attrs().MasterIndex}
	if ifc := fr.Interface(iface); ifc != nil {
		for _, a := range ifc.Addrs {
			if a.Prefix.Addr().Is4() && !a.Peer.IsValid() {
				p.prefixes = append(p.prefixes, a.Prefix)
				if !p.gw.IsValid() {
					p.gw = a.Prefix.Addr()
				}
			}
		}
	}
	if !p.gw.IsValid() {
		return nil, fmt.Errorf("%s %s has no IPv4 address to impersonate a neighbour against", lr.name, iface)
	}
	ports[iface] = p
	return p, nil
}

// restorePort puts the router's port back on its lab bridge (from the
// side holding it) and forgets the harness's MAC addresses in the router.
func (r *runner) restorePort(fab *netlink.Handle, lr *labRouter, p *isoPort) error {
	var errs []error
	if s := p.in; s != nil {
		if err := s.release(r.fabric); err != nil {
			errs = append(errs, fmt.Errorf("take %s %s back from its harness: %w", lr.name, p.iface, err))
		} else {
			r.recycle(s)
		}
	}
	// Released ends come back on their bridge and up; check, and repair
	// what a failed request left.
	fl, err := fab.LinkByName(p.fabName)
	if err == nil && fl.Attrs().MasterIndex != p.origMaster {
		err = fab.LinkSetMasterByIndex(fl, p.origMaster)
	}
	if err == nil && fl.Attrs().Flags&net.FlagUp == 0 {
		err = fab.LinkSetUp(fl)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("put %s %s back on its lab bridge: %w", lr.name, p.iface, err))
	}
	flushNeigh(lr.nl, p.rLink)
	return errors.Join(errs...)
}

func flushNeigh(nl *netlink.Handle, l netlink.Link) {
	ns, err := nl.NeighList(l.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		return
	}
	for i := range ns {
		nl.NeighDel(&ns[i])
	}
}

// newAnonNS creates a network namespace that has no name: it lives as
// long as the returned handle (and whatever is inside it) and vanishes
// with this process, whatever happens to it.
func newAnonNS() (netns.NsHandle, error) {
	type result struct {
		h   netns.NsHandle
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{netns.None(), err}
			return
		}
		defer orig.Close()
		h, err := netns.New()
		if err != nil {
			ch <- result{netns.None(), err}
			if netns.Set(orig) == nil {
				runtime.UnlockOSThread()
			}
			return
		}
		// No IPv6 (no addrconf noise), no reverse-path filter.
		for _, k := range []string{"all", "default"} {
			netx.SetSysctl("net.ipv6.conf."+k+".disable_ipv6", "1")
			netx.SetSysctl("net.ipv4.conf."+k+".rp_filter", "0")
			// ARP from the side's address on the router's subnet, not from
			// the impersonated source, which the router may not expect there.
			netx.SetSysctl("net.ipv4.conf."+k+".arp_announce", "2")
		}
		// A half-open connection must not send SYN-ACKs into later probes.
		netx.SetSysctl("net.ipv4.tcp_synack_retries", "0")
		if err := netns.Set(orig); err != nil {
			h.Close()
			ch <- result{netns.None(), fmt.Errorf("return from new namespace: %w", err)}
			return // the thread stays locked and dies with the goroutine
		}
		runtime.UnlockOSThread()
		ch <- result{h, nil}
	}()
	res := <-ch
	return res.h, res.err
}

// newSide makes one impersonating neighbour: an anonymous namespace that
// takes the router's fabric end of port (from the fabric or from the side
// of the previous round) and owns addrs on it.
func (r *runner) newSide(fab *netlink.Handle, fabSock *netx.Socket, lr *labRouter, p *isoPort, addrs []netip.Addr) (*side, error) {
	s, err := r.takeSide(p, fmt.Sprintf("harness %s/%s", lr.name, p.iface))
	if err != nil {
		return nil, err
	}
	h := s.ns.h
	from, fromSock := fab, fabSock
	if p.in != nil {
		from, fromSock = p.in.nl, p.in.sock
	}
	l, err := from.LinkByName(p.fabName)
	if err == nil {
		err = fromSock.MoveLink(l.Attrs().Index, h, 0)
	}
	if err != nil {
		s.drop()
		return nil, fmt.Errorf("move %s %s into its harness: %w", lr.name, p.iface, err)
	}
	if p.in != nil {
		r.recycle(p.in)
	}
	p.in = s
	lo, err := s.nl.LinkByName("lo")
	if err == nil {
		err = s.nl.LinkSetUp(lo)
	}
	if err != nil {
		return nil, fmt.Errorf("harness loopback: %w", err)
	}
	// Readiness: a veth sends nothing until the kernel has activated its
	// queue (operstate up), on both ends.
	if err := s.impersonate(p.fabName, addrs); err != nil {
		return nil, err
	}
	if err := waitUp(lr.nl, p.iface); err != nil {
		return nil, err
	}
	return s, nil
}

// takeSide takes a recycled side's namespace, or makes one, for port p.
func (r *runner) takeSide(p *isoPort, name string) (*side, error) {
	s := r.reuseSide()
	if s == nil {
		h, err := newAnonNS()
		if err != nil {
			return nil, fmt.Errorf("harness namespace: %w", err)
		}
		s = &side{ns: nsRef{h: h}}
		if s.nl, err = netlink.NewHandleAt(h); err == nil {
			s.sock, err = netx.OpenSocket(h)
		}
		if err != nil {
			s.drop()
			return nil, err
		}
	}
	s.port, s.ns.name = p, name
	return s, nil
}

// impersonate gives the side's link addrs (with the prefix length of the
// router's subnet holding each, else /32), waits for it to be up and
// routes everything through the router.
func (s *side) impersonate(link string, addrs []netip.Addr) error {
	p := s.port
	l, err := s.nl.LinkByName(link)
	if err != nil {
		return fmt.Errorf("harness link: %w", err)
	}
	for _, a := range addrs {
		pfx := netip.PrefixFrom(a, 32)
		for _, rp := range p.prefixes {
			if rp.Masked().Contains(a) && rp.Bits() < 32 {
				pfx = netip.PrefixFrom(a, rp.Bits())
				break
			}
		}
		if err := s.nl.AddrAdd(l, &netlink.Addr{IPNet: ipNet(pfx), Flags: syscall.IFA_F_NODAD}); err != nil {
			return fmt.Errorf("harness address %s: %w", pfx, err)
		}
	}
	if err := waitUp(s.nl, link); err != nil {
		return err
	}
	rt := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: p.gw.AsSlice(), Dst: ipNet(netip.MustParsePrefix("0.0.0.0/0")),
		Flags: int(netlink.FLAG_ONLINK)}
	if err := s.nl.RouteAdd(rt); err != nil {
		return fmt.Errorf("harness route via %s: %w", p.gw, err)
	}
	return nil
}

// waitUp polls a link until its operstate is up (the kernel's link
// watcher does that within milliseconds for a veth).
func waitUp(nl *netlink.Handle, name string) error {
	deadline := time.Now().Add(2 * time.Second)
	for {
		l, err := nl.LinkByName(name)
		if err != nil {
			return fmt.Errorf("harness link %s: %w", name, err)
		}
		if l.Attrs().OperState == netlink.OperUp {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("harness link %s did not come up (operstate %s)", name, l.Attrs().OperState)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// release moves the router's fabric end back into the fabric namespace
// (down, without addresses) and drops the side. It must run before the
// side's namespace goes: the kernel deletes a veth whose namespace dies,
// and with it the router's interface.
func (s *side) release(fabric nsRef) error {
	l, err := s.nl.LinkByName(s.port.fabName)
	if err == nil {
		err = s.sock.MoveLink(l.Attrs().Index, fabric.h, s.port.origMaster)
	}
	if err != nil {
		return err
	}
	s.port.in = nil
	return nil
}

// A side's namespace, once its link has moved on (to the next round's
// side or back to the fabric), holds only its loopback: addresses, routes
// and neighbours went with the link, its sockets are closed. The next side
// takes it instead of a new namespace, whose creation (and the sysctls it
// needs, disable_ipv6 taking the kernel's rtnl lock) was a large part of
// the harness's time.

// recycle keeps the namespace of a side whose link has left it.
func (r *runner) recycle(s *side) {
	r.sidesMu.Lock()
	defer r.sidesMu.Unlock()
	s.port = nil
	r.freeSides = append(r.freeSides, s)
}

// reuseSide takes a recycled side's namespace (nil if none).
func (r *runner) reuseSide() *side {
	r.sidesMu.Lock()
	defer r.sidesMu.Unlock()
	n := len(r.freeSides)
	if n == 0 {
		return nil
	}
	s := r.freeSides[n-1]
	r.freeSides = r.freeSides[:n-1]
	return s
}

// drop closes the side's handles; its namespace vanishes once nothing in
// it is used.
func (s *side) drop() {
	if s.nl != nil {
		s.nl.Close()
	}
	s.sock.Close()
	s.ns.h.Close()
}

// runRound builds the sides one round needs, probes its flows one after
// another (they share the router's counters) and removes the sides.
func (r *runner) runRound(ctx context.Context, lr *labRouter, fab *netlink.Handle, fabSock *netx.Socket, ports map[string]*isoPort, round []*harnessItem, owner map[netip.Addr]string) error {
	want := map[string][]netip.Addr{}
	for a, ifc := range owner {
		want[ifc] = append(want[ifc], a)
	}
	for _, it := range round {
		// Every used port gets a side, even without addresses to own.
		if it.hp.kind != hopOutput {
			want[it.hp.in] = append(want[it.hp.in], []netip.Addr{}...)
		}
		if it.hp.kind != hopInput && it.hp.out != "" {
			want[it.hp.out] = append(want[it.hp.out], []netip.Addr{}...)
			want[it.hp.outKey()] = append(want[it.hp.outKey()], []netip.Addr{}...)
		}
	}
	sides := map[string]*side{}
	// Hairpin peers go at the end of the round, after the echo servers
	// listening in them (deferred below, so closed first).
	var peers []*side
	defer func() {
		for _, s := range peers {
			r.dropPeer(s)
		}
	}()
	srv := newEchoServers()
	// The sides stay until the next round takes their ports over, or the
	// harness puts the ports back (restorePort).
	defer srv.Close()
	ifaces := make([]string, 0, len(want))
	for ifc := range want {
		ifaces = append(ifaces, ifc)
	}
	sort.Strings(ifaces)
	var setupErr error
	t0 := time.Now()
	// A port's side sorts before its hairpin peer (its key's prefix).
	for _, ifc := range ifaces {
		addrs := want[ifc]
		sort.Slice(addrs, func(i, j int) bool { return addrs[i].Less(addrs[j]) })
		var s *side
		var err error
		if base, ok := strings.CutSuffix(ifc, peerSuffix); ok {
			s, err = r.newPeer(lr, sides[base], addrs)
			if s != nil {
				peers = append(peers, s)
			}
		} else {
			s, err = r.newSide(fab, fabSock, lr, ports[ifc], addrs)
		}
		if err != nil {
			setupErr = err
			break
		}
		sides[ifc] = s
	}
	r.opts.Log.Debug().Str("router", lr.name).Int("sides", len(sides)).Dur("setup", time.Since(t0)).Msg("harness round")
	// The router may still know the previous round's sides' MACs; its
	// counters are read afresh after the links changed.
	for _, p := range ports {
		flushNeigh(lr.nl, p.rLink)
	}
	lr.last = nil
	for _, it := range round {
		if err := ctx.Err(); err != nil {
			return err
		}
		hp := it.hp
		if setupErr != nil {
			*it.slot = &doc.RouterReach{Router: lr.name, In: hp.in, Out: hp.out, Verdict: doc.Unknown, Reason: setupErr.Error()}
			continue
		}
		from := lr.ns
		if hp.kind != hopOutput {
			from = sides[hp.in].ns
		}
		to := lr.ns
		if hp.kind != hopInput && hp.out != "" {
			to = sides[hp.outKey()].ns
		}
		if it.fp.proto != "icmp" && !(hp.kind != hopInput && hp.out == "") {
			if err := srv.ensure(to, lkey{to.name, it.fp.proto, hp.dstOut}); err != nil {
				*it.slot = &doc.RouterReach{Router: lr.name, In: hp.in, Out: hp.out, Verdict: doc.Unknown, Reason: err.Error()}
				continue
			}
		}
		w := &watched{r: lr, kind: hp.kind}
		spec := probeSpec{ns: from, proto: it.fp.proto, src: hp.srcIn, sport: uint16(it.fp.flow.SPort), dst: hp.dstIn,
			token: token(it.fp, "router "+lr.name, it.n)}
		lr.mu.Lock()
		silent := ""
		if lr.blackholes(hp, it.fp.proto, uint16(it.fp.flow.SPort)) {
			silent = lr.name
		}
		out, err := r.probeWatch(ctx, srv, spec, []*watched{w}, false, silent)
		lr.mu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			*it.slot = &doc.RouterReach{Router: lr.name, In: hp.in, Out: hp.out, Verdict: doc.Unknown, Reason: err.Error()}
			continue
		}
		if out.setup != nil {
			*it.slot = &doc.RouterReach{Router: lr.name, In: hp.in, Out: hp.out, Verdict: doc.Unknown, Reason: "cannot open the probe socket: " + out.setup.Error()}
			continue
		}
		*it.slot = r.routerView(w, hp, out, false)
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// blackholes asks the router's kernel whether it routes the hop's packet
// into a blackhole (which drops it without a counter or an answer).
func (x *labRouter) blackholes(hp *hopPlan, proto string, sport uint16) bool {
	if hp.kind == hopInput {
		return false
	}
	p := map[string]uint8{"tcp": 6, "udp": 17, "icmp": 1}[proto]
	ans, err := x.routeGet(hp.dstOut.Addr(), hp.srcIn, hp.in, p, sport, hp.dstOut.Port(), hp.mark)
	if err != nil {
		return routeError(err) == causeBlackhole
	}
	return ans.typ == unix.RTN_BLACKHOLE
}

// A hop that leaves by the interface it came in on (a transit router on a
// stick: in == out) needs two neighbours on one port: the side that sends
// the packet must not own the destination, or its kernel would deliver it
// to itself without the router. The destination's addresses go to a peer:
// a macvlan (bridge mode) on the side's veth, in a namespace of its own.
// The router's frames to the peer's MAC address reach it through the veth;
// the peer answers through the router too (its default route).

// peerSuffix marks the owner key of a hairpin hop's destination side.
const peerSuffix = "\x00peer"

// outKey is the owner key of the hop's egress addresses: the egress
// interface, or its peer for a hairpin hop.
func (hp *hopPlan) outKey() string {
	if hp.kind == hopForward && hp.in != "" && hp.in == hp.out {
		return hp.out + peerSuffix
	}
	return hp.out
}

// newPeer makes the hairpin peer of side base, owning addrs.
func (r *runner) newPeer(lr *labRouter, base *side, addrs []netip.Addr) (*side, error) {
	if base == nil {
		return nil, fmt.Errorf("harness %s: no side for a hairpin peer", lr.name)
	}
	p := base.port
	s, err := r.takeSide(p, fmt.Sprintf("harness %s/%s peer", lr.name, p.iface))
	if err != nil {
		return nil, err
	}
	eth, err := base.nl.LinkByName(p.fabName)
	if err != nil {
		r.recycle(s)
		return nil, fmt.Errorf("harness link: %w", err)
	}
	mv := &netlink.Macvlan{LinkAttrs: netlink.LinkAttrs{Name: "peer", ParentIndex: eth.Attrs().Index, Namespace: netlink.NsFd(s.ns.h)},
		Mode: netlink.MACVLAN_MODE_BRIDGE}
	if err := base.nl.LinkAdd(mv); err != nil {
		r.recycle(s)
		return nil, fmt.Errorf("harness hairpin peer of %s %s: %w", lr.name, p.iface, err)
	}
	fail := func(err error) (*side, error) {
		r.dropPeer(s)
		return nil, err
	}
	for _, name := range []string{"lo", "peer"} {
		l, err := s.nl.LinkByName(name)
		if err == nil {
			err = s.nl.LinkSetUp(l)
		}
		if err != nil {
			return fail(fmt.Errorf("harness hairpin peer %s: %w", name, err))
		}
	}
	if err := s.impersonate("peer", addrs); err != nil {
		return fail(err)
	}
	return s, nil
}

// dropPeer deletes a hairpin peer's macvlan (its lower link moves on to
// the next round's side) and keeps its namespace for another side.
func (r *runner) dropPeer(s *side) {
	if l, err := s.nl.LinkByName("peer"); err == nil {
		s.nl.LinkDel(l)
	}
	r.recycle(s)
}
