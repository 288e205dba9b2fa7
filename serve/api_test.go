package serve

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLoginSetsSafeCookieAndRenewsSession(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	if r := c.do("GET", "/api/me", nil); r.status != 401 {
		t.Fatalf("me without session: %d", r.status)
	}
	r := c.do("POST", "/api/login", map[string]string{"username": "alice", "password": testPassword})
	if r.status != 200 {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	setCookie := r.header.Get("Set-Cookie")
	for _, want := range []string{cookieName + "=", "HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(setCookie, want) {
			t.Errorf("Set-Cookie %q lacks %q", setCookie, want)
		}
	}
	if strings.Contains(setCookie, "Secure") {
		t.Errorf("Secure cookie on plain HTTP: %q", setCookie)
	}
	first := cookieValue(setCookie)
	if len(first) != 43 {
		t.Errorf("session token %q: want 43 base64url characters (32 random bytes)", first)
	}
	me := c.do("GET", "/api/me", nil).json(t)
	if me["username"] != "alice" || me["role"] != "user" || me["method"] != "local" {
		t.Errorf("me = %v", me)
	}
	// Logging in again gives a new token and ends the old one.
	r = c.do("POST", "/api/login", map[string]string{"username": "alice", "password": testPassword})
	second := cookieValue(r.header.Get("Set-Cookie"))
	if second == first || second == "" {
		t.Fatalf("session not renewed on login: %q then %q", first, second)
	}
	old := e.client()
	old.hc.Jar.SetCookies(mustURL(t, e.ts.URL), []*http.Cookie{{Name: cookieName, Value: first}})
	if r := old.do("GET", "/api/me", nil); r.status != 401 {
		t.Errorf("old token still valid after re-login: %d", r.status)
	}
	// Logout ends the session server-side.
	if r := c.do("POST", "/api/logout", nil); r.status != 200 {
		t.Fatalf("logout: %d", r.status)
	}
	replay := e.client()
	replay.hc.Jar.SetCookies(mustURL(t, e.ts.URL), []*http.Cookie{{Name: cookieName, Value: second}})
	if r := replay.do("GET", "/api/me", nil); r.status != 401 {
		t.Errorf("token valid after logout: %d", r.status)
	}
	if !strings.Contains(e.audit.String(), `"action":"login_success"`) || !strings.Contains(e.audit.String(), `"action":"logout"`) {
		t.Errorf("audit log lacks login/logout:\n%s", e.audit.String())
	}
	if strings.Contains(e.audit.String(), testPassword) {
		t.Error("audit log contains the password")
	}
}

func TestSecureCookieUnderTLS(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.TLS = true })
	r := e.client().do("POST", "/api/login", map[string]string{"username": "alice", "password": testPassword})
	if !strings.Contains(r.header.Get("Set-Cookie"), "Secure") {
		t.Errorf("Set-Cookie under TLS lacks Secure: %q", r.header.Get("Set-Cookie"))
	}
	if r.header.Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS under TLS")
	}
}

func cookieValue(setCookie string) string {
	v, _, _ := strings.Cut(strings.TrimPrefix(setCookie, cookieName+"="), ";")
	return v
}

