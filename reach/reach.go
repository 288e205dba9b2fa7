// Package reach owns emulation (DESIGN §7): it sends real TCP, UDP and
// ICMP probes through a lab built by package hosts, with listeners and
// probing sockets opened in-process inside the lab's namespaces, and reads
// the routers' iptables counters before and after every probe to name the
// rule that accepted, translated or dropped it. It gives two views per flow:
// end to end across the lab, and per router, where a harness tests each
// router of the path on its own. Each live verdict sits beside trace's
// static prediction. It never creates a named namespace, never touches the
// host's root namespace, and leaves the lab as it found it; it does not
// parse facts, build labs or know the CLI.
package reach

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/netx"
	"github.com/tsim-dev/tsim/internal/pool"
	"github.com/tsim-dev/tsim/internal/tsimerr"
)

// DefaultTimeout bounds one probe that neither gets an answer nor is
// seen dropped by a counter. Dropped probes end when the counter moves, so
// the bound only costs time on silent losses; 300 ms gave false verdicts
// with several labs on a loaded 2-core machine, 1 s did not.
const DefaultTimeout = time.Second

// Options tune Run.
type Options struct {
	// Timeout per probe; default DefaultTimeout. A probe dropped by a
	// rule ends as soon as that rule's counter moves, well before it.
	Timeout time.Duration
	// Pool is the hybrid executor whose I/O slots the router harnesses
	// run on (shared with the other stages of a run); nil: a pool of
	// Workers slots just for this call.
	Pool *pool.Pool
	// Workers bounds how many router harnesses run at once without a
	// Pool; default 8.
	Workers int
	// SkipPerRouter leaves out the per-router view (end to end only).
	SkipPerRouter bool
	// ReuseEndToEnd takes the per-router answer of every router the
	// end-to-end probe crossed (up to and including where it stopped)
	// from that probe's counters — the same packet met the same rules —
	// and runs the harness only for the routers behind it. Much faster
	// (no harness at all for a reachable flow); off by default, so that
	// each router is tested alone.
	ReuseEndToEnd bool
	// Log receives warnings (one per disagreement) and debug timings.
	Log zerolog.Logger
}

// Run probes every flow of d through the lab d.Lab describes and fills
// d.Reach, one entry per flow in flow order. It returns an error only when
// nothing can be probed (no lab, a lab that is gone or was built from
// other facts, not root); a flow that cannot be probed gets UNKNOWN with
// its reason. Everything it opens or changes is closed or restored before
// it returns, also when ctx is cancelled.
func Run(ctx context.Context, f *facts.Facts, d *doc.Document, opts Options) (err error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	if d == nil || d.Lab == nil {
		return tsimerr.Input(doc.Need("lab", "tsim hosts up"))
	}
	if d.Lab.Removed {
		return tsimerr.Inputf("lab %s was removed (the document says so): run `tsim hosts up` again", d.Lab.ID)
	}
	if len(d.Flows) == 0 {
		return tsimerr.Input(doc.Need("flows", "tsim trace"))
	}
	if f == nil {
		return tsimerr.Inputf("reach: no facts")
	}
	if d.Facts != nil && d.Facts.Digest != "" && f.Digest != d.Facts.Digest {
		return tsimerr.Inputf("lab %s was built from other facts (document digest %s, facts %s %s): use the same --facts or run `tsim hosts up` again",
			d.Lab.ID, d.Facts.Digest, f.Source, f.Digest)
	}
	if err := netx.Check(); err != nil {
		return err
	}
	r := &runner{opts: opts, f: f, d: d, routers: map[string]*labRouter{}, srcNS: map[*flowPlan]nsRef{}, arpTuned: map[string]bool{}}
	defer r.close()
	if err := r.open(); err != nil {
		return err
	}
	t0 := time.Now()
	plans := planFlows(ctx, f, d)
	results := make([]*doc.Reach, len(plans))
	for i, fp := range plans {
		results[i] = &doc.Reach{Flow: fp.flow.ID, Routers: []*doc.RouterReach{}}
	}
	r.prepareEndpoints(plans)
	tPlan := time.Now()
	servers := newEchoServers()
	for i, fp := range plans {
		if err := ctx.Err(); err != nil {
			servers.Close()
			return err
		}
		results[i].E2E = r.e2e(ctx, servers, fp)
	}
	servers.Close()
	tE2E := time.Now()
	if !opts.SkipPerRouter {
		if err := r.perRouter(ctx, plans, results); err != nil {
			return err
		}
	}
	for i, fp := range plans {
		r.compare(fp, results[i])
	}
	opts.Log.Debug().Dur("plan", tPlan.Sub(t0)).Dur("e2e", tE2E.Sub(tPlan)).Dur("per_router", time.Since(tE2E)).
		Int("flows", len(plans)).Msg("reach")
	d.Reach = results
	return nil
}

