// Package sweep answers questions about many flows at once without
// tracing them one by one: header-space reachability (Run: which flows of
// SRC × DST × PORTS are delivered, which denied, by which rule), change
// impact between two facts sets (Diff), and rules no packet can reach
// (Shadowed). It splits a space into classes whose members every route,
// policy rule, iptables rule and ipset of the routers they cross treats
// alike, and traces one representative per class through trace's public
// API. It never touches the kernel or the CLI.
//
// Classes: a flow's trace depends on its addresses and port only through
// the cuts of the facts (sweep/cuts.go): where a source starts and who owns
// a destination (global cuts), and at each router it crosses, that
// router's routes, policy rules, iptables tokens and ipset members. A box
// SRC-RANGE × DST-RANGE × PORT-RANGE is settled when no cut of the global
// set or of a router on its representative's path falls strictly inside
// it: then, router by router along that path, every member takes the same
// decisions as the representative, so every member has the same trace.
// Otherwise the box is split at those cuts (one dimension at a time) and
// each part is traced again.
package sweep

import (
	"context"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"sync"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/trace"
)

// Model is one facts set prepared for sweeping: its trace engine and its
// cuts.
type Model struct {
	Engine  *trace.Engine
	special *cutSet // both dimensions
	source  *cutSet // the source dimension
	routers map[string]*routerCuts
	conns   map[string][]netip.Prefix
}

// NewModel prepares f.
func NewModel(f *facts.Facts) *Model {
	m := &Model{Engine: trace.New(f), special: specialCuts(), source: sourceCuts(f), routers: map[string]*routerCuts{}, conns: map[string][]netip.Prefix{}}
	for _, r := range f.Routers {
		m.routers[r.Name] = newRouterCuts(f, r)
		for _, i := range r.Interfaces {
			for _, a := range i.Addrs {
				if a.Prefix.Addr().Is4() && a.Prefix.Bits() < 32 {
					m.conns[r.Name] = append(m.conns[r.Name], a.Prefix.Masked())
				}
			}
		}
	}
	return m
}

// Class is a set of flows every model treats alike, with the answer of
// each model (one for Run, two for Diff: reference then new).
type Class struct {
	Proto   string   `json:"proto"`
	Src     Range    `json:"-"`
	Dst     Range    `json:"-"`
	Ports   Range    `json:"-"` // {0,0} for icmp
	Answers []Answer `json:"answers"`
	// Rep is the representative flow that was traced.
	Rep *doc.Flow `json:"rep"`
}

// Flows is the number of flows in the class (the flow from an address
// to itself excluded).
func (c *Class) Flows() float64 {
	pairs := float64(c.Src.Size()) * float64(c.Dst.Size())
	if c.Src == c.Dst {
		pairs -= float64(c.Src.Size())
	}
	return pairs * float64(c.Ports.Size())
}

// Stats says how much work a sweep did.
type Stats struct {
	Classes int     // settled classes
	Traces  int     // traces run (every model, every box tried)
	Flows   float64 // flows the space holds
}

type box struct {
	proto    string
	s, d, p  Range
	answers  []Answer
	rep      *doc.Flow
	settled  bool
	children []box
}

