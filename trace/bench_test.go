package trace

import (
	"context"
	"fmt"
	"testing"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
)

// benchFlows are flows between every pair of router addresses and a host
// behind each connected subnet of the built-in example, so the batch
// covers every path kind the example has.
func benchFlows(b *testing.B, f *facts.Facts) []*doc.Flow {
	var addrs []string
	for _, r := range f.Routers {
		for _, i := range r.Interfaces {
			for _, a := range i.Addrs {
				if a.Prefix.Addr().Is4() && !a.Prefix.Addr().IsLoopback() {
					addrs = append(addrs, a.Prefix.Addr().String())
					if a.Prefix.Bits() < 31 {
						addrs = append(addrs, a.Prefix.Masked().Addr().Next().Next().Next().Next().Next().String())
					}
				}
			}
		}
	}
	var out []*doc.Flow
	protos := []doc.Flow{{Proto: "icmp"}, {Proto: "tcp", DPort: 22}, {Proto: "tcp", DPort: 443}, {Proto: "udp", DPort: 53}}
	for i, s := range addrs {
		for j, d := range addrs {
			if i == j {
				continue
			}
			p := protos[(i+j)%len(protos)]
			out = append(out, &doc.Flow{ID: fmt.Sprintf("f%d", len(out)+1), Src: s, Dst: d, Proto: p.Proto, DPort: p.DPort})
		}
	}
	if len(out) == 0 {
		b.Fatal("no flows")
	}
	return out
}

func loadExample(b *testing.B) *facts.Facts {
	f, err := facts.Load(context.Background(), "")
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// longestFlow picks the flow with the most hops (what a "one flow" figure
// should measure).
func longestFlow(e *Engine, flows []*doc.Flow) *doc.Flow {
	var best *doc.Flow
	n := -1
	for _, f := range flows {
		if t := e.Trace(context.Background(), f); len(t.Hops) > n {
			best, n = f, len(t.Hops)
		}
	}
	return best
}

func BenchmarkTraceOne(b *testing.B) {
	f := loadExample(b)
	e := New(f)
	fl := longestFlow(e, benchFlows(b, f))
	b.Logf("flow %s -> %s %s/%d: %d hops", fl.Src, fl.Dst, fl.Proto, fl.DPort, len(e.Trace(context.Background(), fl).Hops))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		e.Trace(ctx, fl)
	}
}

func BenchmarkTraceBatch(b *testing.B) {
	f := loadExample(b)
	e := New(f)
	flows := benchFlows(b, f)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		e.Trace(ctx, flows[n%len(flows)])
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Minutes(), "flows/min")
}

func BenchmarkNew(b *testing.B) {
	f := loadExample(b)
	b.ReportAllocs()
	for b.Loop() {
		New(f)
	}
}

// BenchmarkFirstTrace is what `tsim trace` does after parsing: a new engine
// and one flow, so each router on the path gets its model built and its
// firewall compiled.
func BenchmarkFirstTrace(b *testing.B) {
	f := loadExample(b)
	fl := longestFlow(New(f), benchFlows(b, f))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		New(f).Trace(ctx, fl)
	}
}
