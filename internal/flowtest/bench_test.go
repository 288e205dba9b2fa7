package flowtest

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/trace"
)

// benchFile is n lines over the example's addresses, services and
// expectations (DESIGN §11: 100k flows/min in batch).
func benchFile(b *testing.B, n int) *File {
	srcs := []string{"10.1.10.5", "10.1.20.5", "10.2.10.5", "10.3.100.10"}
	dsts := []string{"10.1.50.10", "10.3.20.10", "10.3.10.5", "10.2.250.5"}
	specs := []string{"https", "3306/tcp", "ssh", "icmp", "53/udp"}
	exps := []string{"allow", "deny", ""}
	var sb strings.Builder
	sb.WriteString("src,dst,spec,expect\r\n")
	for i := range n {
		fmt.Fprintf(&sb, "%s,%s,%s,%s\r\n", srcs[i%4], dsts[i/4%4], specs[i%5], exps[i%3])
	}
	f, err := Read(strings.NewReader(sb.String()), "bench.csv")
	if err != nil {
		b.Fatal(err)
	}
	return f
}

func BenchmarkRead1000(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("src,dst,spec,expect\r\n")
	for range 1000 {
		sb.WriteString("10.1.10.5,10.1.50.10,\"https,3306/tcp\",allow\r\n")
	}
	in := sb.String()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Read(strings.NewReader(in), "b.csv"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTraceFile1000(b *testing.B) {
	f, err := facts.Load(context.Background(), "")
	if err != nil {
		b.Fatal(err)
	}
	eng := trace.New(f)
	file := benchFile(b, 1000)
	b.ReportAllocs()
	for b.Loop() {
		err := TraceFile(context.Background(), eng, file, func(*Case, []*doc.Trace) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(1000*b.N)/b.Elapsed().Minutes(), "lines/min")
}

func BenchmarkWriteJUnit1000(b *testing.B) {
	f, err := facts.Load(context.Background(), "")
	if err != nil {
		b.Fatal(err)
	}
	var cases []*Case
	err = TraceFile(context.Background(), trace.New(f), benchFile(b, 1000), func(c *Case, _ []*doc.Trace) error {
		cases = append(cases, c)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteJUnit(io.Discard, Suite{Name: "bench", File: "bench.csv", Timestamp: time.Now(), Cases: cases}); err != nil {
			b.Fatal(err)
		}
	}
}
