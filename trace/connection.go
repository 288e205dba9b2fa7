package trace

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
)

// A flow is a connection: the request must arrive and the reply must come
// back. connection walks the request, then the reply from the destination
// back to the source, and does so once per ECMP branch: every combination
// of nexthops of the multipath routes met on the way (an "ECMP point").
//
// Conntrack is modelled per router: a router that handled the request
// holds a connection (unless the packet was NOTRACKed), so the reply
// matches it as ESTABLISHED (--ctdir REPLY) and is translated back where
// the request was translated (UNSNAT before routing, UNDNAT after
// POSTROUTING); the nat table does not see it. A router that did not see
// the request finds no connection and decides as the kernel's conntrack
// does for the protocol (see newConnState).

// maxBranches bounds the ECMP branches traced per flow.
const maxBranches = 64

// tuple is a conntrack tuple: addresses and ports (0 for icmp).
type tuple struct {
	src, dst     netip.Addr
	sport, dport uint16
}

func (t tuple) inverse() tuple { return tuple{t.dst, t.src, t.dport, t.sport} }

// ctEntry is the connection a router made for the request.
type ctEntry struct {
	r *rtr
	// orig is the request as it reached the router, reply the reply as
	// the router expects it (the inverse of the request as it left).
	orig, reply tuple
	mark        uint32 // the connection mark (CONNMARK) when the request left
	dnat, snat  bool
	sawReply    bool // the reply crossed this router (tcp: SYN_RECV)
}

// mpPoint is one multipath route met on a walk.
type mpPoint struct {
	n      int // live nexthops (the branches of this point)
	chosen int // 0-based, among the live nexthops
	hash   int // the kernel's hash choice among the live nexthops, -1 unknown
	desc   string
}

func (w *walker) tuple() tuple { return tuple{w.p.src, w.p.dst, w.p.sport, w.p.dport} }

func (w *walker) note(s string) { w.alts = appendNew(w.alts, s) }

// connection traces the flow's connection down every ECMP branch into t.
func (w *walker) connection(t *doc.Trace) {
	type result struct {
		b      *doc.Branch
		points []mpPoint
	}
	var res []result
	queue := [][]int{nil}
	for len(queue) > 0 && len(res) < maxBranches {
		force := queue[0]
		queue = queue[1:]
		b := w.branch(force)
		pts := slices.Clone(w.points)
		for i := len(force); i < len(pts); i++ {
			for j := 1; j < pts[i].n; j++ {
				v := make([]int, i+1)
				for k := range i {
					v[k] = pts[k].chosen
				}
				v[i] = j
				queue = append(queue, v)
			}
		}
		res = append(res, result{b, pts})
	}
	t.Alternatives = w.alts
	t.Notes = w.notes
	if len(res) == 1 {
		b := res[0].b
		t.Disposition, t.Reason, t.Direction = b.Disposition, b.Reason, b.Direction
		t.Hops, t.ReplyHops, t.DeniedBy = b.Hops, b.ReplyHops, b.DeniedBy
		return
	}
	if len(queue) > 0 {
		t.Notes = append(t.Notes, fmt.Sprintf("ECMP: more than %d branches; the first %d are traced", maxBranches, maxBranches))
	}
	for i, r := range res {
		r.b.Branch = i + 1
		for _, p := range r.points {
			r.b.Choices = append(r.b.Choices, p.desc)
		}
		kernel := len(r.points) > 0
		for _, p := range r.points {
			if p.hash < 0 || p.hash != p.chosen {
				kernel = false
			}
		}
		if kernel {
			r.b.Kernel = true
			t.KernelBranch = r.b.Branch
		}
		t.Branches = append(t.Branches, r.b)
	}
	w.hashNotes(t)
	rep := t.Branches[0]
	counts := map[string]int{}
	var order []string
	for _, b := range t.Branches {
		if counts[b.Disposition] == 0 {
			order = append(order, b.Disposition)
		}
		counts[b.Disposition]++
	}
	if len(order) > 1 {
		for _, b := range t.Branches {
			if !Positive(b.Disposition) {
				rep = b
				break
			}
		}
	}
	t.Branch = rep.Branch
	t.Disposition, t.Direction = rep.Disposition, rep.Direction
	t.Hops, t.ReplyHops, t.DeniedBy = rep.Hops, rep.ReplyHops, rep.DeniedBy
	t.Reason = rep.Reason
	if len(order) > 1 {
		var parts []string
		for _, d := range order {
			parts = append(parts, strconv.Itoa(counts[d])+" "+d)
		}
		s := fmt.Sprintf("ECMP: %s of %d branches", strings.Join(parts, ", "), len(t.Branches))
		if counts[rep.Disposition] < len(t.Branches) {
			s = fmt.Sprintf("ECMP: %d of %d branches %s", counts[rep.Disposition], len(t.Branches), rep.Disposition)
			for _, d := range order {
				if d != rep.Disposition {
					s += fmt.Sprintf(", %d %s", counts[d], d)
				}
			}
		}
		t.Reason = s + "; branch " + strconv.Itoa(rep.Branch) + ": " + rep.Reason
	}
}

