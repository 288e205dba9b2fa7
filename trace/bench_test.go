package trace

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

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

// longestFlow picks the flow with the most hops, request and reply of
// every branch (what a "one flow" figure should measure).
func longestFlow(e *Engine, flows []*doc.Flow) *doc.Flow {
	var best *doc.Flow
	n := -1
	for _, f := range flows {
		if h := hopCount(e.Trace(context.Background(), f)); h > n {
			best, n = f, h
		}
	}
	return best
}

func hopCount(t *doc.Trace) int {
	if len(t.Branches) == 0 {
		return len(t.Hops) + len(t.ReplyHops)
	}
	n := 0
	for _, b := range t.Branches {
		n += len(b.Hops) + len(b.ReplyHops)
	}
	return n
}

// BenchmarkTraceECMP is the example's ECMP + asymmetric flow (F23): two
// branches, each with its request and reply.
func BenchmarkTraceECMP(b *testing.B) {
	e := New(loadExample(b))
	fl := &doc.Flow{ID: "f1", Src: "10.1.10.5", Dst: "10.3.100.10", Proto: "icmp"}
	ctx := context.Background()
	b.ReportAllocs()
	c0, n := cpuTime(), 0
	for b.Loop() {
		e.Trace(ctx, fl)
		n++
	}
	reportCPU(b, c0, n)
}

func BenchmarkTraceOne(b *testing.B) {
	f := loadExample(b)
	e := New(f)
	fl := longestFlow(e, benchFlows(b, f))
	b.Logf("flow %s -> %s %s/%d: %d hops (request and reply)", fl.Src, fl.Dst, fl.Proto, fl.DPort, hopCount(e.Trace(context.Background(), fl)))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	c0, n := cpuTime(), 0
	for b.Loop() {
		e.Trace(ctx, fl)
		n++
	}
	reportCPU(b, c0, n)
}

func BenchmarkTraceBatch(b *testing.B) {
	f := loadExample(b)
	e := New(f)
	flows := benchFlows(b, f)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	n, c0 := 0, cpuTime()
	for b.Loop() {
		e.Trace(ctx, flows[n%len(flows)])
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Minutes(), "flows/min")
	reportCPU(b, c0, n)
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

// cpuTime is the process's user+system CPU time: on a shared, loaded
// machine wall-clock ns/op measure the queue, CPU time per op the work.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds a cpu-ns/op metric from the CPU time since start.
func reportCPU(b *testing.B, start time.Duration, n int) {
	if n > 0 {
		b.ReportMetric(float64(cpuTime()-start)/float64(n), "cpu-ns/op")
	}
}
