package serve

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/tsim-dev/tsim/internal/pipeline"
)

const chromiumPath = "/usr/bin/chromium"

// browser starts headless Chromium with a throw-away profile and no
// background traffic.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s missing (apt-get install -y chromium): %v", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.WindowSize(1280, 1000),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// eval evaluates a JavaScript expression in the page (awaiting promises).
func eval[T any](ctx context.Context, expr string) (T, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

// observeLog makes every page loaded later record each append to the
// progress log (time, lines added) in window.__logBatches.
func observeLog() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
		window.__logBatches = [];
		document.addEventListener('DOMContentLoaded', () => {
			const log = document.getElementById('log');
			if (!log) return;
			new MutationObserver((ms) => {
				let n = 0;
				for (const m of ms) n += m.addedNodes.length;
				if (n) window.__logBatches.push({t: performance.now(), n});
			}).observe(log, {childList: true});
		});`})
		return err
	})
}

// browserLogin logs in through the login page and lands on the form.
func browserLogin(ctx context.Context, base, user string) error {
	return chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(css("#username")),
		chromedp.SendKeys(css("#username"), user),
		chromedp.SendKeys(css("#password"), testPassword),
		chromedp.Click(css("#login")),
		chromedp.WaitVisible(css(`#picker input[value="ssh"]`)),
	)
}