func TestBadLoginAndLockout(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	cases := []struct {
		name   string
		body   any
		status int
		msg    string
	}{
		{"wrong password", map[string]string{"username": "alice", "password": "wrong password"}, 401, "invalid user name or password"},
		{"unknown user", map[string]string{"username": "mallory", "password": testPassword}, 401, "invalid user name or password"},
		{"empty", map[string]string{"username": "", "password": ""}, 400, "required"},
		{"not JSON", "username=alice", 400, "bad JSON"},
	}
	for _, tc := range cases {
		r := c.do("POST", "/api/login", tc.body)
		if r.status != tc.status || !strings.Contains(r.errorText(), tc.msg) {
			t.Errorf("%s: %d %q, want %d %q", tc.name, r.status, r.errorText(), tc.status, tc.msg)
		}
		if r.header.Get("Set-Cookie") != "" {
			t.Errorf("%s: cookie set on failure", tc.name)
		}
	}
	// alice had 1 failure; 4 more lock her out, even with the right password.
	for i := 0; i < 4; i++ {
		c.do("POST", "/api/login", map[string]string{"username": "alice", "password": "nope nope"})
	}
	r := c.do("POST", "/api/login", map[string]string{"username": "alice", "password": testPassword})
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("locked-out login: %d %s (Retry-After %q)", r.status, r.body, r.header.Get("Retry-After"))
	}
	// Others from the same address are not locked by alice's failures.
	e.client().login("bob")
	// The lockout ends.
	e.clock.Add(16 * time.Minute)
	e.client().login("alice")
	if !strings.Contains(e.audit.String(), `"action":"login_locked"`) || !strings.Contains(e.audit.String(), `"action":"login_failed"`) {
		t.Errorf("audit log lacks failures/lockout:\n%s", e.audit.String())
	}
}

func TestLoginLockoutPerAddress(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LoginAddrFails = 6 })
	c := e.client()
	// Spraying one password over many names trips the address limit.
	for i := 0; i < 6; i++ {
		r := c.do("POST", "/api/login", map[string]string{"username": fmt.Sprintf("user%d", i), "password": "Winter2026!"})
		if r.status != 401 {
			t.Fatalf("attempt %d: %d", i, r.status)
		}
	}
	r := c.do("POST", "/api/login", map[string]string{"username": "bob", "password": testPassword})
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("address not locked out: %d %s", r.status, r.body)
	}
}

func TestExpiredSession(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.IdleTimeout = 10 * time.Minute; c.SessionMax = time.Hour })
	c := e.client()
	c.login("alice")
	e.clock.Add(9 * time.Minute)
	if r := c.do("GET", "/api/jobs", nil); r.status != 200 {
		t.Fatalf("active session refused: %d", r.status)
	}
	e.clock.Add(11 * time.Minute)
	r := c.do("GET", "/api/jobs", nil)
	if r.status != 401 || !strings.Contains(r.errorText(), "expired") {
		t.Fatalf("idle session: %d %q", r.status, r.errorText())
	}
	if r := c.do("POST", "/api/jobs", map[string]string{"src": "10.1.10.5", "dst": "10.3.20.10", "services": "ssh"}); r.status != 401 {
		t.Errorf("submit with expired session: %d", r.status)
	}
	// Absolute lifetime: busy all the time, still ends after SessionMax.
	c.login("alice")
	for i := 0; i < 7; i++ {
		e.clock.Add(9 * time.Minute)
		c.do("GET", "/api/me", nil)
	}
	if r := c.do("GET", "/api/me", nil); r.status != 401 {
		t.Errorf("session older than SessionMax still valid: %d", r.status)
	}
	if len(e.jobDirs()) != 0 {
		t.Errorf("jobs created: %v", e.jobDirs())
	}
}

func TestCrossOriginRefused(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	c.login("alice")
	body := map[string]string{"src": "10.1.10.5", "dst": "10.3.20.10", "services": "ssh"}
	for _, hdr := range [][]string{
		{"Sec-Fetch-Site", "cross-site"},
		{"Origin", "http://evil.example"},
		{"Sec-Fetch-Site", "same-site", "Origin", "http://sub.evil.example"},
	} {
		r := c.do("POST", "/api/jobs", body, hdr...)
		if r.status != http.StatusForbidden || !strings.Contains(r.errorText(), "cross-origin") {
			t.Errorf("POST /api/jobs with %v: %d %s", hdr, r.status, r.body)
		}
	}
	r := e.client().do("POST", "/api/login", map[string]string{"username": "bob", "password": testPassword}, "Sec-Fetch-Site", "cross-site")
	if r.status != http.StatusForbidden || r.header.Get("Set-Cookie") != "" {
		t.Errorf("cross-site login: %d", r.status)
	}
	if r := c.do("POST", "/api/logout", nil, "Origin", "http://evil.example"); r.status != http.StatusForbidden {
		t.Errorf("cross-site logout: %d", r.status)
	}
	if len(e.jobDirs()) != 0 || len(e.srv.jobs.list("")) != 0 {
		t.Errorf("cross-origin request created jobs: %v", e.jobDirs())
	}
	// The same request from our own origin works.
	if r := c.do("POST", "/api/jobs", body, "Sec-Fetch-Site", "same-origin", "Origin", e.ts.URL); r.status != http.StatusAccepted {
		t.Errorf("same-origin submit: %d %s", r.status, r.body)
	}
}

