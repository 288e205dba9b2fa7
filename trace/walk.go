package trace

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/tsimerr"
)

// EphemeralPort is the source port used for a TCP/UDP flow that names none:
// the first port of Linux's default ip_local_port_range.
const EphemeralPort = 32768

// InitialTTL is the TTL a simulated packet starts with (Linux default).
const InitialTTL = 64

// pkt is the packet as it travels: addresses and ports change under NAT.
type pkt struct {
	src, dst     netip.Addr
	proto        int
	sport, dport uint16
	tos          uint8
	ttl          int
}

// Validate checks that flow can be simulated: addresses parse, are IPv4,
// the protocol is known and an ingress names an existing interface. Its
// errors are input errors (exit 2).
func (e *Engine) Validate(flow *doc.Flow) error {
	_, err := e.parseFlow(flow)
	return err
}

func (e *Engine) parseFlow(flow *doc.Flow) (pkt, error) {
	var p pkt
	src, err := netip.ParseAddr(flow.Src)
	if err != nil {
		return p, tsimerr.Inputf("flow %s: source %q is not an IP address", flow.ID, flow.Src)
	}
	dst, err := netip.ParseAddr(flow.Dst)
	if err != nil {
		return p, tsimerr.Inputf("flow %s: destination %q is not an IP address", flow.ID, flow.Dst)
	}
	if !src.Unmap().Is4() || !dst.Unmap().Is4() {
		return p, tsimerr.Inputf("flow %s: %s -> %s: only IPv4 is simulated", flow.ID, flow.Src, flow.Dst)
	}
	p = pkt{src: src.Unmap(), dst: dst.Unmap(), ttl: InitialTTL}
	switch strings.ToLower(flow.Proto) {
	case "", "icmp":
		p.proto = 1
	case "tcp":
		p.proto = 6
	case "udp":
		p.proto = 17
	default:
		return p, tsimerr.Inputf("flow %s: protocol %q (want tcp, udp or icmp)", flow.ID, flow.Proto)
	}
	if p.proto != 1 {
		if flow.DPort < 1 || flow.DPort > 65535 {
			return p, tsimerr.Inputf("flow %s: destination port %d out of range", flow.ID, flow.DPort)
		}
		if flow.SPort < 0 || flow.SPort > 65535 {
			return p, tsimerr.Inputf("flow %s: source port %d out of range", flow.ID, flow.SPort)
		}
		p.dport = uint16(flow.DPort)
		p.sport = EphemeralPort
		if flow.SPort != 0 {
			p.sport = uint16(flow.SPort)
		}
	}
	if flow.Ingress != "" {
		rn, ifc, ok := strings.Cut(flow.Ingress, ":")
		r := e.byName[rn]
		if !ok || r == nil || r.f.Interface(ifc) == nil {
			return p, tsimerr.Inputf("flow %s: ingress %q is not ROUTER:IFACE of the facts", flow.ID, flow.Ingress)
		}
	}
	return p, nil
}

// walker holds the state of one trace: one branch at a time, the request
// and then the reply (see connection.go).
type walker struct {
	e    *Engine
	flow *doc.Flow
	p0   pkt // the request as the source sends it
	p    pkt
	seen []loopKey // a few entries: a linear scan beats a map
	pk   Packet    // reused: one packet is in flight at a time
	a    arena

	// The direction being walked and its outcome.
	dir    string
	hops   []*doc.Hop
	disp   string
	reason string
	denied *doc.RuleRef
	// ct are the conntrack entries the request made, one per router visit.
	ct []ctEntry
	// ECMP: forced nexthop choices by multipath point (in walk order)
	// and the points met.
	force  []int
	points []mpPoint
	alts   []string
	notes  []string // assumptions (kernel defaults for sysctls the facts lack)
	// ack: walking the tcp handshake's final ACK along the request's
	// path (direction request); ackPoint is its next ECMP point.
	ack      bool
	ackPoint int
	// bcSrc: the request was an ICMP echo to a broadcast address that
	// the router answers from this address of its own (invalid otherwise).
	bcSrc netip.Addr
	// memo: the request walks of this connection's branches so far.
	memo []*requestMemo
}

// loopKey is what makes a packet "the same packet again" on a router.
type loopKey struct {
	r            *rtr
	in           string
	src, dst     netip.Addr
	sport, dport uint16
	tos          uint8
}