// labRouter is one router namespace of the lab, opened for probing.
type labRouter struct {
	name   string
	ns     nsRef
	nl     *netlink.Handle
	rules  *ruleMap
	reader interface {
		Snapshot() (Counters, error)
		SnapshotSince(prev Counters) (Counters, error)
		Close()
	}
	snmp *snmpReader
	// last is the latest snapshot, the next probe's "before" (reset
	// whenever something else may have moved counters).
	last   Counters
	lastIP ipStats
	// dirty: a packet crossed the router since its conntrack table was
	// last flushed.
	dirty     bool
	mu        sync.Mutex       // one probe at a time touches its counters
	bad       []string         // chains whose kernel rules do not match the facts
	rt        *otherhostReader // route queries (observe.go)
	fabricEnd map[string]int
}

// runner is one Run.
type runner struct {
	opts    Options
	f       *facts.Facts
	d       *doc.Document
	routers map[string]*labRouter
	hosts   map[netip.Addr]*doc.LabHost
	hostNS  map[string]nsRef
	// hostAddrs maps every address of every lab host to its namespace.
	hostAddrs map[netip.Addr]nsRef
	// srcNS overrides a flow's source namespace (an outside source sent
	// from the namespace that plays its upstream, see endpoints.go).
	srcNS    map[*flowPlan]nsRef
	arpTuned map[string]bool
	fabric   nsRef
	// undo reverts, newest first, what Run changed on the lab's
	// endpoints (see endpoints.go).
	undo []func()
	// owned maps every lab address to its namespace (observe.go).
	owned map[netip.Addr]owner
	// hostSnmp reads the IP statistics of host namespaces.
	hostSnmp map[string]*snmpReader
	// order lists the lab's routers by name (every one is watched by an
	// end-to-end probe).
	order []*labRouter
	// gate tells which routers an end-to-end probe touched (gate.go);
	// nil: every router is read.
	gate *fabricGate
	// freeSides are harness namespaces whose link has left (harness.go).
	sidesMu   sync.Mutex
	freeSides []*side
}

func openNS(lab *doc.Lab, name string) (netns.NsHandle, error) {
	h, err := netns.GetFromPath(netx.Path(name))
	if err != nil {
		return netns.None(), tsimerr.Inputf("lab %s no longer exists: namespace %s is missing (run `tsim hosts up` again)", lab.ID, name)
	}
	return h, nil
}

