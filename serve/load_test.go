package serve

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/trace"
)

// TestLoadTenJobs submits 10 jobs at once from 3 users through the API
// with the real pipeline: all must finish with results that match the
// simulation, no lab may be left, and the API must stay responsive
// meanwhile (latency of GET /api/jobs/{id} and GET /api/me sampled every
// 100 ms).
func TestLoadTenJobs(t *testing.T) {
	requireRoot(t)
	if testing.Short() {
		t.Skip("load test: 10 real labs (not in -short)")
	}
	e, reg := realEnv(t, 3, nil)
	clients := e.loggedIn("alice", "bob", "root")
	pairs := []struct{ src, dst, spec string }{
		{"10.1.10.5", "10.3.10.10", "ssh,https"},
		{"10.1.10.5", "10.3.20.10", "https,icmp"},
		{"10.1.10.5", "10.1.50.10", "ssh,https"},
		{"10.1.20.5", "10.2.10.10", "ssh,icmp"},
		{"10.2.10.5", "10.3.10.10", "https,icmp"},
		{"10.2.10.5", "10.3.20.10", "ssh,https"},
		{"10.2.20.5", "10.3.10.10", "ssh,icmp"},
		{"10.1.20.5", "10.3.10.10", "ssh,https"},
		{"10.3.10.5", "10.1.50.10", "ssh,https,icmp"},
		{"10.3.10.5", "10.2.10.10", "ssh,https"},
	}
	ids := make([]string, len(pairs))
	submitLat := make([]time.Duration, len(pairs))
	start := time.Now()
	var wg sync.WaitGroup
	for i, p := range pairs {
		wg.Go(func() {
			t0 := time.Now()
			ids[i] = clients[i%3].submit(p.src, p.dst, p.spec)
			submitLat[i] = time.Since(t0)
		})
	}
	wg.Wait()

	// Probe the API while the jobs run.
	ctx, stop := context.WithCancel(context.Background())
	var lat []time.Duration
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		pc := e.client()
		pc.login("bob")
		admin := e.client()
		admin.login("root")
		for i := 0; ctx.Err() == nil; i++ {
			t0 := time.Now()
			if i%2 == 0 {
				admin.do("GET", "/api/jobs/"+ids[i%len(ids)], nil)
			} else {
				pc.do("GET", "/api/me", nil)
			}
			lat = append(lat, time.Since(t0))
			time.Sleep(100 * time.Millisecond)
		}
	}()

	eng := trace.New(e.srv.cfg.Facts)
	var labs []string
	var runTimes []time.Duration
	for i, id := range ids {
		m := clients[i%3].wait(id, 10*time.Minute, StateDone, StateFailed, StateCancelled)
		if m["state"] != StateDone {
			t.Errorf("job %d (%v): %v %v", i, pairs[i], m["state"], m["error"])
			continue
		}
		labs = append(labs, m["lab"].(string))
		meta, _ := e.srv.jobs.get(id)
		runTimes = append(runTimes, meta.Finished.Sub(*meta.Started))
		// Each flow: the job's simulated disposition equals a direct trace,
		// and the emulated verdict matches it.
		flows, _ := trace.FlowsFromSpec(pairs[i].src, pairs[i].dst, pairs[i].spec, 0)
		got := meta.Result.Flows
		if len(got) != len(flows) {
			t.Errorf("job %d: %d flow results, want %d", i, len(got), len(flows))
			continue
		}
		for k, f := range flows {
			want := eng.Trace(context.Background(), f).Disposition
			wantVerdict := doc.Unreachable
			if want == doc.Delivered {
				wantVerdict = doc.Reachable
			}
			agrees := got[k].Agrees == nil || *got[k].Agrees
			if got[k].Disposition != want || got[k].Verdict != wantVerdict || !agrees {
				t.Errorf("job %d %s %s: got %s/%s (agrees %v, reason %q), want %s/%s", i, pairs[i].src+"→"+pairs[i].dst, f.Service,
					got[k].Disposition, got[k].Verdict, agrees, got[k].Reason, want, wantVerdict)
			}
		}
		if !meta.Report {
			t.Errorf("job %d: no report", i)
		}
	}
	total := time.Since(start)
	stop()
	<-probeDone
	assertNoLabs(t, reg, labs)
	if len(runTimes) == 0 {
		t.Fatal("no job finished")
	}

	slices.Sort(lat)
	slices.Sort(runTimes)
	slices.Sort(submitLat)
	pct := func(d []time.Duration, p float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		return d[min(len(d)-1, int(float64(len(d))*p))]
	}
	t.Logf("10 jobs from 3 users, 3 workers: all finished in %s; job run time min %s median %s max %s",
		total.Round(time.Millisecond), runTimes[0].Round(time.Millisecond), pct(runTimes, .5).Round(time.Millisecond), runTimes[len(runTimes)-1].Round(time.Millisecond))
	t.Logf("submit latency (10 concurrent POSTs): median %s max %s", pct(submitLat, .5), submitLat[len(submitLat)-1])
	t.Logf("API latency under load (%d GETs): p50 %s p95 %s max %s", len(lat), pct(lat, .5), pct(lat, .95), lat[len(lat)-1])
	if pct(lat, .95) > 500*time.Millisecond || lat[len(lat)-1] > 3*time.Second {
		t.Errorf("server not responsive under load: p95 %s max %s", pct(lat, .95), lat[len(lat)-1])
	}
}