// Trace simulates one flow. Input problems (see Validate) give disposition
// UNKNOWN with the problem as reason; callers wanting exit code 2 call
// Validate first.
func (e *Engine) Trace(ctx context.Context, flow *doc.Flow) *doc.Trace {
	t := &doc.Trace{Flow: flow.ID, Hops: []*doc.Hop{}}
	p, err := e.parseFlow(flow)
	if err != nil {
		t.Disposition, t.Reason = doc.Unknown, err.Error()
		return t
	}
	if ctx.Err() != nil {
		t.Disposition, t.Reason = doc.Unknown, ctx.Err().Error()
		return t
	}
	w := &walker{e: e, flow: flow, p0: p}
	w.connection(t)
	return t
}

func (w *walker) finish(disp, reason string) {
	w.disp, w.reason = disp, reason
}

func (w *walker) hop(node, kind, ip, in string) *doc.Hop {
	h := &doc.Hop{Node: node, Kind: kind, IP: ip, In: in, Steps: make([]*doc.Step, 0, 8)}
	w.hops = append(w.hops, h)
	return h
}

func (w *walker) start(flow *doc.Flow) {
	e, p := w.e, w.p
	if os := e.owners[p.src]; len(os) > 0 {
		w.originate(os[0].r, os[0].ifc)
		return
	}
	if flow.Ingress != "" && w.dir == doc.Request {
		rn, ifc, _ := strings.Cut(flow.Ingress, ":")
		r := e.byName[rn]
		src := p.src.String()
		w.hop(src, doc.HopHost, src, "")
		w.receive(r, ifc, r.addrOn(ifc, p.src))
		return
	}
	// A host: the routers with the source on a connected subnet.
	at := e.attachedTo(p.src)
	cands, seg := at.cands, at.seg
	if len(cands) == 0 {
		hint := "no router has it on a connected subnet"
		if up := e.uplinkList(); len(up) > 0 {
			hint += "; give the ingress (ROUTER:IFACE), candidate uplinks: " + strings.Join(up, ", ")
		}
		w.finish(doc.UnknownSource, "source "+p.src.String()+" is outside the modelled network: "+hint)
		return
	}
	src := p.src.String()
	w.hop(src, doc.HopHost, src, "")
	if seg.Contains(p.dst) && seg.Bits() < 31 && p.dst == addrFromU32(u32(seg.Addr())|^uint32(0)>>seg.Bits()) {
		// The subnet's broadcast: a link-layer broadcast every router
		// on the subnet receives by its local table's broadcast route.
		for _, c := range cands {
			if cn, ok := c.r.connectedOn(c.ifc, p.src); ok && cn.pfx == seg {
				w.receive(c.r, c.ifc, c.r.addrOn(c.ifc, p.src))
				return
			}
		}
	}
	if seg.Contains(p.dst) {
		// Same subnet: the host talks to the destination directly.
		if os := e.owners[p.dst]; len(os) > 0 {
			for _, o := range os {
				if _, ok := o.r.connectedOn(o.ifc, p.dst); ok {
					w.receive(o.r, o.ifc, p.dst)
					return
				}
			}
		}
		if p.dst != p.src {
			dst := p.dst.String()
			w.hop(dst, doc.HopHost, dst, "")
		}
		w.finish(doc.Delivered, "source and destination share "+seg.String())
		return
	}
	c := cands[0]
	if len(cands) > 1 {
		// Which router a host uses is the host's configuration, not in
		// the facts. Prefer one that forwards the packet on rather than
		// straight back onto the host's own subnet (a redirect).
		for _, x := range cands {
			scratch := arena{quiet: true}
			d := x.r.decide(w.key(x.ifc, 0, false), &scratch)
			if d.res == resLocal {
				c = x
				break
			}
			if d.res == resUnicast {
				if _, dev := x.r.hopOf(d.route.r); dev != x.ifc {
					c = x
					break
				}
			}
		}
		var others []string
		for _, x := range cands {
			if x != c {
				others = append(others, x.r.f.Name+":"+x.ifc)
			}
		}
		what := "source"
		if w.dir == doc.Reply {
			what = "the reply's source"
		}
		w.note(fmt.Sprintf("%s %s is on a subnet shared by several routers; took first hop %s:%s (also %s)",
			what, p.src, c.r.f.Name, c.ifc, strings.Join(others, ", ")))
	}
	w.receive(c.r, c.ifc, c.r.addrOn(c.ifc, p.src))
}