// TestBrowser drives the pages in Chromium against the real pipeline: log
// in, submit a 2-service job on the built-in example, watch progress
// events arrive, open the PDF, log out; a second user cannot see the job.
func TestBrowser(t *testing.T) {
	requireRoot(t)
	// The real pipeline, started once the page has opened its event
	// stream, so every event of the run must arrive live (the example
	// network builds and probes faster than a page loads).
	streaming := make(chan struct{})
	var once sync.Once
	e, reg := realEnv(t, 2, func(c *Config) {
		c.Runner = func(ctx context.Context, req pipeline.Request, deps pipeline.Deps) (*pipeline.Result, error) {
			select {
			case <-streaming:
			case <-time.After(20 * time.Second):
			case <-ctx.Done():
			}
			return pipeline.Run(ctx, req, deps)
		}
	})
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/events") {
			once.Do(func() { close(streaming) })
		}
		e.srv.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(func() { site.CloseClientConnections(); site.Close() })
	base := site.URL
	if u, _ := url.Parse(base); !strings.HasPrefix(u.Host, "127.0.0.1:") {
		t.Fatalf("test server not on 127.0.0.1: %s", base)
	}
	bctx := browser(t)
	ctx, cancel := context.WithTimeout(bctx, 6*time.Minute)
	defer cancel()

	if err := browserLogin(ctx, base, "alice"); err != nil {
		t.Fatalf("login: %v", err)
	}
	if err := chromedp.Do(ctx, observeLog()); err != nil {
		t.Fatalf("install the log observer: %v", err)
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(css("#src"), "10.1.10.5"),
		chromedp.SendKeys(css("#dst"), "10.3.10.10"),
		chromedp.Click(css(`#picker input[value="ssh"]`)),
		chromedp.Click(css(`#picker input[value="https"]`)),
		chromedp.Click(css("#run")),
		chromedp.WaitVisible(css("#log li")),
	); err != nil {
		t.Fatalf("submit: %v", err)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(loc)
	if err != nil || u.Path != "/job.html" || !validID(u.Query().Get("id")) {
		t.Fatalf("after submit the browser is at %q", loc)
	}
	id := u.Query().Get("id")

	// Wait for the end, then check how the log grew: the observer installed
	// before the page loaded saw every append.
	type view struct {
		PDF    bool   `json:"pdf"`
		Err    bool   `json:"err"`
		ErrMsg string `json:"msg"`
	}
	for {
		v, err := eval[view](ctx, `({pdf: !document.getElementById('pdf-view').hidden,
			err: !document.getElementById('error-view').hidden,
			msg: document.getElementById('error-text').textContent})`)
		if err != nil {
			t.Fatalf("watching progress: %v", err)
		}
		if v.Err {
			t.Fatalf("job failed in the browser: %s", v.ErrMsg)
		}
		if v.PDF {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	type batch struct {
		T     float64 `json:"t"`
		Added int     `json:"n"`
	}
	batches, err := eval[[]batch](ctx, `window.__logBatches || []`)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := eval[[]string](ctx, `[...document.querySelectorAll('#log li')].map(li => li.textContent)`)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, b := range batches {
		total += b.Added
	}
	spread := 0.0
	if len(batches) > 1 {
		spread = batches[len(batches)-1].T - batches[0].T
	}
	t.Logf("%d progress lines arrived in %d separate appends over %.0f ms; last %q", len(lines), len(batches), spread, lines[len(lines)-1])
	// Live events: one append per event, spread over the job's run time (a
	// replay after the fact would come in one burst).
	if total != len(lines) || len(batches) < 5 || spread < 150 {
		t.Errorf("progress did not arrive event by event while the job ran: %d lines, appends %v", len(lines), batches)
	}
	joined := strings.Join(lines, "\n")
	for _, want := range []string{"queued", "running", "hosts-up", "reach", "done"} {
		if !strings.Contains(joined, want) {
			t.Errorf("progress log lacks %q:\n%s", want, joined)
		}
	}
	verdict, _ := eval[string](ctx, `document.getElementById('verdict').textContent`)
	flowsText, _ := eval[string](ctx, `document.getElementById('flows').textContent`)
	if verdict != "reachable" || strings.Count(flowsText, "DELIVERED / REACHABLE") != 2 {
		t.Errorf("result view: %q / %q", verdict, flowsText)
	}

	// The PDF: the embedded frame points at it and it is a PDF.
	pdfSrc, err1 := eval[string](ctx, `document.getElementById('pdf').src`)
	ctype, err2 := eval[string](ctx, `fetch(document.getElementById('pdf').src).then(r => r.headers.get('content-type'))`)
	head, err3 := eval[string](ctx, `fetch(document.getElementById('pdf').src).then(r => r.arrayBuffer()).then(b => new TextDecoder().decode(b.slice(0, 5)))`)
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatalf("pdf: %v", err)
	}
	if !strings.HasSuffix(pdfSrc, "/api/jobs/"+id+"/report.pdf") || ctype != "application/pdf" || head != "%PDF-" {
		t.Errorf("pdf frame %q: content type %q, starts %q", pdfSrc, ctype, head)
	}
	// Open it in its own tab as a user would.
	tab, cancelTab := chromedp.NewContext(ctx)
	resp, err := chromedp.RunResponse(tab, chromedp.Navigate(pdfSrc))
	cancelTab()
	if err != nil || resp == nil || resp.Status != 200 || resp.MimeType != "application/pdf" {
		t.Errorf("opening the PDF in a tab: %+v, %v", resp, err)
	}

	// My jobs lists it; then log out.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/jobs.html"), chromedp.WaitVisible(css("#jobs tr"))); err != nil {
		t.Fatalf("jobs page: %v", err)
	}
	rows, _ := eval[int](ctx, `document.querySelectorAll('#jobs tr').length`)
	if err := chromedp.Do(ctx, chromedp.Click(css("#logout")), chromedp.WaitVisible(css("#username"))); err != nil {
		t.Fatalf("logout: %v", err)
	}
	meStatus, _ := eval[int](ctx, `fetch('/api/me').then(r => r.status)`)
	if rows != 1 || meStatus != 401 {
		t.Errorf("my jobs rows %d, /api/me after logout %d", rows, meStatus)
	}

	// Bob cannot see alice's job: not by its link, not on his list.
	if err := browserLogin(ctx, base, "bob"); err != nil {
		t.Fatalf("bob login: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/job.html?id="+id), chromedp.WaitVisible(css("#error-view"))); err != nil {
		t.Fatalf("bob opens alice's job link: %v", err)
	}
	errText, _ := eval[string](ctx, `document.getElementById('error-text').textContent`)
	bobPDF, _ := eval[int](ctx, `fetch('/api/jobs/`+id+`/report.pdf').then(r => r.status)`)
	bobJob, _ := eval[int](ctx, `fetch('/api/jobs/`+id+`').then(r => r.status)`)
	if !strings.Contains(errText, "No such job") || bobPDF != 404 || bobJob != 404 {
		t.Errorf("bob sees alice's job: error view %q, pdf %d, job %d", errText, bobPDF, bobJob)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/jobs.html"), chromedp.WaitVisible(css("#empty"))); err != nil {
		t.Errorf("bob's job list is not empty: %v", err)
	}

	// The admin page shows the finished job, the users and the settings.
	if err := chromedp.Do(ctx, chromedp.Click(css("#logout")), chromedp.WaitVisible(css("#username"))); err != nil {
		t.Fatalf("bob logout: %v", err)
	}
	if err := browserLogin(ctx, base, "root"); err != nil {
		t.Fatalf("admin login: %v", err)
	}
	actx, cancelA := context.WithTimeout(ctx, 30*time.Second)
	defer cancelA()
	if err := chromedp.Do(actx, chromedp.Navigate(base+"/admin.html"), chromedp.WaitVisible(css("#finished tr")), chromedp.WaitVisible(css("#users tr"))); err != nil {
		t.Fatalf("admin page: %v", err)
	}
	finished, _ := eval[string](ctx, `document.getElementById('finished').textContent`)
	usersText, _ := eval[string](ctx, `document.getElementById('users').textContent`)
	settings, _ := eval[string](ctx, `document.getElementById('settings').textContent`)
	if !strings.Contains(finished, id[:12]) || !strings.Contains(finished, "alice") || !strings.Contains(usersText, "bob") ||
		!strings.Contains(settings, "retention") {
		t.Errorf("admin page: finished %q users %q settings %q", finished, usersText, settings)
	}
	m, _ := e.srv.jobs.get(id)
	assertNoLabs(t, reg, []string{m.Lab})
}
