package reach

import (
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/tsim-dev/tsim/internal/netx"
)

// prepareEndpoints readies the lab's endpoints for probing, recording how
// to undo each change (close runs the undos):
//   - a DNAT target that no lab namespace owns is added to the host that
//     stands for the flow's original destination (the lab places that host
//     where the trace delivers the packet);
//   - a source outside the modelled network (a /32 reached on-link) also
//     gets the gateway its first router sends replies to, and ARPs from
//     that address, as the real upstream router would; otherwise the reply
//     has no neighbour to go to, and a router with a policy rule against
//     the source would refuse its ARP;
//   - every destination namespace answers a SYN once, without
//     retransmitting SYN-ACKs: a half-open connection of a failed probe
//     would otherwise send packets into later probes' counters.
func (r *runner) prepareEndpoints(plans []*flowPlan) {
	owned := map[netip.Addr]bool{}
	for _, fr := range r.f.Routers {
		for _, ifc := range fr.Interfaces {
			for _, a := range ifc.Addrs {
				owned[a.Prefix.Addr()] = true
			}
		}
	}
	for a := range r.hostAddrs {
		owned[a] = true
	}
	tuned := map[string]bool{}
	for _, fp := range plans {
		if fp.problem != "" {
			continue
		}
		for _, h := range fp.hops {
			if r.routers[h.router] == nil {
				fp.problem = fmt.Sprintf("router %s of the path is not in lab %s (built with --scope path for other flows?)", h.router, r.d.Lab.ID)
				break
			}
		}
		if fp.problem != "" {
			continue
		}
		if len(fp.hops) == 0 {
			// Source and destination share a segment: the hosts talk
			// directly, nothing to prepare on the way.
			continue
		}
		dst, _ := netip.ParseAddr(fp.flow.Dst)
		fin := fp.finalDst.Addr()
		last := fp.hops[len(fp.hops)-1]
		if fin != dst && r.hosts[fin] == nil && last.kind != hopInput {
			if h := r.hosts[dst]; h != nil && r.addAddr(r.hostNS[h.Netns], netip.PrefixFrom(fin, 32)) {
				r.hosts[fin] = h
				owned[fin] = true
			}
		}
		if ep := r.dstEndpoint(fp); ep.problem == "" && !tuned[ep.ns.name] {
			tuned[ep.ns.name] = true
			r.setSysctl(ep.ns, "net.ipv4.tcp_synack_retries", "0")
		}
		r.upstream(fp, owned)
		r.downstream(fp, owned)
	}
}

// upstream gives an outside source a neighbour on its first router's
// ingress segment (see prepareEndpoints): the namespace that plays the
// gateway the router sends replies to, or, when no lab namespace plays it,
// that gateway added to the source host; when replies leave by another
// link, any lab namespace on the segment.
func (r *runner) upstream(fp *flowPlan, owned map[netip.Addr]bool) {
	first := fp.hops[0]
	h := r.hosts[fp.src]
	if first.kind != hopForward || h == nil {
		return
	}
	lr := r.routers[first.router]
	ifc := r.f.Router(first.router).Interface(first.in)
	if ifc == nil {
		return
	}
	var pfx []netip.Prefix
	for _, a := range ifc.Addrs {
		if a.Prefix.Addr().Is4() && !a.Peer.IsValid() && a.Prefix.Bits() < 32 {
			if a.Prefix.Masked().Contains(fp.src) {
				return // a host on the router's subnet: it ARPs from its own address
			}
			pfx = append(pfx, a.Prefix)
		}
	}
	move := func(up nsRef) {
		if cur, has := r.hostAddrs[fp.src]; has && cur == up || r.addAddr(up, netip.PrefixFrom(fp.src, 32)) {
			r.hostAddrs[fp.src] = up
			r.srcNS[fp] = up
			r.arpFromSubnet(up)
		}
	}
	gw := netip.Addr{}
	if link, err := lr.nl.LinkByName(first.in); err == nil {
		opts := &netlink.RouteGetOptions{}
		if first.out != "" {
			opts.Iif, opts.SrcAddr = first.out, first.dstOut.Addr().AsSlice()
		}
		rt, err := lr.nl.RouteGetWithOptions(fp.src.AsSlice(), opts)
		if err == nil && len(rt) > 0 && rt[0].Gw != nil && rt[0].LinkIndex == link.Attrs().Index {
			gw, _ = netip.AddrFromSlice(rt[0].Gw)
			gw = gw.Unmap()
		}
	}
	up, played := r.hostAddrs[gw]
	switch {
	case played:
		move(up)
	case gw.IsValid() && !owned[gw]:
		bits := 32
		for _, p := range pfx {
			if p.Masked().Contains(gw) {
				bits = p.Bits()
			}
		}
		ns := r.hostNS[h.Netns]
		if r.addAddr(ns, netip.PrefixFrom(gw, bits)) {
			owned[gw] = true
			r.hostAddrs[gw] = ns
			r.arpFromSubnet(ns)
		}
	case !gw.IsValid():
		for a, ns := range r.hostAddrs {
			for _, p := range pfx {
				if p.Masked().Contains(a) {
					move(ns)
					return
				}
			}
		}
	}
}