// packet builds the netfilter view of the current packet.
func (w *walker) packet(in, out string, mark uint32) *Packet {
	p := &w.pk
	*p = Packet{Src: w.p.src, Dst: w.p.dst, Proto: w.p.proto, SPort: w.p.sport, DPort: w.p.dport,
		InIf: in, OutIf: out, Mark: mark, TOS: w.p.tos, CTState: "NEW", TTL: uint8(w.p.ttl)}
	reply := w.dir == doc.Reply
	switch w.p.proto {
	case 1:
		p.ICMPType, p.Length = 8, 84
		if reply {
			p.ICMPType = 0 // echo reply
		}
	case 6:
		p.TCPFlags, p.Length = "SYN", 60
		if reply {
			p.TCPFlags = "SYN,ACK"
		} else if w.ack {
			p.TCPFlags, p.Length = "ACK", 52
		}
	default:
		p.Length = 40
	}
	return p
}

// chain runs one netfilter chain if the router has it, records the step and
// applies NAT and marks to the packet. It returns false when the packet
// stops here (DENIED or UNKNOWN; the disposition is set).
func (w *walker) chain(r *rtr, h *doc.Hop, tbl, ch string, np *Packet) bool {
	ci, ok := r.p().chains[chainKey{tbl, ch}]
	if !ok || len(ci.c.Rules) == 0 && ci.c.Policy != "DROP" {
		return true // absent or empty and accepting: nothing to explain
	}
	if tbl == "nat" && np.CTState != "NEW" {
		// The nat table sees only the first packet of a connection;
		// replies are translated by conntrack, and packets without a
		// conntrack entry (INVALID, UNTRACKED) are never translated.
		return true
	}
	before := *np
	res := r.firewall().Traverse(tbl, ch, np)
	st := w.a.step()
	*st = doc.Step{Kind: stepKind(tbl), Table: tbl, Chain: res.Chain, Index: res.Index, Action: res.Verdict}
	if st.Chain == "" {
		st.Chain = ch
	}
	if res.Rule != nil {
		st.Text, st.Pos = res.Rule.Text, r.p().rulePos[res.Rule]
	} else if res.Index == 0 {
		st.Text = ci.policy
	}
	st.Detail = res.Reason
	if len(res.Visited) > 1 || st.Chain != ch {
		st.Detail = strings.TrimSpace(rulePath(ch, res) + " " + res.Reason)
	}
	// Other tables' ACCEPTs decide nothing; their marks and NAT get
	// their own steps below.
	if tbl == "filter" || res.Verdict != VerdictAccept {
		h.Steps = append(h.Steps, st)
	}
	switch res.Verdict {
	case VerdictDrop, VerdictReject:
		w.denied = &doc.RuleRef{Router: r.f.Name, Table: tbl, Chain: st.Chain, Index: res.Index, Rule: st.Text, Direction: w.dir, Pos: st.Pos}
		w.finish(doc.Denied, fmt.Sprintf("%s: %s %s %s: %s", r.f.Name, tbl, st.Chain, ruleNo(res.Index), st.Text))
		return false
	case VerdictUnknown:
		reason := res.Reason
		if reason == "" {
			reason = fmt.Sprintf("%s %s %s is not simulated: %s", tbl, st.Chain, ruleNo(res.Index), st.Text)
		}
		w.finish(doc.Unknown, r.f.Name+": "+reason)
		return false
	}
	if np.Mark != before.Mark {
		h.Steps = append(h.Steps, changeStep(res, tbl, "MARK", uint64(before.Mark), uint64(np.Mark), "MARK", "CONNMARK"))
	}
	if np.TOS != before.TOS {
		h.Steps = append(h.Steps, changeStep(res, tbl, "TOS", uint64(before.TOS), uint64(np.TOS), "TOS", "DSCP"))
		w.p.tos = np.TOS
	}
	if res.NAT != nil {
		w.applyNAT(r, h, res, np, &before)
	}
	return true
}

// rulePath lists the rules that matched on the way to the verdict, e.g.
// "matched: FORWARD #2 → DB_GUARD, DB_GUARD #1 RETURN, FORWARD #5 ACCEPT".
func rulePath(ch string, res ChainResult) string {
	var b strings.Builder
	b.WriteString("matched:")
	for i, v := range res.Visited {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(" " + v.Chain + " #" + strconv.Itoa(v.Index))
		if v.Target != "" {
			b.WriteString(" " + v.Target)
		}
	}
	if res.Index == 0 {
		b.WriteString("; " + ch + " policy " + res.Verdict)
	}
	return b.String()
}

// changeStep records a mark or TOS change, naming the last rule of the
// walk whose target made it (the deciding rule of the chain is usually its
// policy).
func changeStep(res ChainResult, tbl, what string, from, to uint64, targets ...string) *doc.Step {
	st := &doc.Step{Kind: doc.StepMangle, Table: tbl, Chain: res.Chain, Index: res.Index, Action: what,
		From: "0x" + strconv.FormatUint(from, 16), To: "0x" + strconv.FormatUint(to, 16)}
	for i := len(res.Visited) - 1; i >= 0; i-- {
		v := res.Visited[i]
		for _, t := range targets {
			if strings.EqualFold(v.Target, t) {
				st.Chain, st.Index, st.Text = v.Chain, v.Index, v.Text
				return st
			}
		}
	}
	return st
}

