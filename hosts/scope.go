package hosts

import (
	"net/netip"
	"strings"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
)

// pathRouters returns the routers a document's flows can touch: the
// routers of every traced hop (request and reply, of every ECMP branch),
// plus what a forwarding closure over the facts adds, so that a lab of these routers alone carries every packet the
// kernel may send for the flows:
//
//   - request: from each router of the request path, every nexthop of
//     every longest-prefix route to the destination in any routing table
//     (all ECMP nexthops, every policy-routing table), followed router by
//     router until the packet is delivered, leaves the network or is
//     dropped by a route;
//   - DNAT: where a router's nat PREROUTING or OUTPUT has a DNAT rule whose
//     destination match (if any) holds the address, the closure also
//     follows the rule's --to-destination from that router;
//   - reply: the same closure from every router the request may reach
//     back towards the source.
//
// Taking every table of a router over-approximates policy routing (a
// packet uses one table); the cost is a router too many in the lab, never
// a missing one. Netfilter is not consulted: a router a firewall makes
// unreachable is still included.
func pathRouters(f *facts.Facts, d *doc.Document) map[string]bool {
	on := map[string]bool{}
	c := newCloser(f)
	flows := map[string]*doc.Flow{}
	for _, fl := range d.Flows {
		flows[fl.ID] = fl
	}
	for _, t := range d.Trace {
		fl := flows[t.Flow]
		requests := [][]*doc.Hop{t.Hops}
		replies := [][]*doc.Hop{t.ReplyHops}
		for _, b := range t.Branches {
			requests = append(requests, b.Hops)
			replies = append(replies, b.ReplyHops)
		}
		for _, hops := range replies {
			for _, h := range hops {
				if h.Kind == doc.HopRouter {
					on[h.Node] = true
				}
			}
		}
		for _, hops := range requests {
			var first, last string
			for _, h := range hops {
				if h.Kind != doc.HopRouter {
					continue
				}
				on[h.Node] = true
				if first == "" {
					first = h.Node
				}
				last = h.Node
			}
			if fl == nil {
				continue
			}
			src, err1 := netip.ParseAddr(fl.Src)
			dst, err2 := netip.ParseAddr(fl.Dst)
			if err1 != nil || err2 != nil {
				continue
			}
			if first == "" {
				// No router on the way (one subnet): the routers on the
				// endpoints' subnets, whose segments the hosts join.
				for _, r := range f.Routers {
					if connected(r, src) || connected(r, dst) {
						on[r.Name] = true
					}
				}
				continue
			}
			// The request (also past a router that denies it: reach tests
			// every router of the path with the filters open), then the
			// reply from wherever the request may end.
			req := map[string]bool{}
			for _, h := range hops {
				if h.Kind == doc.HopRouter {
					c.close(h.Node, dst, req)
				}
			}
			req[last] = true
			for r := range req {
				on[r] = true
				c.close(r, src, on)
			}
		}
	}
	return on
}

// closer follows routes through the facts.
type closer struct {
	routers map[string]*facts.Router
	owner   map[netip.Addr]string
	seen    map[closeKey]bool
}

type closeKey struct {
	router string
	to     netip.Addr
}

func newCloser(f *facts.Facts) *closer {
	c := &closer{routers: map[string]*facts.Router{}, owner: map[netip.Addr]string{}, seen: map[closeKey]bool{}}
	for _, r := range f.Routers {
		c.routers[r.Name] = r
		for _, i := range r.Interfaces {
			for _, a := range i.Addrs {
				if _, dup := c.owner[a.Prefix.Addr()]; !dup {
					c.owner[a.Prefix.Addr()] = r.Name
				}
			}
		}
	}
	return c
}