func (r *runner) open() error {
	lab := r.d.Lab
	useNft := nftAvailable()
	for _, lr := range lab.Routers {
		fr := r.f.Router(lr.Name)
		if fr == nil {
			return tsimerr.Inputf("lab %s has router %s, which the facts do not know: the lab was built from other facts", lab.ID, lr.Name)
		}
		h, err := openNS(lab, lr.Netns)
		if err != nil {
			return err
		}
		x := &labRouter{name: lr.Name, ns: nsRef{lr.Netns, h}, rules: newRuleMap(fr, lr.Refused), dirty: true}
		r.routers[lr.Name] = x
		if x.nl, err = netlink.NewHandleAt(h); err != nil {
			return tsimerr.Envf("netlink in %s: %w", lr.Netns, err)
		}
		var first Counters
		if useNft {
			if nr, err := newNftReader(h); err == nil {
				x.reader = nr
				first, err = nr.Snapshot()
				if err != nil || (len(first) == 0 && len(fr.Iptables) > 0) {
					nr.Close()
					x.reader = nil
				}
			}
		}
		if x.reader == nil {
			// iptables-legacy (or no nf_tables access): a process per read.
			x.reader = &saveReader{ctx: context.Background(), ns: h}
			if first, err = x.reader.Snapshot(); err != nil {
				return tsimerr.Envf("read counters of %s: %w", lr.Name, err)
			}
		}
		if x.snmp, err = newSnmpReader(x.ns); err != nil {
			r.opts.Log.Debug().Err(err).Str("router", lr.Name).Msg("no IP statistics")
		}
		if why := x.rules.mismatch(first); why != "" {
			// The lab was changed after `hosts up` (or the kernel
			// rewrote rules): read its rules back and name them.
			if kt, err := kernelTables(context.Background(), h); err == nil {
				x.rules.realign(kt)
				r.opts.Log.Warn().Str("router", lr.Name).Msg("the lab's ruleset differs from the facts (" + why + "): naming the kernel's rules")
			} else {
				r.opts.Log.Debug().Err(err).Str("router", lr.Name).Msg("cannot read the lab's rules back")
			}
		}
		x.bad = x.rules.check(first)
		for _, b := range x.bad {
			r.opts.Log.Warn().Str("router", lr.Name).Msg("counters cannot be tied to facts rules: " + b)
		}
	}
	for _, lr := range lab.Routers {
		r.order = append(r.order, r.routers[lr.Name])
	}
	if lab.Fabric != "" {
		h, err := openNS(lab, lab.Fabric)
		if err != nil {
			return err
		}
		r.fabric = nsRef{lab.Fabric, h}
		r.gate = r.openGate()
	}
	r.hosts = map[netip.Addr]*doc.LabHost{}
	r.hostNS = map[string]nsRef{}
	r.hostAddrs = map[netip.Addr]nsRef{}
	for _, h := range lab.Hosts {
		a, err := netip.ParseAddr(h.IP)
		if err != nil {
			continue
		}
		if r.hosts[a] == nil {
			r.hosts[a] = h
		}
		if _, ok := r.hostNS[h.Netns]; !ok {
			nh, err := openNS(lab, h.Netns)
			if err != nil {
				return err
			}
			ns := nsRef{h.Netns, nh}
			r.hostNS[h.Netns] = ns
			// Every address a host owns (an internet host also owns the
			// uplink's gateway): Run must not put it anywhere else.
			if nl, err := netlink.NewHandleAt(nh); err == nil {
				if as, err := nl.AddrList(nil, netlink.FAMILY_V4); err == nil {
					for _, a := range as {
						if ip, ok := netip.AddrFromSlice(a.IP); ok {
							r.hostAddrs[ip.Unmap()] = ns
						}
					}
				}
				nl.Close()
			}
		}
	}
	return nil
}

func (r *runner) close() {
	for i := len(r.undo) - 1; i >= 0; i-- {
		r.undo[i]()
	}
	r.gate.Close()
	for _, s := range r.freeSides {
		s.drop()
	}
	for _, x := range r.routers {
		if x.reader != nil {
			x.reader.Close()
		}
		x.snmp.Close()
		x.rt.Close()
		if x.nl != nil {
			x.nl.Close()
		}
		x.ns.h.Close()
	}
	for _, s := range r.hostSnmp {
		s.Close()
	}
	for _, h := range r.hostNS {
		h.h.Close()
	}
	if r.fabric.h.IsOpen() {
		r.fabric.h.Close()
	}
}

// endpoint is where one side of an end-to-end probe lives.
type endpoint struct {
	ns      nsRef
	problem string
}