func stepKind(tbl string) string {
	switch tbl {
	case "nat":
		return doc.StepNAT
	case "mangle", "raw":
		return doc.StepMangle
	}
	return doc.StepFilter
}

// applyNAT records a translation and makes the packet carry it, whether or
// not Traverse already rewrote np.
func (w *walker) applyNAT(r *rtr, h *doc.Hop, res ChainResult, np, before *Packet) {
	n := res.NAT
	st := &doc.Step{Kind: doc.StepNAT, Table: "nat", Chain: res.Chain, Index: res.Index, Action: n.Kind}
	if res.Rule != nil {
		st.Text, st.Pos = res.Rule.Text, posString(res.Rule.Pos)
	}
	switch strings.ToUpper(n.Kind) {
	case "DNAT", "REDIRECT":
		a, port := natTarget(n.To)
		if strings.EqualFold(n.Kind, "REDIRECT") && !a.IsValid() {
			a = r.addrOn(np.InIf, before.Src)
		}
		if np.Dst == before.Dst && a.IsValid() {
			np.Dst = a
		}
		if np.DPort == before.DPort && port != 0 && w.p.proto != 1 {
			np.DPort = port
		}
		st.From = natHostPort(before.Dst, before.DPort, w.p.proto)
		st.To = natHostPort(np.Dst, np.DPort, w.p.proto)
		w.p.dst, w.p.dport = np.Dst, np.DPort
	case "SNAT", "MASQUERADE":
		a, port := natTarget(n.To)
		if !a.IsValid() {
			a = r.addrOn(np.OutIf, w.p.dst)
		}
		if np.Src == before.Src && a.IsValid() {
			np.Src = a
		}
		if np.SPort == before.SPort && port != 0 && w.p.proto != 1 {
			np.SPort = port
		}
		st.From = natHostPort(before.Src, before.SPort, w.p.proto)
		st.To = natHostPort(np.Src, np.SPort, w.p.proto)
		w.p.src, w.p.sport = np.Src, np.SPort
	default:
		st.From, st.To = n.From, n.To
		// NETMAP: the packet goes on (and is routed) with the mapped address.
		w.p.src, w.p.dst = np.Src, np.Dst
	}
	st.Detail = n.Kind + " " + st.From + " -> " + st.To
	h.Steps = append(h.Steps, st)
}

// natTarget parses --to-destination/--to-source values: ADDR[-ADDR][:PORT[-PORT]].
func natTarget(s string) (netip.Addr, uint16) {
	s = strings.TrimSpace(s)
	host, port, hasPort := strings.Cut(s, ":")
	host, _, _ = strings.Cut(host, "-")
	a, _ := netip.ParseAddr(host)
	var pn uint16
	if hasPort {
		ps, _, _ := strings.Cut(port, "-")
		if n, err := strconv.Atoi(ps); err == nil && n > 0 && n < 65536 {
			pn = uint16(n)
		}
	}
	return a, pn
}

func natHostPort(a netip.Addr, port uint16, proto int) string {
	if proto == 1 || port == 0 {
		return a.String()
	}
	return a.String() + ":" + strconv.Itoa(int(port))
}

func (w *walker) key(in string, mark uint32, local bool) flowKey {
	return flowKey{src: w.p.src, dst: w.p.dst, iif: in, mark: mark, tos: w.p.tos, proto: w.p.proto,
		sport: w.p.sport, dport: w.p.dport, local: local}
}

