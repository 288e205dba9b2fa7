package reach

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/trace"
)

// e2e probes one flow across the whole lab, watching every router of it,
// and judges the connection from the routers' own evidence.
func (r *runner) e2e(ctx context.Context, srv *echoServers, fp *flowPlan) *doc.E2E {
	unknown := func(reason string) *doc.E2E {
		return &doc.E2E{Verdict: doc.Unknown, Reason: reason, Predicted: predictedE2E(fp.real)}
	}
	if fp.problem != "" {
		return unknown(fp.problem)
	}
	src, dst := r.srcEndpoint(fp), r.dstEndpoint(fp)
	if src.problem != "" {
		return unknown(src.problem)
	}
	// Without a destination host the probe still runs: a rule or route
	// that stops it on the way is an answer.
	if fp.proto != "icmp" && dst.problem == "" {
		if err := srv.ensure(dst.ns, lkey{dst.ns.name, fp.proto, fp.finalDst}); err != nil {
			return unknown(err.Error())
		}
	}
	dst0, _ := netip.ParseAddr(fp.flow.Dst)
	// The request's way through the lab, as the kernels route it.
	var req []*walkStep
	plan := map[string]*hopPlan{}
	for _, h := range fp.hops {
		if plan[h.router] == nil {
			plan[h.router] = h
		}
	}
	reqNAT := func(router string, s, d netip.Addr) (netip.Addr, netip.Addr) {
		if hp := plan[router]; hp != nil && s == hp.srcIn && d == hp.dstIn.Addr() {
			return hp.srcOut, hp.dstOut.Addr()
		}
		return s, d
	}
	proto := map[string]uint8{"tcp": 6, "udp": 17, "icmp": 1}[fp.proto]
	reqQ := walkQuery{proto: proto, sport: uint16(fp.flow.SPort), dport: uint16(fp.flow.DPort), mark: func(router string) uint32 {
		if hp := plan[router]; hp != nil {
			return hp.mark
		}
		return 0
	}}
	if len(fp.hops) > 0 && fp.hops[0].kind == hopOutput {
		req = r.walk(fp.hops[0].router, "", fp.src, dst0, reqQ, reqNAT)
	} else if o, ok := r.firstHop(src.ns, fp.src, dst0); ok && o.router != "" {
		req = r.walk(o.router, o.iface, fp.src, dst0, reqQ, reqNAT)
	}
	kinds := map[string]string{}
	for _, st := range req {
		if kinds[st.router] == "" {
			kinds[st.router] = st.kind
		}
	}
	ws := make([]*watched, 0, len(r.order))
	byName := map[string]*watched{}
	// Routers a path may cross are polled for a drop that ends the probe
	// early; the others are read before and after it only.
	expected := map[string]bool{}
	for r := range kinds {
		expected[r] = true
	}
	if t := fp.real; t != nil {
		hops := append(append([]*doc.Hop{}, t.Hops...), t.ReplyHops...)
		for _, b := range t.Branches {
			hops = append(append(hops, b.Hops...), b.ReplyHops...)
		}
		for _, h := range hops {
			if h.Kind == doc.HopRouter {
				expected[h.Node] = true
			}
		}
	}
	for _, x := range r.order {
		w := &watched{r: x, kind: firstNonEmpty(kinds[x.name], hopForward), quiet: !expected[x.name]}
		ws = append(ws, w)
		byName[x.name] = w
	}
	dstStats := r.hostStats(dst)
	dstBefore, _ := dstStats.read()
	spec := probeSpec{ns: src.ns, proto: fp.proto, src: fp.src, sport: uint16(fp.flow.SPort),
		dst: netip.AddrPortFrom(dst0, uint16(fp.flow.DPort)), token: token(fp, "e2e", 0)}
	silent := ""
	if n := len(req); n > 0 && req[n-1].end == causeBlackhole {
		silent = req[n-1].router
	}
	out, err := r.probeWatch(ctx, srv, spec, ws, true, silent)
	if err != nil {
		return unknown(err.Error())
	}
	if out.setup != nil {
		return unknown("cannot open the probe socket: " + out.setup.Error())
	}
	dstAfter, _ := dstStats.read()
	dstGrew := dstAfter.sub(dstBefore)

	evOf := func(router, kind string) *evidence {
		w := byName[router]
		if w == nil {
			return nil
		}
		return &evidence{dec: w.r.rules.decide(w.r.rules.diff(w.before, w.after), kind), ip: w.ipAfter.sub(w.ipBefore)}
	}
	// The observed request path: the walk as far as routers show the probe.
	var reqPath []*obsHop
	reqSeen := map[string]bool{}
	var last *walkStep
	visits := map[string]uint64{}
	for i, st := range req {
		ev := evOf(st.router, st.kind)
		if !reached(ev, i == 0 || evOf(req[i-1].router, req[i-1].kind).passedOn()) {
			break
		}
		if visits[st.router]++; visits[st.router] > 1 && ev.ip.InReceives < visits[st.router] {
			break // a loop back to a router that did not see the packet again
		}
		reqPath = append(reqPath, &obsHop{router: st.router, in: st.in, out: st.out})
		reqSeen[st.router] = true
		last = st
	}
	delivered := out.ok
	if last != nil && last == req[len(req)-1] {
		switch {
		case last.end == "delivered":
			delivered = delivered || evOf(last.router, hopInput).passedOn()
		case last.end == "host" && dst.problem == "" && last.host.name == dst.ns.name:
			delivered = delivered || dstGrew.InDelivers > 0
		}
	}
	if len(fp.hops) == 0 && dst.problem == "" {
		delivered = delivered || dstGrew.InDelivers > 0
	}
	// The reply's way back, when the request arrived.
	var rep []*walkStep
	if delivered && last != nil {
		rs, rd := last.dstOut, last.srcOut
		if !rs.IsValid() {
			rs, rd = fp.finalDst.Addr(), fp.src
		}
		repNAT := func(router string, s, d netip.Addr) (netip.Addr, netip.Addr) {
			hp := plan[router]
			if hp == nil || !reqSeen[router] {
				return s, d // no connection here: nothing to translate back
			}
			if s == hp.dstOut.Addr() {
				s = hp.dstIn.Addr()
			}
			if d == hp.srcOut {
				d = hp.srcIn
			}
			return s, d
		}
		repQ := walkQuery{proto: proto, sport: fp.finalDst.Port(), dport: uint16(fp.flow.SPort), mark: func(router string) uint32 { return fp.replyMark[router] }}
		if last.end == "delivered" {
			rep = r.walk(last.router, "", rs, rd, repQ, repNAT)
		} else if last.end == causeBroadcast {
			// A broadcast the router answered (an echo with
			// icmp_echo_ignore_broadcasts=0) comes from an address
			// of its own that its kernel picks: routed without one.
			rep = r.walk(last.router, "", netip.Addr{}, rd, repQ, repNAT)
		} else if o, ok := r.firstHop(dst.ns, rs, rd); ok && o.router != "" {
			rep = r.walk(o.router, o.iface, rs, rd, repQ, repNAT)
		}
	}
	if e := r.opts.Log.Debug(); e.Enabled() {
		text := func(w []*walkStep) (s []string) {
			for _, st := range w {
				s = append(s, fmt.Sprintf("%s(%s>%s %s next %s %s)", st.router, st.in, st.out, st.kind, st.next, st.end))
			}
			return s
		}
		e.Str("flow", fp.flow.ID).Strs("request", text(req)).Strs("reply", text(rep)).Msg("walked")
	}
	// Packets the request alone accounts for at a router on both paths:
	// what reached the destination host (a TCP connection sends several),
	// else one.
	reqPackets := uint64(1)
	if last != nil && last.end == "host" && dstGrew.InReceives > 0 {
		reqPackets = dstGrew.InReceives
	}
	var repPath []*obsHop
	repSeen := map[string]bool{}
	for _, st := range rep {
		ev := evOf(st.router, st.kind)
		seen := ev.seen()
		switch {
		case out.ok:
			// The reply arrived: it crossed every router the walk names.
		case st.kind == hopOutput:
			seen = ev.ip.OutRequests > 0 // the router answered itself
		case reqSeen[st.router] && reqPackets > 0:
			// The request's own packets moved this router's counters: the
			// reply shows as a second forwarded packet (a received one
			// may be a straggler), or as the drop.
			seen = ev.ip.forwarded() > reqPackets || ev.dec.block != nil
		}
		if !seen {
			break
		}
		repPath = append(repPath, &obsHop{router: st.router, in: st.in, out: st.out})
		repSeen[st.router] = true
	}

	judge := func(path []*obsHop, steps []*walkStep, end bool) []*obsHop {
		// A loop: the packet ends at the router of the cycle whose TTL ran
		// out (its statistics say so), on its last visit.
		loopAt := -1
		if n := len(path); n > 0 && n == len(steps) && steps[n-1].end == "loop" {
			loopAt = n - 1
			for i := n - 1; i >= 0; i-- {
				if ip := evOf(path[i].router, steps[i].kind).ip; ip.OutTimeExcds > 0 || ip.InHdrErrors > 0 {
					loopAt = i
					break
				}
			}
		}
		for i, h := range path {
			st := steps[i]
			ev := evOf(h.router, st.kind)
			later := (i+1 < len(path) || end) && i != loopAt
			if i == len(path)-1 && !later && st.kind == hopForward && st.out != "" && ev.dec.block == nil {
				nh := netip.Addr{}
				if hp := plan[h.router]; hp != nil && hp.out == st.out {
					nh = hp.nextIP
				}
				ev.neigh = byName[h.router].r.neighFailed(nh, st.dstOut, st.out)
				if ev.neigh == "" && st.end == causeNoNeighbour {
					ev.neigh = fmt.Sprintf("passed on, but no neighbour on %s owns the next hop %s (no namespace of the lab has it)", st.out, st.next)
				}
			}
			refused := ""
			if hp := plan[h.router]; hp != nil {
				refused = hp.refused
			}
			h.view, h.cause = judgeRouter(h.router, h.in, h.out, routerInput{ev: ev, later: later, answered: out.ok,
				refusal: r.refusal(byName[h.router].r, st.kind, ev.dec, refused), errText: errText(out.err),
				stop: i == loopAt || i == len(steps)-1 && st.end != ""})
			if i == loopAt {
				return path[:i+1] // the rest of the cycle repeats routers already judged
			}
		}
		return path
	}
	reqPath = judge(reqPath, req, delivered)
	repPath = judge(repPath, rep, out.ok)

	in := e2eInput{request: reqPath, reply: repPath, delivered: delivered, answered: out.ok, errText: errText(out.err)}
	var also []string
	for _, x := range r.order {
		if reqSeen[x.name] || repSeen[x.name] {
			continue
		}
		w := byName[x.name]
		ev := evOf(x.name, w.kind)
		if !ev.seenOffPath() {
			continue
		}
		also = append(also, x.name)
		r.opts.Log.Debug().Str("flow", fp.flow.ID).Str("router", x.name).Interface("ip", ev.ip).Interface("moved", ev.dec.deltas()).Msg("seen off the paths")
		if ev.dec.block != nil && in.elsewhere == nil {
			v, c := judgeRouter(x.name, "", "", routerInput{ev: ev, errText: errText(out.err)})
			in.elsewhere = &obsHop{router: x.name, view: v, cause: c}
		}
	}
	for _, h := range append(append([]*obsHop{}, reqPath...), repPath...) {
		if h.view.Verdict == doc.Unknown && strings.HasPrefix(h.view.Reason, "the lab cannot show") && in.unknown == "" {
			in.unknown = h.router + ": " + h.view.Reason
		}
	}
	for _, w := range [][]*walkStep{req, rep} {
		if n := len(w); n > 0 && w[n-1].end == endAbsent && in.unknown == "" && !out.ok {
			st := w[n-1]
			in.unknown = fmt.Sprintf("%s sends the packet to %s (%s), which is not in lab %s (built with --scope path for other flows?)",
				st.router, st.absent, st.next, r.d.Lab.ID)
		}
	}
	if len(fp.hops) > 0 && len(reqPath) == 0 && !out.ok && in.unknown == "" {
		in.unknown = "no router of the lab shows the probe (no counter moved): " + errText(out.err)
	}
	if !out.ok && in.unknown == "" && dst.problem != "" && stopped(reqPath) == nil && in.elsewhere == nil {
		in.unknown = dst.problem
	}
	e := judgeE2E(in)
	e.Path, e.ReplyPath, e.AlsoSeen = obsText(reqPath), obsText(repPath), also

	// Router views: the request's routers, then the reply's own, then
	// predicted routers the probe never reached.
	pt := predictionFor(fp.real, routersOf(e.Path), routersOf(e.ReplyPath))
	pv := predictedViews(pt)
	listed := map[string]bool{}
	add := func(v *doc.RouterReach) {
		listed[v.Router] = true
		if p, ok := pv[v.Router]; ok {
			v.Predicted = p.Verdict
			v.Agrees = agrees(v, p.Verdict, p.Rule)
			if !v.Agrees && pt.Disposition == doc.Loop && v.Rule == nil && slices.Contains(loopRouters(pt), v.Router) &&
				(v.Verdict == doc.Allowed || v.Verdict == doc.Blocked) {
				// In a loop every router of the cycle passes the packet
				// on until the TTL runs out at one of them: which one
				// depends on the initial TTL, which trace does not model.
				v.Agrees = true
			}
		} else {
			v.Predicted = doc.Unknown
			v.Agrees = v.Verdict == doc.Unknown
		}
		e.Routers = append(e.Routers, v)
	}
	for _, h := range reqPath {
		add(h.view)
	}
	for _, h := range repPath {
		if !listed[h.router] {
			add(h.view)
		}
	}
	if pt != nil {
		for _, h := range append(append([]*doc.Hop{}, pt.Hops...), pt.ReplyHops...) {
			if h.Kind == doc.HopRouter && !listed[h.Node] {
				v := &doc.RouterReach{Router: h.Node, In: h.In, Out: h.Out, Verdict: doc.Unknown,
					Reason: "not seen: no counter of this router moved for this probe"}
				if w := byName[h.Node]; w == nil {
					v.Reason = "not in the lab"
				}
				add(v)
			}
		}
		e.PredictedPath, e.PredictedReplyPath = pathText(pt.Hops), pathText(pt.ReplyHops)
	}
	e.Predicted = predictedE2E(pt)
	reqDone := delivered || stopped(reqPath) == nil && len(reqPath) > 0 && len(reqPath) == len(req)
	e.PathDiffers = len(also) > 0 || pt != nil && (pathDiffers(e.Path, e.PredictedPath, reqDone) ||
		len(e.PredictedReplyPath) > 0 && (out.ok && pathDiffers(e.ReplyPath, e.PredictedReplyPath, true) ||
			!out.ok && len(e.ReplyPath) > 0 && pathDiffers(e.ReplyPath, e.PredictedReplyPath, false)))
	return e
}