// branch walks one ECMP branch: the request, then the reply.
func (w *walker) branch(force []int) *doc.Branch {
	w.force, w.points, w.ct, w.bcSrc = force, w.points[:0], w.ct[:0], netip.Addr{}
	w.dir, w.p, w.seen = doc.Request, w.p0, w.seen[:0]
	w.hops, w.disp, w.reason, w.denied = make([]*doc.Hop, 0, 8), "", "", nil
	if m := w.requestWalked(force); m != nil && !w.e.walkEveryRequest {
		// This branch's request takes the nexthops an earlier branch's
		// did (the branches part on the way back): the same walk.
		w.hops, w.disp, w.reason, w.denied, w.p, w.bcSrc = m.hops, m.disp, m.reason, m.denied, m.p, m.bcSrc
		w.ct = append(w.ct, m.ct...)
		w.points = append(w.points, m.points...)
		w.e.requestReuses.Add(1)
	} else {
		w.start(w.flow)
		w.memo = append(w.memo, &requestMemo{hops: w.hops, disp: w.disp, reason: w.reason, denied: w.denied, p: w.p,
			bcSrc: w.bcSrc, ct: slices.Clone(w.ct), points: slices.Clone(w.points)})
	}
	b := &doc.Branch{Hops: w.hops, Disposition: w.disp, Reason: w.reason, DeniedBy: w.denied, Choices: []string{}}
	if !Positive(w.disp) {
		if w.disp != doc.UnknownSource {
			b.Direction = doc.Request
		}
		return b
	}
	w.reply(b.Hops)
	b.ReplyHops = w.hops
	disp, reason := w.disp, w.reason
	if disp == doc.ExitsNetwork && !w.sourceOutside() {
		disp = doc.NoRoute
		reason += ", not back to the source " + w.p0.src.String()
	}
	if Positive(disp) {
		// The source's stack matches the reply to its connection only
		// if every translation was undone: a reply that bypassed the
		// router that translated the request comes from elsewhere.
		q := w.p0
		want := tuple{q.dst, q.src, q.dport, q.sport}
		if w.bcSrc.IsValid() {
			// An echo to a broadcast address is answered from the
			// router's own address; ping matches it by identifier.
			want.src = w.bcSrc
		}
		if got := w.tuple(); got != want {
			disp = doc.NoRoute
			reason = fmt.Sprintf("the reply reaches %s from %s, not from %s where the request was sent: a translation of the request was not undone on the reply's path, so the source's stack does not match it to its connection",
				natHostPort(got.dst, got.dport, q.proto), natHostPort(got.src, got.sport, q.proto), natHostPort(want.src, want.sport, q.proto))
		}
	}
	if !Positive(disp) {
		b.Disposition, b.Reason, b.Direction, b.DeniedBy = disp, "reply: "+reason, doc.Reply, w.denied
		return b
	}
	if w.p0.proto == 6 {
		if w.handshakeACK(); !Positive(w.disp) {
			b.Disposition, b.Reason, b.Direction, b.DeniedBy = w.disp, "the handshake's ACK: "+w.reason, doc.Request, w.denied
		}
	}
	return b
}