// receive handles a packet arriving on router r's interface in.
func (w *walker) receive(r *rtr, in string, ip netip.Addr) {
	ipS := ""
	if ip.IsValid() {
		ipS = r.addrString(ip)
	}
	h := w.hop(r.f.Name, doc.HopRouter, ipS, in)
	state := loopKey{r, in, w.p.src, w.p.dst, w.p.sport, w.p.dport, w.p.tos}
	if slices.Contains(w.seen, state) {
		w.finish(doc.Loop, fmt.Sprintf("%s receives the same packet on %s again", r.f.Name, in))
		return
	}
	w.seen = append(w.seen, state)
	np := w.packet(in, "", 0)
	orig := w.tuple()
	if !w.chain(r, h, "raw", "PREROUTING", np) {
		return
	}
	ct := w.track(r, h, np)
	for _, c := range [][2]string{{"mangle", "PREROUTING"}, {"nat", "PREROUTING"}} {
		if !w.chain(r, h, c[0], c[1], np) {
			return
		}
	}
	w.unSNAT(h, ct, np)
	d := r.decide(w.key(in, np.Mark, false), &w.a)
	h.Steps = append(h.Steps, d.steps...)
	switch d.res {
	case resLocal, resUnicast:
	default:
		w.stop(d)
		return
	}
	ic, ok := r.p().ifconf[in]
	if !ok {
		ic = r.ifConfOf(in)
	}
	if d.res == resUnicast && !ic.forwarding {
		w.finish(doc.NoRoute, r.f.Name+": forwarding is off on "+in+" (net.ipv4.ip_forward / conf."+in+".forwarding), the packet is not forwarded")
		return
	}
	// The kernel selects the multipath nexthop before it validates the
	// source against it (ip_mkroute_input, then __mkroute_input).
	var gw netip.Addr
	var dev string
	if d.res == resUnicast {
		gw, dev = w.outOf(r, d, w.key(in, np.Mark, false))
	}
	if !w.validateSource(r, h, in, ic, np.Mark, d, dev) {
		return
	}
	if d.res == resLocal {
		np.InIf = in
		w.input(r, h, np, ct, orig, d.route)
		return
	}
	if w.p.ttl <= 1 {
		w.finish(doc.Loop, fmt.Sprintf("%s: TTL exceeded (started at %d)", r.f.Name, InitialTTL))
		return
	}
	w.p.ttl-- // ip_forward decrements before the FORWARD hook
	np.TTL = uint8(w.p.ttl)
	h.Out = dev
	np.OutIf, np.Gateway = dev, gw
	for _, c := range [][2]string{{"mangle", "FORWARD"}, {"filter", "FORWARD"}, {"mangle", "POSTROUTING"}, {"nat", "POSTROUTING"}} {
		if !w.chain(r, h, c[0], c[1], np) {
			return
		}
	}
	w.unDNAT(h, ct, np)
	w.commit(r, orig, np)
	w.next(r, d, gw, dev)
}

// originate handles a packet sent by router r itself (src is its address
// on interface ifc): routing first, then the OUTPUT chains, rerouting when
// mangle or nat OUTPUT changed what routing looks at (ip_route_me_harder).
func (w *walker) originate(r *rtr, ifc string) {
	h := w.hop(r.f.Name, doc.HopRouter, r.addrString(w.p.src), "")
	orig := w.tuple()
	d := r.decide(w.key("lo", 0, true), &w.a)
	h.Steps = append(h.Steps, d.steps...)
	if d.res == resNull || d.res == resNoRoute || d.res == resUnknown {
		w.stop(d)
		return
	}
	npoints, nack := len(w.points), w.ackPoint
	gw, dev := w.outOf(r, d, w.key("lo", 0, true))
	if d.res == resLocal {
		dev = "lo"
	}
	np := w.packet("", dev, 0)
	var ct *ctEntry
	for _, c := range [][2]string{{"raw", "OUTPUT"}, {"mangle", "OUTPUT"}, {"nat", "OUTPUT"}, {"filter", "OUTPUT"}} {
		mark, dst, tos := np.Mark, np.Dst, np.TOS
		if !w.chain(r, h, c[0], c[1], np) {
			return
		}
		switch c[0] {
		case "raw":
			ct = w.track(r, h, np)
		case "nat":
			w.unSNAT(h, ct, np)
		}
		if np.Mark != mark || np.Dst != dst || np.TOS != tos {
			d = r.decide(w.key("lo", np.Mark, true), &w.a)
			for _, s := range d.steps {
				s.Detail = strings.TrimSpace("rerouted after " + c[0] + " OUTPUT. " + s.Detail)
			}
			h.Steps = append(h.Steps, d.steps...)
			if d.res == resNull || d.res == resNoRoute || d.res == resUnknown {
				w.stop(d)
				return
			}
			// The first route's nexthop choice is void: only the
			// rerouted one counts as an ECMP point.
			w.dropPointsFrom(npoints)
			w.ackPoint = nack
			gw, dev = w.outOf(r, d, w.key("lo", np.Mark, true))
			if d.res == resLocal {
				dev = "lo"
			}
			np.OutIf = dev
		}
	}
	if d.res == resLocal {
		// Looped back: POSTROUTING on lo, then INPUT.
		np.OutIf = ""
		for _, c := range [][2]string{{"mangle", "POSTROUTING"}, {"nat", "POSTROUTING"}} {
			if !w.chain(r, h, c[0], c[1], np) {
				return
			}
		}
		np.InIf = "lo"
		w.input(r, h, np, ct, orig, d.route)
		return
	}
	h.Out = dev
	np.OutIf, np.Gateway = dev, gw
	for _, c := range [][2]string{{"mangle", "POSTROUTING"}, {"nat", "POSTROUTING"}} {
		if !w.chain(r, h, c[0], c[1], np) {
			return
		}
	}
	w.unDNAT(h, ct, np)
	w.commit(r, orig, np)
	w.next(r, d, gw, dev)
}

