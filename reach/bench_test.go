package reach

import (
	"context"
	"testing"
	"time"

	"github.com/tsim-dev/tsim/internal/doc"
)

// Targets (DESIGN §7, §11): reach alone, both views, on the built-in
// example's 3-router path hq-core -> hq-gw -> hq-dmz.
const (
	targetOne = 150 * time.Millisecond
	target100 = 2 * time.Second
)

// benchRun runs reach on a fresh copy of d's flows b.N times and reports
// the time per run and its ratio to the target.
func benchRun(b *testing.B, opts Options, flows []*doc.Flow, target time.Duration, check func(*testing.B, []*doc.Reach)) {
	needRoot(b)
	f := loadFacts(b, "")
	d := labDoc(b, f, flows)
	run := func() []*doc.Reach {
		dd := *d
		dd.Reach = nil
		if err := Run(context.Background(), f, &dd, opts); err != nil {
			b.Fatalf("Run: %v", err)
		}
		return dd.Reach
	}
	check(b, run()) // warm: neighbours, listeners' first accept
	b.ResetTimer()
	t0 := time.Now()
	for range b.N {
		run()
	}
	per := time.Since(t0) / time.Duration(b.N)
	b.ReportMetric(float64(per.Milliseconds()), "ms/run")
	b.ReportMetric(float64(per)/float64(target), "x-target")
}

// oneService is one service on a 3-router path.
func oneService() []*doc.Flow {
	return []*doc.Flow{flow("f1", "10.1.10.5", "10.1.50.10", "tcp", 443)}
}

func checkOne(b *testing.B, rs []*doc.Reach) {
	if rs[0].E2E.Verdict != doc.Reachable || len(rs[0].Routers) != 3 {
		b.Fatalf("unexpected result:\n%s", summary(rs))
	}
}

// hundredServices are 100 services on the same path, half of them blocked
// at its second router (tcp/3306 by HQ_EGRESS #2), each from its own
// source port.
func hundredServices() []*doc.Flow {
	var flows []*doc.Flow
	for i := range 100 {
		fl := flow("s"+itoa(i), "10.1.10.5", "10.1.50.10", "tcp", 443)
		if i%2 == 1 {
			fl.DPort = 3306
		}
		fl.SPort = 41000 + i
		flows = append(flows, fl)
	}
	return flows
}

func checkHundred(b *testing.B, rs []*doc.Reach) {
	for i, r := range rs {
		want := doc.Reachable
		if i%2 == 1 {
			want = doc.Unreachable
		}
		if r.E2E.Verdict != want || len(r.Disagreements) > 0 {
			b.Fatalf("service %d: %s, want %s:\n%s", i, r.E2E.Verdict, want, summary([]*doc.Reach{r}))
		}
	}
}

// BenchmarkReachOne: one service on a 3-router path, every router tested
// alone by the harness.
func BenchmarkReachOne(b *testing.B) {
	benchRun(b, Options{}, oneService(), targetOne, checkOne)
}

// BenchmarkReachOneReuse: the same with Options.ReuseEndToEnd.
func BenchmarkReachOneReuse(b *testing.B) {
	benchRun(b, Options{ReuseEndToEnd: true}, oneService(), targetOne, checkOne)
}

// BenchmarkReach100: 100 services, half blocked, on the same path.
func BenchmarkReach100(b *testing.B) {
	benchRun(b, Options{}, hundredServices(), target100, checkHundred)
}

// BenchmarkReach100Reuse: the same with Options.ReuseEndToEnd (the
// harness tests only hq-dmz, behind the blocking hq-gw).
func BenchmarkReach100Reuse(b *testing.B) {
	benchRun(b, Options{ReuseEndToEnd: true}, hundredServices(), target100, checkHundred)
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
