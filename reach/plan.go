package reach

import (
	"context"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

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
	// broadcast: the destination is a broadcast address of this router
	// (trace's route step is a broadcast route of the local table): the
	// packet ends here, received, not forwarded.
	broadcast bool
	// mark is the firewall mark this router's mangle rules give the
	// packet before routing (trace's mangle steps; 0: none).
	mark uint32
	// branch lists the routers of the ECMP branch this visit belongs to
	// when it is not on the representative path (nil otherwise).
	branch []string
}

// flowPlan is everything Run needs to probe one flow.
type flowPlan struct {
	flow  *doc.Flow
	proto string
	real  *doc.Trace // trace as the facts decide it (the document's)
	hops  []*hopPlan // router visits of the open path
	// replyMark is the mark trace gives the reply at each router.
	replyMark map[string]uint32
	// extra are the router visits only other ECMP branches make: the
	// per-router harness tests them too.
	extra    []*hopPlan
	src      netip.Addr
	finalDst netip.AddrPort // destination after every NAT on the path
	// problem makes both views UNKNOWN (no path, no endpoint …).
	problem string
	// kernelBranch is the KernelBranch of trace with the lab's pinned
	// multipath hash seeds: the ECMP branch the lab's kernels should take
	// (0 when the flow has one path or the seeds are not known).
	//
	// A plan keeps nothing else of the traces it is made from (the open
	// path's, the seeded one, each router's isolated one): a suite's plans
	// live for the whole of Run, and whole traces of every flow would make
	// its memory grow by hundreds of kB per flow.
	kernelBranch int
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
// predictions of both views. Flows are planned by one worker per CPU (the
// engines are safe for concurrent use): a flow costs several traces, one
// per router of its path with every other router open.
func planFlows(ctx context.Context, f *facts.Facts, d *doc.Document) []*flowPlan {
	pl := &planner{f: f, real: map[string]*doc.Trace{}, labSeed: labHashSeed(f, d.Lab), open: trace.New(openFacts(f, "")),
		isolated: map[string]*trace.Engine{}}
	for _, t := range d.Trace {
		pl.real[t.Flow] = t
	}
	plans := make([]*flowPlan, len(d.Flows))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, fl := range d.Flows {
		g.Go(func() error {
			plans[i] = pl.plan(gctx, fl)
			return nil
		})
	}
	g.Wait()
	return plans
}

// planner holds the engines planFlows shares between its workers.
type planner struct {
	f       *facts.Facts
	real    map[string]*doc.Trace
	labSeed uint32
	open    *trace.Engine

	mu        sync.Mutex
	eng       *trace.Engine
	seededEng *trace.Engine
	isolated  map[string]*trace.Engine
}

// engine returns the engine *p, made by mk on first use.
func (pl *planner) engine(p **trace.Engine, mk func() *trace.Engine) *trace.Engine {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if *p == nil {
		*p = mk()
	}
	return *p
}

func (pl *planner) isolatedEngine(router string) *trace.Engine {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	e := pl.isolated[router]
	if e == nil {
		e = trace.New(openFacts(pl.f, router))
		pl.isolated[router] = e
	}
	return e
}

// plan plans one flow.
func (pl *planner) plan(ctx context.Context, fl *doc.Flow) *flowPlan {
	f := pl.f
	fp := &flowPlan{flow: fl, proto: strings.ToLower(fl.Proto)}
	if fp.proto == "" {
		fp.proto = "icmp"
	}
	if err := pl.open.Validate(fl); err != nil {
		fp.problem = err.Error()
		return fp
	}
	fp.real = pl.real[fl.ID]
	if fp.real == nil {
		fp.real = pl.engine(&pl.eng, func() *trace.Engine { return trace.New(f) }).Trace(ctx, fl)
	}
	if len(fp.real.Branches) > 1 && pl.labSeed != 0 {
		e := pl.engine(&pl.seededEng, func() *trace.Engine {
			e := trace.New(f)
			e.SetHashSeed(pl.labSeed)
			return e
		})
		fp.kernelBranch = e.Trace(ctx, fl).KernelBranch
	}
	openT := pl.open.Trace(ctx, fl)
	fp.replyMark = replyMarks(fp.real)
	src, _ := netip.ParseAddr(fl.Src)
	dst, _ := netip.ParseAddr(fl.Dst)
	fp.src = src
	fp.hops, fp.finalDst = branchHops(fl, src, dst, openT.Hops, openT.Disposition)
	// The other ECMP branches' routers are tested alone too.
	for _, b := range openT.Branches {
		bh, _ := branchHops(fl, src, dst, b.Hops, b.Disposition)
		var routers []string
		for _, hp := range bh {
			routers = append(routers, hp.router)
		}
	next:
		for _, hp := range bh {
			for _, x := range fp.harnessHops() {
				if x.router == hp.router && x.in == hp.in && x.out == hp.out {
					continue next
				}
			}
			hp.branch = routers
			fp.extra = append(fp.extra, hp)
		}
	}
	if len(fp.hops) == 0 && openT.Disposition != doc.Delivered {
		fp.problem = "the path crosses no router of the lab (" + openT.Disposition + ": " + openT.Reason + ")"
		return fp
	}
	// Per-router predictions: each router alone (every other filter
	// open), as the harness tests it.
	var planRouters []string
	for _, hp := range fp.hops {
		planRouters = append(planRouters, hp.router)
	}
	for _, hp := range fp.harnessHops() {
		e := pl.isolatedEngine(hp.router)
		// The ECMP branch the harness tests: the open path's.
		br := planRouters
		if hp.branch != nil {
			br = hp.branch
		}
		t := predictionFor(e.Trace(ctx, fl), br, nil)
		for _, v := range trace.PerRouter(t) {
			if v.Router == hp.router {
				hp.pred, hp.hasPred = v, true
				break
			}
		}
	}
	return fp
}

// labHashSeed is the multipath hash seed the lab pinned on the routers
// whose facts pin none, when they all have the same (0 otherwise): with it
// trace names the ECMP branch the lab's kernels take.
func labHashSeed(f *facts.Facts, lab *doc.Lab) uint32 {
	if lab == nil {
		return 0
	}
	seed := uint32(0)
	for _, lr := range lab.Routers {
		fr := f.Router(lr.Name)
		if fr == nil {
			continue
		}
		if v := strings.Fields(fr.Sysctls["net.ipv4.fib_multipath_hash_seed"]); len(v) > 0 && v[0] != "0" {
			continue // the facts' own seed: trace knows it
		}
		switch {
		case lr.HashSeed == 0:
			return 0
		case seed == 0:
			seed = lr.HashSeed
		case seed != lr.HashSeed:
			return 0
		}
	}
	return seed
}

// branchHops plans the router visits of one path (the open trace's
// representative hops or one ECMP branch's): the packet as it arrives and
// leaves each router, its mark, next hop and refused routes.
func branchHops(fl *doc.Flow, src, dst netip.Addr, hops []*doc.Hop, disposition string) (plans []*hopPlan, final netip.AddrPort) {
	cur := struct {
		src netip.Addr
		dst netip.AddrPort
	}{src, netip.AddrPortFrom(dst, uint16(fl.DPort))}
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
		hp.mark = hopMark(h)
		switch {
		case h.In == "":
			hp.kind = hopOutput
		case h.Out == "" && i == len(hops)-1 && disposition == doc.Delivered:
			hp.kind = hopInput
		case h.Out == "" && i == len(hops)-1 && broadcastHop(h):
			// Received by a broadcast route of the local table: INPUT,
			// never forwarded, whatever the stack then does.
			hp.kind, hp.broadcast = hopInput, true
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
		plans = append(plans, hp)
	}
	return plans, cur.dst
}

// harnessHops are the router visits the per-router view tests: the open
// path's, then those only other ECMP branches make.
func (fp *flowPlan) harnessHops() []*hopPlan {
	return append(append([]*hopPlan{}, fp.hops...), fp.extra...)
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

// broadcastHop: trace routed the packet by a broadcast route of the
// router's local table.
func broadcastHop(h *doc.Hop) bool {
	for _, st := range h.Steps {
		if st.Kind == doc.StepRoute && st.Action == facts.RouteBroadcast {
			return true
		}
	}
	return false
}

// hopMark is the firewall mark trace's mangle steps give the packet at
// a hop before routing (0: none).
func hopMark(h *doc.Hop) uint32 {
	mark := uint32(0)
	for _, st := range h.Steps {
		if st.Kind == doc.StepMangle && strings.EqualFold(st.Action, "MARK") {
			v, _, _ := strings.Cut(st.To, "/")
			if m, err := strconv.ParseUint(v, 0, 32); err == nil {
				mark = uint32(m)
			}
		}
	}
	return mark
}

// replyMarks are the marks trace's reply hops get per router (a reply
// restored from a connection mark, or marked by a mangle rule of its
// own): the reply's route queries need them as the request's do.
func replyMarks(t *doc.Trace) map[string]uint32 {
	m := map[string]uint32{}
	if t == nil {
		return m
	}
	add := func(hops []*doc.Hop) {
		for _, h := range hops {
			if h.Kind != doc.HopRouter {
				continue
			}
			if _, ok := m[h.Node]; !ok {
				if v := hopMark(h); v != 0 {
					m[h.Node] = v
				}
			}
		}
	}
	add(t.ReplyHops)
	for _, b := range t.Branches {
		add(b.ReplyHops)
	}
	return m
}