// requestMemo is a request's walk, kept for the branches that take the
// same nexthops on the way there: the request is a deterministic function
// of its ECMP choices (an unforced point takes its first live nexthop).
type requestMemo struct {
	hops         []*doc.Hop
	disp, reason string
	denied       *doc.RuleRef
	p            pkt
	bcSrc        netip.Addr
	ct           []ctEntry // before the reply marks what it crossed
	points       []mpPoint
}

// requestWalked returns the walk of an earlier branch whose request makes
// the choices force makes (nil if none).
func (w *walker) requestWalked(force []int) *requestMemo {
next:
	for _, m := range w.memo {
		for i, pt := range m.points {
			c := 0
			if i < len(force) {
				c = force[i]
			}
			if c != pt.chosen {
				continue next
			}
		}
		return m
	}
	return nil
}

// handshakeACK walks the client's ACK that completes a tcp handshake along
// the request's path (same header, same nexthops). A router that saw the
// SYN but not the SYN-ACK (the reply took another path) finds it INVALID:
// conntrack's state table takes SYN_SENT + ACK to INVALID. Its hops are
// not kept; the outcome is in w.disp, w.reason, w.denied.
func (w *walker) handshakeACK() {
	// Nobody reads its steps: a quiet arena skips building them.
	a := w.a
	w.a = arena{quiet: true}
	w.ack, w.ackPoint = true, 0
	defer func() { w.ack, w.a = false, a }()
	w.dir, w.p, w.seen = doc.Request, w.p0, w.seen[:0]
	w.hops, w.disp, w.reason, w.denied = make([]*doc.Hop, 0, 8), "", "", nil
	w.start(w.flow)
}

// sourceOutside reports whether the flow's source is outside the modelled
// network (it enters by --ingress): its reply leaves the network.
func (w *walker) sourceOutside() bool {
	if len(w.e.owners[w.p0.src]) > 0 {
		return false
	}
	if w.flow.Ingress != "" {
		return true
	}
	for _, r := range w.e.routers {
		for _, c := range r.conns {
			if c.pfx.Contains(w.p0.src) {
				return false
			}
		}
	}
	return true
}

// reply walks the reply of a delivered request whose path was req: from
// the destination (a host, a router, or the Internet beyond the exit
// router) back to the source, with the addresses and ports swapped.
func (w *walker) reply(req []*doc.Hop) {
	q := w.p
	w.dir = doc.Reply
	w.p = pkt{src: q.dst, dst: q.src, proto: q.proto, sport: q.dport, dport: q.sport, ttl: InitialTTL}
	w.seen = w.seen[:0]
	w.hops, w.disp, w.reason, w.denied = make([]*doc.Hop, 0, 8), "", "", nil
	last := req[len(req)-1]
	if last.Kind == doc.HopRouter {
		// Delivered to the router itself (an interface address or a
		// local route): the router answers.
		if r := w.e.byName[last.Node]; r != nil {
			if w.bcSrc.IsValid() {
				w.p.src = w.bcSrc
			}
			w.originate(r, "")
			return
		}
	}
	if last.Kind == doc.HopInternet && len(req) >= 2 {
		// The reply comes back from outside through the interface the
		// request left by.
		exit := req[len(req)-2]
		if r := w.e.byName[exit.Node]; r != nil && exit.Out != "" {
			w.hop("internet", doc.HopInternet, w.p.src.String(), "")
			w.receive(r, exit.Out, r.addrOn(exit.Out, w.p.src))
			return
		}
	}
	w.start(w.flow)
}