// procStats is what a leak would grow: resident memory, goroutines, open
// file descriptors.
type procStats struct {
	rssKiB     int
	goroutines int
	fds        int
}

func readProcStats(t *testing.T) procStats {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	var st procStats
	st.goroutines = runtime.NumGoroutine()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	st.fds = len(ents)
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			fmt.Sscanf(strings.TrimSpace(v), "%d", &st.rssKiB)
		}
	}
	return st
}

// TestSoakHundredJobs runs 100 real jobs from 3 users after a warm-up of
// 10 and asserts that the process does not grow: resident memory,
// goroutines and file descriptors are flat, and no lab is left. It takes
// a minute or two, so it runs when TSIM_SOAK=1 (make test sets it).
func TestSoakHundredJobs(t *testing.T) {
	requireRoot(t)
	if os.Getenv("TSIM_SOAK") == "" {
		t.Skip("soak test: set TSIM_SOAK=1 (make test does)")
	}
	e, reg := realEnv(t, 2, func(c *Config) { c.MaxPerUser = 50; c.MaxQueued = 200 })
	clients := e.loggedIn("alice", "bob", "root")
	pairs := []struct{ src, dst, spec string }{
		{"10.1.10.5", "10.3.10.10", "ssh,https"},
		{"10.1.10.5", "10.1.50.10", "https,mysql"},
		{"10.2.10.5", "10.3.20.10", "ssh"},
		{"10.3.10.5", "10.1.50.10", "https,dns"},
	}
	var labs []string
	run := func(n int) time.Duration {
		start := time.Now()
		ids := make([]string, n)
		for i := range n {
			p := pairs[i%len(pairs)]
			ids[i] = clients[i%3].submit(p.src, p.dst, p.spec)
		}
		for i, id := range ids {
			m := clients[i%3].wait(id, 10*time.Minute, StateDone, StateFailed, StateCancelled)
			if m["state"] != StateDone {
				t.Fatalf("job %d: %v %v", i, m["state"], m["error"])
			}
			labs = append(labs, m["lab"].(string))
		}
		return time.Since(start)
	}
	run(10)
	before := readProcStats(t)
	took := run(100)
	after := readProcStats(t)
	t.Logf("100 jobs in %s (%.2f s/job with 2 workers); RSS %d -> %d KiB, goroutines %d -> %d, fds %d -> %d",
		took.Round(time.Millisecond), took.Seconds()/100, before.rssKiB, after.rssKiB, before.goroutines, after.goroutines, before.fds, after.fds)
	if after.goroutines > before.goroutines+5 {
		t.Errorf("goroutines grew from %d to %d", before.goroutines, after.goroutines)
	}
	if after.fds > before.fds+5 {
		t.Errorf("file descriptors grew from %d to %d", before.fds, after.fds)
	}
	// Finished jobs stay listed (job.json in memory, a few KiB each); a
	// leak of a lab's handles or buffers would be MiBs per job.
	if grow := after.rssKiB - before.rssKiB; grow > 32<<10 {
		t.Errorf("RSS grew by %d KiB over 100 jobs", grow)
	}
	assertNoLabs(t, reg, labs)
}
