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
			switch {
			case first != nil && first.In != "":
				addRegular(src, where{first.Node, first.In})
			case fl.Ingress != "":
				r, i, _ := strings.Cut(fl.Ingress, ":")
				addRegular(src, where{r, i})
			default:
				if w, ok := locate(p, src); ok {
					addRegular(src, w)
				} else {
					warnings = append(warnings, fmt.Sprintf("flow %s: source %s is in no connected subnet of the lab; no host made", fl.ID, src))
				}
			}
		}
		if err2 == nil && dst.Is4() && !owned[dst] {
			switch {
			case t != nil && t.Disposition == doc.ExitsNetwork && last != nil && last.Out != "":
				addInternet(dst, src, where{last.Node, last.Out}, last.In)
			case t != nil && last != nil && last.Out != "" && t.Disposition == doc.Delivered:
				addRegular(dst, where{last.Node, last.Out})
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

func firstV4(ifc *facts.Interface) netip.Addr {
	for _, a := range ifc.Addrs {
		if a.Prefix.Addr().Is4() {
			return a.Prefix.Addr()
		}
	}
	return netip.Addr{}
}