// arpFromSubnet makes a host ARP from its address on the router's subnet
// rather than from the (outside) source address of the packet.
func (r *runner) arpFromSubnet(ns nsRef) {
	if r.arpTuned[ns.name] {
		return
	}
	r.arpTuned[ns.name] = true
	r.setSysctl(ns, "net.ipv4.conf.all.arp_announce", "2")
	r.setSysctl(ns, "net.ipv4.conf.eth0.arp_announce", "2")
}

// downstream gives the host that stands for a destination beyond the last
// router the gateway that router's route names, when no lab namespace owns
// it (the lab asks the kernel without the flow's protocol and ports, which
// policy rules may select on).
func (r *runner) downstream(fp *flowPlan, owned map[netip.Addr]bool) {
	last := fp.hops[len(fp.hops)-1]
	gw := last.nextIP
	h := r.hosts[fp.finalDst.Addr()]
	if last.kind != hopForward || !gw.IsValid() || owned[gw] || h == nil || h.Router != last.router || h.Iface != last.out {
		return
	}
	ifc := r.f.Router(last.router).Interface(last.out)
	if ifc == nil {
		return
	}
	for _, a := range ifc.Addrs {
		if a.Prefix.Addr().Is4() && a.Prefix.Masked().Contains(gw) && a.Prefix.Bits() < 32 {
			ns := r.hostNS[h.Netns]
			if r.addAddr(ns, netip.PrefixFrom(gw, a.Prefix.Bits())) {
				owned[gw] = true
				r.hostAddrs[gw] = ns
			}
			return
		}
	}
}

// addAddr adds an address to eth0 of a lab host for the duration of Run.
func (r *runner) addAddr(ns nsRef, p netip.Prefix) bool {
	nl, err := netlink.NewHandleAt(ns.h)
	if err != nil {
		return false
	}
	link, err := nl.LinkByName("eth0")
	if err != nil {
		nl.Close()
		return false
	}
	a := &netlink.Addr{IPNet: ipNet(p)}
	if err := nl.AddrAdd(link, a); err != nil {
		nl.Close()
		return false
	}
	r.opts.Log.Debug().Str("netns", ns.name).Str("addr", p.String()).Msg("endpoint address added for this run")
	r.undo = append(r.undo, func() {
		nl.AddrDel(link, a)
		nl.Close()
	})
	return true
}

// setSysctl sets a net.* sysctl in ns for the duration of Run.
func (r *runner) setSysctl(ns nsRef, key, value string) {
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	var old []byte
	err := inNS(ns, func() error {
		var err error
		if old, err = os.ReadFile(path); err != nil {
			return err
		}
		return netx.SetSysctl(key, value)
	})
	if err != nil {
		r.opts.Log.Debug().Err(err).Str("netns", ns.name).Msg("sysctl")
		return
	}
	prev := strings.TrimSpace(string(old))
	if prev == value {
		return
	}
	r.undo = append(r.undo, func() {
		inNS(ns, func() error { return netx.SetSysctl(key, prev) })
	})
}
