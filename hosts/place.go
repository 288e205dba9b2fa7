package hosts

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
)

// where is a place on the fabric: a router interface.
type where struct {
	router, iface string
}

// placeHosts decides the endpoint hosts of every flow (DESIGN §6):
//   - an address owned by a router gets no host (probes run in the router);
//   - otherwise the trace says where it lives: the source enters the first
//     router hop on its `in` interface, a delivered destination leaves the
//     last router hop on its `out` interface;
//   - without a usable trace, the router interface whose connected subnet
//     holds the address (longest prefix, then router name) is used, and a
//     flow's `ingress` ROUTER:IFACE places an outside source;
//   - a destination beyond the network (EXITS_NETWORK) gets an "internet"
//     host on the gateway's uplink segment that owns the destination and
//     the uplink's next-hop address (resolved from the gateway router's
//     kernel once the routers are built), with a default route back through
//     the gateway, so packets leave the gateway exactly as the kernel routes
//     them and replies return the same way.
func placeHosts(p *plan, f *facts.Facts, d *doc.Document) ([]*hostPlan, []string) {
	var warnings []string
	owned := map[netip.Addr]bool{}
	for _, r := range f.Routers {
		for _, ifc := range r.Interfaces {
			for _, a := range ifc.Addrs {
				owned[a.Prefix.Addr()] = true
			}
		}
	}
	traces := map[string]*doc.Trace{}
	for _, t := range d.Trace {
		traces[t.Flow] = t
	}
	flows := append([]*doc.Flow(nil), d.Flows...)
	// Traces without a flow entry still name their endpoints only through
	// the flow; they are skipped (nothing to place).

	regular := map[string]*hostPlan{} // ip|bridge
	internet := map[where]*hostPlan{}
	var order []*hostPlan
	usedNames := map[string]bool{}
	for _, rp := range p.routers {
		usedNames[rp.ns] = true
	}
	usedNames[p.fabric] = true

	addRegular := func(ip netip.Addr, w where) {
		rp, ifp := p.ifaceOf(w.router, w.iface)
		if rp == nil || ifp == nil || ifp.seg == nil {
			warnings = append(warnings, fmt.Sprintf("no lab segment for %s at %s %s; no host made", ip, w.router, w.iface))
			return
		}
		if why := reserved(ip, ifp.ifc); why != "" {
			// The router's kernel takes the subnet broadcast as its own
			// (a broadcast route of its local table) and never forwards
			// it; a host there would answer what no real host can.
			warnings = append(warnings, fmt.Sprintf("%s is %s on %s %s; no host made", ip, why, w.router, w.iface))
			return
		}
		k := ip.String() + "|" + ifp.seg.bridge
		if regular[k] != nil {
			return
		}
		h := &hostPlan{ip: ip, router: w.router, iface: w.iface, seg: ifp.seg}
		for _, a := range ifp.ifc.Addrs {
			if a.Prefix.Addr().Is4() && !a.Peer.IsValid() && a.Prefix.Contains(ip) && a.Prefix.Bits() < 32 {
				h.addrs = []netip.Prefix{netip.PrefixFrom(ip, a.Prefix.Bits())}
				h.gw = a.Prefix.Addr()
				break
			}
		}
		if !h.gw.IsValid() {
			// An outside source arriving on this interface: it owns only its
			// address and reaches the router on-link.
			h.addrs = []netip.Prefix{netip.PrefixFrom(ip, 32)}
			h.gw = firstV4(ifp.ifc)
			h.onlink = true
		}
		h.name = uniqueName("h-"+ip.String(), usedNames)
		h.ns = uniqueName(nsName(p.id, h.name), usedNames)
		regular[k] = h
		order = append(order, h)
	}
	// outside reports an address the interface w does not reach on a
	// connected subnet: a host there could only be an on-link /32.
	outside := func(ip netip.Addr, w where) bool {
		_, ifp := p.ifaceOf(w.router, w.iface)
		if ifp == nil {
			return false
		}
		for _, a := range ifp.ifc.Addrs {
			if a.Prefix.Addr().Is4() && !a.Peer.IsValid() && a.Prefix.Bits() < 32 && a.Prefix.Masked().Contains(ip) {
				return false
			}
		}
		return true
	}
	addInternet := func(dst, src netip.Addr, w where, in string) {
		rp, ifp := p.ifaceOf(w.router, w.iface)
		if rp == nil || ifp == nil || ifp.seg == nil {
			warnings = append(warnings, fmt.Sprintf("no lab segment for internet destination %s at %s %s; no host made", dst, w.router, w.iface))
			return
		}
		h := internet[w]
		if h == nil {
			h = &hostPlan{internet: true, router: w.router, iface: w.iface, seg: ifp.seg, srcIP: src, inIface: in}
			h.name = uniqueName("inet-"+w.router+"-"+w.iface, usedNames)
			h.ns = uniqueName(nsName(p.id, h.name), usedNames)
			internet[w] = h
			order = append(order, h)
		}
		for _, x := range h.dsts {
			if x == dst {
				return
			}
		}
		h.dsts = append(h.dsts, dst)
		if !h.ip.IsValid() {
			h.ip = dst
		}
	}

	for _, fl := range flows {
		src, err1 := netip.ParseAddr(fl.Src)
		dst, err2 := netip.ParseAddr(fl.Dst)
		t := traces[fl.ID]
		first, last := routerHops(t)
		if err1 == nil && src.Is4() && !owned[src] {
			var at where
			switch {
			case first != nil && first.In != "":
				at = where{first.Node, first.In}
			case fl.Ingress != "":
				r, i, _ := strings.Cut(fl.Ingress, ":")
				at = where{r, i}
			}
			switch {
			case at.router != "" && outside(src, at):
				// A source beyond the network (the Internet, entering
				// with --ingress): the stand-in for what lies behind that
				// interface owns it, and the gateway the router sends
				// replies to, so the reply comes back.
				addInternet(src, netip.Addr{}, at, "")
			case at.router != "":
				addRegular(src, at)
			default:
				if w, ok := locate(p, src); ok {
					addRegular(src, w)
				} else {
					warnings = append(warnings, fmt.Sprintf("flow %s: source %s is in no connected subnet of the lab; no host made", fl.ID, src))
				}
			}
		}
		end, replyFirst := requestEnd(t), replyRouter(t)
		if err2 == nil && dst.Is4() && end == doc.HopHost && last != nil && last.Out != "" {
			// The destination answers through the router its reply enters
			// first (its gateway), which ECMP may make another than the one
			// the request came from. A DNAT on the way (port forward,
			// hairpin): the server behind it owns the translated address
			// and listens there.
			at := where{last.Node, last.Out}
			if replyFirst != nil && replyFirst.In != "" {
				at = where{replyFirst.Node, replyFirst.In}
			}
			if fin := natDst(t, dst); !owned[fin] {
				addRegular(fin, at)
			}
		} else if err2 == nil && dst.Is4() && !owned[dst] {
			switch {
			case end == doc.HopInternet && last != nil && last.Out != "":
				addInternet(dst, src, where{last.Node, last.Out}, last.In)
			default:
				if w, ok := locate(p, dst); ok {
					addRegular(dst, w)
				} else {
					warnings = append(warnings, fmt.Sprintf("flow %s: destination %s is in no connected subnet of the lab; no host made", fl.ID, dst))
				}
			}
		}
	}
	for i, h := range order {
		h.fabric = fmt.Sprintf("h%03d", i)
	}
	return order, warnings
}