// validateSource is the kernel's source validation of a received packet
// (fib_validate_source), routed by d. Without rp_filter, no custom rules or
// local routes, and no redirect case, only a source that is one of the
// router's own addresses is refused (a martian). Otherwise the route back to
// the source (rules evaluated with iif = the forward out device, ports
// swapped, the mark only with src_valid_mark) must not be local, must be
// usable when rp_filter is on, and in strict mode must leave by in. It records the
// check when it drops the packet.
func (w *walker) validateSource(r *rtr, h *doc.Hop, in string, ic ifConf, mark uint32, d decision, oif string) bool {
	rpf, acceptLocal := ic.rpFilter, ic.acceptLocal
	drop := func(table, text, pos, why string) bool {
		mode := "source validation"
		if rpf > 0 {
			mode = fmt.Sprintf("reverse path filter (%s, rp_filter=%d on %s)", map[int]string{1: "strict", 2: "loose"}[rpf], rpf, in)
		}
		st := &doc.Step{Kind: doc.StepRoute, Action: "rp_filter", Query: w.key(in, mark, false).query(), Table: table, Text: text, Pos: pos,
			Detail: mode + ": " + why + "; the kernel drops it as a martian source"}
		h.Steps = append(h.Steps, st)
		h.Out = ""
		w.finish(doc.NoRoute, r.f.Name+": "+st.Detail)
		return false
	}
	if rpf == 0 && (oif != in || !ic.sendRedirects) {
		if acceptLocal {
			return true
		}
		if !r.p().customRouting {
			if os := w.e.owners[w.p.src]; len(os) > 0 && slices.ContainsFunc(os, func(o owner) bool { return o.r == r }) {
				return drop("", "", "", "the source "+w.p.src.String()+" is an address of "+r.f.Name)
			}
			return true
		}
	}
	back := flowKey{src: w.p.dst, dst: w.p.src, iif: "lo", tos: w.p.tos, proto: w.p.proto, sport: w.p.dport, dport: w.p.sport}
	if d.route != nil && d.route.r.Type == facts.RouteBroadcast {
		// ip_route_input_slow validates a broadcast with no local
		// address (brd_input: fib_validate_source(…, daddr 0, …)): the
		// route back is looked up from 0.0.0.0, so rules selecting
		// the source do not match it.
		back.src = netip.IPv4Unspecified()
	}
	if oif != "" {
		back.iif = oif
	}
	if ic.srcValidMark {
		back.mark = mark
	}
	scratch := arena{quiet: true}
	rd := r.decide(back, &scratch)
	table, text, pos := "", "", ""
	if rd.route != nil {
		table, text, pos = rd.table.name, rd.route.r.Text, rd.route.pos
	}
	switch {
	case rd.res == resNoRoute || rd.res == resNull || rd.res == resUnknown:
		// fib_lookup fails (blackhole, unreachable and prohibit are
		// errors too): only rp_filter minds.
		if rpf == 0 {
			return true
		}
		if rd.route == nil && rd.rule != nil {
			text = rd.rule.Text
		}
		return drop(table, text, pos, "there is no usable route back to "+w.p.src.String())
	case rd.res == resLocal && rd.route != nil && rd.route.r.Type == facts.RouteBroadcast:
		// Only a local route may be accepted (accept_local); a
		// broadcast source never is.
		return drop(table, text, pos, "the source "+w.p.src.String()+" is a broadcast address of "+r.f.Name+
			" (broadcast "+w.p.src.String()+" dev "+rd.route.r.Dev+", local table)")
	case rd.res == resLocal:
		if acceptLocal {
			return true
		}
		return drop(table, text, pos, "the source "+w.p.src.String()+" is an address of "+r.f.Name)
	}
	_, dev := r.hopOf(rd.route.r)
	devs := []string{dev}
	for _, n := range rd.route.r.Nexthops {
		devs = append(devs, n.Dev)
	}
	if rpf != 1 || slices.Contains(devs, in) {
		return true
	}
	return drop(table, text, pos, "the route back to "+w.p.src.String()+" leaves by "+dev+", not "+in)
}