// hostStats returns the IP statistics reader of an endpoint's namespace
// (nil when it has none).
func (r *runner) hostStats(ep endpoint) *snmpReader {
	if ep.problem != "" {
		return nil
	}
	for _, x := range r.routers {
		if x.ns.name == ep.ns.name {
			return x.snmp
		}
	}
	if r.hostSnmp == nil {
		r.hostSnmp = map[string]*snmpReader{}
	}
	if s, ok := r.hostSnmp[ep.ns.name]; ok {
		return s
	}
	s, err := newSnmpReader(ep.ns)
	if err != nil {
		s = nil
	}
	r.hostSnmp[ep.ns.name] = s
	return s
}

// predictionFor is trace's prediction for the path the probe took: the
// ECMP branch whose request routers are the observed ones (a prefix of
// them when the request stopped) and, among those, whose reply routers are
// the observed reply's (branches often share a request path and differ on
// the way back), else the branch the kernel's hash takes, else the flow's
// own.
func predictionFor(t *doc.Trace, observed, observedReply []string) *doc.Trace {
	if t == nil || len(t.Branches) == 0 {
		return t
	}
	view := func(b *doc.Branch) *doc.Trace {
		return &doc.Trace{Flow: t.Flow, Disposition: b.Disposition, Reason: b.Reason, Direction: b.Direction,
			Hops: b.Hops, ReplyHops: b.ReplyHops, DeniedBy: b.DeniedBy}
	}
	if b := matchBranch(t, observed, observedReply, false); b != nil {
		return view(b)
	}
	for _, b := range t.Branches {
		if b.Kernel {
			return view(b)
		}
	}
	return t
}

