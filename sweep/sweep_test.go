package sweep

import (
	"context"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/testenv"
)

func loadExample(t testing.TB) *facts.Facts {
	t.Helper()
	f, err := facts.Load(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// full is everything of an answer: its key and what is printed.
func full(a Answer) string {
	return a.Key() + "|" + a.String() + "|" + strings.Join(a.Accepted, ", ")
}

// classIndex finds the class holding a flow: classes bucketed by the
// top 12 bits of their source range.
type classIndex map[uint32][]*Class

func indexClasses(cs []*Class) classIndex {
	ix := classIndex{}
	for _, c := range cs {
		for b := c.Src.Lo >> 20; ; b++ {
			ix[b] = append(ix[b], c)
			if b >= c.Src.Hi>>20 {
				break
			}
		}
	}
	return ix
}

func (ix classIndex) find(proto string, s, d, port uint32) *Class {
	for _, c := range ix[s>>20] {
		if c.Proto == proto && c.Src.Contains(s) && c.Dst.Contains(d) && c.Ports.Contains(port) {
			return c
		}
	}
	return nil
}

// checkSampled traces n flows of sp drawn with a fixed seed, plus the
// edges of every class, and wants each flow's answer to be its class's.
func checkSampled(t *testing.T, sp Space, cs []*Class, m *Model, n int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	pick := func(r Range) uint32 { return r.Lo + uint32(rng.Uint64N(r.Size())) }
	ctx := context.Background()
	ix := indexClasses(cs)
	check := func(proto string, s, d, port uint32) {
		if s == d {
			return
		}
		c := ix.find(proto, s, d, port)
		if c == nil {
			t.Fatalf("%s %s -> %s port %d: in no class", proto, addrOf(s), addrOf(d), port)
		}
		got := AnswerOf(m.Engine.Trace(ctx, FlowAt("x", proto, s, d, port, sp.Ingress)))
		if full(got) != full(c.Answers[0]) {
			t.Errorf("%s %s -> %s port %d: traced %q, its class %s→%s %s (rep %s→%s:%d) says %q",
				proto, addrOf(s), addrOf(d), port, full(got), AddrString(c.Src), AddrString(c.Dst), PortString(c.Ports),
				c.Rep.Src, c.Rep.Dst, c.Rep.DPort, full(c.Answers[0]))
		}
	}
	for range n {
		pr := sp.Protos[rng.IntN(len(sp.Protos))]
		port := uint32(0)
		if pr.Name != "icmp" {
			port = pick(pr.Ports[rng.IntN(len(pr.Ports))])
		}
		check(pr.Name, pick(sp.Src), pick(sp.Dst), port)
	}
	// The corners of classes: where a wrong cut would show first.
	for i := 0; i < len(cs); i += max(1, len(cs)/2000) {
		c := cs[i]
		check(c.Proto, c.Src.Hi, c.Dst.Hi, c.Ports.Hi)
		check(c.Proto, c.Src.Lo, c.Dst.Hi, c.Ports.Lo)
	}
}

func TestSweepExampleEqualsBruteForceSample(t *testing.T) {
	f := loadExample(t)
	m := NewModel(f)
	src, _ := ParseRange("10.0.0.0/8")
	protos, err := ParseSpec("1-65535/tcp")
	if err != nil {
		t.Fatal(err)
	}
	sp := Space{Src: src, Dst: src, Protos: protos}
	start := time.Now()
	cs, st, err := Run(context.Background(), sp, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("10/8 x 10/8 x 1-65535/tcp: %g flows, %d classes, %d traces, %v", st.Flows, st.Classes, st.Traces, time.Since(start))
	var total float64
	for _, c := range cs {
		total += c.Flows()
	}
	if d := total - st.Flows; d > st.Flows*1e-9 || d < -st.Flows*1e-9 {
		t.Fatalf("classes hold %g flows, the space %g", total, st.Flows)
	}
	labels := map[string]int{}
	for _, c := range cs {
		labels[c.Answers[0].Label()]++
	}
	var ls []string
	for l := range labels {
		ls = append(ls, l)
	}
	sort.Strings(ls)
	for _, l := range ls {
		t.Logf("%6d %s", labels[l], l)
	}
	checkSampled(t, sp, cs, m, 20000, 1)
	checkGroups(t, sp, cs, m, 3000, 4)
}

// checkGroups wants the merged rectangles to say, for n sampled flows,
// what tracing each flow says, and every flow to be in exactly one.
func checkGroups(t *testing.T, sp Space, cs []*Class, m *Model, n int, seed uint64) {
	t.Helper()
	gs := Groups(cs, func(c *Class) (string, bool) { return c.Answers[0].Label(), true })
	t.Logf("%d classes in %d rectangles", len(cs), len(gs))
	rng := rand.New(rand.NewPCG(seed, seed^0x9e37))
	pick := func(r Range) uint32 { return r.Lo + uint32(rng.Uint64N(r.Size())) }
	for range n {
		pr := sp.Protos[rng.IntN(len(sp.Protos))]
		port := uint32(0)
		if pr.Name != "icmp" {
			port = pick(pr.Ports[rng.IntN(len(pr.Ports))])
		}
		s, d := pick(sp.Src), pick(sp.Dst)
		if s == d {
			continue
		}
		var labels []string
		for _, g := range gs {
			if g.Proto != pr.Name || !g.Src.Contains(s) || !g.Dst.Contains(d) {
				continue
			}
			for _, r := range g.Runs {
				if r.Ports.Contains(port) {
					labels = append(labels, r.Label)
				}
			}
		}
		want := AnswerOf(m.Engine.Trace(context.Background(), FlowAt("x", pr.Name, s, d, port, sp.Ingress))).Label()
		if len(labels) != 1 || labels[0] != want {
			t.Fatalf("%s %s -> %s port %d: rectangles say %q, the trace %q", pr.Name, addrOf(s), addrOf(d), port, labels, want)
		}
	}
}

// TestSweepIngressEqualsBruteForceSample: sources on the Internet entering
// at inet-gw's ISP2 uplink, to the DMZ, every TCP port and ICMP.
func TestSweepIngressEqualsBruteForceSample(t *testing.T) {
	m := NewModel(loadExample(t))
	src, _ := ParseRange("198.51.100.0/24")
	dst, _ := ParseRange("10.1.0.0/16")
	protos, _ := ParseSpec("tcp,icmp")
	sp := Space{Src: src, Dst: dst, Protos: protos, Ingress: "inet-gw:eth2"}
	cs, st, err := Run(context.Background(), sp, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%g flows, %d classes, %d traces", st.Flows, st.Classes, st.Traces)
	checkSampled(t, sp, cs, m, 20000, 2)
	checkGroups(t, sp, cs, m, 3000, 5)
}

// TestSweepCorpusEqualsBruteForceSample: the predecessor's corpus (ten
// routers, policy routing, hundreds of rules) swept over 10/8 on every
// TCP and UDP port, sampled against tracing each flow.
func TestSweepCorpusEqualsBruteForceSample(t *testing.T) {
	f, err := facts.Load(context.Background(), testenv.Corpus(t, "raw_facts"))
	if err != nil {
		t.Fatal(err)
	}
	m := NewModel(f)
	r, _ := ParseRange("10.0.0.0/8")
	protos, _ := ParseSpec("tcp,udp,icmp")
	sp := Space{Src: r, Dst: r, Protos: protos}
	cs, st, err := Run(context.Background(), sp, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%g flows, %d classes, %d traces", st.Flows, st.Classes, st.Traces)
	n := 20000
	if testing.Short() {
		n = 2000
	}
	checkSampled(t, sp, cs, m, n, 3)
	checkGroups(t, sp, cs, m, n/5, 6)
}