func TestOversizedBody(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	c.login("alice")
	big := `{"src":"10.1.10.5","dst":"10.3.20.10","services":"` + strings.Repeat("22,", 300000) + `22"}`
	r := c.do("POST", "/api/jobs", big)
	if r.status != http.StatusRequestEntityTooLarge || !strings.Contains(r.errorText(), "larger than") {
		t.Errorf("oversized body: %d %s", r.status, r.body)
	}
	// Without Content-Length (chunked) the limit still holds.
	req, _ := http.NewRequest("POST", e.ts.URL+"/api/login", &endless{})
	req.Header.Set("Content-Type", "application/json")
	res, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked endless body: %d", res.StatusCode)
	}
	if len(e.jobDirs()) != 0 {
		t.Errorf("jobs created: %v", e.jobDirs())
	}
}

// endless is a JSON string that never ends.
type endless struct{ n int }

func (e *endless) Read(p []byte) (int, error) {
	if e.n == 0 {
		e.n++
		return copy(p, `{"username":"`), nil
	}
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

func TestInvalidJobID(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	c.login("alice")
	for _, id := range []string{"xyz", "ABCDEF0123456789ABCDEF0123456789", "0123456789abcdef0123456789abcde", "..%2f..%2fetc%2fpasswd", "%2e%2e"} {
		for _, p := range []string{"/api/jobs/" + id, "/api/jobs/" + id + "/events", "/api/jobs/" + id + "/report.pdf"} {
			r := c.do("GET", p, nil)
			if r.status != http.StatusBadRequest || !strings.Contains(r.errorText(), "invalid job id") {
				t.Errorf("GET %s: %d %s", p, r.status, r.body)
			}
		}
		if r := c.do("DELETE", "/api/jobs/"+id, nil); r.status != http.StatusBadRequest {
			t.Errorf("DELETE %s: %d", id, r.status)
		}
	}
	if r := c.do("GET", "/api/jobs/0123456789abcdef0123456789abcdef", nil); r.status != 404 {
		t.Errorf("unknown well-formed id: %d", r.status)
	}
}

func TestSubmitValidation(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxServices = 16 })
	c := e.client()
	c.login("alice")
	tenK := make([]string, 10000)
	for i := range tenK {
		tenK[i] = strconv.Itoa(i + 1)
	}
	cases := []struct {
		name   string
		body   any
		status int
		msg    string
	}{
		{"unknown source IP", map[string]string{"src": "10.99.10.5", "dst": "10.3.20.10", "services": "ssh"}, 400, "not in the modelled network"},
		{"10,000-port range", map[string]string{"src": "10.1.10.5", "dst": "10.3.20.10", "services": "1-10000"}, 400, "more than"},
		{"10,000 ports listed", map[string]string{"src": "10.1.10.5", "dst": "10.3.20.10", "services": strings.Join(tenK, ",")}, 400, "longer than 4096"},
		{"1,025 ports listed", map[string]string{"src": "10.1.10.5", "dst": "10.3.20.10", "services": strings.Join(tenK[:1025], ",")}, 400, "more than"},
		{"over the server's per-job limit", map[string]string{"src": "10.1.10.5", "dst": "10.3.20.10", "services": "8000-8020"}, 400, "at most 16 per job"},
		{"bad source", map[string]string{"src": "10.1.10", "dst": "10.3.20.10", "services": "ssh"}, 400, "src: \"10.1.10\" is not an IPv4 address"},
		{"IPv6 destination", map[string]string{"src": "10.1.10.5", "dst": "2001:db8::1", "services": "ssh"}, 400, "dst"},
		{"missing destination", map[string]string{"src": "10.1.10.5", "services": "ssh"}, 400, "dst: required"},
		{"bad spec", map[string]string{"src": "10.1.10.5", "dst": "10.3.20.10", "services": "ssh,; rm -rf /"}, 400, "port spec"},
		{"unknown field", map[string]any{"src": "10.1.10.5", "dst": "10.3.20.10", "services": "ssh", "cmd": "id"}, 400, "unknown field"},
		{"bad source port", map[string]any{"src": "10.1.10.5", "dst": "10.3.20.10", "services": "ssh", "sport": 70000}, 400, "source port"},
		{"two objects", `{"src":"10.1.10.5","dst":"10.3.20.10"} {}`, 400, "more than one value"},
	}
	for _, tc := range cases {
		r := c.do("POST", "/api/jobs", tc.body)
		if r.status != tc.status || !strings.Contains(r.errorText(), tc.msg) {
			t.Errorf("%s: %d %q, want %d containing %q", tc.name, r.status, r.errorText(), tc.status, tc.msg)
		}
	}
	r := c.do("POST", "/api/jobs", "src=1", "Content-Type", "application/x-www-form-urlencoded")
	if r.status != http.StatusUnsupportedMediaType {
		t.Errorf("form body: %d", r.status)
	}
	if len(e.jobDirs()) != 0 || len(e.srv.jobs.list("")) != 0 {
		t.Errorf("rejected submissions created jobs: %v", e.jobDirs())
	}
	if !strings.Contains(e.audit.String(), `"action":"job_rejected"`) {
		t.Error("rejections not audited")
	}
}

