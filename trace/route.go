package trace

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
)

// flowKey is what the kernel's routing decision looks at (struct flowi4).
type flowKey struct {
	src, dst     netip.Addr
	iif          string // in-interface; "lo" for locally generated packets
	mark         uint32
	tos          uint8
	proto        int
	sport, dport uint16
	local        bool // locally generated (output route lookup)
}

// Routing outcomes.
const (
	resUnicast = iota
	resLocal
	resNull    // blackhole / unreachable / prohibit, by route or by rule
	resNoRoute // no rule produced a route
	resUnknown // something the model does not simulate
)

type decision struct {
	res    int
	route  *route
	table  *table
	rule   *facts.Rule
	reason string
	steps  []*doc.Step
	rstep  *doc.Step // the route step of the chosen route (its next hop is filled in)
}

// query renders the `ip route get` command a kernel would be asked for k.
func (k flowKey) query() string {
	var b strings.Builder
	b.Grow(112)
	var a [15]byte // an IPv4 address as text, without allocating
	b.WriteString("ip route get ")
	b.Write(k.dst.AppendTo(a[:0]))
	b.WriteString(" from ")
	b.Write(k.src.AppendTo(a[:0]))
	if !k.local {
		b.WriteString(" iif ")
		b.WriteString(k.iif)
	}
	if k.proto != 0 {
		b.WriteString(" ipproto ")
		b.WriteString(protoName(k.proto))
		if k.proto == 6 || k.proto == 17 {
			b.WriteString(" dport ")
			b.WriteString(strconv.Itoa(int(k.dport)))
			b.WriteString(" sport ")
			b.WriteString(strconv.Itoa(int(k.sport)))
		}
	}
	if k.mark != 0 {
		b.WriteString(" mark 0x")
		b.WriteString(strconv.FormatUint(uint64(k.mark), 16))
	}
	if k.tos != 0 {
		b.WriteString(" tos 0x")
		b.WriteString(strconv.FormatUint(uint64(k.tos), 16))
	}
	return b.String()
}

