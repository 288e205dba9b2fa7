package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/pipeline"
	"github.com/tsim-dev/tsim/internal/progress"
	"github.com/tsim-dev/tsim/internal/users"
	"github.com/tsim-dev/tsim/trace"
)

// The built-in example, loaded once for all tests of the package.
var exampleFacts = sync.OnceValues(func() (*facts.Facts, error) { return facts.Load(context.Background(), "") })

func loadExample(t testing.TB) *facts.Facts {
	t.Helper()
	f, err := exampleFacts()
	if err != nil {
		t.Fatalf("built-in example: %v", err)
	}
	return f
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const testPassword = "correct horse battery"

// usersFile writes alice and bob (users) and root (admin).
func usersFile(t testing.TB, dir string) *users.File {
	t.Helper()
	uf, err := users.Open(filepath.Join(dir, "users.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct{ name, role string }{{"alice", "user"}, {"bob", "user"}, {"root", "admin"}} {
		if err := uf.Add(u.name, u.role, testPassword); err != nil {
			t.Fatal(err)
		}
	}
	return uf
}

// fakeRunner simulates the pipeline without a lab: it traces the flows with
// the real engine, emits progress, writes a stub PDF and, when gate is not
// nil, waits for it (or for cancellation) in the middle.
type fakeRunner struct {
	gate    chan struct{}
	started chan string // receives the output path of each started job
	mu      sync.Mutex
	calls   int
}

func (fr *fakeRunner) run(ctx context.Context, req pipeline.Request, deps pipeline.Deps) (*pipeline.Result, error) {
	fr.mu.Lock()
	fr.calls++
	fr.mu.Unlock()
	if fr.started != nil {
		fr.started <- req.Output
	}
	deps.Progress.Emit(progress.Event{Stage: "trace", Percent: 10, Message: "tracing"})
	// Like pipeline.Run: one document per group, flow ids unique across
	// the job, given traces instead of simulation where there are some.
	eng := trace.New(req.Facts)
	var docs []*doc.Document
	n := 0
	for gi, g := range req.Groups {
		d := doc.New()
		for _, fl := range g {
			n++
			fl.ID = fmt.Sprintf("f%d", n)
			d.Flows = append(d.Flows, fl)
		}
		if gi < len(req.Given) && req.Given[gi] != nil {
			for i, t := range req.Given[gi] {
				t.Flow = g[i].ID
				d.Trace = append(d.Trace, t)
			}
		} else {
			ts, err := eng.TraceAll(ctx, d.Flows)
			if err != nil {
				return nil, err
			}
			d.Trace = ts
		}
		docs = append(docs, d)
	}
	deps.Progress.Emit(progress.Event{Stage: "hosts-up", Percent: 30, Message: "lab up"})
	if fr.gate != nil {
		select {
		case <-fr.gate:
		case <-ctx.Done():
			deps.Progress.Emit(progress.Event{Stage: "hosts-down", Percent: 90, Message: "lab removed"})
			return &pipeline.Result{Docs: docs, LabID: "fake01"}, ctx.Err()
		}
	}
	for _, d := range docs {
		for _, t := range d.Trace {
			v := "UNREACHABLE"
			if trace.Positive(t.Disposition) {
				v = "REACHABLE"
			}
			// The lab's counters name the rule the facts predicted.
			d.Reach = append(d.Reach, &doc.Reach{Flow: t.Flow, E2E: &doc.E2E{Verdict: v, BlockedBy: t.DeniedBy}})
		}
	}
	deps.Progress.Emit(progress.Event{Stage: "reach", Percent: 70, Message: "probed"})
	if deps.Reached != nil {
		deps.Reached(docs)
	}
	if err := os.WriteFile(req.Output, []byte("%PDF-1.4\n% fake report\n%%EOF\n"), 0o600); err != nil {
		return nil, err
	}
	deps.Progress.Emit(progress.Event{Stage: "report", Percent: 95, Message: "report written"})
	return &pipeline.Result{Docs: docs, LabID: "fake01"}, nil
}

type testEnv struct {
	t     testing.TB
	srv   *Server
	ts    *httptest.Server
	clock *clock
	data  string
	audit *bytes.Buffer
}

func (e *testEnv) jobDirs() []string {
	ents, _ := os.ReadDir(filepath.Join(e.data, "jobs"))
	var out []string
	for _, x := range ents {
		out = append(out, x.Name())
	}
	return out
}

// newEnv starts a server with a fake runner (unless cfg.Runner is set) on
// an httptest listener (127.0.0.1).
func newEnv(t testing.TB, mod func(*Config)) *testEnv {
	t.Helper()
	dir := t.TempDir()
	c := newClock()
	audit := &bytes.Buffer{}
	cfg := Config{DataDir: filepath.Join(dir, "data"), Users: usersFile(t, dir), Facts: loadExample(t),
		Now: c.Now, AuditLog: &lockedWriter{w: audit}, Runner: (&fakeRunner{}).run}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		ts.Close()
	})
	return &testEnv{t: t, srv: s, ts: ts, clock: c, data: cfg.DataDir, audit: audit}
}

// client is one browser-like API client with its own cookie jar.
type client struct {
	e  *testEnv
	hc *http.Client
}

// loggedIn returns one client per user, each logged in.
func (e *testEnv) loggedIn(users ...string) []*client {
	var out []*client
	for _, u := range users {
		c := e.client()
		c.login(u)
		out = append(out, c)
	}
	return out
}

func (e *testEnv) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{e: e, hc: &http.Client{Jar: jar, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response %d is not a JSON object: %q", r.status, r.body)
	}
	return m
}

func (r resp) errorText() string {
	var m struct{ Error string }
	json.Unmarshal(r.body, &m)
	return m.Error
}

func (c *client) do(method, path string, body any, hdr ...string) resp {
	c.e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.e.ts.URL+path, rd)
	if err != nil {
		c.e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

func (c *client) login(user string) {
	c.e.t.Helper()
	r := c.do("POST", "/api/login", map[string]string{"username": user, "password": testPassword})
	if r.status != 200 {
		c.e.t.Fatalf("login %s: %d %s", user, r.status, r.body)
	}
}

func (c *client) submit(src, dst, services string) string {
	c.e.t.Helper()
	r := c.do("POST", "/api/jobs", map[string]string{"src": src, "dst": dst, "services": services})
	if r.status != http.StatusAccepted {
		c.e.t.Fatalf("submit: %d %s", r.status, r.body)
	}
	return r.json(c.e.t)["id"].(string)
}

// wait polls a job until its state is one of states.
func (c *client) wait(id string, timeout time.Duration, states ...string) map[string]any {
	c.e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r := c.do("GET", "/api/jobs/"+id, nil)
		if r.status != 200 {
			c.e.t.Fatalf("job %s: %d %s", id, r.status, r.body)
		}
		m := r.json(c.e.t)
		for _, s := range states {
			if m["state"] == s {
				return m
			}
		}
		if time.Now().After(deadline) {
			c.e.t.Fatalf("job %s still %v after %s (want %v): %s", id, m["state"], timeout, states, r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sseEvent is one parsed server-sent event.
type sseEvent struct {
	id, event, data string
}

// readSSE reads events from the stream until the "end" event or EOF.
func readSSE(t testing.TB, r io.Reader, each func(sseEvent)) []sseEvent {
	t.Helper()
	var out []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.event != "" || cur.data != "" {
				out = append(out, cur)
				if each != nil {
					each(cur)
				}
				if cur.event == "end" {
					return out
				}
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			cur.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			cur.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			cur.data = line[6:]
		}
	}
	return out
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func mustPrefixes(t testing.TB, ss ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}
