package reach

import (
	"context"
	"net/netip"
	"strconv"
	"strings"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/trace"
)

// hopPlan is one router visit of a flow's path, with the packet as it
// arrives and as it leaves (after this router's NAT).
type hopPlan struct {
	router  string
	kind    string // hopForward, hopInput, hopOutput
	in, out string
	srcIn   netip.Addr
	dstIn   netip.AddrPort
	srcOut  netip.Addr
	dstOut  netip.AddrPort
	nextIP  netip.Addr // the next router's address on the egress segment
	// refused names a route the packet consults here that the kernel
	// refused in the lab (from trace's route steps): the lab cannot show
	// what the real router does.
	refused string
	// hasNext: the open path goes on after this router (a next router, a
	// host or the internet); otherwise nobody on the egress link owns the
	// destination and the packet dies there (no neighbour).
	hasNext bool
	pred    trace.RouterVerdict
	hasPred bool
}

// flowPlan is everything Run needs to probe one flow.
type flowPlan struct {
	flow     *doc.Flow
	proto    string
	real     *doc.Trace // trace as the facts decide it
	open     *doc.Trace // trace with every filter table open: the whole path
	hops     []*hopPlan // router visits of the open path
	src      netip.Addr
	finalDst netip.AddrPort // destination after every NAT on the path
	// problem makes both views UNKNOWN (no path, no endpoint …).
	problem string
}

// openFacts returns a copy of f whose filter tables accept everything
// (built-in chains, policy ACCEPT, no rules), except the filters of keep.
// Tracing with it gives the path a packet would take if no firewall (or
// only keep's) stopped it: the per-router harness tests every router of
// that path, even beyond one that blocks.
func openFacts(f *facts.Facts, keep string) *facts.Facts {
	nf := *f
	nf.Routers = make([]*facts.Router, len(f.Routers))
	for i, r := range f.Routers {
		if r.Name == keep {
			nf.Routers[i] = r
			continue
		}
		nr := *r
		nr.Iptables = make([]*facts.IPTable, 0, len(r.Iptables))
		for _, t := range r.Iptables {
			if t.Name != "filter" {
				nr.Iptables = append(nr.Iptables, t)
				continue
			}
			open := &facts.IPTable{Name: "filter", Pos: t.Pos}
			for _, c := range t.Chains {
				if c.Builtin() {
					open.Chains = append(open.Chains, &facts.Chain{Name: c.Name, Policy: "ACCEPT", Rules: []*facts.IptRule{}, Pos: c.Pos})
				}
			}
			nr.Iptables = append(nr.Iptables, open)
		}
		nf.Routers[i] = &nr
	}
	return &nf
}

// planFlows computes the open path, the packet at every router and the
// predictions of both views.
func planFlows(ctx context.Context, f *facts.Facts, d *doc.Document) []*flowPlan {
	real := map[string]*doc.Trace{}
	for _, t := range d.Trace {
		real[t.Flow] = t
	}
	var eng *trace.Engine
	open := trace.New(openFacts(f, ""))
	isolated := map[string]*trace.Engine{}
	var plans []*flowPlan
	for _, fl := range d.Flows {
		fp := &flowPlan{flow: fl, proto: strings.ToLower(fl.Proto)}
		if fp.proto == "" {
			fp.proto = "icmp"
		}
		plans = append(plans, fp)
		if err := open.Validate(fl); err != nil {
			fp.problem = err.Error()
			continue
		}
		fp.real = real[fl.ID]
		if fp.real == nil {
			if eng == nil {
				eng = trace.New(f)
			}
			fp.real = eng.Trace(ctx, fl)
		}
		fp.open = open.Trace(ctx, fl)
		src, _ := netip.ParseAddr(fl.Src)
		dst, _ := netip.ParseAddr(fl.Dst)
		fp.src = src
		cur := struct {
			src netip.Addr
			dst netip.AddrPort
		}{src, netip.AddrPortFrom(dst, uint16(fl.DPort))}
		hops := fp.open.Hops
		for i, h := range hops {
			if h.Kind != doc.HopRouter {
				continue
			}
			hp := &hopPlan{router: h.Node, in: h.In, out: h.Out, srcIn: cur.src, dstIn: cur.dst, kind: hopForward}
			for _, s := range h.Steps {
				if s.Kind != doc.StepNAT {
					continue
				}
				switch strings.ToUpper(s.Action) {
				case "DNAT", "REDIRECT":
					if ap, ok := parseHostPort(s.To, cur.dst.Port()); ok {
						cur.dst = ap
					}
				case "SNAT", "MASQUERADE":
					if ap, ok := parseHostPort(s.To, 0); ok {
						cur.src = ap.Addr()
					}
				}
			}
			hp.srcOut, hp.dstOut = cur.src, cur.dst
			switch {
			case h.In == "":
				hp.kind = hopOutput
			case h.Out == "" && i == len(hops)-1 && fp.open.Disposition == doc.Delivered:
				hp.kind = hopInput
			}
			hp.nextIP = routeVia(h)
			hp.hasNext = i+1 < len(hops)
			for _, st := range h.Steps {
				if st.Kind == doc.StepRoute && len(st.Refused) > 0 && hp.refused == "" {
					var notes []string
					for _, x := range st.Refused {
						notes = append(notes, strconv.Quote(x.Route)+" ("+x.Reason+")")
					}
					hp.refused = "ignored, the kernel refuses: " + strings.Join(notes, "; ")
				}
			}
			if !hp.nextIP.IsValid() && i+1 < len(hops) && hops[i+1].Kind == doc.HopRouter {
				hp.nextIP, _ = netip.ParseAddr(hops[i+1].IP)
			}
			fp.hops = append(fp.hops, hp)
		}
		fp.finalDst = cur.dst
		if len(fp.hops) == 0 && fp.open.Disposition != doc.Delivered {
			fp.problem = "the path crosses no router of the lab (" + fp.open.Disposition + ": " + fp.open.Reason + ")"
			continue
		}
		// Per-router predictions: each router alone (every other filter
		// open), as the harness tests it.
		for _, hp := range fp.hops {
			e := isolated[hp.router]
			if e == nil {
				e = trace.New(openFacts(f, hp.router))
				isolated[hp.router] = e
			}
			t := e.Trace(ctx, fl)
			for _, v := range trace.PerRouter(t) {
				if v.Router == hp.router {
					hp.pred, hp.hasPred = v, true
					break
				}
			}
		}
	}
	return plans
}

// parseHostPort reads a NAT step's "ip" or "ip:port".
func parseHostPort(s string, port uint16) (netip.AddrPort, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a, port), true
	}
	return netip.AddrPort{}, false
}

// predictedE2E maps a trace disposition to the end-to-end vocabulary.
func predictedE2E(t *doc.Trace) string {
	switch {
	case t == nil:
		return doc.Unknown
	case trace.Positive(t.Disposition):
		return doc.Reachable
	case t.Disposition == doc.Unknown:
		return doc.Unknown
	}
	return doc.Unreachable
}

// routeVia returns the gateway of the hop's last route step that leaves by
// its egress interface (the route step's typed next hop).
func routeVia(h *doc.Hop) netip.Addr {
	var gw netip.Addr
	for _, s := range h.Steps {
		if s.Kind != doc.StepRoute || s.Gateway == "" || s.Device != "" && s.Device != h.Out {
			continue
		}
		if a, err := netip.ParseAddr(s.Gateway); err == nil {
			gw = a
		}
	}
	return gw
}