func TestJobLifecycleAndIsolation(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob, admin := e.client(), e.client(), e.client()
	alice.login("alice")
	bob.login("bob")
	admin.login("root")
	id := alice.submit("10.1.10.5", "10.3.20.10", "ssh,https")
	if !validID(id) {
		t.Fatalf("job id %q", id)
	}
	m := alice.wait(id, 10*time.Second, StateDone)
	if m["flows"] != 2.0 || m["progress"] != 100.0 || m["report"] != true || m["owner"] != "alice" {
		t.Errorf("done job: %v", m)
	}
	res := m["result"].(map[string]any)["flows"].([]any)
	if len(res) != 2 || res[0].(map[string]any)["disposition"] != "DENIED" {
		t.Errorf("result flows: %v", res)
	}
	for _, f := range []string{metaFile, documentFile, reportFile, eventsFile} {
		st, err := os.Stat(filepath.Join(e.data, "jobs", id, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, err, st)
		}
	}
	pdf := alice.do("GET", "/api/jobs/"+id+"/report.pdf", nil)
	if pdf.status != 200 || pdf.header.Get("Content-Type") != "application/pdf" || !strings.HasPrefix(string(pdf.body), "%PDF-") ||
		!strings.HasPrefix(pdf.header.Get("Content-Disposition"), "inline") {
		t.Errorf("pdf: %d %v %q", pdf.status, pdf.header, pdf.body[:min(20, len(pdf.body))])
	}
	if d := alice.do("GET", "/api/jobs/"+id+"/report.pdf?download=1", nil); !strings.HasPrefix(d.header.Get("Content-Disposition"), "attachment") {
		t.Errorf("download disposition %q", d.header.Get("Content-Disposition"))
	}
	var docs map[string]any
	if err := json.Unmarshal(alice.do("GET", "/api/jobs/"+id+"/document.json", nil).body, &docs); err != nil || docs["schema"] != "tsim/v1" {
		t.Errorf("document: %v %v", err, docs["schema"])
	}
	// Bob sees nothing of it, exactly like a missing job.
	for _, p := range []string{"", "/events", "/report.pdf", "/document.json"} {
		if r := bob.do("GET", "/api/jobs/"+id+p, nil); r.status != 404 || r.errorText() != "no such job" {
			t.Errorf("bob GET %s: %d %s", p, r.status, r.body)
		}
	}
	if r := bob.do("DELETE", "/api/jobs/"+id, nil); r.status != 404 {
		t.Errorf("bob DELETE: %d", r.status)
	}
	if l := bob.do("GET", "/api/jobs", nil).json(t)["jobs"].([]any); len(l) != 0 {
		t.Errorf("bob's list: %v", l)
	}
	if l := bob.do("GET", "/api/jobs?all=1", nil).json(t)["jobs"].([]any); len(l) != 0 {
		t.Errorf("bob's all=1 list: %v", l)
	}
	if r := bob.do("GET", "/api/admin/overview", nil); r.status != 403 {
		t.Errorf("bob admin overview: %d", r.status)
	}
	// The admin sees it.
	if r := admin.do("GET", "/api/jobs/"+id, nil); r.status != 200 {
		t.Errorf("admin GET: %d", r.status)
	}
	ov := admin.do("GET", "/api/admin/overview", nil).json(t)
	if len(ov["finished"].([]any)) != 1 {
		t.Errorf("admin overview: %v", ov)
	}
	if l := alice.do("GET", "/api/jobs", nil).json(t)["jobs"].([]any); len(l) != 1 {
		t.Errorf("alice's list: %v", l)
	}
	if r := alice.do("DELETE", "/api/jobs/"+id, nil); r.status != http.StatusConflict {
		t.Errorf("cancel of a done job: %d", r.status)
	}
}

