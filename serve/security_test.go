package serve

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tsim-dev/tsim/hosts"
	"github.com/tsim-dev/tsim/internal/pipeline"
	"github.com/tsim-dev/tsim/internal/progress"
	"github.com/tsim-dev/tsim/trace"
)

// heapPeak samples the heap in use every millisecond until stop is closed
// and returns the highest value seen.
func heapPeak(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		var peak uint64
		var ms runtime.MemStats
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// TestLoginBurst fires 100 parallel logins: for one user with a wrong
// password at most LoginUserFails are evaluated, spread over many names
// from one address at most LoginAddrFails; argon2id never runs more than
// MaxHashing times at once, so the heap stays bounded.
func TestLoginBurst(t *testing.T) {
	one := func(int) string { return "alice" }
	many := func(i int) string { return fmt.Sprintf("user%d", i) }
	cases := []struct {
		name    string
		user    func(i int) string
		limit   int // most password checks allowed
		hashing int // MaxHashing
	}{
		// Hashing slots for all: only the reservation stops the burst.
		{"one user, no hashing bound", one, 5, 100},
		{"many names, one address, no hashing bound", many, 20, 100},
		// Two slots: most attempts find them busy (503).
		{"one user, 2 hashing slots", one, 5, 2},
		{"many names, 2 hashing slots", many, 20, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.MaxHashing = tc.hashing })
			runtime.GC()
			var base runtime.MemStats
			runtime.ReadMemStats(&base)
			stop := make(chan struct{})
			peakc := heapPeak(stop)
			var wg sync.WaitGroup
			var mu sync.Mutex
			statuses := map[int]int{}
			start := make(chan struct{})
			for i := 0; i < 100; i++ {
				wg.Go(func() {
					c := e.client()
					<-start
					r := c.do("POST", "/api/login", map[string]string{"username": tc.user(i), "password": "wrong password"})
					mu.Lock()
					statuses[r.status]++
					mu.Unlock()
				})
			}
			close(start)
			wg.Wait()
			close(stop)
			peak := <-peakc
			total, conc := e.srv.hashStats.stats()
			t.Logf("statuses %v; %d password checks, at most %d at once; heap in use %d MiB before, peak %d MiB",
				statuses, total, conc, base.HeapInuse>>20, peak>>20)
			if total > tc.limit || statuses[http.StatusUnauthorized] != total {
				t.Errorf("%d password checks (%d answered 401), want at most %d", total, statuses[401], tc.limit)
			}
			if total == 0 {
				t.Errorf("no attempt was evaluated: %v", statuses)
			}
			if statuses[401]+statuses[429]+statuses[503] != 100 {
				t.Errorf("unexpected statuses %v", statuses)
			}
			if conc > tc.hashing {
				t.Errorf("%d password checks at once, limit %d", conc, tc.hashing)
			}
			// At most min(limit, hashing) checks at once, 19 MiB each,
			// twice that before the collector catches up, plus the test's
			// own 100 clients (100 checks would be 2-4 GiB).
			bound := int64(min(tc.limit, tc.hashing))*2*19<<20 + 32<<20
			if grow := int64(peak) - int64(base.HeapInuse); grow > bound {
				t.Errorf("heap grew by %d MiB during the burst (bound %d MiB)", grow>>20, bound>>20)
			}
		})
	}
}

// TestLoginBusy: with every hashing slot taken a login is answered 503
// without counting against the user.
func TestLoginBusy(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxHashing = 1 })
	e.srv.hashing <- struct{}{}
	r := e.client().do("POST", "/api/login", map[string]string{"username": "alice", "password": testPassword})
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("login with no hashing slot: %d %s", r.status, r.body)
	}
	<-e.srv.hashing
	for i := 0; i < 6; i++ { // the refused attempts did not count
		e.srv.hashing <- struct{}{}
		e.client().do("POST", "/api/login", map[string]string{"username": "alice", "password": testPassword})
		<-e.srv.hashing
	}
	e.client().login("alice")
}

// openStream opens a job's event stream and waits for its first bytes.
// The returned channel is closed when the server ends the stream.
func openStream(t *testing.T, c *client, id string) (status int, ended <-chan struct{}, cancel func()) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", c.e.ts.URL+"/api/jobs/"+id+"/events", nil)
	res, err := c.hc.Do(req)
	if err != nil {
		stop()
		t.Fatal(err)
	}
	done := make(chan struct{})
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		stop()
		close(done)
		return res.StatusCode, done, func() {}
	}
	br := bufio.NewReader(res.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatalf("stream: %v", err)
	}
	go func() {
		io.Copy(io.Discard, br)
		res.Body.Close()
		close(done)
	}()
	return res.StatusCode, done, stop
}

func waitClosed(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: stream still open", what)
	}
}