// input runs the INPUT chains of a packet delivered locally by route rt
// (a local, broadcast or anycast route of the local table).
func (w *walker) input(r *rtr, h *doc.Hop, np *Packet, ct *ctEntry, orig tuple, rt *route) {
	np.OutIf, np.Gateway = "", netip.Addr{}
	for _, c := range [][2]string{{"mangle", "INPUT"}, {"filter", "INPUT"}, {"nat", "INPUT"}} {
		if !w.chain(r, h, c[0], c[1], np) {
			return
		}
	}
	w.unDNAT(h, ct, np)
	w.commit(r, orig, np)
	if rt != nil && rt.r.Type == facts.RouteBroadcast {
		w.broadcast(r, h, rt)
		return
	}
	h.Steps = append(h.Steps, &doc.Step{Kind: doc.StepLocal, Action: "deliver", Detail: w.p.dst.String() + " is an address of " + r.f.Name})
	w.finish(doc.Delivered, "")
}

// stop records a routing failure.
func (w *walker) stop(d decision) {
	switch d.res {
	case resNull:
		w.finish(doc.NullRouted, d.reason)
	case resNoRoute:
		w.finish(doc.NoRoute, d.reason)
	default:
		w.finish(doc.Unknown, d.reason)
	}
}

// outOf returns the gateway and device of a unicast decision for the
// packet k, resolving a missing device from the connected subnets. For a
// multipath route it takes the nexthop of the branch being walked (an ECMP
// point, see connection.go) and records it on the route step.
func (w *walker) outOf(r *rtr, d decision, k flowKey) (netip.Addr, string) {
	if d.route == nil {
		return netip.Addr{}, ""
	}
	rt := d.route.r
	if len(rt.Nexthops) > 1 && d.res == resUnicast {
		return w.multipath(r, d, k)
	}
	return r.hopOf(rt)
}

// hopOf returns the gateway and device of a route's first path, resolving a
// missing device from the connected subnets.
func (r *rtr) hopOf(rt *facts.Route) (netip.Addr, string) {
	gw, dev := firstHop(rt)
	if dev == "" && gw.IsValid() {
		for _, c := range r.conns {
			if c.pfx.Contains(gw) {
				dev = c.ifc
				break
			}
		}
	}
	return gw, dev
}

// next finds who receives the packet that r sends out of dev.
func (w *walker) next(r *rtr, d decision, gw netip.Addr, dev string) {
	e, p := w.e, w.p
	target := p.dst
	if gw.IsValid() {
		target = gw
	}
	// A router on dev's segment that holds the next-hop address answers ARP.
	for _, o := range e.owners[target] {
		if o.r == r {
			continue
		}
		if in, ip, ok := segmentPeer(r, dev, o.r, o.ifc, target); ok {
			w.receive(o.r, in, ip)
			return
		}
	}
	if gw.IsValid() && len(e.owners[gw]) > 0 && e.owners[gw][0].r == r {
		w.finish(doc.NoRoute, fmt.Sprintf("%s: next hop %s on %s is the router's own address; no neighbour answers for it", r.f.Name, gw, dev))
		return
	}
	isDefault := d.route != nil && d.route.r.Dst.Bits() == 0
	alone := len(r.neighbours[dev]) == 0
	if !gw.IsValid() {
		if _, ok := r.connectedOn(dev, p.dst); ok {
			dst := p.dst.String()
			w.hop(dst, doc.HopHost, dst, "")
			w.finish(doc.Delivered, "")
			return
		}
	}
	if (isDefault && r.gateway) || alone {
		w.hop("internet", doc.HopInternet, p.dst.String(), "")
		via := "dev " + dev
		if gw.IsValid() {
			via = "via " + gw.String() + " dev " + dev
		}
		w.finish(doc.ExitsNetwork, fmt.Sprintf("%s sends it %s, outside the modelled network", r.f.Name, via))
		return
	}
	if gw.IsValid() {
		w.finish(doc.NoRoute, fmt.Sprintf("%s: next hop %s on %s is not an address of any router or connected host", r.f.Name, gw, dev))
		return
	}
	w.finish(doc.NoRoute, fmt.Sprintf("%s: %s is not on a connected subnet of %s and no neighbour on %s owns it", r.f.Name, p.dst, dev, dev))
}

