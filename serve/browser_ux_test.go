package serve

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tsim-dev/tsim/internal/pipeline"
)

// recorder wraps the site: it records requests and can refuse the event
// stream, as a proxy that does not pass SSE would.
type recorder struct {
	h         http.Handler
	noSSE     bool
	mu        sync.Mutex
	lastIDs   []string // Last-Event-ID of each events request
	jobPolls  int      // GET /api/jobs/{id}
	eventsReq int
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	isEvents := strings.HasSuffix(r.URL.Path, "/events")
	rc.mu.Lock()
	if isEvents {
		rc.eventsReq++
		rc.lastIDs = append(rc.lastIDs, r.Header.Get("Last-Event-ID"))
	} else if strings.HasPrefix(r.URL.Path, "/api/jobs/") && strings.Count(r.URL.Path, "/") == 3 {
		rc.jobPolls++
	}
	rc.mu.Unlock()
	if isEvents && rc.noSSE {
		http.Error(w, "streaming disabled by the proxy", http.StatusBadGateway)
		return
	}
	rc.h.ServeHTTP(w, r)
}

// uxSite starts the server with runner behind a recorder and logs alice
// in through the browser, ready on the form.
func uxSite(t *testing.T, runner Runner, noSSE bool) (*httptest.Server, *recorder, context.Context) {
	t.Helper()
	e := newEnv(t, func(c *Config) { c.Runner = runner; c.Now = nil })
	rc := &recorder{h: e.srv.Handler(), noSSE: noSSE}
	ts := httptest.NewServer(rc)
	t.Cleanup(func() { ts.CloseClientConnections(); ts.Close() })
	bctx := browser(t)
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	t.Cleanup(cancel)
	if err := browserLogin(ctx, ts.URL, "alice"); err != nil {
		t.Fatalf("login: %v", err)
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(css("#src"), "10.1.10.5"),
		chromedp.SendKeys(css("#dst"), "10.3.10.10"),
		chromedp.SendKeys(css("#spec"), "ssh, 8080/tcp"),
		chromedp.Click(css("#run")),
		chromedp.WaitVisible(css("#log li")),
	); err != nil {
		t.Fatalf("submit: %v", err)
	}
	return ts, rc, ctx
}

func logLines(t *testing.T, ctx context.Context) []string {
	t.Helper()
	lines, err := eval[[]string](ctx, `[...document.querySelectorAll('#log li')].map(li => li.textContent.replace(/^\[[^\]]*\] /, ''))`)
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

// The stream breaks mid-job: the browser reconnects with Last-Event-ID,
// the server replays only what was missed, the log has no duplicates.
func TestBrowserReconnect(t *testing.T) {
	fr := &fakeRunner{gate: make(chan struct{})}
	ts, rc, ctx := uxSite(t, fr.run, false)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(css("#log li:nth-child(4)"))); err != nil { // … hosts-up
		t.Fatalf("waiting for hosts-up: %v", err)
	}
	ts.CloseClientConnections() // the proxy, the Wi-Fi, …
	deadline := time.Now().Add(20 * time.Second)
	for {
		rc.mu.Lock()
		n := rc.eventsReq
		rc.mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the browser did not reconnect the event stream")
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(fr.gate)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(css("#pdf-view"))); err != nil {
		t.Fatalf("job did not finish in the page: %v", err)
	}
	rc.mu.Lock()
	ids := append([]string(nil), rc.lastIDs...)
	rc.mu.Unlock()
	if ids[0] != "" || ids[1] != "4" {
		t.Errorf("Last-Event-ID of the stream requests: %q, want \"\" then \"4\"", ids)
	}
	lines := logLines(t, ctx)
	seen := map[string]bool{}
	for _, l := range lines {
		if seen[l] {
			t.Errorf("duplicate log line after reconnect: %q in %q", l, lines)
		}
		seen[l] = true
	}
	want := []string{"queued: queued at position 1", "running: started", "trace: tracing", "hosts-up: lab up", "reach: probed", "report: report written", "done: finished"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("log %q, want %q", lines, want)
	}
}

// Without a usable event stream the page polls and still ends well.
func TestBrowserPollingFallback(t *testing.T) {
	_, rc, ctx := uxSite(t, (&fakeRunner{}).run, true)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(css("#pdf-view"))); err != nil {
		t.Fatalf("job did not finish in the page without SSE: %v", err)
	}
	rc.mu.Lock()
	polls := rc.jobPolls
	rc.mu.Unlock()
	if polls < 2 {
		t.Errorf("%d status polls: the page did not fall back to polling", polls)
	}
	state, _ := eval[string](ctx, `document.getElementById('state').textContent`)
	if state != "done" {
		t.Errorf("state %q", state)
	}
}

// A failing job shows the error view with the reason, not a hang.
func TestBrowserErrorView(t *testing.T) {
	fail := func(ctx context.Context, req pipeline.Request, deps pipeline.Deps) (*pipeline.Result, error) {
		return nil, errors.New("hosts up: router dc-gw: RTNETLINK answers: File exists")
	}
	_, _, ctx := uxSite(t, fail, false)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(css("#error-view"))); err != nil {
		t.Fatalf("no error view: %v", err)
	}
	msg, _ := eval[string](ctx, `document.getElementById('error-text').textContent`)
	pdfHidden, _ := eval[bool](ctx, `document.getElementById('pdf-view').hidden`)
	if !strings.Contains(msg, "RTNETLINK answers: File exists") || !pdfHidden {
		t.Errorf("error view %q (pdf hidden %v)", msg, pdfHidden)
	}
}