// track is conntrack's decision for the packet at router r, after the raw
// table: a request is NEW; a reply matching a connection r made for the
// request is ESTABLISHED, otherwise NEW or INVALID per protocol. It
// returns the connection a reply belongs to, if any, and records the
// decision on the hop (replies only).
func (w *walker) track(r *rtr, h *doc.Hop, np *Packet) *ctEntry {
	if w.dir != doc.Reply && !w.ack || np.CTState == "UNTRACKED" {
		return nil
	}
	cur := w.tuple()
	if w.ack {
		for i := range w.ct {
			e := &w.ct[i]
			if e.r != r || e.orig != cur {
				continue
			}
			if !e.sawReply {
				np.CTState = "INVALID"
				h.Steps = append(h.Steps, &doc.Step{Kind: doc.StepConntrack, Action: "INVALID",
					Detail: r.f.Name + " saw the SYN but not the SYN-ACK (the reply took another path): conntrack's tcp state table takes SYN_SENT + ACK to INVALID"})
				return nil
			}
			np.OrigSrc, np.OrigDst, np.OrigSPort, np.OrigDPort = e.orig.src, e.orig.dst, e.orig.sport, e.orig.dport
			np.ReplSrc, np.ReplDst, np.ReplSPort, np.ReplDPort = e.reply.src, e.reply.dst, e.reply.sport, e.reply.dport
			np.CTMark, np.DNATed, np.SNATed = e.mark, e.dnat, e.snat
			np.CTState = "ESTABLISHED"
			h.Steps = append(h.Steps, &doc.Step{Kind: doc.StepConntrack, Action: "ESTABLISHED",
				Detail: "the handshake's ACK of the connection " + r.f.Name + " saw both ways; ctdir ORIGINAL"})
			return e
		}
		state, why := newConnState(6, "ACK", 0, r.tcpLoose())
		if _, ok := r.f.Sysctls[sysTCPLoose]; !ok {
			w.notes = appendNew(w.notes, r.f.Name+": the facts lack "+sysTCPLoose+"; the kernel default 1 is assumed")
		}
		np.CTState = state
		h.Steps = append(h.Steps, &doc.Step{Kind: doc.StepConntrack, Action: state, Detail: r.f.Name + " has no connection for the handshake's ACK: " + why})
		return nil
	}
	for i := range w.ct {
		e := &w.ct[i]
		if e.r != r || e.reply != cur {
			continue
		}
		np.CTState, np.Reply = "ESTABLISHED", true
		np.OrigSrc, np.OrigDst, np.OrigSPort, np.OrigDPort = e.orig.src, e.orig.dst, e.orig.sport, e.orig.dport
		np.ReplSrc, np.ReplDst, np.ReplSPort, np.ReplDPort = e.reply.src, e.reply.dst, e.reply.sport, e.reply.dport
		np.CTMark, np.DNATed, np.SNATed = e.mark, e.dnat, e.snat
		e.sawReply = true
		st := w.a.step()
		*st = doc.Step{Kind: doc.StepConntrack, Action: "ESTABLISHED", Detail: "the reply of the connection " + r.f.Name + " made for the request; ctdir REPLY"}
		h.Steps = append(h.Steps, st)
		return e
	}
	state, why := newConnState(w.p.proto, np.TCPFlags, np.ICMPType, r.tcpLoose())
	np.CTState = state
	st := w.a.step()
	*st = doc.Step{Kind: doc.StepConntrack, Action: state, Detail: r.f.Name + " did not see the request, so it has no connection for the reply: " + why}
	h.Steps = append(h.Steps, st)
	return nil
}