func TestEventsStreamAndReplay(t *testing.T) {
	fr := &fakeRunner{gate: make(chan struct{})}
	e := newEnv(t, func(c *Config) { c.Runner = fr.run })
	c := e.client()
	c.login("alice")
	id := c.submit("10.1.10.5", "10.3.20.10", "ssh,https")
	req, _ := http.NewRequest("GET", e.ts.URL+"/api/jobs/"+id+"/events", nil)
	res, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	seen := 0
	evs := readSSE(t, res.Body, func(ev sseEvent) {
		seen++
		if ev.event == "progress" && strings.Contains(ev.data, `"stage":"hosts-up"`) {
			close(fr.gate) // events arrive while the job runs
		}
	})
	last := evs[len(evs)-1]
	if last.event != "end" || !strings.Contains(last.data, `"state":"done"`) {
		t.Fatalf("stream ended with %+v", last)
	}
	var ids []int
	for _, ev := range evs[:len(evs)-1] {
		n, err := strconv.Atoi(ev.id)
		if err != nil || ev.event != "progress" {
			t.Fatalf("event %+v", ev)
		}
		ids = append(ids, n)
	}
	for i, n := range ids {
		if n != i+1 {
			t.Fatalf("event ids %v: want 1..N", ids)
		}
	}
	if len(ids) < 6 { // queued, running, trace, hosts-up, reach, report, done
		t.Errorf("only %d events: %v", len(ids), evs)
	}
	// A reconnect with Last-Event-ID gets only what it missed.
	req, _ = http.NewRequest("GET", e.ts.URL+"/api/jobs/"+id+"/events", nil)
	req.Header.Set("Last-Event-ID", "3")
	res2, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res2.Body.Close()
	again := readSSE(t, res2.Body, nil)
	if len(again) != len(ids)-3+1 || again[0].id != "4" {
		t.Errorf("replay from 3: got %d events starting %q, want %d starting 4", len(again), again[0].id, len(ids)-2)
	}
}

