package reach

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tsim-dev/tsim/internal/doc"
)

// The verdict logic: counter deltas, IP statistics and the probe's outcome
// in, router and end-to-end verdicts out. Pure functions, no kernel; Run's
// plumbing (reach.go) gathers the evidence and calls them.

// Causes of a stopped connection (doc.E2E.Cause).
const (
	causeFilter      = "filter"
	causeBlackhole   = "blackhole"
	causeUnreachable = "unreachable"
	causeNoRoute     = "no_route"
	causeRPFilter    = "rp_filter"
	causeForwarding  = "forwarding"
	causeLoop        = "loop"
	causeNoNeighbour = "no_neighbour"
	// causeBroadcast: the destination is a broadcast address of the
	// router (a broadcast route of its local table): received, delivered
	// to the router's stack, never forwarded, and not answered (TCP and
	// ignored ICMP echoes; a UDP datagram no socket wanted).
	causeBroadcast = "broadcast"
)

// evidence is what one router showed during one probe: the counters that
// moved (with the deciding rule for the hop kind) and its IP statistics.
type evidence struct {
	dec decision
	ip  ipStats // growth during the probe
	// neigh: the router forwarded the packet but its next hop does not
	// answer ARP ("" otherwise).
	neigh string
}

// seen: the router's own counters show a packet of this probe.
func (e *evidence) seen() bool {
	return e != nil && (len(e.dec.moved) > 0 || e.ip.InReceives > 0 || e.ip.OutRequests > 0)
}

// seenOffPath: the router handled a packet of this probe although no
// route sends it there. InReceives alone does not say so: a bridge floods
// a frame for a MAC address it has not learnt to every port, and the
// kernel counts it before dropping it as not its own (PACKET_OTHERHOST),
// before any netfilter hook; and a straggler of an earlier probe (a
// reset) can be dropped right after PREROUTING. A forwarded or delivered
// packet, a routing drop, or a counter after PREROUTING does.
func (e *evidence) seenOffPath() bool {
	if e == nil {
		return false
	}
	ip := e.ip
	if ip.forwarded() > 0 || ip.InDelivers > 0 || ip.InNoRoutes > 0 || ip.InAddrErrors > 0 || ip.RPFilter > 0 ||
		ip.OutDestUnreachs > 0 || ip.OutTimeExcds > 0 || ip.InHdrErrors > 0 {
		return true
	}
	for _, mv := range e.dec.moved {
		if mv.chain != "PREROUTING" && mv.chain != "OUTPUT" && (mv.ch == nil || mv.ch.policy != "" || blocking(mv.target)) {
			return true
		}
	}
	return false
}

// reached: the packet arrived at a router of the walk. A received packet
// that went nowhere (no counter after it, not forwarded, not delivered)
// counts only when the router before it shows it passed the packet on
// (prevPassed): a lone InReceives can be a straggler of an earlier probe,
// and must not turn the router that dropped the packet into one that
// passed it, nor blame its neighbour for a blackhole.
func reached(e *evidence, prevPassed bool) bool {
	return e.seenOffPath() || prevPassed && e.seen()
}

// passedOn: the router's own statistics show it forwarded or delivered a
// packet of this probe.
func (e *evidence) passedOn() bool {
	return e != nil && (e.ip.forwarded() > 0 || e.ip.InDelivers > 0)
}

// routingCause names why routing discarded a packet the router received,
// from its IP statistics ("" when they show no routing drop).
func routingCause(ip ipStats) (cause, text string) {
	switch {
	case ip.RPFilter > 0:
		return causeRPFilter, "dropped by the reverse-path filter (rp_filter)"
	case ip.OutTimeExcds > 0 || ip.InHdrErrors > 0:
		return causeLoop, "TTL exceeded: a routing loop"
	case ip.InNoRoutes > 0:
		return causeNoRoute, "no route to the destination (the router answered network unreachable, or forwarding is off)"
	case ip.InAddrErrors > 0:
		return causeForwarding, "not forwarded: forwarding is disabled on the incoming interface (or the destination is not routable)"
	case ip.OutDestUnreachs > 0:
		return causeUnreachable, "the router answered ICMP unreachable (an unreachable or prohibit route)"
	case ip.InBcastPkts > 0 && ip.forwarded() == 0:
		// Before the blackhole case: a broadcast delivered to a stack
		// that drops it (TCP, an ignored echo) also went nowhere.
		return causeBroadcast, "received as a broadcast (the destination is a broadcast address of the router's local table): delivered to the router, not forwarded, not answered"
	case ip.InReceives > 0 && ip.forwarded() == 0 && ip.InDelivers == 0:
		return causeBlackhole, "the packet entered the router and was discarded without an answer (a blackhole route or policy rule)"
	}
	return "", ""
}