// srcEndpoint: the router itself when it owns the source, else the lab
// host with that address.
func (r *runner) srcEndpoint(fp *flowPlan) endpoint {
	if len(fp.hops) > 0 && fp.hops[0].kind == hopOutput {
		return endpoint{ns: r.routers[fp.hops[0].router].ns}
	}
	if ns, ok := r.srcNS[fp]; ok {
		return endpoint{ns: ns}
	}
	if h := r.hosts[fp.src]; h != nil {
		return endpoint{ns: r.hostNS[h.Netns]}
	}
	return endpoint{problem: fmt.Sprintf("the lab has no host with source %s (was it built for this flow?)", fp.src)}
}

// dstEndpoint: the router that owns the final destination, else the lab
// host with it.
func (r *runner) dstEndpoint(fp *flowPlan) endpoint {
	if n := len(fp.hops); n > 0 && fp.hops[n-1].kind == hopInput {
		return endpoint{ns: r.routers[fp.hops[n-1].router].ns}
	}
	if h := r.hosts[fp.finalDst.Addr()]; h != nil {
		return endpoint{ns: r.hostNS[h.Netns]}
	}
	return endpoint{problem: fmt.Sprintf("the lab has no host with destination %s (was it built for this flow?)", fp.finalDst.Addr())}
}

// token names one probe in its payload.
func token(fp *flowPlan, view string, n int) string {
	return "tsim " + fp.flow.ID + " " + view + " " + strconv.Itoa(n)
}

// watched is a router whose counters a probe watches.
type watched struct {
	r      *labRouter
	kind   string // the hop kind whose chains may stop the probe
	before Counters
	after  Counters
	// IP statistics around the probe.
	ipBefore, ipAfter ipStats
	// quiet: read before and after the probe only, not polled for a drop
	// that ends it early (a router no path is expected to cross).
	quiet bool
}