func TestCancelRunningAndQueued(t *testing.T) {
	fr := &fakeRunner{gate: make(chan struct{}), started: make(chan string, 4)}
	e := newEnv(t, func(c *Config) { c.Runner = fr.run; c.Workers = 1 })
	alice, admin := e.client(), e.client()
	alice.login("alice")
	admin.login("root")
	first := alice.submit("10.1.10.5", "10.3.20.10", "ssh")
	<-fr.started
	second := alice.submit("10.1.10.5", "10.3.20.10", "https")
	if m := alice.wait(second, time.Second, StateQueued); m["queue_position"] != 1.0 {
		t.Errorf("queued job: %v", m)
	}
	if r := alice.do("DELETE", "/api/jobs/"+second, nil); r.status != http.StatusAccepted {
		t.Fatalf("cancel queued: %d %s", r.status, r.body)
	}
	alice.wait(second, time.Second, StateCancelled)
	// An admin cancels alice's running job; the runner sees its context end.
	if r := admin.do("DELETE", "/api/jobs/"+first, nil); r.status != http.StatusAccepted {
		t.Fatalf("cancel running: %d %s", r.status, r.body)
	}
	m := alice.wait(first, 5*time.Second, StateCancelled)
	if m["error"] != "cancelled by root" || m["cancelled_by"] != "root" {
		t.Errorf("cancelled job: %v", m)
	}
	fr.mu.Lock()
	calls := fr.calls
	fr.mu.Unlock()
	if calls != 1 {
		t.Errorf("runner called %d times; the cancelled queued job must never run", calls)
	}
	if !strings.Contains(e.audit.String(), `"action":"job_cancelled"`) {
		t.Error("cancel not audited")
	}
}

func TestJobTimeLimitAndPerUserLimit(t *testing.T) {
	fr := &fakeRunner{gate: make(chan struct{})}
	e := newEnv(t, func(c *Config) { c.Runner = fr.run; c.JobTimeout = 300 * time.Millisecond; c.MaxPerUser = 1 })
	c := e.client()
	c.login("alice")
	id := c.submit("10.1.10.5", "10.3.20.10", "ssh")
	r := c.do("POST", "/api/jobs", map[string]string{"src": "10.1.10.5", "dst": "10.3.20.10", "services": "ssh"})
	if r.status != http.StatusTooManyRequests || !strings.Contains(r.errorText(), "unfinished jobs") {
		t.Errorf("second job over the per-user limit: %d %s", r.status, r.body)
	}
	m := c.wait(id, 5*time.Second, StateFailed)
	if !strings.Contains(m["error"].(string), "time limit") {
		t.Errorf("timed-out job: %v", m)
	}
	if len(e.jobDirs()) != 1 {
		t.Errorf("job dirs %v", e.jobDirs())
	}
}

func TestRetentionAndRestart(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, func(c *Config) { c.Retention = time.Hour; c.DataDir = filepath.Join(dir, "data") })
	c := e.client()
	c.login("alice")
	old := c.submit("10.1.10.5", "10.3.20.10", "ssh")
	c.wait(old, 5*time.Second, StateDone)
	e.clock.Add(2 * time.Hour)
	c.login("alice")
	fresh := c.submit("10.1.10.5", "10.3.20.10", "https")
	c.wait(fresh, 5*time.Second, StateDone)
	e.srv.jobs.sweep()
	if r := c.do("GET", "/api/jobs/"+old, nil); r.status != 404 {
		t.Errorf("expired job: %d", r.status)
	}
	if _, err := os.Stat(filepath.Join(e.data, "jobs", old)); !os.IsNotExist(err) {
		t.Errorf("expired job dir still there: %v", err)
	}
	if r := c.do("GET", "/api/jobs/"+fresh, nil); r.status != 200 {
		t.Errorf("fresh job: %d", r.status)
	}
	// A job left "running" by a crash is failed on the next start.
	crashed := "0123456789abcdef0123456789abcdef"
	os.Mkdir(filepath.Join(e.data, "jobs", crashed), 0o700)
	os.WriteFile(filepath.Join(e.data, "jobs", crashed, metaFile),
		[]byte(`{"id":"`+crashed+`","state":"running","owner":"alice","src":"10.1.10.5","dst":"10.3.20.10","created":"2026-01-02T03:04:05Z"}`), 0o600)
	os.Mkdir(filepath.Join(e.data, "jobs", "not-a-job"), 0o700)
	s2, err := New(Config{DataDir: e.data, Users: e.srv.cfg.Users, Facts: e.srv.cfg.Facts, Runner: (&fakeRunner{}).run})
	if err != nil {
		t.Fatal(err)
	}
	m, ok := s2.jobs.get(crashed)
	if !ok || m.State != StateFailed || !strings.Contains(m.Error, "server stopped") {
		t.Errorf("crashed job after restart: %v %+v", ok, m)
	}
	if m, ok := s2.jobs.get(fresh); !ok || m.State != StateDone || !m.Report {
		t.Errorf("fresh job after restart: %v %+v", ok, m)
	}
}

