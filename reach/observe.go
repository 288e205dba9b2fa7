package reach

import (
	"errors"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Finding the path the packets really took. During an end-to-end probe
// every router of the lab is watched, not only the predicted ones: which
// routers saw the probe is what their own counters say. The order in
// which they saw it (and which packet, request or reply) comes from the
// lab's kernels: starting at the source, each router's kernel is asked
// where it sends the packet (`ip route get DST from SRC iif IN`, with the
// lab's pinned multipath hash seed, so an ECMP route answers with the
// nexthop the packet took), and the walk goes on at the router owning that
// next hop as long as that router's counters show the probe. The reply is
// walked the same way from the destination, with the addresses the
// request's NAT gave it, translated back only at routers that saw the
// request (only they have the connection).

// owner is a lab namespace that owns an address: a router interface or a
// host.
type owner struct {
	router string // "" for a host
	iface  string
	host   nsRef
}

// walkStep is one router visit found by following the kernel's routes.
type walkStep struct {
	router, in, out string
	kind            string
	// end: how the packet leaves this router ("" = to the next step):
	// delivered (to the router itself), host (to a lab host), or a
	// routing answer that ends the walk (unreachable, blackhole …).
	end string
	// host is the lab host the packet is handed to (end == "host").
	host nsRef
	// next is the address the router sends to (gateway or destination).
	next netip.Addr
	// srcOut, dstOut: the header after this router's NAT.
	srcOut, dstOut netip.Addr
}

// natAt is a translation a router applies to the request.
type natAt struct {
	srcIn, srcOut, dstIn, dstOut netip.Addr
}

// owners maps every address of the lab to the namespace owning it.
func (r *runner) owners() map[netip.Addr]owner {
	if r.owned != nil {
		return r.owned
	}
	m := map[netip.Addr]owner{}
	for a, ns := range r.hostAddrs {
		m[a] = owner{host: ns}
	}
	for _, x := range r.routers {
		links, err := x.nl.LinkList()
		if err != nil {
			continue
		}
		for _, l := range links {
			as, err := x.nl.AddrList(l, netlink.FAMILY_V4)
			if err != nil {
				continue
			}
			for _, a := range as {
				if ip, ok := netip.AddrFromSlice(a.IP); ok {
					m[ip.Unmap()] = owner{router: x.name, iface: l.Attrs().Name}
				}
			}
		}
	}
	r.owned = m
	return m
}

// firstHop asks a host namespace's kernel where it sends dst: the router
// interface owning its gateway (or dst itself, on-link).
func (r *runner) firstHop(ns nsRef, src, dst netip.Addr) (owner, bool) {
	nl, err := netlink.NewHandleAt(ns.h)
	if err != nil {
		return owner{}, false
	}
	defer nl.Close()
	rt, err := nl.RouteGetWithOptions(dst.AsSlice(), &netlink.RouteGetOptions{SrcAddr: src.AsSlice()})
	if err != nil || len(rt) == 0 {
		return owner{}, false
	}
	next := dst
	if rt[0].Gw != nil {
		if gw, ok := netip.AddrFromSlice(rt[0].Gw); ok {
			next = gw.Unmap()
		}
	}
	o, ok := r.owners()[next]
	return o, ok
}

// walk follows a packet (src → dst) from router start, entered by in (""
// when the router sends it itself), through the lab's kernels. nat gives
// the translations routers apply (request: the plan's; reply: the reverse
// of those the request met). It stops at a delivery, a host, a routing
// answer, an address no lab namespace owns, or after 32 routers (a loop).
func (r *runner) walk(start, in string, src, dst netip.Addr, nat func(router string, src, dst netip.Addr) (netip.Addr, netip.Addr)) []*walkStep {
	var steps []*walkStep
	seen := map[string]bool{}
	cur, iif := start, in
	for len(steps) < 32 {
		x := r.routers[cur]
		if x == nil {
			break
		}
		st := &walkStep{router: cur, in: iif, kind: hopForward}
		if iif == "" {
			st.kind = hopOutput
		}
		steps = append(steps, st)
		key := cur + "|" + iif + "|" + src.String() + "|" + dst.String()
		if seen[key] {
			st.end = "loop"
			break
		}
		seen[key] = true
		s2, d2 := nat(cur, src, dst)
		opts := &netlink.RouteGetOptions{SrcAddr: src.AsSlice()}
		if iif != "" {
			opts.Iif = iif
		}
		rt, err := x.nl.RouteGetWithOptions(d2.AsSlice(), opts)
		if err != nil || len(rt) == 0 {
			st.end = routeError(err)
			break
		}
		switch rt[0].Type {
		case unix.RTN_LOCAL:
			st.kind, st.end = hopInput, "delivered"
			st.srcOut, st.dstOut = s2, d2
			return steps
		case unix.RTN_BLACKHOLE:
			st.end = causeBlackhole
			return steps
		case unix.RTN_UNREACHABLE, unix.RTN_PROHIBIT:
			st.end = causeUnreachable
			return steps
		}
		if l, err := x.nl.LinkByIndex(rt[0].LinkIndex); err == nil {
			st.out = l.Attrs().Name
		}
		st.srcOut, st.dstOut = s2, d2
		next := d2
		if rt[0].Gw != nil {
			if gw, ok := netip.AddrFromSlice(rt[0].Gw); ok {
				next = gw.Unmap()
			}
		}
		st.next = next
		o, ok := r.owners()[next]
		if !ok {
			if h, ok := r.owners()[d2]; ok && h.router == "" {
				o = h
			} else {
				st.end = causeNoNeighbour
				break
			}
		}
		if o.router == "" {
			st.end, st.host = "host", o.host
			break
		}
		cur, iif, src, dst = o.router, o.iface, s2, d2
	}
	return steps
}

// routeError names the routing answer of a failed route query.
func routeError(err error) string {
	switch {
	case err == nil:
		return causeNoRoute
	case errors.Is(err, syscall.EXDEV):
		return causeRPFilter
	case errors.Is(err, syscall.ENETUNREACH):
		return causeNoRoute
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.EACCES):
		return causeUnreachable
	case errors.Is(err, syscall.EINVAL):
		return causeBlackhole
	}
	return causeNoRoute
}