// close adds to on every router a packet to `to` can reach from router.
func (c *closer) close(router string, to netip.Addr, on map[string]bool) {
	work := []string{router}
	for len(work) > 0 {
		name := work[len(work)-1]
		work = work[:len(work)-1]
		k := closeKey{name, to}
		if c.seen[k] {
			continue
		}
		c.seen[k] = true
		on[name] = true
		r := c.routers[name]
		if r == nil {
			continue
		}
		for _, t := range dnatTargets(r, to) {
			c.close(name, t, on)
		}
		if c.owner[to] == name {
			continue
		}
		for _, gw := range nexthops(r, to) {
			if o, ok := c.owner[gw]; ok {
				work = append(work, o)
			}
		}
		if o, ok := c.owner[to]; ok && connected(r, to) {
			work = append(work, o)
		}
	}
}

// dnatTargets returns the --to-destination addresses of r's DNAT rules
// (nat PREROUTING and OUTPUT, and the chains they jump to) whose -d, if
// any, holds a. Other matches are ignored: a target too many costs a
// router too many at most.
func dnatTargets(r *facts.Router, a netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, t := range r.Iptables {
		if t.Name != "nat" {
			continue
		}
		for _, ch := range t.Chains {
			if ch.Name == "POSTROUTING" || ch.Name == "INPUT" {
				continue
			}
			for _, rule := range ch.Rules {
				if rule.Target == nil || rule.Target.Name != "DNAT" || !dstMatches(rule, a) {
					continue
				}
				for _, o := range rule.Target.Options {
					if o.Name != "to-destination" || len(o.Args) == 0 {
						continue
					}
					host := o.Args[0]
					if i := strings.IndexAny(host, ":-"); i >= 0 {
						host = host[:i] // address[-address][:port[-port]]: the first address
					}
					if x, err := netip.ParseAddr(host); err == nil {
						out = append(out, x)
					}
				}
			}
		}
	}
	return out
}

// dstMatches says whether a rule's -d (absent, or not negated and holding
// a) lets a through.
func dstMatches(rule *facts.IptRule, a netip.Addr) bool {
	for _, m := range rule.Matches {
		if m.Module != "" {
			continue
		}
		for _, o := range m.Options {
			if o.Name != "destination" || o.Neg {
				continue
			}
			held := false
			for _, arg := range o.Args {
				for _, x := range strings.Split(arg, ",") {
					if p, err := netip.ParsePrefix(x); err == nil && p.Contains(a) {
						held = true
					} else if y, err := netip.ParseAddr(x); err == nil && y == a {
						held = true
					}
				}
			}
			if !held {
				return false
			}
		}
	}
	return true
}

// nexthops returns the gateways of the longest-prefix unicast routes to a
// in every table of r (every nexthop of a multipath route).
func nexthops(r *facts.Router, a netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, t := range r.Tables {
		best := -1
		for _, rt := range t.Routes {
			if rt.Dst.Contains(a) && rt.Dst.Bits() > best {
				best = rt.Dst.Bits()
			}
		}
		for _, rt := range t.Routes {
			if best < 0 || rt.Dst.Bits() != best || !rt.Dst.Contains(a) {
				continue
			}
			if rt.Type != "" && rt.Type != "unicast" {
				continue
			}
			if rt.Gateway.IsValid() {
				out = append(out, rt.Gateway)
			}
			for _, n := range rt.Nexthops {
				if n.Gateway.IsValid() {
					out = append(out, n.Gateway)
				}
			}
		}
	}
	return out
}

// connected says whether a is on a subnet of one of r's interfaces.
func connected(r *facts.Router, a netip.Addr) bool {
	for _, i := range r.Interfaces {
		for _, x := range i.Addrs {
			if facts.ConnectedPrefix(x).Contains(a) {
				return true
			}
		}
	}
	return false
}

// Select returns the routers a lab of scope would hold for the document
// (what Up builds; "" as in Options.Scope), without building anything.
func Select(f *facts.Facts, d *doc.Document, scope string) ([]*facts.Router, error) {
	return selectRouters(f, d, scope)
}