// segmentPeer finds the interface by which router o receives what r sends
// out of dev towards target (an address o owns on interface oifc).
func segmentPeer(r *rtr, dev string, o *rtr, oifc string, target netip.Addr) (string, netip.Addr, bool) {
	var fallback *owner
	for i, n := range r.neighbours[dev] {
		if n.r != o {
			continue
		}
		if n.ifc == oifc {
			return oifc, target, true
		}
		if fallback == nil {
			fallback = &r.neighbours[dev][i]
		}
	}
	if fallback != nil {
		// target lives elsewhere on o (e.g. a loopback): o answers ARP on
		// the interface facing r.
		var ip netip.Addr
		for _, a := range r.addrs {
			if a.ifc == dev {
				ip = o.addrOn(fallback.ifc, a.addr)
				break
			}
		}
		return fallback.ifc, ip, true
	}
	// Point-to-point links (tunnels) without a shared subnet: trust the
	// address owner when r's device has no other neighbour.
	if len(r.neighbours[dev]) == 0 && !isLoopback(o.f, oifc) && r.f.Interface(dev) != nil && r.f.Interface(dev).Kind == "none" {
		return oifc, target, true
	}
	return "", netip.Addr{}, false
}

// sysEchoIgnoreBcast is the switch that makes the kernel ignore ICMP echo
// requests sent to a broadcast address (kernel default 1).
const sysEchoIgnoreBcast = "net.ipv4.icmp_echo_ignore_broadcasts"

// broadcast decides a packet that router r received by a broadcast route
// rt of its local table and that passed INPUT: the kernel never forwards
// it, and its protocols treat it as a broadcast. TCP discards it without
// an answer (tcp_v4_rcv takes only unicast segments; a SYN to a broadcast
// address is never answered, not even with a reset); ICMP echo is ignored
// unless icmp_echo_ignore_broadcasts is 0, and then answered from the
// router's own address (fib_compute_spec_dst); UDP goes only to a socket
// bound to the port, which the facts do not list, and a broadcast never
// draws a port unreachable.
func (w *walker) broadcast(r *rtr, h *doc.Hop, rt *route) {
	dst := w.p.dst.String()
	what := fmt.Sprintf("%s is a broadcast address of %s (broadcast %s dev %s, local table)", dst, r.f.Name, dst, rt.r.Dev)
	st := &doc.Step{Kind: doc.StepLocal, Table: "local", Text: rt.r.Text, Pos: rt.pos}
	h.Steps = append(h.Steps, st)
	switch w.p.proto {
	case 6:
		st.Action = "drop"
		st.Detail = what + ": received as a broadcast, not forwarded; TCP discards a segment sent to a broadcast address without an answer"
		w.finish(doc.NullRouted, r.f.Name+": "+st.Detail)
	case 1:
		if _, ok := r.f.Sysctls[sysEchoIgnoreBcast]; !ok {
			w.notes = appendNew(w.notes, r.f.Name+": the facts lack "+sysEchoIgnoreBcast+"; the kernel default 1 is assumed")
		}
		if r.sysctlInt(sysEchoIgnoreBcast, 1) != 0 || w.dir != doc.Request {
			st.Action = "drop"
			st.Detail = what + ": received as a broadcast, not forwarded; an ICMP echo request to a broadcast address is ignored (" + sysEchoIgnoreBcast + "=1)"
			w.finish(doc.NullRouted, r.f.Name+": "+st.Detail)
			return
		}
		src := w.bcastReplySrc(r, h.In)
		w.bcSrc = src
		st.Action = "deliver"
		st.Detail = what + ": received as a broadcast, not forwarded; " + sysEchoIgnoreBcast + "=0, so " + r.f.Name + " answers the echo from its address " + src.String()
		w.finish(doc.Delivered, "")
	default:
		st.Action = "unknown"
		st.Detail = fmt.Sprintf("%s: received as a broadcast, not forwarded; the kernel hands a UDP datagram to a broadcast address only to a socket of %s bound to port %d (and never answers port unreachable): the facts do not list sockets",
			what, r.f.Name, w.p.dport)
		w.finish(doc.Unknown, r.f.Name+": "+st.Detail)
	}
}

// bcastReplySrc is the source of r's answer to a packet received by a
// broadcast route (fib_compute_spec_dst): the preferred source of the
// route back to the sender, else r's address on that route's device.
func (w *walker) bcastReplySrc(r *rtr, in string) netip.Addr {
	scratch := arena{quiet: true}
	d := r.decide(flowKey{src: netip.IPv4Unspecified(), dst: w.p.src, iif: "lo", proto: w.p.proto, local: true}, &scratch)
	if d.route != nil && (d.res == resUnicast || d.res == resLocal) {
		if d.route.r.Src.IsValid() {
			return d.route.r.Src
		}
		gw, dev := r.hopOf(d.route.r)
		if !gw.IsValid() {
			gw = w.p.src
		}
		if a := r.addrOn(dev, gw); a.IsValid() {
			return a
		}
	}
	return r.addrOn(in, w.p.src)
}