// natDst is the destination a trace's DNAT steps translate dst to (dst
// when none does).
func natDst(t *doc.Trace, dst netip.Addr) netip.Addr {
	for _, h := range t.Hops {
		for _, st := range h.Steps {
			if st.Kind != doc.StepNAT || !strings.EqualFold(st.Action, "DNAT") {
				continue
			}
			if ap, err := netip.ParseAddrPort(st.To); err == nil {
				dst = ap.Addr()
			} else if a, err := netip.ParseAddr(st.To); err == nil {
				dst = a
			}
		}
	}
	return dst
}

// routerHops returns the first and last router hops of a trace.
func routerHops(t *doc.Trace) (first, last *doc.Hop) {
	if t == nil {
		return nil, nil
	}
	for _, h := range t.Hops {
		if h.Kind != doc.HopRouter {
			continue
		}
		if first == nil {
			first = h
		}
		last = h
	}
	return first, last
}

// requestEnd is the kind of the last hop of a request that arrived (host
// or internet), "" when it did not.
func requestEnd(t *doc.Trace) string {
	if t == nil || len(t.Hops) == 0 {
		return ""
	}
	if t.Disposition != doc.Delivered && t.Disposition != doc.ExitsNetwork && t.Direction != doc.Reply && !strings.HasPrefix(t.Reason, "the handshake's ACK") {
		return ""
	}
	return t.Hops[len(t.Hops)-1].Kind
}

// replyRouter is the first router hop of a trace's reply.
func replyRouter(t *doc.Trace) *doc.Hop {
	if t == nil {
		return nil
	}
	for _, h := range t.ReplyHops {
		if h.Kind == doc.HopRouter {
			return h
		}
	}
	return nil
}

// locate finds the lab interface whose connected subnet holds ip.
func locate(p *plan, ip netip.Addr) (where, bool) {
	type cand struct {
		w    where
		bits int
	}
	var cs []cand
	for _, rp := range p.routers {
		for _, ifp := range rp.ifaces {
			if ifp.seg == nil {
				continue
			}
			for _, a := range ifp.ifc.Addrs {
				if a.Prefix.Addr().Is4() && !a.Peer.IsValid() && a.Prefix.Masked().Contains(ip) {
					cs = append(cs, cand{where{rp.r.Name, ifp.ifc.Name}, a.Prefix.Bits()})
				}
			}
		}
	}
	if len(cs) == 0 {
		return where{}, false
	}
	sort.SliceStable(cs, func(i, j int) bool {
		if cs[i].bits != cs[j].bits {
			return cs[i].bits > cs[j].bits
		}
		return cs[i].w.router < cs[j].w.router
	})
	return cs[0].w, true
}

// reserved says why no host may own ip on interface ifc: it is the
// network or the broadcast address of one of ifc's IPv4 subnets with a
// prefix shorter than /31 ("" when it may).
func reserved(ip netip.Addr, ifc *facts.Interface) string {
	if !ip.Is4() {
		return ""
	}
	for _, a := range ifc.Addrs {
		p := a.Prefix.Masked()
		if a.Peer.IsValid() {
			p = a.Peer.Masked()
		}
		if !p.Addr().Is4() || p.Bits() >= 31 || !p.Contains(ip) {
			continue
		}
		b := p.Addr().As4()
		n := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		n |= ^uint32(0) >> p.Bits()
		switch ip {
		case p.Addr():
			return "the network address of " + p.String()
		case netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}):
			return "the broadcast address of " + p.String()
		}
	}
	return ""
}

func firstV4(ifc *facts.Interface) netip.Addr {
	for _, a := range ifc.Addrs {
		if a.Prefix.Addr().Is4() {
			return a.Prefix.Addr()
		}
	}
	return netip.Addr{}
}