// routerInput is everything judgeRouter needs about one router.
type routerInput struct {
	ev *evidence
	// later: a router after this one on the observed path saw the packet
	// (its own counters), or the destination received it.
	later bool
	// answered: the probe's answer came back.
	answered bool
	// refusal: a line the kernel refused in the lab that this packet
	// meets here ("" if none): the lab cannot show the real router.
	refusal string
	errText string
	// stop: the walk of the kernel's routes ends here (a loop closed, a
	// routing answer): routing statistics decide even if the router also
	// passed packets on (the looping packet, before its TTL ran out).
	stop bool
}

// routingStop: statistics that name a routing drop other than "received
// and went nowhere".
func routingStop(ip ipStats) bool {
	return ip.RPFilter > 0 || ip.OutTimeExcds > 0 || ip.InHdrErrors > 0 || ip.InNoRoutes > 0 || ip.InAddrErrors > 0 || ip.OutDestUnreachs > 0 ||
		ip.InBcastPkts > 0 && ip.forwarded() == 0
}

// judgeRouter is one router's verdict from its own evidence: ALLOWED only
// when its counters moved for this probe and it passed the packet on;
// BLOCKED when a blocking rule moved or routing discarded the packet here;
// otherwise UNKNOWN ("not seen").
func judgeRouter(router, in, out string, x routerInput) (*doc.RouterReach, string) {
	rr := &doc.RouterReach{Router: router, In: in, Out: out}
	ev := x.ev
	cause := ""
	if ev != nil {
		rr.Counters = ev.dec.deltas()
	}
	switch {
	case !ev.seen():
		rr.Verdict = doc.Unknown
		rr.Reason = "not seen: no counter of this router moved for this probe"
	case ev.dec.block != nil && !x.later && !x.answered:
		rr.Verdict, rr.Rule, cause = doc.Blocked, ev.dec.block.live(), causeFilter
		rr.Reason = ev.dec.block.note
	case ev.neigh != "":
		rr.Verdict, rr.Reason, cause = doc.Blocked, ev.neigh, causeNoNeighbour
	case x.stop && !x.later && !x.answered && routingStop(ev.ip):
		// The packet went no further, and the router's statistics name
		// a routing drop (a loop ends where the TTL runs out).
		c, text := routingCause(ev.ip)
		rr.Verdict, rr.Reason, cause = doc.Blocked, text, c
	case x.later || x.answered || ev.passedOn() && ev.neigh == "":
		rr.Verdict = doc.Allowed
		if a := ev.dec.accept; a != nil {
			rr.Rule = a.live()
			rr.Reason = a.note
		} else {
			rr.Reason = "passed on; no filter rule or policy counter moved (no filter chain on this path)"
		}
		if b := ev.dec.block; b != nil {
			l := b.live()
			rr.Reason = joinReason(rr.Reason, fmt.Sprintf("%s %s #%d dropped another packet of this connection", l.Table, l.Chain, l.Index))
		}
	default:
		c, text := routingCause(ev.ip)
		if c == "" {
			rr.Verdict = doc.Unknown
			rr.Reason = "the router saw the packet, but nothing shows whether it passed it on: " + x.errText
			if a := ev.dec.accept; a != nil {
				rr.Rule = a.live()
				rr.Reason = "accepted by the filter, but nothing shows it left the router: " + x.errText
			}
			break
		}
		rr.Verdict, rr.Reason, cause = doc.Blocked, text, c
	}
	if x.refusal != "" && rr.Verdict != doc.Unknown {
		rr.Reason = fmt.Sprintf("the lab cannot show the real router: %s; live %s", x.refusal, rr.Verdict)
		rr.Verdict, cause = doc.Unknown, ""
	}
	return rr, cause
}

// obsHop is one router of an observed path with its verdict.
type obsHop struct {
	router, in, out string
	view            *doc.RouterReach
	cause           string
}