// Run splits sp into classes that every model treats alike and returns
// them sorted by protocol, source, destination and port.
func Run(ctx context.Context, sp Space, models ...*Model) ([]*Class, Stats, error) {
	var st Stats
	st.Flows = sp.Flows()
	var work []box
	for _, pr := range sp.Protos {
		ports := pr.Ports
		if pr.Name == "icmp" {
			ports = []Range{{0, 0}}
		}
		for _, p := range ports {
			work = append(work, box{proto: pr.Name, s: sp.Src, d: sp.Dst, p: p})
		}
	}
	// The global cuts apply to every box: split by them first.
	var scuts, dcuts []uint64
	for _, m := range models {
		scuts = append(scuts, m.special.addr...)
		scuts = append(scuts, m.source.addr...)
		dcuts = append(dcuts, m.special.addr...)
	}
	var start []box
	for _, b := range work {
		for _, s := range split(b.s, scuts) {
			for _, d := range split(b.d, dcuts) {
				start = append(start, box{proto: b.proto, s: s, d: d, p: b.p})
			}
		}
	}
	work = start
	var out []*Class
	workers := max(1, runtime.GOMAXPROCS(0))
	for len(work) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, st, err
		}
		var wg sync.WaitGroup
		next := make(chan int, len(work))
		for i := range work {
			next <- i
		}
		close(next)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					if ctx.Err() != nil {
						return
					}
					refine(ctx, &work[i], models, sp.Ingress)
				}
			}()
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return nil, st, err
		}
		var again []box
		for i := range work {
			b := &work[i]
			st.Traces += len(b.answers)
			if b.settled {
				if b.rep != nil {
					out = append(out, &Class{Proto: b.proto, Src: b.s, Dst: b.d, Ports: b.p, Answers: b.answers, Rep: b.rep})
				}
				continue
			}
			again = append(again, b.children...)
		}
		work = again
	}
	slices.SortFunc(out, func(a, b *Class) int {
		if a.Proto != b.Proto {
			return protoOrder(a.Proto) - protoOrder(b.Proto)
		}
		if a.Src.Lo != b.Src.Lo {
			return cmpU(a.Src.Lo, b.Src.Lo)
		}
		if a.Dst.Lo != b.Dst.Lo {
			return cmpU(a.Dst.Lo, b.Dst.Lo)
		}
		return cmpU(a.Ports.Lo, b.Ports.Lo)
	})
	st.Classes = len(out)
	return out, st, nil
}

func protoOrder(p string) int {
	switch p {
	case "tcp":
		return 0
	case "udp":
		return 1
	}
	return 2
}

func cmpU(a, b uint32) int {
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}

// refine traces b's representative in every model and either settles b
// or splits it into children.
func refine(ctx context.Context, b *box, models []*Model, ingress string) {
	// A box whose source and destination ranges overlap is split until
	// they are equal or disjoint: then "src = dst" is the same for all
	// members of each part, and the diagonal is left out.
	if b.s != b.d && b.s.Lo <= b.d.Hi && b.d.Lo <= b.s.Hi {
		if ss := split(b.s, []uint64{uint64(b.d.Lo), uint64(b.d.Hi) + 1}); len(ss) > 1 {
			b.children = boxes(b, ss, nil, nil)
			return
		}
		b.children = boxes(b, nil, split(b.d, []uint64{uint64(b.s.Lo), uint64(b.s.Hi) + 1}), nil)
		return
	}
	src, dst := b.s.Lo, b.d.Lo
	if b.s == b.d {
		if b.s.Lo == b.s.Hi {
			b.settled = true // only src = dst: not part of the space
			return
		}
		dst = b.d.Lo + 1
	}
	f := &doc.Flow{ID: "rep", Src: addrOf(src).String(), Dst: addrOf(dst).String(), Proto: b.proto, Ingress: ingress}
	if b.proto != "icmp" {
		f.DPort = int(b.p.Lo)
	}
	var acuts, scuts []uint64
	var pcuts []uint32
	var nms []netip.Prefix
	answers := make([]Answer, 0, len(models))
	for _, m := range models {
		t := m.Engine.Trace(ctx, f)
		answers = append(answers, AnswerOf(t))
		add := func(c *cutSet) {
			acuts = append(acuts, c.addr...)
			pcuts = append(pcuts, c.port...)
			nms = append(nms, c.netmaps...)
		}
		add(m.special)
		scuts = append(scuts, m.source.addr...)
		nat := false
		for _, hops := range append([][]*doc.Hop{t.Hops}, extraHops(t)...) {
			for _, h := range hops {
				for _, st := range h.Steps {
					nat = nat || st.Kind == doc.StepNAT
				}
			}
		}
		proto := protoNum(b.proto)
		// Where the source starts: every router with it on a connected subnet.
		sa := addrOf(src)
		for name, ps := range m.conns {
			for _, p := range ps {
				if p.Contains(sa) {
					m.routers[name].relevant(proto, b.s, b.d, nat, add)
					break
				}
			}
		}
		seen := map[string]bool{}
		for _, hops := range append([][]*doc.Hop{t.Hops}, extraHops(t)...) {
			for _, h := range hops {
				if h.Kind == doc.HopRouter && !seen[h.Node] {
					seen[h.Node] = true
					if c := m.routers[h.Node]; c != nil {
						c.relevant(proto, b.s, b.d, nat, add)
					}
				}
			}
		}
	}
	b.answers = answers
	// Cuts a NETMAP on the path translates: their preimages in each
	// aligned block of the translated prefix's size.
	for _, nm := range nms {
		acuts = append(acuts, netmapCuts(b.s, nm, acuts)...)
		acuts = append(acuts, netmapCuts(b.d, nm, acuts)...)
	}
	if ss := split(b.s, append(scuts, acuts...)); len(ss) > 1 {
		b.children = boxes(b, ss, nil, nil)
		return
	}
	if ds := split(b.d, acuts); len(ds) > 1 {
		b.children = boxes(b, nil, ds, nil)
		return
	}
	if b.proto != "icmp" {
		pc := make([]uint64, len(pcuts))
		for i, c := range pcuts {
			pc[i] = uint64(c)
		}
		if ps := split(b.p, pc); len(ps) > 1 {
			b.children = boxes(b, nil, nil, ps)
			return
		}
	}
	b.settled = true
	b.rep = f
}