func protoName(p int) string {
	switch p {
	case 1:
		return "icmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	}
	return strconv.Itoa(p)
}

// ruleMatches is fib_rule_match + fib4_rule_match.
func ruleMatches(ru *facts.Rule, k *flowKey) bool {
	m := func() bool {
		if ru.IIF != "" && ru.IIF != k.iif {
			return false
		}
		// oif rules match only packets of sockets bound to a device; a
		// forwarded packet or a plain `ip route get` carries no oif.
		if ru.OIF != "" {
			return false
		}
		if ru.HasFwmark && (ru.Fwmark^k.mark)&ru.FwmarkMask != 0 {
			return false
		}
		if ru.L3MDev {
			return false // no VRFs are modelled
		}
		if ru.UIDRange != "" && !uidInRange(ru.UIDRange, 0) {
			return false // forwarded packets and root's `ip route get` have uid 0
		}
		if ru.From.IsValid() && !ru.From.Contains(k.src) {
			return false
		}
		if ru.To.IsValid() && !ru.To.Contains(k.dst) {
			return false
		}
		if ru.HasTOS && ru.TOS != 0 && ru.TOS != k.tos {
			return false
		}
		if ru.IPProto != 0 && ru.IPProto != k.proto {
			return false
		}
		if !ru.SPort.Any() && !ru.SPort.Contains(k.sport) {
			return false
		}
		if !ru.DPort.Any() && !ru.DPort.Contains(k.dport) {
			return false
		}
		return true
	}()
	return m != ru.Not
}

func uidInRange(s string, uid int) bool {
	a, b, _ := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil {
		return false
	}
	return uid >= lo && uid <= hi
}

// lookupTable is fib_table_lookup: the longest prefix, then tos, then the
// lowest metric. skipped lists routes the kernel would not have.
func (t *table) lookup(dst netip.Addr, tos uint8) (best *route, skipped []*route) {
	for _, rt := range t.routes {
		if !rt.r.Dst.Contains(dst) {
			continue
		}
		if rt.r.TOS != 0 && rt.r.TOS != tos {
			continue
		}
		if rt.invalid != "" {
			skipped = append(skipped, rt)
			continue
		}
		return rt, skipped
	}
	return nil, skipped
}

// decide runs the routing decision (fib_lookup with policy rules) for k.
func (r *rtr) decide(k flowKey, a *arena) decision {
	var d decision
	keep := !a.quiet
	q := ""
	if keep {
		q = k.query()
	}
	rules := r.p().rules
	for i := 0; i < len(rules); i++ {
		ru := &rules[i]
		if !ruleMatches(ru.Rule, &k) {
			continue
		}
		ps := a.step()
		*ps = doc.Step{Kind: doc.StepPolicy, Priority: ru.Priority, Text: ru.Text, Action: ru.Action, Pos: ru.pos}
		if keep {
			d.steps = append(d.steps, ps)
		}
		switch ru.Action {
		case facts.ActionGoto:
			j := -1
			for x, o := range rules {
				if o.Priority == ru.Goto {
					j = x
					break
				}
			}
			if j <= i {
				ps.Detail = fmt.Sprintf("goto %d has no target rule; skipped", ru.Goto)
				continue
			}
			ps.Detail = fmt.Sprintf("goto rule %d", ru.Goto)
			i = j - 1
			continue
		case facts.ActionNop:
			ps.Detail = "nop: continue with the next rule"
			continue
		case facts.ActionBlackhole, facts.ActionUnreachable, facts.ActionProhibit:
			d.res, d.rule = resNull, ru.Rule
			d.reason = fmt.Sprintf("%s: policy rule %d (%s)", r.f.Name, ru.Priority, ru.Action)
			ps.Detail = "rule action " + ru.Action + ": the packet is discarded"
			return d
		}
		// lookup
		t := r.table(ru.Table)
		tname := ru.tname
		ps.Table = tname
		if t == nil {
			ps.Detail = "table " + tname + " is empty; fall through"
			continue
		}
		rt, skipped := t.lookup(k.dst, k.tos)
		if rt == nil && len(skipped) == 0 {
			if ru.Table == facts.TableLocal && keep {
				// Every packet not for the router misses the local
				// table; saying so on every hop is noise.
				d.steps = d.steps[:len(d.steps)-1]
			} else {
				ps.Detail = ru.fallNote
			}
			continue
		}
		rs := a.step()
		*rs = doc.Step{Kind: doc.StepRoute, Table: tname, Query: q}
		if len(skipped) > 0 {
			var s []string
			for _, x := range skipped {
				s = append(s, x.note)
				if keep {
					rs.Refused = append(rs.Refused, &doc.RefusedRoute{Route: x.r.Text, Reason: x.invalid, Pos: x.pos})
				}
			}
			rs.Detail = "ignored, the kernel refuses: " + strings.Join(s, "; ") + ". "
		}
		if rt == nil {
			ps.Detail = ru.fallNote
			if rs.Detail != "" && keep {
				rs.Action = "none"
				rs.Detail += "no route matched"
				d.steps = append(d.steps, rs)
			}
			continue
		}
		rs.Text, rs.Action, rs.Pos = rt.r.Text, rt.r.Type, rt.pos
		if keep {
			d.steps = append(d.steps, rs)
		}
		switch rt.r.Type {
		case facts.RouteThrow:
			rs.Detail += "throw: continue with the next rule"
			continue
		case facts.RouteBlackhole, facts.RouteUnreachable, facts.RouteProhibit:
			d.res, d.route, d.table, d.rule = resNull, rt, t, ru.Rule
			d.reason = fmt.Sprintf("%s: %s route %s in table %s", r.f.Name, rt.r.Type, rt.r.Dst, tname)
			rs.Detail += rt.r.Type + " route: the packet is discarded"
			return d
		case facts.RouteMulticast, facts.RouteNAT:
			d.res, d.route, d.table, d.rule = resUnknown, rt, t, ru.Rule
			d.reason = fmt.Sprintf("%s: %s route %q is not simulated", r.f.Name, rt.r.Type, rt.r.Text)
			return d
		}
		if ru.SuppressPrefixLen >= 0 && rt.r.Dst.Bits() <= ru.SuppressPrefixLen {
			rs.Detail += "suppressed: prefix length " + strconv.Itoa(rt.r.Dst.Bits()) + " <= suppress_prefixlength " +
				strconv.Itoa(ru.SuppressPrefixLen) + "; continue with the next rule"
			continue
		}
		d.route, d.table, d.rule = rt, t, ru.Rule
		switch rt.r.Type {
		case facts.RouteLocal, facts.RouteBroadcast, facts.RouteAnycast:
			d.res = resLocal
		default:
			d.res = resUnicast
		}
		rs.Detail += rt.use
		if d.res == resUnicast {
			rs.Gateway, rs.Device = rt.gw, rt.dev
			if n := len(rt.r.Nexthops); n > 1 {
				rs.Nexthop, rs.Nexthops = 1, n
			}
		}
		d.rstep = rs
		return d
	}
	d.res = resNoRoute
	d.reason = fmt.Sprintf("%s: no route to %s (%s)", r.f.Name, k.dst, q)
	return d
}

// firstHop returns the gateway and device the packet leaves by; for
// multipath routes the first nexthop (the others are alternatives).
func firstHop(r *facts.Route) (netip.Addr, string) {
	if len(r.Nexthops) > 0 {
		return r.Nexthops[0].Gateway, r.Nexthops[0].Dev
	}
	return r.Gateway, r.Dev
}

func posString(p facts.Pos) string {
	if p.File == "" {
		return ""
	}
	return p.String()
}

// arena hands out steps from chunks, so a trace makes a few allocations
// instead of one per step. A quiet arena is for decisions nobody explains
// (source validation, choosing a first hop): it hands out one scratch step.
type arena struct {
	buf   []doc.Step
	quiet bool
	one   doc.Step
}

func (a *arena) step() *doc.Step {
	if a.quiet {
		a.one = doc.Step{}
		return &a.one
	}
	if len(a.buf) == cap(a.buf) {
		a.buf = make([]doc.Step, 0, 16)
	}
	a.buf = a.buf[:len(a.buf)+1]
	return &a.buf[len(a.buf)-1]
}