// newConnState is what conntrack makes of a packet that matches no
// connection (nf_conntrack_in, then the protocol's check for a new
// connection). flags are the tcp flags ("SYN", "SYN,ACK", "ACK", "FIN,ACK",
// "RST"), icmpType the icmp type; loose is nf_conntrack_tcp_loose.
//
//   - tcp (nf_conntrack_proto_tcp.c, tcp_new): the state table takes
//     NONE + SYN to SYN_SENT (NEW) and NONE + SYN/ACK, FIN or RST to
//     INVALID, whatever the sysctls; a bare ACK picks up a connection in
//     the middle (NEW) only when nf_conntrack_tcp_loose is on (default 1).
//     tcp_be_liberal only relaxes the window checks of known connections.
//   - udp: every datagram without a connection starts one (NEW).
//   - icmp (nf_conntrack_proto_icmp.c): only echo, timestamp, info and
//     address-mask requests start a connection; an echo reply is INVALID.
func newConnState(proto int, flags string, icmpType int, loose bool) (state, why string) {
	switch proto {
	case 6:
		switch flags {
		case "SYN":
			return "NEW", "a tcp SYN opens a connection"
		case "SYN,ACK":
			return "INVALID", "a tcp SYN-ACK cannot open a connection (conntrack's tcp state table takes NONE + SYN/ACK to INVALID, whatever nf_conntrack_tcp_loose)"
		case "ACK":
			if loose {
				return "NEW", "nf_conntrack_tcp_loose=1 picks up a connection from a bare ACK"
			}
			return "INVALID", "with nf_conntrack_tcp_loose=0 a bare ACK cannot pick up a connection"
		}
		return "INVALID", "tcp " + flags + " cannot open a connection"
	case 17:
		return "NEW", "a udp datagram without a connection starts a new one (ctstate NEW, ctdir ORIGINAL)"
	case 1:
		switch icmpType {
		case 8, 13, 15, 17:
			return "NEW", "an icmp request opens a connection"
		case 0:
			return "INVALID", "an icmp echo reply cannot open a connection (only echo, timestamp, info and address-mask requests do)"
		}
		return "INVALID", "icmp type " + strconv.Itoa(icmpType) + " cannot open a connection"
	}
	return "NEW", ""
}

// commit records the connection router r made for the request: orig is
// the request as it arrived, w.p as it leaves (after r's NAT).
func (w *walker) commit(r *rtr, orig tuple, np *Packet) {
	if w.dir != doc.Request || np.CTState == "UNTRACKED" {
		return
	}
	w.ct = append(w.ct, ctEntry{r: r, orig: orig, reply: w.tuple().inverse(), mark: np.CTMark, dnat: np.DNATed, snat: np.SNATed})
}

// unSNAT restores a reply's destination where the request's source was
// translated (conntrack's reverse of SNAT, before routing).
func (w *walker) unSNAT(h *doc.Hop, ct *ctEntry, np *Packet) {
	if ct != nil && w.ack {
		// A later packet of the request's direction: the DNAT again.
		if ct.orig.dst != ct.reply.src || ct.orig.dport != ct.reply.sport {
			w.p.dst, w.p.dport = ct.reply.src, ct.reply.sport
			np.Dst, np.DPort = w.p.dst, w.p.dport
		}
		return
	}
	if ct == nil || ct.orig.src == ct.reply.dst && ct.orig.sport == ct.reply.dport {
		return
	}
	from := natHostPort(w.p.dst, w.p.dport, w.p.proto)
	w.p.dst, w.p.dport = ct.orig.src, ct.orig.sport
	np.Dst, np.DPort = w.p.dst, w.p.dport
	to := natHostPort(w.p.dst, w.p.dport, w.p.proto)
	h.Steps = append(h.Steps, &doc.Step{Kind: doc.StepNAT, Table: "nat", Action: "UNSNAT", From: from, To: to,
		Detail: "UNSNAT " + from + " -> " + to + ": the request was source-translated here; conntrack restores the reply's destination"})
}