// stopped returns the first hop of a path whose router stopped the
// packet (BLOCKED), or nil.
func stopped(path []*obsHop) *obsHop {
	for _, h := range path {
		if h.view.Verdict == doc.Blocked {
			return h
		}
	}
	return nil
}

// e2eInput is the evidence of one end-to-end probe.
type e2eInput struct {
	request, reply []*obsHop
	// delivered: the destination received the request (its statistics or
	// listener show it).
	delivered bool
	answered  bool
	// unknown: a reason that makes the answer meaningless ("" if none).
	unknown string
	// elsewhere: a router off both paths whose blocking counter moved.
	elsewhere *obsHop
	errText   string
}

// judgeE2E is the connection's verdict: REACHABLE when the answer came
// back; UNREACHABLE only when a router's own evidence shows where the
// request or the reply stopped (blocked_by names it, with cause and
// direction); otherwise UNKNOWN — no answer and nothing moved is never
// UNREACHABLE.
func judgeE2E(x e2eInput) *doc.E2E {
	e := &doc.E2E{}
	block := func(h *obsHop, dir string) {
		e.Verdict, e.Cause = doc.Unreachable, h.cause
		e.BlockedBy = &doc.RuleRef{Router: h.router, Direction: dir}
		if r := h.view.Rule; r != nil && h.cause == causeFilter {
			e.BlockedBy.Table, e.BlockedBy.Chain, e.BlockedBy.Index, e.BlockedBy.Rule = r.Table, r.Chain, r.Index, r.Text
		} else {
			e.BlockedBy.Rule = h.view.Reason
		}
		e.Reason = dir + " stopped at " + h.router + ": " + firstNonEmpty(h.view.Reason, h.cause)
		if h.cause == causeFilter && h.view.Rule != nil {
			e.Reason = fmt.Sprintf("%s dropped at %s by %s %s #%d", dir, h.router, h.view.Rule.Table, h.view.Rule.Chain, h.view.Rule.Index)
			if h.view.Reason != "" {
				e.Reason += " (" + h.view.Reason + ")"
			}
		}
	}
	switch {
	case x.answered:
		e.Verdict = doc.Reachable
	case x.unknown != "":
		e.Verdict, e.Reason = doc.Unknown, x.unknown
	default:
		if h := stopped(x.request); h != nil {
			block(h, doc.Request)
			break
		}
		if h := stopped(x.reply); h != nil && x.delivered {
			block(h, doc.Reply)
			break
		}
		if h := x.elsewhere; h != nil {
			dir := doc.Request
			if x.delivered {
				dir = doc.Reply
			}
			block(h, dir)
			e.Reason += " (a router off the predicted paths)"
			break
		}
		e.Verdict = doc.Unknown
		switch {
		case x.delivered:
			e.Reason = "the destination received the request, but no reply came back and no router shows where it stopped: " + x.errText
		default:
			e.Reason = "no answer, and no router's counters show where the packet stopped: " + x.errText
		}
	}
	return e
}

// agrees compares a live router verdict with a prediction: the same
// verdict and the same cause — a firewall drop (a rule) and a routing drop
// (no rule) differ; when a rule decides, the same table, chain and index.
func agrees(v *doc.RouterReach, pv string, pr *doc.LiveRule) bool {
	if v.Verdict != pv {
		return false
	}
	if v.Verdict == doc.Unknown {
		return true
	}
	if pr == nil || v.Rule == nil {
		return pr == nil && v.Rule == nil
	}
	return pr.Table == v.Rule.Table && pr.Chain == v.Rule.Chain && pr.Index == v.Rule.Index
}

// predictedCause is trace's cause for a negative disposition: filter for
// DENIED, routing otherwise.
func predictedCause(t *doc.Trace) string {
	if t == nil {
		return ""
	}
	switch t.Disposition {
	case doc.Denied:
		return causeFilter
	case doc.NullRouted:
		return causeBlackhole
	case doc.NoRoute:
		return causeNoRoute
	case doc.Loop:
		return causeLoop
	}
	return ""
}

// causeClass groups causes by what decided: a firewall rule, a route
// (blackhole, unreachable, prohibit, no route, a next hop nobody owns, a
// broadcast route of the local table (trace's NULL_ROUTED) —
// the kernel's statistics cannot always tell these apart, trace's
// NULL_ROUTED and NO_ROUTE name them), rp_filter, forwarding disabled, a
// loop.
func causeClass(c string) string {
	switch c {
	case causeBlackhole, causeUnreachable, causeNoRoute, causeNoNeighbour, causeBroadcast:
		return "route"
	}
	return c
}

