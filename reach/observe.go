package reach

import (
	"encoding/binary"
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
	// routing answer that ends the walk (unreachable, blackhole,
	// broadcast …).
	end string
	// host is the lab host the packet is handed to (end == "host").
	host nsRef
	// next is the address the router sends to (gateway or destination).
	next netip.Addr
	// absent names the facts router owning next when the lab does not
	// have it (end == endAbsent: a lab built with --scope path).
	absent string
	// srcOut, dstOut: the header after this router's NAT.
	srcOut, dstOut netip.Addr
}

// natAt is a translation a router applies to the request.
type natAt struct {
	srcIn, srcOut, dstIn, dstOut netip.Addr
}

// endAbsent ends a walk at a next hop whose router is not in the lab.
const endAbsent = "absent"

// factsOwner names the facts router owning an address ("" if none).
func (r *runner) factsOwner(a netip.Addr) string {
	for _, fr := range r.f.Routers {
		for _, ifc := range fr.Interfaces {
			for _, x := range ifc.Addrs {
				if x.Prefix.Addr() == a {
					return fr.Name
				}
			}
		}
	}
	return ""
}

// walkQuery is what a route query needs beyond the addresses: the
// protocol and ports (policy rules and the multipath hash may select on
// them) and the firewall mark a router's mangle rules give the packet
// before routing (from trace's plan).
type walkQuery struct {
	proto        uint8
	sport, dport uint16
	mark         func(router string) uint32
}

// routeAnswer is a router kernel's answer to a route query.
type routeAnswer struct {
	typ uint8 // RTN_*
	oif int
	gw  netip.Addr
}

// routeGet asks the router's kernel where it sends a packet (ip route get
// DST from SRC iif IIF ipproto P sport S dport D mark M) over a route
// netlink socket opened in its namespace; the library's RouteGet cannot
// pass the protocol and ports.
func (x *labRouter) routeGet(dst, src netip.Addr, iif string, proto uint8, sport, dport uint16, mark uint32) (routeAnswer, error) {
	if x.rt == nil {
		rt, err := newOtherhostReader(x.ns)
		if err != nil {
			return routeAnswer{}, err
		}
		x.rt = rt
	}
	var attrs []byte
	attr := func(t uint16, v []byte) {
		a := make([]byte, nlAlign(4+len(v)))
		binary.NativeEndian.PutUint16(a[0:], uint16(4+len(v)))
		binary.NativeEndian.PutUint16(a[2:], t)
		copy(a[4:], v)
		attrs = append(attrs, a...)
	}
	u32 := func(v uint32) []byte { b := make([]byte, 4); binary.NativeEndian.PutUint32(b, v); return b }
	be16 := func(v uint16) []byte { b := make([]byte, 2); binary.BigEndian.PutUint16(b, v); return b }
	d4 := dst.As4()
	attr(unix.RTA_DST, d4[:])
	srcLen := byte(0)
	if src.IsValid() {
		s4 := src.As4()
		attr(unix.RTA_SRC, s4[:])
		srcLen = 32
	}
	if iif != "" {
		l, err := x.nl.LinkByName(iif)
		if err != nil {
			return routeAnswer{}, err
		}
		attr(unix.RTA_IIF, u32(uint32(l.Attrs().Index)))
	}
	if mark != 0 {
		attr(unix.RTA_MARK, u32(mark))
	}
	if proto != 0 {
		attr(unix.RTA_IP_PROTO, []byte{proto})
		if proto == unix.IPPROTO_TCP || proto == unix.IPPROTO_UDP {
			if sport != 0 {
				attr(unix.RTA_SPORT, be16(sport))
			}
			if dport != 0 {
				attr(unix.RTA_DPORT, be16(dport))
			}
		}
	}
	rtm := []byte{unix.AF_INET, 32, srcLen, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	body, err := x.rt.request(unix.RTM_GETROUTE, append(rtm, attrs...))
	if err != nil {
		return routeAnswer{}, err
	}
	if len(body) < len(rtm) {
		return routeAnswer{}, errors.New("short route answer")
	}
	ans := routeAnswer{typ: body[7]}
	for t, v := range nlAttrs(body[len(rtm):]) {
		switch t {
		case unix.RTA_OIF:
			if len(v) >= 4 {
				ans.oif = int(binary.NativeEndian.Uint32(v))
			}
		case unix.RTA_GATEWAY:
			if a, ok := netip.AddrFromSlice(v); ok {
				ans.gw = a.Unmap()
			}
		}
	}
	return ans, nil
}

// owners maps every address of the lab to the namespace owning it.
func (r *runner) owners() map[netip.Addr]owner {
	if r.owned != nil {
		return r.owned
	}
	m := map[netip.Addr]owner{}
	for a, h := range r.hosts {
		m[a] = owner{host: r.hostNS[h.Netns]}
	}
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
func (r *runner) walk(start, in string, src, dst netip.Addr, q walkQuery, nat func(router string, src, dst netip.Addr) (netip.Addr, netip.Addr)) []*walkStep {
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
		ans, err := x.routeGet(d2, src, iif, q.proto, q.sport, q.dport, q.mark(cur))
		if err != nil {
			st.end = routeError(err)
			break
		}
		switch ans.typ {
		case unix.RTN_LOCAL:
			st.kind, st.end = hopInput, "delivered"
			st.srcOut, st.dstOut = s2, d2
			return steps
		case unix.RTN_BROADCAST:
			// A broadcast address of this router (its local table):
			// received through INPUT, never forwarded.
			st.kind, st.end = hopInput, causeBroadcast
			st.srcOut, st.dstOut = s2, d2
			return steps
		case unix.RTN_BLACKHOLE:
			st.end = causeBlackhole
			return steps
		case unix.RTN_UNREACHABLE, unix.RTN_PROHIBIT:
			st.end = causeUnreachable
			return steps
		}
		if l, err := x.nl.LinkByIndex(ans.oif); err == nil {
			st.out = l.Attrs().Name
		}
		st.srcOut, st.dstOut = s2, d2
		next := d2
		if ans.gw.IsValid() {
			next = ans.gw
		}
		st.next = next
		o, ok := r.owners()[next]
		if !ok {
			if h, ok := r.owners()[d2]; ok && h.router == "" {
				o = h
			} else {
				st.end = causeNoNeighbour
				if fr := r.factsOwner(next); fr != "" {
					st.end, st.absent = endAbsent, fr
				}
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