// matchBranch is the branch whose request (and, when given, reply)
// routers begin with the observed ones; a branch matching the reply too
// is preferred. With unique, it is nil when the observation does not tell
// the branches apart.
func matchBranch(t *doc.Trace, observed, observedReply []string, unique bool) *doc.Branch {
	if len(observed) == 0 {
		return nil
	}
	prefix := func(hops []*doc.Hop, want []string) bool {
		p := routersOf(pathText(hops))
		return len(p) >= len(want) && slices.Equal(p[:len(want)], want)
	}
	var req, both []*doc.Branch
	for _, b := range t.Branches {
		if !prefix(b.Hops, observed) {
			continue
		}
		req = append(req, b)
		if len(observedReply) > 0 && prefix(b.ReplyHops, observedReply) {
			both = append(both, b)
		}
	}
	pick := req
	if len(both) > 0 {
		pick = both
	}
	if len(pick) == 0 || unique && len(pick) > 1 {
		return nil
	}
	return pick[0]
}

// observedBranch is the number of the ECMP branch whose routers are the
// observed ones (0: none, one path only, or the observation does not tell
// the branches apart).
func observedBranch(t *doc.Trace, observed, observedReply []string) int {
	if t == nil || len(t.Branches) < 2 {
		return 0
	}
	if b := matchBranch(t, observed, observedReply, true); b != nil {
		return b.Branch
	}
	return 0
}