// sameCause: a live cause is what trace's disposition predicts.
func sameCause(live, pred string) bool { return causeClass(live) == causeClass(pred) }

// compareE2E says whether the live end-to-end answer agrees with trace's:
// the same verdict and, for a stopped connection, the same cause, deciding
// router, table, chain, rule index and direction. It returns the
// disagreement ("" when they agree).
func compareE2E(e *doc.E2E, t *doc.Trace) string {
	pred := predictedE2E(t)
	live := e.Verdict + refText(e.BlockedBy) + causeText(e.Cause)
	predText := pred + denied(t) + causeText(predictedCause(t))
	if e.Verdict != pred {
		return fmt.Sprintf("end to end: live %s, predicted %s", live, predText)
	}
	if e.Verdict != doc.Unreachable || t == nil || t.Disposition == doc.Unknown {
		return ""
	}
	if !sameCause(e.Cause, predictedCause(t)) {
		return fmt.Sprintf("end to end: live %s, predicted %s: a different cause", live, predText)
	}
	b, p := e.BlockedBy, t.DeniedBy
	if t.Disposition == doc.Loop {
		// The TTL runs out at whichever router of the cycle the initial
		// TTL decides; trace names the router where the cycle closes.
		if b == nil || !slices.Contains(loopRouters(t), b.Router) {
			return fmt.Sprintf("end to end: live %s, predicted %s: not a router of the predicted loop", live, predText)
		}
		return ""
	}
	if p == nil {
		// Routing: trace names no rule, only the router where the path
		// ended.
		if r := lastRouter(t); b == nil || r != "" && b.Router != r {
			return fmt.Sprintf("end to end: live %s, predicted %s at %s", live, predText, r)
		}
		return ""
	}
	pdir := firstNonEmpty(p.Direction, firstNonEmpty(t.Direction, doc.Request))
	if b == nil || b.Router != p.Router || b.Table != p.Table || b.Chain != p.Chain || b.Index != p.Index || firstNonEmpty(b.Direction, doc.Request) != pdir {
		return fmt.Sprintf("end to end: live %s, predicted %s", live, predText)
	}
	return ""
}

// loopRouters are the routers a LOOP trace visits more than once.
func loopRouters(t *doc.Trace) []string {
	n := map[string]int{}
	var out []string
	for _, h := range t.Hops {
		if h.Kind == doc.HopRouter {
			if n[h.Node]++; n[h.Node] == 2 {
				out = append(out, h.Node)
			}
		}
	}
	return out
}

func causeText(c string) string {
	if c == "" {
		return ""
	}
	return " [" + c + "]"
}

// lastRouter is the router where trace's path ended (the last router hop
// of the direction that failed).
func lastRouter(t *doc.Trace) string {
	hops := t.Hops
	if t.Direction == doc.Reply && len(t.ReplyHops) > 0 {
		hops = t.ReplyHops
	}
	for i := len(hops) - 1; i >= 0; i-- {
		if hops[i].Kind == doc.HopRouter {
			return hops[i].Node
		}
	}
	return ""
}

// pathText renders router hops as "router(in>out)".
func pathText(hops []*doc.Hop) []string {
	var out []string
	for _, h := range hops {
		if h.Kind == doc.HopRouter {
			out = append(out, hopText(h.Node, h.In, h.Out))
		}
	}
	return out
}

func hopText(router, in, out string) string {
	return router + "(" + in + ">" + out + ")"
}

func obsText(path []*obsHop) []string {
	var out []string
	for _, h := range path {
		out = append(out, hopText(h.router, h.in, h.out))
	}
	return out
}

// routersOf returns the router names of a rendered path.
func routersOf(p []string) []string {
	out := make([]string, len(p))
	for i, s := range p {
		out[i], _, _ = strings.Cut(s, "(")
	}
	return out
}

// pathDiffers compares an observed path with the predicted one by
// routers; an observed path that ends early (the packet stopped) is
// compared with the predicted path's start.
func pathDiffers(observed, predicted []string, complete bool) bool {
	o, p := routersOf(observed), routersOf(predicted)
	if complete && len(o) != len(p) || len(o) > len(p) {
		return true
	}
	for i := range o {
		if o[i] != p[i] {
			return true
		}
	}
	return false
}