// TestEventStreamLimits: streams are capped per user and in total (429),
// and a user's streams end at logout, at session expiry and when the user
// is deleted.
func TestEventStreamLimits(t *testing.T) {
	fr := &fakeRunner{gate: make(chan struct{})}
	defer close(fr.gate)
	e := newEnv(t, func(c *Config) {
		c.Runner = fr.run
		c.MaxStreamsPerUser, c.MaxStreams = 3, 5
		c.IdleTimeout = 10 * time.Minute
	})
	alice, bob := e.client(), e.client()
	alice.login("alice")
	bob.login("bob")
	aid := alice.submit("10.1.10.5", "10.3.20.10", "ssh")
	bid := bob.submit("10.1.10.5", "10.3.20.10", "ssh")

	var aliceEnds []<-chan struct{}
	for i := 0; i < 3; i++ {
		st, ended, cancel := openStream(t, alice, aid)
		defer cancel()
		if st != 200 {
			t.Fatalf("alice's stream %d: %d", i+1, st)
		}
		aliceEnds = append(aliceEnds, ended)
	}
	if st, _, _ := openStream(t, alice, aid); st != http.StatusTooManyRequests {
		t.Errorf("alice's 4th stream: %d, want 429", st)
	}
	var bobEnds []<-chan struct{}
	for i := 0; i < 2; i++ {
		st, ended, cancel := openStream(t, bob, bid)
		defer cancel()
		if st != 200 {
			t.Fatalf("bob's stream %d: %d", i+1, st)
		}
		bobEnds = append(bobEnds, ended)
	}
	if st, _, _ := openStream(t, bob, bid); st != http.StatusTooManyRequests {
		t.Errorf("6th stream in total: %d, want 429", st)
	}
	if total, _ := e.srv.streams.count(""); total != 5 {
		t.Errorf("%d streams registered, want 5", total)
	}

	// Logout ends alice's streams, not bob's.
	alice.do("POST", "/api/logout", nil)
	for i, ch := range aliceEnds {
		waitClosed(t, fmt.Sprintf("alice's stream %d after logout", i+1), ch)
	}
	select {
	case <-bobEnds[0]:
		t.Fatal("alice's logout ended bob's stream")
	default:
	}

	// Session expiry ends a stream at the next sweep.
	alice.login("alice")
	_, ended, cancel := openStream(t, alice, aid)
	defer cancel()
	e.clock.Add(11 * time.Minute)
	bob.do("GET", "/api/me", nil) // bob stays active... but is idle too: log him in again
	e.srv.sweepOnce()
	waitClosed(t, "alice's stream after her session expired", ended)

	// Deleting a user ends the user's streams.
	bob.login("bob")
	_, bobEnd, cancelB := openStream(t, bob, bid)
	defer cancelB()
	root := e.client()
	root.login("root")
	if r := root.do("DELETE", "/api/admin/users/bob", nil); r.status != 200 {
		t.Fatalf("delete bob: %d %s", r.status, r.body)
	}
	waitClosed(t, "bob's stream after his account was deleted", bobEnd)
	if total, _ := e.srv.streams.count(""); total != 0 {
		t.Errorf("%d streams still registered", total)
	}
}

// TestHostAllowlist: only localhost, the loopback addresses, the listen
// address and --host names are served (DNS rebinding is refused).
func TestHostAllowlist(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Hosts = []string{"tsim.example.org"} })
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(e.ts.URL, "http://"))
	cases := []struct {
		host string
		ok   bool
	}{
		{"127.0.0.1:" + port, true},
		{"localhost:" + port, true},
		{"LOCALHOST.", true},
		{"[::1]:" + port, true},
		{"tsim.example.org", true},
		{"TSIM.example.org.:443", true},
		{"evil.example", false},
		{"evil.example:" + port, false},
		{"127.0.0.1.evil.example", false},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest("GET", e.ts.URL+"/login.html", nil)
		req.Host = tc.host
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := res.StatusCode == 200; got != tc.ok {
			t.Errorf("Host %q: %d, want served=%v", tc.host, res.StatusCode, tc.ok)
		}
		if !tc.ok && res.StatusCode != http.StatusMisdirectedRequest {
			t.Errorf("Host %q: %d, want 421", tc.host, res.StatusCode)
		}
	}
	// Listening on every address adds the machine's names and addresses.
	e.srv.allowListenHost(&net.TCPAddr{IP: net.IPv4zero, Port: 8080})
	if hn, err := os.Hostname(); err == nil && !e.srv.hosts[normHost(hn)] {
		t.Errorf("host name %q not served on 0.0.0.0", hn)
	}
}

