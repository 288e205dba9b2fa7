package serve

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzSubmit feeds arbitrary bodies to POST /api/jobs: every answer is
// 202 or a 4xx with a one-line JSON error, never a 5xx or a panic, and a
// refused body creates no job.
func FuzzSubmit(f *testing.F) {
	for _, s := range []string{
		`{"src":"10.1.10.5","dst":"10.3.20.10","services":"ssh,https"}`,
		`{"src":"10.99.10.5","dst":"10.3.20.10","services":"1-10000"}`,
		`{"src":"10.1.10.5","dst":"10.3.20.10","services":"80-70/udp","sport":-1}`,
		`{"src":"::1","dst":"10.3.20.10"}`, `{}`, `[]`, `null`, `{"src":1}`,
	} {
		f.Add(s)
	}
	e := newEnv(f, func(c *Config) { c.MaxQueued = 1 << 30; c.MaxPerUser = 1 << 30 })
	e.srv.jobs.shutdown() // no workers: accepted jobs just wait
	e.srv.jobs.mu.Lock()
	e.srv.jobs.closed = false
	e.srv.jobs.mu.Unlock()
	tok, err := e.srv.sessions.create("alice", "user", "local")
	if err != nil {
		f.Fatal(err)
	}
	h := e.srv.Handler()
	f.Fuzz(func(t *testing.T, body string) {
		before := len(e.srv.jobs.list(""))
		req := httptest.NewRequest("POST", "/api/jobs", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.AddCookie(&http.Cookie{Name: cookieName, Value: tok})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		after := len(e.srv.jobs.list(""))
		switch {
		case rec.Code == http.StatusAccepted:
			if after != before+1 {
				t.Fatalf("202 but %d → %d jobs", before, after)
			}
		case rec.Code >= 400 && rec.Code < 500:
			if after != before {
				t.Fatalf("%d but a job was created: %s", rec.Code, body)
			}
			if !strings.HasPrefix(rec.Body.String(), `{"error":`) || strings.Count(strings.TrimSpace(rec.Body.String()), "\n") > 0 {
				t.Fatalf("%d answer %q", rec.Code, rec.Body.String())
			}
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body.String())
		}
	})
}

// FuzzParseUserPath: any upload either fails with an error or gives a path
// whose routers and interfaces all exist in the facts.
func FuzzParseUserPath(f *testing.F) {
	for _, name := range []string{"predecessor-trace.json", "trace-document.json"} {
		f.Add(readTestdata(f, name))
	}
	f.Add(`{"source":"10.1.10.5","destination":"10.3.10.10","path":[{"hop":1,"name":"hq-core","ip":"10.1.10.1","is_router":true}]}`)
	f.Add(`{"schema":"tsim/v1","flows":[{"id":"f1","src":"1.2.3.4","dst":"5.6.7.8"}],"trace":[{"flow":"f1","disposition":"DELIVERED","hops":[null]}]}`)
	fx := loadExample(f)
	f.Fuzz(func(t *testing.T, in string) {
		p, err := parseUserPath([]byte(in), fx)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error of more than one line: %q", err)
			}
			return
		}
		routers := 0
		for _, h := range p.Hops {
			if h.Kind != "router" {
				continue
			}
			routers++
			r := fx.Router(h.Node)
			if r == nil {
				t.Fatalf("accepted router %q not in the facts", h.Node)
			}
			for _, i := range []string{h.In, h.Out} {
				if i != "" && r.Interface(i) == nil {
					t.Fatalf("accepted interface %s:%s not in the facts", h.Node, i)
				}
			}
		}
		if routers == 0 || p.Src == "" || p.Dst == "" {
			t.Fatalf("accepted a path without routers or endpoints: %+v", p)
		}
	})
}