// probeWatch flushes conntrack and snapshots the routers, sends the probe,
// polls the counters until it answers or a blocking counter moves (then
// it is stopped at once) or the timeout passes, waits for a TCP
// connection's last packet to reach the server, and snapshots again. With
// gated, routers the fabric's link statistics show untouched by the probe
// are not read (gate.go): only the end-to-end probes, whose lab is whole
// (the per-router harness moves fabric ends away).
//
// silent names the router whose kernel, asked before the probe, routes it
// into a blackhole: such a drop moves no counter and sends no error, so
// without it the probe would wait its whole timeout. Once that router has
// received the probe and forwarded nothing, the probe ends.
func (r *runner) probeWatch(ctx context.Context, srv *echoServers, spec probeSpec, ws []*watched, gated bool, silent string) (probeOutcome, error) {
	var g *fabricGate
	if gated {
		g = r.gate
	}
	g0, err := g.read()
	if err != nil {
		g = nil
	}
	for _, w := range ws {
		if w.r.dirty || g == nil {
			// A conntrack entry left by an earlier probe would make this
			// one's first packet ESTABLISHED (only routers a packet
			// crossed since the last flush can hold one).
			w.r.nl.ConntrackTableFlush(netlink.ConntrackTable)
			w.r.dirty = false
		}
		if w.r.last != nil {
			// The previous probe's "after" (nothing but probes moves
			// counters in a lab, and they run one at a time per router).
			w.before, w.ipBefore = w.r.last, w.r.lastIP
			w.r.last = nil // until this probe has ended cleanly
			continue
		}
		c, err := w.r.reader.Snapshot()
		if err != nil {
			return probeOutcome{}, fmt.Errorf("counters of %s: %w", w.r.name, err)
		}
		w.before = c
		w.ipBefore, _ = w.r.snmp.read()
	}
	// The probe's source namespace, when it is a router, may send over its
	// loopback only: the gate cannot see that.
	always := func(w *watched) bool { return w.r.ns.name == spec.ns.name }
	var done <-chan struct{}
	if spec.proto == "tcp" {
		done = srv.expect(spec.token)
		defer srv.forget(spec.token)
	}
	pctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	res := make(chan probeOutcome, 1)
	go func() { res <- runProbe(pctx, spec) }()
	var out probeOutcome
	// Poll soon (a drop shows within a fraction of a millisecond), then
	// less and less often: an answer usually comes first, and every poll
	// dumps the routers' rulesets. A poll round over big rulesets (thousands
	// of rules: tens of ms on a busy machine) is waited for three times
	// over before the next, so polling takes at most a quarter of the wait
	// instead of the CPU the probe's own packets need.
	every := 300 * time.Microsecond
	poll := time.NewTimer(every)
	defer poll.Stop()
wait:
	for {
		select {
		case out = <-res:
			break wait
		case <-poll.C:
			t0 := time.Now()
			gs, _ := g.read()
			for _, w := range ws {
				if w.r.name == silent && w.r.snmp != nil {
					if ip, err := w.r.snmp.read(); err == nil && ip.InReceives > w.ipBefore.InReceives &&
						ip.forwarded() == w.ipBefore.forwarded() && ip.InDelivers == w.ipBefore.InDelivers {
						cancel()
					}
				}
				if w.quiet || !always(w) && !g.moved(w.r.name, g0, gs) {
					continue
				}
				c, err := w.r.reader.SnapshotSince(w.before)
				if err != nil {
					continue
				}
				if d := w.r.rules.decide(w.r.rules.diff(w.before, c), w.kind); d.block != nil {
					cancel()
				}
			}
			every = max(min(2*every, 8*time.Millisecond), 3*time.Since(t0))
			poll.Reset(every)
		}
	}
	if out.ok && done != nil {
		select {
		case <-done:
		case <-time.After(r.opts.Timeout):
		case <-ctx.Done():
		}
	}
	r.settle(ctx, ws, g, g0, always)
	g1, err := g.read()
	if err != nil {
		g, g1 = nil, nil
	}
	read := 0
	for _, w := range ws {
		var ip ipStats
		ipRead := false
		if g != nil && !always(w) {
			ip = w.ipBefore
			if g.moved(w.r.name, g0, g1) {
				ip, _ = w.r.snmp.read()
				ipRead = true
			}
			if ip.RawInReceives == w.ipBefore.RawInReceives && w.r.snmp != nil {
				// Untouched (no frame, or only frames that were not
				// IPv4 for it: an ARP request flooded over a bridge):
				// its counters are the ones read before.
				w.after, w.ipAfter = w.before, ip
				w.r.last, w.r.lastIP = w.before, ip
				continue
			}
		}
		read++
		c, err := w.r.reader.SnapshotSince(w.before)
		if err != nil {
			return out, fmt.Errorf("counters of %s: %w", w.r.name, err)
		}
		w.after = c
		if !ipRead { // after settling nothing moves: one read is enough
			ip, _ = w.r.snmp.read()
		}
		w.ipAfter = ip
		w.r.last, w.r.lastIP = c, w.ipAfter
		w.r.dirty = true
	}
	if len(ws) > 1 {
		r.opts.Log.Debug().Str("probe", spec.token).Int("read", read).Int("watched", len(ws)).Bool("gated", g != nil).Msg("counters read after the probe")
	}
	if ctx.Err() != nil {
		return out, ctx.Err()
	}
	return out, nil
}

// settle waits until the probe's packets have stopped moving (two reads
// 0.3 ms apart agree), at most 20 ms: a packet of this probe still in
// flight (a crossing FIN answered by a reset, an ICMP error) counts in
// this probe's "after", not in the next probe's window, where it would
// pass for evidence. What is read: the IP statistics of the watched
// routers; with a gate, the fabric's link statistics and the IP
// statistics of the routers they show touched (a frame the fabric has
// handed to a router may not have reached its IP layer yet).
func (r *runner) settle(ctx context.Context, ws []*watched, g *fabricGate, g0 gateSnap, always func(*watched) bool) {
	sum := func() (n uint64) {
		var s gateSnap
		if g != nil {
			s, _ = g.read()
			n = s.total()
		}
		for _, w := range ws {
			if s != nil && !always(w) && !g.moved(w.r.name, g0, s) {
				continue
			}
			st, _ := w.r.snmp.read()
			n += st.RawInReceives + st.OutTransmits + st.OutRequests
		}
		return n
	}
	prev := sum()
	deadline := time.Now().Add(20 * time.Millisecond)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(300 * time.Microsecond)
		cur := sum()
		if cur == prev {
			return
		}
		prev = cur
	}
}

