package reach

import (
	"context"
	"runtime"
	"testing"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/trace"
)

// planBytesPerFlow bounds what Run's plans keep per flow beyond the
// document's own trace: the router visits, the packet at each, the
// predictions. Plans once kept the open path's whole trace and the
// seeded one: 18 kB per flow on the example, 250 kB on a generated
// 200-router network (on top of the document's trace), so a suite of
// 10,000 flows held gigabytes for the whole of reach. Without them a plan
// keeps ~1.1 kB per flow on the example.
const planBytesPerFlow = 6 << 10

// TestPlanMemoryPerFlow measures the heap a suite's plans keep alive,
// per flow, with the documents' traces already held (as in a run): it
// must not grow by a trace per flow. No root: planning only traces.
func TestPlanMemoryPerFlow(t *testing.T) {
	f := loadFacts(t, "")
	// Every flow of the example between these addresses, on a spread of
	// ports: delivered, denied, ECMP (F23's 10.1.10.5 → 10.3.100.10) and
	// NATed paths. Every router of the lab pins hash seed 1, so ECMP flows
	// are also traced with the lab's seed (as hosts up does).
	srcs := []string{"10.1.10.5", "10.1.20.10", "10.2.10.5", "10.3.10.5"}
	dsts := []string{"10.1.50.10", "10.3.100.10", "10.2.50.10", "203.0.113.10", "10.3.20.10"}
	var flows []*doc.Flow
	for _, s := range srcs {
		for _, dst := range dsts {
			for _, p := range []int{22, 80, 443, 3306, 5432, 8443} {
				flows = append(flows, flow("f"+itoa(len(flows)+1), s, dst, "tcp", p))
			}
			flows = append(flows, flow("f"+itoa(len(flows)+1), s, dst, "icmp", 0))
		}
	}
	// The suite four times over (new ids): the difference between
	// planning it once and four times is what plans keep per flow, free
	// of what does not grow with the suite.
	n := len(flows)
	for k := 1; k < 4; k++ {
		for _, fl := range flows[:n] {
			c := *fl
			c.ID = "f" + itoa(len(flows)+1)
			flows = append(flows, &c)
		}
	}
	ts, err := trace.New(f).TraceAll(context.Background(), flows)
	if err != nil {
		t.Fatal(err)
	}
	lab := &doc.Lab{ID: "plan"}
	for _, r := range f.Routers {
		lab.Routers = append(lab.Routers, &doc.LabRouter{Name: r.Name, HashSeed: 1})
	}
	mk := func(m int) *doc.Document {
		d := doc.New()
		d.Flows, d.Trace, d.Lab = flows[:m], ts[:m], lab
		return d
	}
	ecmp := 0
	for _, tr := range ts[:n] {
		if len(tr.Branches) > 1 {
			ecmp++
		}
	}
	if ecmp == 0 {
		t.Fatalf("no ECMP flow among %d: the seeded traces are not exercised", n)
	}

	heap := func() uint64 {
		runtime.GC()
		runtime.GC() // and what sync.Pools kept for one cycle
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	// What planFlows keeps beyond the documents (which hold every trace
	// throughout): its engines are garbage once it returns.
	kept := func(d *doc.Document) (int64, []*flowPlan) {
		before := heap()
		plans := planFlows(context.Background(), f, d)
		after := heap()
		runtime.KeepAlive(plans)
		return int64(after) - int64(before), plans
	}
	small, plans := kept(mk(n))
	for _, p := range plans {
		if p.problem != "" {
			t.Fatalf("flow %s: %s", p.flow.ID, p.problem)
		}
	}
	plans = nil
	big, _ := kept(mk(4 * n))
	per := (big - small) / int64(3*n)
	t.Logf("%d flows (%d ECMP): plans keep %d B for %d flows, %d B for %d: %d B per flow", n, ecmp, small, n, big, 4*n, per)
	if per > planBytesPerFlow {
		t.Errorf("plans keep %d B per flow, more than %d: a plan holds whole traces again?", per, planBytesPerFlow)
	}
}