func TestStaticPagesAndHeaders(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	for _, p := range []string{"/", "/login.html", "/job.html", "/jobs.html", "/admin.html", "/app.js", "/app.css"} {
		r := c.do("GET", p, nil)
		if r.status != 200 {
			t.Errorf("GET %s: %d", p, r.status)
		}
		if r.header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(r.header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("GET %s: security headers %v", p, r.header)
		}
		if strings.HasSuffix(p, ".html") && strings.Contains(string(r.body), "<script>") {
			t.Errorf("%s has an inline script (CSP forbids it)", p)
		}
		if p != "/login.html" && p != "/" && strings.HasSuffix(p, ".html") && !strings.Contains(string(r.body), `id="logout"`) {
			t.Errorf("%s lacks the header with the logout button", p)
		}
	}
	if r := c.do("GET", "/api/nothing", nil); r.status != 404 || r.errorText() == "" {
		t.Errorf("unknown API path: %d %s", r.status, r.body)
	}
	if r := c.do("PUT", "/api/jobs", "{}"); r.status != http.StatusMethodNotAllowed {
		t.Errorf("PUT /api/jobs: %d", r.status)
	}
}

func TestAdminUsers(t *testing.T) {
	e := newEnv(t, nil)
	admin, alice := e.client(), e.client()
	admin.login("root")
	alice.login("alice")
	if r := alice.do("POST", "/api/admin/users", map[string]string{"name": "eve", "password": "12345678"}); r.status != 403 {
		t.Errorf("user adds user: %d", r.status)
	}
	if r := admin.do("POST", "/api/admin/users", map[string]string{"name": "carol", "role": "user", "password": "short"}); r.status != 400 {
		t.Errorf("short password: %d", r.status)
	}
	if r := admin.do("POST", "/api/admin/users", map[string]string{"name": "carol", "role": "user", "password": testPassword}); r.status != 201 {
		t.Fatalf("add carol: %d %s", r.status, r.body)
	}
	e.client().login("carol")
	list := admin.do("GET", "/api/admin/users", nil)
	if !strings.Contains(string(list.body), `"carol"`) || strings.Contains(string(list.body), "argon2") {
		t.Errorf("users list: %s", list.body)
	}
	if r := admin.do("DELETE", "/api/admin/users/alice", nil); r.status != 200 {
		t.Fatalf("delete alice: %d", r.status)
	}
	if r := alice.do("GET", "/api/me", nil); r.status != 401 {
		t.Errorf("deleted user's session survives: %d", r.status)
	}
	if r := admin.do("DELETE", "/api/admin/users/root", nil); r.status != 409 {
		t.Errorf("self-delete: %d", r.status)
	}
}

func TestClientAddrBehindProxy(t *testing.T) {
	e := newEnv(t, nil)
	r, _ := http.NewRequest("GET", "/", nil)
	r.RemoteAddr = "127.0.0.1:5555"
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	if got := e.srv.clientAddr(r); got != "127.0.0.1" {
		t.Errorf("untrusted peer's X-Forwarded-For believed: %s", got)
	}
	e.srv.cfg.TrustedProxies = mustPrefixes(t, "127.0.0.1/32")
	r.Header.Set("X-Forwarded-For", "198.51.100.1, 203.0.113.9, 127.0.0.1")
	if got := e.srv.clientAddr(r); got != "203.0.113.9" {
		t.Errorf("behind a trusted proxy: %s, want the right-most untrusted 203.0.113.9", got)
	}
}
