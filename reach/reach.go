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
	"github.com/tsim-dev/tsim/trace"
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
		Close()
	}
	snmp *snmpReader
	// last is the latest snapshot, the next probe's "before" (reset
	// whenever something else may have moved counters).
	last      Counters
	lastIP    ipStats
	mu        sync.Mutex // one probe at a time touches its counters
	bad       []string   // chains whose kernel rules do not match the facts
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
		x := &labRouter{name: lr.Name, ns: nsRef{lr.Netns, h}, rules: newRuleMap(fr, lr.Refused)}
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
		x.bad = x.rules.check(first)
		for _, b := range x.bad {
			r.opts.Log.Warn().Str("router", lr.Name).Msg("counters cannot be tied to facts rules: " + b)
		}
	}
	if lab.Fabric != "" {
		h, err := openNS(lab, lab.Fabric)
		if err != nil {
			return err
		}
		r.fabric = nsRef{lab.Fabric, h}
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
	for _, x := range r.routers {
		if x.reader != nil {
			x.reader.Close()
		}
		x.snmp.Close()
		if x.nl != nil {
			x.nl.Close()
		}
		x.ns.h.Close()
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
}

// probeWatch flushes conntrack and snapshots the routers, sends the probe,
// polls the counters until it answers or a blocking counter moves (then
// it is stopped at once) or the timeout passes, waits for a TCP
// connection's last packet to reach the server, and snapshots again.
func (r *runner) probeWatch(ctx context.Context, srv *echoServers, spec probeSpec, ws []*watched) (probeOutcome, error) {
	for _, w := range ws {
		// A conntrack entry left by an earlier probe would make this one's
		// first packet ESTABLISHED.
		w.r.nl.ConntrackTableFlush(netlink.ConntrackTable)
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
			for _, w := range ws {
				c, err := w.r.reader.Snapshot()
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
	for _, w := range ws {
		c, err := w.r.reader.Snapshot()
		if err != nil {
			return out, fmt.Errorf("counters of %s: %w", w.r.name, err)
		}
		w.after = c
		w.ipAfter, _ = w.r.snmp.read()
		w.r.last, w.r.lastIP = c, w.ipAfter
	}
	if ctx.Err() != nil {
		return out, ctx.Err()
	}
	return out, nil
}

// routerView turns one router's counter deltas into its verdict.
func (r *runner) routerView(w *watched, hp *hopPlan, out probeOutcome, reached bool) *doc.RouterReach {
	rr := &doc.RouterReach{Router: hp.router, In: hp.in, Out: hp.out}
	d := w.r.rules.decide(w.r.rules.diff(w.before, w.after), hp.kind)
	rr.Counters = d.deltas()
	passed := reached || out.ok
	switch hp.kind {
	case hopForward:
		passed = passed || w.ipAfter.ForwDatagrams > w.ipBefore.ForwDatagrams
	case hopInput:
		passed = passed || w.ipAfter.InDelivers > w.ipBefore.InDelivers
	}
	neigh := ""
	if d.block == nil && !out.ok && !reached && hp.kind == hopForward && hp.out != "" {
		neigh = w.r.neighFailed(hp)
	}
	switch {
	case d.block != nil:
		rr.Verdict, rr.Rule = doc.Blocked, d.block.live()
	case neigh != "":
		rr.Verdict, rr.Reason = doc.Blocked, neigh
	case d.accept != nil && passed:
		rr.Verdict, rr.Rule = doc.Allowed, d.accept.live()
		if !out.ok && !reached {
			rr.Reason = "passed on, but no echo came back: " + errText(out.err)
		}
	case passed:
		rr.Verdict = doc.Allowed
		rr.Reason = "passed on; no filter rule or policy counter moved (no filter chain on this path)"
	case d.accept != nil:
		rr.Verdict, rr.Rule = doc.Allowed, d.accept.live()
		rr.Reason = "accepted by the filter, but no echo came back: " + errText(out.err)
	case out.unreachable():
		rr.Verdict = doc.Blocked
		rr.Reason = "the router answered ICMP unreachable (routing): " + errText(out.err)
	case len(d.moved) > 0 || discarded(w.ipBefore, w.ipAfter):
		rr.Verdict = doc.Blocked
		rr.Reason = "the packet entered the router but was not passed on and no filter rule dropped it (routing: blackhole or policy rule): " + errText(out.err)
	default:
		rr.Verdict = doc.Unknown
		rr.Reason = "no counter moved and no answer within " + r.opts.Timeout.String() + ": " + errText(out.err)
	}
	var decided *moved
	if d.block != nil {
		decided = d.block
	} else {
		decided = d.accept
	}
	if rule, ref := w.r.rules.neededRefusal(hp.kind, decided); rule != nil {
		rr.Reason = fmt.Sprintf("the kernel refused %s (%s: %s), which this packet would meet; live %s", ref.Line, rule.Text, ref.Error, rr.Verdict)
		rr.Verdict = doc.Unknown
	} else if hp.refused != "" {
		rr.Reason = fmt.Sprintf("the lab cannot show the real router: a route this packet consults is %s; live %s", hp.refused, rr.Verdict)
		rr.Verdict = doc.Unknown
	}
	if len(w.r.bad) > 0 && rr.Rule != nil {
		rr.Reason = joinReason(rr.Reason, "rule texts may be off: "+w.r.bad[0])
	}
	return rr
}

// neighFailed reports a next hop on the egress link that does not answer
// ARP: the router forwarded the packet, and it went nowhere (what trace
// calls NO_ROUTE: no neighbour owns the address).
func (x *labRouter) neighFailed(hp *hopPlan) string {
	target := hp.nextIP
	if !target.IsValid() {
		target = hp.dstOut.Addr()
	}
	link, err := x.nl.LinkByName(hp.out)
	if err != nil {
		return ""
	}
	ns, err := x.nl.NeighList(link.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		return ""
	}
	for _, n := range ns {
		if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == target && n.State&(netlink.NUD_INCOMPLETE|netlink.NUD_FAILED) != 0 {
			return fmt.Sprintf("passed on, but no neighbour on %s answers ARP for %s", hp.out, target)
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

// e2e probes one flow across the whole lab.
func (r *runner) e2e(ctx context.Context, srv *echoServers, fp *flowPlan) *doc.E2E {
	e := &doc.E2E{Predicted: predictedE2E(fp.real)}
	if fp.problem != "" {
		e.Verdict, e.Reason = doc.Unknown, fp.problem
		return e
	}
	src, dst := r.srcEndpoint(fp), r.dstEndpoint(fp)
	if src.problem != "" {
		e.Verdict, e.Reason = doc.Unknown, src.problem
		return e
	}
	// Without a destination host the probe still runs: a rule or route
	// that stops it on the way is an answer.
	if fp.proto != "icmp" && dst.problem == "" {
		if err := srv.ensure(dst.ns, lkey{dst.ns.name, fp.proto, fp.finalDst}); err != nil {
			e.Verdict, e.Reason = doc.Unknown, err.Error()
			return e
		}
	}
	var ws []*watched
	seen := map[string]*watched{}
	for _, h := range fp.hops {
		if seen[h.router] == nil {
			w := &watched{r: r.routers[h.router], kind: h.kind}
			seen[h.router] = w
			ws = append(ws, w)
		}
	}
	dst0, _ := netip.ParseAddr(fp.flow.Dst)
	spec := probeSpec{ns: src.ns, proto: fp.proto, src: fp.src, sport: uint16(fp.flow.SPort),
		dst: netip.AddrPortFrom(dst0, uint16(fp.flow.DPort)), token: token(fp, "e2e", 0)}
	out, err := r.probeWatch(ctx, srv, spec, ws)
	if err != nil {
		e.Verdict, e.Reason = doc.Unknown, err.Error()
		return e
	}
	if out.setup != nil {
		e.Verdict, e.Reason = doc.Unknown, "cannot open the probe socket: "+out.setup.Error()
		return e
	}
	// Routers in path order; a router counts as passed when a later one
	// saw the packet or the echo came back.
	views := make([]*doc.RouterReach, len(fp.hops))
	later := out.ok
	for i := len(fp.hops) - 1; i >= 0; i-- {
		w := seen[fp.hops[i].router]
		views[i] = r.routerView(w, fp.hops[i], out, later)
		if len(views[i].Counters) > 0 || w.ipAfter.InReceives > w.ipBefore.InReceives {
			later = true
		}
	}
	unknown := ""
	for i, v := range views {
		e.Routers = append(e.Routers, v)
		if v.Verdict == doc.Unknown && unknown == "" && v.Reason != "" && (len(v.Counters) > 0 || i == 0 || fp.hops[i].refused != "") {
			unknown = v.Router + ": " + v.Reason
		}
		if v.Verdict != doc.Allowed {
			if v.Verdict == doc.Blocked && v.Rule != nil {
				e.BlockedBy = &doc.RuleRef{Router: v.Router, Table: v.Rule.Table, Chain: v.Rule.Chain, Index: v.Rule.Index, Rule: v.Rule.Text}
			}
			if v.Verdict == doc.Blocked {
				e.Reason = v.Router + ": " + firstNonEmpty(v.Reason, "blocked")
			}
			break
		}
	}
	predicted := predictedRouters(fp)
	for i, v := range e.Routers {
		if i < len(predicted) && predicted[i].Router == v.Router {
			v.Predicted = predicted[i].Verdict
			v.Agrees = agrees(v, predicted[i].Verdict, predicted[i].Rule)
		} else {
			v.Predicted = doc.Unknown
			v.Agrees = v.Verdict == doc.Unknown
		}
	}
	switch {
	case out.ok:
		e.Verdict, e.Reason = doc.Reachable, ""
	case unknown != "":
		e.Verdict, e.Reason, e.BlockedBy = doc.Unknown, unknown, nil
	case e.Reason == "" && dst.problem != "" && !out.unreachable():
		e.Verdict, e.Reason = doc.Unknown, dst.problem
	default:
		e.Verdict = doc.Unreachable
		if e.Reason == "" {
			e.Reason = "no answer within " + r.opts.Timeout.String() + " and no rule dropped it: " + errText(out.err)
		}
	}
	return e
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// predictedRouters is trace's prediction for the end-to-end view.
func predictedRouters(fp *flowPlan) []trace.RouterVerdict {
	if fp.real == nil {
		return nil
	}
	return trace.PerRouter(fp.real)
}

// agrees compares a live router verdict with a prediction: same verdict,
// and the same deciding rule when both name one.
func agrees(v *doc.RouterReach, pv string, pr *doc.LiveRule) bool {
	if v.Verdict != pv {
		return false
	}
	if pr == nil || v.Rule == nil {
		return pr == nil || v.Verdict == doc.Unknown
	}
	return pr.Table == v.Rule.Table && pr.Chain == v.Rule.Chain && pr.Index == v.Rule.Index
}

// compare fills the end-to-end agreement and lists every disagreement.
func (r *runner) compare(fp *flowPlan, res *doc.Reach) {
	e := res.E2E
	ok := e.Verdict == e.Predicted
	if ok && e.Verdict == doc.Unreachable && fp.real != nil && fp.real.DeniedBy != nil {
		b := e.BlockedBy
		p := fp.real.DeniedBy
		ok = b != nil && b.Router == p.Router && b.Table == p.Table && b.Chain == p.Chain && b.Index == p.Index
	}
	e.Agrees = &ok
	if !ok {
		res.Disagreements = append(res.Disagreements, fmt.Sprintf("end to end: live %s%s, predicted %s%s",
			e.Verdict, refText(e.BlockedBy), e.Predicted, denied(fp.real)))
	}
	add := func(view string, v *doc.RouterReach) {
		if v.Agrees {
			return
		}
		res.Disagreements = append(res.Disagreements, fmt.Sprintf("%s %s: live %s%s, predicted %s",
			view, v.Router, v.Verdict, liveText(v.Rule), v.Predicted))
	}
	for _, v := range e.Routers {
		add("end to end at", v)
	}
	for _, v := range res.Routers {
		add("router", v)
	}
	for _, s := range res.Disagreements {
		r.opts.Log.Warn().Str("flow", fp.flow.ID).Msg("live and predicted disagree: " + s)
	}
}

func refText(b *doc.RuleRef) string {
	if b == nil {
		return ""
	}
	return fmt.Sprintf(" (%s %s %s #%d)", b.Router, b.Table, b.Chain, b.Index)
}

func liveText(l *doc.LiveRule) string {
	if l == nil {
		return ""
	}
	return fmt.Sprintf(" (%s %s #%d)", l.Table, l.Chain, l.Index)
}

func denied(t *doc.Trace) string {
	if t == nil || t.DeniedBy == nil {
		return ""
	}
	return refText(t.DeniedBy)
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