// predictedViews is trace's verdict per router for both directions: the
// request's hops, then the reply's (a router that passes the request but
// stops the reply is BLOCKED).
func predictedViews(t *doc.Trace) map[string]trace.RouterVerdict {
	m := map[string]trace.RouterVerdict{}
	if t == nil {
		return m
	}
	req := *t
	if t.Direction == doc.Reply {
		req.Disposition, req.DeniedBy = doc.Delivered, nil
	}
	for _, v := range trace.PerRouter(&req) {
		if _, ok := m[v.Router]; !ok {
			m[v.Router] = v
		}
	}
	if len(t.ReplyHops) > 0 {
		rep := *t
		rep.Hops, rep.Direction = t.ReplyHops, ""
		if t.Direction != doc.Reply {
			rep.Disposition, rep.DeniedBy = doc.Delivered, nil
		}
		for _, v := range trace.PerRouter(&rep) {
			if p, ok := m[v.Router]; !ok || v.Verdict != doc.Allowed && p.Verdict == doc.Allowed {
				m[v.Router] = v
			}
		}
	}
	return m
}

// compare fills the end-to-end agreement and lists every disagreement.
func (r *runner) compare(fp *flowPlan, res *doc.Reach) {
	e := res.E2E
	pt := predictionFor(fp.real, routersOf(e.Path), routersOf(e.ReplyPath))
	d := compareE2E(e, pt)
	ok := d == ""
	e.Agrees = &ok
	if !ok {
		res.Disagreements = append(res.Disagreements, d)
	}
	if live, kb := observedBranch(fp.real, routersOf(e.Path), routersOf(e.ReplyPath)), fp.kernelBranch; live > 0 && kb > 0 && live != kb {
		// Trace's hash, with the lab's seeds, names another branch than
		// the one the kernels took.
		e.PathDiffers = true
		res.Disagreements = append(res.Disagreements, fmt.Sprintf("ECMP: the packets took branch %d, trace's multipath hash with the lab's seeds predicts branch %d", live, kb))
	}
	if e.PathDiffers {
		line := fmt.Sprintf("path: live %s, predicted %s", strings.Join(e.Path, " "), strings.Join(e.PredictedPath, " "))
		if len(e.ReplyPath) > 0 || len(e.PredictedReplyPath) > 0 {
			line += fmt.Sprintf("; reply live %s, predicted %s", strings.Join(e.ReplyPath, " "), strings.Join(e.PredictedReplyPath, " "))
		}
		if len(e.AlsoSeen) > 0 {
			line += "; also seen by " + strings.Join(e.AlsoSeen, ", ")
		}
		res.Disagreements = append(res.Disagreements, line)
	}
	add := func(view string, v *doc.RouterReach) {
		if v.Agrees {
			return
		}
		line := fmt.Sprintf("%s %s: live %s%s, predicted %s", view, v.Router, v.Verdict, liveText(v.Rule), v.Predicted)
		if v.Reason != "" && strings.Contains(v.Reason, "the lab's") || strings.Contains(v.Reason, "not in the facts") {
			line += " (" + v.Reason + ")"
		}
		res.Disagreements = append(res.Disagreements, line)
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

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func refText(b *doc.RuleRef) string {
	if b == nil {
		return ""
	}
	s := " (" + b.Router
	if b.Chain != "" {
		s += fmt.Sprintf(" %s %s #%d", b.Table, b.Chain, b.Index)
	}
	if b.Direction != "" {
		s += ", " + b.Direction
	}
	return s + ")"
}

func liveText(l *doc.LiveRule) string {
	if l == nil {
		return ""
	}
	return fmt.Sprintf(" (%s %s #%d)", l.Table, l.Chain, l.Index)
}

func denied(t *doc.Trace) string {
	if t == nil || t.DeniedBy == nil {
		if t != nil && predictedCause(t) != "" && predictedCause(t) != causeFilter {
			return refText(&doc.RuleRef{Router: lastRouter(t), Direction: t.Direction})
		}
		return ""
	}
	b := *t.DeniedBy
	if b.Direction == "" {
		b.Direction = t.Direction
	}
	return refText(&b)
}
