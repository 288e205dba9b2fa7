package serve

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tsim-dev/tsim/internal/pipeline"
)

// waitJS polls a JavaScript boolean expression until it is true.
func waitJS(ctx context.Context, t *testing.T, what, expr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := eval[bool](ctx, expr)
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			detail, _ := eval[string](ctx, `document.body.innerText.slice(0, 3000)`)
			t.Fatalf("%s: not after %s (%v); page:\n%s", what, timeout, err, detail)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// jobDone waits on a job page until the result (or the error view) shows.
func jobDone(ctx context.Context, t *testing.T, what string) {
	t.Helper()
	waitJS(ctx, t, what, `!document.getElementById('result').hidden || !document.getElementById('error-view').hidden`, 4*time.Minute)
	if failed, _ := eval[bool](ctx, `!document.getElementById('error-view').hidden`); failed {
		msg, _ := eval[string](ctx, `document.getElementById('error-text').textContent`)
		t.Fatalf("%s: the job failed: %s", what, msg)
	}
}

type flowRow struct {
	Port string `json:"port"`
	Text string `json:"text"`
}

func flowRows(ctx context.Context, t *testing.T) map[string]string {
	t.Helper()
	rows, err := eval[[]flowRow](ctx, `[...document.querySelectorAll('#flows tr')].map(tr => ({port: tr.dataset.port, text: tr.textContent}))`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rows {
		out[r.Port] = r.Text
	}
	return out
}

// TestBrowserAnswers drives the pages in Chromium against the real
// pipeline: a job waits in the queue and its page shows the position
// going down live; the finished job shows the blocked service with the
// router, the rule and its FILE:LINE; My jobs shows the verdict; a trace
// uploaded in each format is tested as given and marked as the user's; a
// flows file gives PASS/FAIL rows and JUnit XML.
func TestBrowserAnswers(t *testing.T) {
	requireRoot(t)
	gate := make(chan struct{})
	var calls atomic.Int32
	e, reg := realEnv(t, 1, func(c *Config) {
		c.Runner = func(ctx context.Context, req pipeline.Request, deps pipeline.Deps) (*pipeline.Result, error) {
			if calls.Add(1) == 1 { // the first job holds the only worker
				select {
				case <-gate:
				case <-ctx.Done():
				}
			}
			return pipeline.Run(ctx, req, deps)
		}
	})
	released := false
	defer func() {
		if !released {
			close(gate)
		}
	}()
	base := e.ts.URL
	bctx := browser(t)
	ctx, cancel := context.WithTimeout(bctx, 10*time.Minute)
	defer cancel()

	// bob fills the queue: one job running (held), one waiting.
	bob := e.client()
	bob.login("bob")
	first := bob.submit("10.1.10.5", "10.3.10.10", "ssh")
	bob.wait(first, 30*time.Second, StateRunning)
	second := bob.submit("10.1.10.5", "10.3.10.10", "https")

	if err := browserLogin(ctx, base, "alice"); err != nil {
		t.Fatalf("login: %v", err)
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(css("#src"), "10.1.10.5"),
		chromedp.SendKeys(css("#dst"), "10.1.50.10"),
		chromedp.Click(css(`#picker input[value="https"]`)),
		chromedp.Click(css(`#picker input[value="mysql"]`)),
		chromedp.Click(css("#run")),
		chromedp.WaitVisible(css("#queue-pos")),
	); err != nil {
		t.Fatalf("submit: %v", err)
	}
	pos, _ := eval[string](ctx, `document.getElementById('queue-pos').textContent`)
	if !strings.Contains(pos, "queue position 2") {
		t.Fatalf("queue position shown: %q", pos)
	}
	// Meanwhile the admin page (another browser): the running job with a
	// progress bar, the queue oldest first.
	adminCtx, cancelAdmin := context.WithTimeout(browser(t), 2*time.Minute)
	if err := browserLogin(adminCtx, base, "root"); err != nil {
		t.Fatalf("admin login: %v", err)
	}
	if err := chromedp.Do(adminCtx, chromedp.Navigate(base+"/admin.html"), chromedp.WaitVisible(css("#running .minibar")),
		chromedp.WaitVisible(css("#queued tr"))); err != nil {
		t.Fatalf("admin page: %v", err)
	}
	queue, _ := eval[[]string](adminCtx, `[...document.querySelectorAll('#queued tr')].map(tr => tr.children[0].textContent + ' ' + tr.children[2].textContent)`)
	bars, _ := eval[int](adminCtx, `document.querySelectorAll('#running tr .minibar').length`)
	if fmt.Sprint(queue) != "[1 bob 2 alice]" || bars != 1 {
		t.Errorf("admin queue %v, %d bars", queue, bars)
	}
	cancelAdmin()

	// Live: the job ahead leaves the queue, the same page (no reload)
	// shows the new position.
	if _, err := eval[bool](ctx, `window.__samePage = true`); err != nil {
		t.Fatal(err)
	}
	if r := bob.do("DELETE", "/api/jobs/"+second, nil); r.status != 202 {
		t.Fatalf("cancel bob's queued job: %d %s", r.status, r.body)
	}
	waitJS(ctx, t, "queue position 1", `(document.getElementById('queue-pos') || {}).textContent === ' (queue position 1)' && window.__samePage === true`, 30*time.Second)
	close(gate)
	released = true

	// The blocked service: router, rule, FILE:LINE on the page.
	jobDone(ctx, t, "alice's job")
	rows := flowRows(ctx, t)
	mysql, https := rows["3306/tcp"], rows["443/tcp"]
	for _, want := range []string{"UNREACHABLE", "hq-gw", `-A HQ_EGRESS -d 10.1.50.0/24 -o eth0 -p tcp -m tcp --dport 3306 -m comment --comment "no direct DMZ database access" -j DROP`,
		"builtin:example/hq-gw_facts.txt:160", "filter HQ_EGRESS #2", "10.1.10.5 → hq-core (eth1→eth0) → hq-gw (eth1→eth0)"} {
		if !strings.Contains(mysql, want) {
			t.Errorf("mysql row lacks %q: %s", want, mysql)
		}
	}
	if !strings.Contains(https, "REACHABLE") || strings.Contains(https, "UNREACHABLE") {
		t.Errorf("https row: %s", https)
	}
	summary, _ := eval[string](ctx, `document.getElementById('summary').textContent`)
	if summary != "1 of 2 reachable" {
		t.Errorf("summary %q", summary)
	}
	// My jobs: the verdict column, not a green "done" alone.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/jobs.html"), chromedp.WaitVisible(css("#jobs tr"))); err != nil {
		t.Fatalf("my jobs: %v", err)
	}
	verdicts, _ := eval[string](ctx, `[...document.querySelectorAll('#jobs td.verdict')].map(td => td.textContent + '/' + (td.firstChild ? td.firstChild.className : '')).join('|')`)
	if verdicts != "1 of 2 reachable/verdict-bad" {
		t.Errorf("my jobs verdicts %q", verdicts)
	}

	// A trace uploaded in each format: the job tests it (wg0 for ssh,
	// where the simulation would take eth2) and says it is the user's.
	for _, tc := range []struct{ file, format string }{
		{"predecessor-trace.json", pathPredecessor},
		{"trace-document.json", pathDocument},
	} {
		abs, _ := filepath.Abs(filepath.Join("testdata", tc.file))
		if err := chromedp.Do(ctx,
			chromedp.Navigate(base+"/"),
			chromedp.WaitVisible(css(`#picker input[value="ssh"]`)),
			chromedp.Click(css("#trace-box summary")),
			chromedp.SetUploadFiles(css("#trace-file"), []string{abs}),
			chromedp.WaitVisible(css("#trace-loaded")),
			chromedp.Click(css(`#picker input[value="ssh"]`)),
			chromedp.Click(css("#run")),
			chromedp.WaitVisible(css("#path-from-row")),
		); err != nil {
			t.Fatalf("%s upload: %v", tc.format, err)
		}
		jobDone(ctx, t, tc.format)
		from, _ := eval[string](ctx, `document.getElementById('path-from').textContent`)
		route, _ := eval[string](ctx, `document.getElementById('route').textContent`)
		rows := flowRows(ctx, t)
		if !strings.Contains(from, "given by the user ("+tc.format+")") || route != "10.1.10.5 → 10.3.10.10" ||
			!strings.Contains(rows["22/tcp"], "hq-gw (eth1→wg0) → dc-gw (wg0→eth0)") {
			t.Errorf("%s: path-from %q, route %q, row %q", tc.format, from, route, rows["22/tcp"])
		}
	}

	// A flows file: rows per line, PENDING until judged, then PASS/FAIL;
	// JUnit XML and the PDF to download.
	abs, _ := filepath.Abs(filepath.Join("testdata", "flows.csv"))
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(css(`#picker input[value="ssh"]`)),
		chromedp.Click(css("#batch-box summary")),
		chromedp.SetUploadFiles(css("#flows-file"), []string{abs}),
		chromedp.WaitVisible(css("#flows-loaded")),
		chromedp.Click(css("#run")),
		chromedp.WaitVisible(css("#lines tr")),
	); err != nil {
		t.Fatalf("flows upload: %v", err)
	}
	jobDone(ctx, t, "the flows file")
	type line struct {
		Line   string `json:"line"`
		Result string `json:"result"`
		Text   string `json:"text"`
	}
	lines, err := eval[[]line](ctx, `[...document.querySelectorAll('#lines tr')].map(tr => ({line: tr.dataset.line, result: tr.querySelector('.result').textContent, text: tr.textContent}))`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range lines {
		got = append(got, l.Line+":"+l.Result)
	}
	if strings.Join(got, " ") != "3:PASS 4:FAIL 5:PASS 6:PASS" {
		t.Errorf("flows-file rows %v", got)
	}
	if len(lines) == 4 && !strings.Contains(lines[1].Text, "builtin:example/br-gw_facts.txt:128") {
		t.Errorf("the failing line does not name the rule: %q", lines[1].Text)
	}
	waitJS(ctx, t, "JUnit link", `!document.getElementById('junit-link').hidden && !document.getElementById('pdf-view').hidden`, 30*time.Second)
	junit, err := eval[string](ctx, `fetch(document.getElementById('junit').href).then(r => r.status + ' ' + r.headers.get('content-type')).then(s => s)`)
	body, err2 := eval[string](ctx, `fetch(document.getElementById('junit').href).then(r => r.text())`)
	if err != nil || err2 != nil || !strings.HasPrefix(junit, "200 application/xml") || !strings.Contains(body, `failures="1"`) {
		t.Errorf("JUnit download: %q %v %v\n%s", junit, err, err2, body)
	}
	var labs []string
	for _, m := range e.srv.jobs.list("") {
		if m.State == StateDone {
			labs = append(labs, m.Lab)
		}
	}
	if len(labs) != 5 {
		t.Errorf("%d jobs done, want 5 (bob's first, alice's, two uploads, the flows file): %s", len(labs), fmt.Sprint(labs))
	}
	assertNoLabs(t, reg, labs)
}