// TestProgressHidesServerPaths: progress messages and job errors show file
// names, never where the server keeps them.
func TestProgressHidesServerPaths(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Runner = func(ctx context.Context, req pipeline.Request, deps pipeline.Deps) (*pipeline.Result, error) {
			deps.Progress.Emit(progress.Event{Stage: "merge", Percent: 90, Message: "merge: " + req.Output + ": 3 pages"})
			deps.Progress.Emit(progress.Event{Stage: "hosts-up", Percent: 20, Step: "/run/netns/tsim-x-r1", Message: "create /run/netns/tsim-x-r1 (10.1.0.0/24, 1-32/tcp)"})
			return nil, fmt.Errorf("report: open %s: permission denied", filepath.Join(filepath.Dir(req.Output), "x.pdf"))
		}
	})
	c := e.client()
	c.login("alice")
	id := c.submit("10.1.10.5", "10.3.20.10", "ssh")
	m := c.wait(id, 10*time.Second, StateFailed)
	data, _ := os.ReadFile(filepath.Join(e.data, "jobs", id, eventsFile))
	all := string(data) + fmt.Sprint(m)
	for _, leak := range []string{e.data, "/run/netns"} {
		if strings.Contains(all, leak) {
			t.Errorf("a server path (%s) reached the user:\n%s", leak, all)
		}
	}
	for _, want := range []string{"merge: report.pdf: 3 pages", "create tsim-x-r1 (10.1.0.0/24, 1-32/tcp)", "open x.pdf: permission denied"} {
		if !strings.Contains(all, want) {
			t.Errorf("lacks %q:\n%s", want, all)
		}
	}
}

func TestScrubPaths(t *testing.T) {
	for in, want := range map[string]string{
		"merge: /srv/tsim/jobs/abc/report.pdf: 3 pages": "merge: report.pdf: 3 pages",
		"10.1.0.0/24 via 10.0.0.1":                      "10.1.0.0/24 via 10.0.0.1",
		"ports 1-32/tcp and 53/udp":                     "ports 1-32/tcp and 53/udp",
		`open "/etc/x/y.json"`:                          `open "y.json"`,
		"/abs/at/start and (/in/paren)":                 "start and (paren)",
		"no path":                                       "no path",
	} {
		if got := scrubPaths(in); got != want {
			t.Errorf("scrubPaths(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestReapStaleLabsAtStart: a lab whose owner died (a crashed server) is
// removed when the next server starts; the admin page matched it to its
// job before, and the job records it after.
func TestReapStaleLabsAtStart(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	reg := filepath.Join(dir, "labs")
	data := filepath.Join(dir, "data")
	f := loadExample(t)
	// The crashed server's job, running when it died.
	id := "0123456789abcdef0123456789abcdef"
	if err := os.MkdirAll(filepath.Join(data, "jobs", id), 0o700); err != nil {
		t.Fatal(err)
	}
	meta := fmt.Sprintf(`{"id":%q,"state":"running","owner":"alice","src":"10.1.10.5","dst":"10.3.10.10","services":"ssh","flows":1,"created":"2026-01-02T03:04:05Z"}`, id)
	if err := os.WriteFile(filepath.Join(data, "jobs", id, metaFile), []byte(meta), 0o600); err != nil {
		t.Fatal(err)
	}
	// Its lab, owned by a process that is gone.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	flows, _ := trace.FlowsFromSpec("10.1.10.5", "10.3.10.10", "ssh", 0)
	d := pipeline.NewDoc(f)
	d.Flows = flows
	d.Trace, _ = trace.New(f).TraceAll(context.Background(), flows)
	lab, err := hosts.Up(context.Background(), f, d, hosts.Options{RegistryDir: reg, Scope: hosts.ScopePath,
		OwnerPID: dead.Process.Pid, Label: labLabel(id)})
	if err != nil {
		t.Fatalf("hosts up: %v", err)
	}
	var cleaned atomic.Bool
	t.Cleanup(func() {
		if !cleaned.Load() {
			hosts.Down(context.Background(), lab.ID, hosts.Options{RegistryDir: reg})
		}
	})
	e := newEnv(t, func(c *Config) { c.DataDir = data; c.Registry = reg })
	root := e.client()
	root.login("root")
	ov := root.do("GET", "/api/admin/overview", nil).json(t)
	labs, _ := ov["labs"].([]any)
	if len(labs) != 1 || labs[0].(map[string]any)["job"] != id || labs[0].(map[string]any)["stale"] != true {
		t.Fatalf("admin overview labs: %v", ov["labs"])
	}
	reaped, err := e.srv.ReapStaleLabs(context.Background())
	if err != nil || len(reaped) != 1 || reaped[0].ID != lab.ID {
		t.Fatalf("reaped %+v, %v", reaped, err)
	}
	cleaned.Store(true)
	assertNoLabs(t, reg, []string{lab.ID})
	m, _ := e.srv.jobs.get(id)
	if m.State != StateFailed || m.Lab != lab.ID || !strings.Contains(m.Error, "its lab "+lab.ID+" was removed") {
		t.Errorf("job after reaping: %+v", m)
	}
	if !strings.Contains(e.audit.String(), `"action":"lab_reaped"`) || !strings.Contains(e.audit.String(), id) {
		t.Errorf("audit log lacks the reaped lab:\n%s", e.audit.String())
	}
}