// routerView turns one router's counter deltas in the per-router harness
// into its verdict.
func (r *runner) routerView(w *watched, hp *hopPlan, out probeOutcome, reached bool) *doc.RouterReach {
	ev := &evidence{dec: w.r.rules.decide(w.r.rules.diff(w.before, w.after), hp.kind), ip: w.ipAfter.sub(w.ipBefore)}
	if ev.dec.block == nil && !out.ok && !reached && hp.kind == hopForward && hp.out != "" {
		ev.neigh = w.r.neighFailed(hp.nextIP, hp.dstOut.Addr(), hp.out)
	}
	rr, _ := judgeRouter(hp.router, hp.in, hp.out, routerInput{ev: ev, later: reached, answered: out.ok,
		refusal: r.refusal(w.r, hp.kind, ev.dec, hp.refused), errText: errText(out.err), stop: hp.broadcast})
	if len(w.r.bad) > 0 && rr.Rule != nil {
		rr.Reason = joinReason(rr.Reason, "rule texts may be off: "+w.r.bad[0])
	}
	return rr
}

// refusal names a line the kernel refused in the lab that a packet
// deciding as dec meets on this router ("" if none).
func (r *runner) refusal(x *labRouter, kind string, dec decision, route string) string {
	decided := dec.block
	if decided == nil {
		decided = dec.accept
	}
	if rule, ref := x.rules.neededRefusal(kind, decided); rule != nil {
		return fmt.Sprintf("the kernel refused %s (%s: %s), which this packet would meet", ref.Line, rule.Text, ref.Error)
	}
	if route != "" {
		return "a route this packet consults is " + route
	}
	return ""
}

// neighFailed reports a next hop on the egress link that does not answer
// ARP: the router forwarded the packet, and it went nowhere (what trace
// calls NO_ROUTE: no neighbour owns the address).
func (x *labRouter) neighFailed(next, dst netip.Addr, out string) string {
	target := next
	if !target.IsValid() {
		target = dst
	}
	link, err := x.nl.LinkByName(out)
	if err != nil {
		return ""
	}
	ns, err := x.nl.NeighList(link.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		return ""
	}
	for _, n := range ns {
		if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == target && n.State&(netlink.NUD_INCOMPLETE|netlink.NUD_FAILED) != 0 {
			return fmt.Sprintf("passed on, but no neighbour on %s answers ARP for %s", out, target)
		}
	}
	return ""
}

func joinReason(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func errText(err error) string {
	if err == nil {
		return "no answer"
	}
	if errors.Is(err, context.Canceled) {
		return "stopped as soon as a counter showed the drop"
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return "no answer"
	}
	return err.Error()
}

// forEach runs fn for every item on the pool's I/O slots (or, without a
// pool, at most workers at once); the first error cancels the others.
func forEach[T any](ctx context.Context, p *pool.Pool, workers int, items []T, fn func(context.Context, T) error) error {
	if p == nil {
		p = pool.New(workers, 0)
	}
	g, _ := p.Group(ctx)
	for _, it := range items {
		g.GoIO(func(ctx context.Context) error { return fn(ctx, it) })
	}
	return g.Wait()
}

// ExitCode is 0 when every flow is REACHABLE end to end, else 1 (DESIGN
// §3.3): UNREACHABLE and UNKNOWN are both not a positive answer.
func ExitCode(rs []*doc.Reach) int {
	if len(rs) == 0 {
		return tsimerr.ExitNegative
	}
	for _, r := range rs {
		if r.E2E == nil || r.E2E.Verdict != doc.Reachable {
			return tsimerr.ExitNegative
		}
	}
	return tsimerr.ExitOK
}