// unDNAT restores a reply's source where the request's destination was
// translated (conntrack's reverse of DNAT, in POSTROUTING or INPUT).
func (w *walker) unDNAT(h *doc.Hop, ct *ctEntry, np *Packet) {
	if ct != nil && w.ack {
		// A later packet of the request's direction: the SNAT again.
		if ct.orig.src != ct.reply.dst || ct.orig.sport != ct.reply.dport {
			w.p.src, w.p.sport = ct.reply.dst, ct.reply.dport
			np.Src, np.SPort = w.p.src, w.p.sport
		}
		return
	}
	if ct == nil || ct.orig.dst == ct.reply.src && ct.orig.dport == ct.reply.sport {
		return
	}
	from := natHostPort(w.p.src, w.p.sport, w.p.proto)
	w.p.src, w.p.sport = ct.orig.dst, ct.orig.dport
	np.Src, np.SPort = w.p.src, w.p.sport
	to := natHostPort(w.p.src, w.p.sport, w.p.proto)
	h.Steps = append(h.Steps, &doc.Step{Kind: doc.StepNAT, Table: "nat", Action: "UNDNAT", From: from, To: to,
		Detail: "UNDNAT " + from + " -> " + to + ": the request was destination-translated here; conntrack restores the reply's source"})
}

// multipath picks the nexthop of multipath route d for this branch: the
// forced choice of this ECMP point, else the first live nexthop (a dead
// one, RTNH_F_DEAD, is never used by the kernel, so it is no branch). It
// records the point, with the kernel's hash choice, and the choice on the
// route step.
func (w *walker) multipath(r *rtr, d decision, k flowKey) (netip.Addr, string) {
	rt := d.route.r
	live := make([]int, 0, len(rt.Nexthops))
	for i, nh := range rt.Nexthops {
		if !deadNexthop(nh) {
			live = append(live, i)
		}
	}
	if len(live) == 0 {
		live = append(live, 0)
	}
	if w.ack {
		// The handshake's ACK has the SYN's header: it takes the SYN's
		// nexthops, which are the branch's first points.
		choice := 0
		if w.ackPoint < len(w.points) {
			choice = w.points[w.ackPoint].chosen
		}
		w.ackPoint++
		return r.nexthopOf(rt, live[min(choice, len(live)-1)])
	}
	choice, hash := 0, -1
	if i := len(w.points); i < len(w.force) {
		choice = w.force[i]
	}
	hn := r.hashNexthop(rt, k)
	for li, ni := range live {
		if ni == hn {
			hash = li
		}
	}
	ni := live[choice]
	gw, dev := r.nexthopOf(rt, ni)
	via := "dev " + dev
	if gw.IsValid() {
		via = "via " + gw.String() + " dev " + dev
	}
	n := len(rt.Nexthops)
	w.points = append(w.points, mpPoint{n: len(live), chosen: choice, hash: hash,
		desc: fmt.Sprintf("%s %s: nexthop %d of %d %s", w.dir, r.f.Name, ni+1, n, via)})
	if st := d.rstep; st != nil {
		st.Gateway, st.Device, st.Nexthop, st.Nexthops, st.HashNexthop = "", dev, ni+1, n, hn+1
		if gw.IsValid() {
			st.Gateway = gw.String()
		}
		st.Detail = strings.TrimSuffix(st.Detail, d.route.use) + via + " (nexthop " + strconv.Itoa(ni+1) + " of " + strconv.Itoa(n) + ")"
	}
	return gw, dev
}

// dropPointsFrom forgets the ECMP points met since i (a route decision
// that was replaced by a reroute).
func (w *walker) dropPointsFrom(i int) {
	if i < len(w.points) {
		w.points = w.points[:i]
	}
}

// sysTCPLoose is conntrack's tcp pick-up switch.
const sysTCPLoose = "net.netfilter.nf_conntrack_tcp_loose"

// tcpLoose is the router's nf_conntrack_tcp_loose (kernel default 1).
func (r *rtr) tcpLoose() bool { return r.sysctlInt(sysTCPLoose, 1) != 0 }

func appendNew(l []string, s string) []string {
	if slices.Contains(l, s) {
		return l
	}
	return append(l, s)
}

// nexthopOf returns the gateway and device of nexthop i of multipath
// route rt, resolving a missing device from the connected subnets.
func (r *rtr) nexthopOf(rt *facts.Route, i int) (netip.Addr, string) {
	nh := rt.Nexthops[min(i, len(rt.Nexthops)-1)]
	gw, dev := nh.Gateway, nh.Dev
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