// netmapCuts are the cuts of r that make NETMAP to nm uniform: the block
// boundaries of nm's size inside r, and when r lies in one block, the
// preimage of every cut inside nm.
func netmapCuts(r Range, nm netip.Prefix, cuts []uint64) []uint64 {
	size := uint64(hostMask(nm.Bits())) + 1
	first := (uint64(r.Lo)/size + 1) * size
	if first <= uint64(r.Hi) {
		var out []uint64
		for c := first; c <= uint64(r.Hi); c += size {
			out = append(out, c)
		}
		return out
	}
	base := uint64(r.Lo) / size * size
	lo := uint64(u32(nm.Masked().Addr()))
	var out []uint64
	for _, c := range cuts {
		if c > lo && c < lo+size {
			out = append(out, base+c-lo)
		}
	}
	return out
}

// split cuts r at every cut c with r.Lo < c <= r.Hi (a cut is the first
// value of a new part).
func split(r Range, cuts []uint64) []Range {
	var inside []uint64
	for _, c := range cuts {
		if c > uint64(r.Lo) && c <= uint64(r.Hi) {
			inside = append(inside, c)
		}
	}
	if len(inside) == 0 {
		return []Range{r}
	}
	slices.Sort(inside)
	inside = slices.Compact(inside)
	out := make([]Range, 0, len(inside)+1)
	lo := uint64(r.Lo)
	for _, c := range inside {
		out = append(out, Range{uint32(lo), uint32(c - 1)})
		lo = c
	}
	return append(out, Range{uint32(lo), r.Hi})
}

func boxes(b *box, ss, ds, ps []Range) []box {
	if ss == nil {
		ss = []Range{b.s}
	}
	if ds == nil {
		ds = []Range{b.d}
	}
	if ps == nil {
		ps = []Range{b.p}
	}
	out := make([]box, 0, len(ss)*len(ds)*len(ps))
	for _, s := range ss {
		for _, d := range ds {
			for _, p := range ps {
				out = append(out, box{proto: b.proto, s: s, d: d, p: p})
			}
		}
	}
	return out
}

func protoNum(p string) int {
	switch p {
	case "tcp":
		return 6
	case "udp":
		return 17
	}
	return 1
}

// FlowAt builds the flow of proto from src to dst on port (0 for icmp),
// entering at ingress (optional, ROUTER:IFACE).
func FlowAt(id, proto string, src, dst uint32, port uint32, ingress ...string) *doc.Flow {
	f := &doc.Flow{ID: id, Src: addrOf(src).String(), Dst: addrOf(dst).String(), Proto: proto}
	if len(ingress) > 0 {
		f.Ingress = ingress[0]
	}
	if proto != "icmp" {
		f.DPort = int(port)
		f.Service = strconv.Itoa(int(port)) + "/" + proto
	} else {
		f.Service = "icmp"
	}
	return f
}
