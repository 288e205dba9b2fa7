package serve

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBatchUpload: a flows file is one job; every line gets PASS, FAIL or
// UNKNOWN (sent on the stream as soon as the probes answered), and the
// JUnit XML is there to download.
func TestBatchUpload(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	c.login("alice")
	r := c.do("POST", "/api/jobs", map[string]string{"flows_csv": readTestdata(t, "flows.csv")})
	if r.status != http.StatusAccepted {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	id := r.json(t)["id"].(string)
	c.wait(id, 30*time.Second, StateDone)
	var m jobView
	if err := json.Unmarshal(c.do("GET", "/api/jobs/"+id, nil).body, &m); err != nil {
		t.Fatal(err)
	}
	if !m.Batch || m.Flows != 5 || len(m.Tests) != 4 {
		t.Fatalf("batch job: %+v", m)
	}
	want := []struct {
		line           int
		result, detail string
	}{
		{3, "PASS", ""},
		{4, "FAIL", "br-gw filter GUEST #3 (builtin:example/br-gw_facts.txt:128)"},
		{5, "PASS", ""},
		{6, "PASS", ""},
	}
	for i, w := range want {
		got := m.Tests[i]
		if got.Line != w.line || got.Result != w.result || (w.detail != "" && !strings.Contains(got.Detail, w.detail)) {
			t.Errorf("line %d: %+v, want %s %q", w.line, got, w.result, w.detail)
		}
	}
	if m.Result.Passed != 3 || m.Result.Failed != 1 || !strings.Contains(m.Result.Summary, "3 passed, 1 failed, 0 unknown") {
		t.Errorf("result counts %+v", m.Result)
	}
	// The tests were on the stream before the job ended.
	data, _ := os.ReadFile(filepath.Join(e.data, "jobs", id, eventsFile))
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	testsAt, doneAt := -1, -1
	for i, l := range lines {
		if strings.Contains(l, `"tests":[`) && testsAt < 0 {
			testsAt = i
		}
		if strings.Contains(l, `"state":"done"`) {
			doneAt = i
		}
	}
	if testsAt < 0 || testsAt >= doneAt || !strings.Contains(lines[testsAt], `"result":"FAIL"`) {
		t.Errorf("no judged tests on the stream before the end (at %d, done at %d)", testsAt, doneAt)
	}

	// JUnit XML.
	jr := c.do("GET", "/api/jobs/"+id+"/junit.xml", nil)
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Cases []struct {
				Name    string    `xml:"name,attr"`
				Line    int       `xml:"line,attr"`
				Failure *struct{} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if jr.status != 200 || !strings.HasPrefix(jr.header.Get("Content-Type"), "application/xml") {
		t.Fatalf("junit: %d %s", jr.status, jr.header.Get("Content-Type"))
	}
	if err := xml.Unmarshal(jr.body, &suites); err != nil {
		t.Fatalf("junit XML: %v\n%s", err, jr.body)
	}
	if suites.Tests != 4 || suites.Failures != 1 || len(suites.Suites) != 1 || suites.Suites[0].Cases[1].Failure == nil ||
		suites.Suites[0].Cases[1].Line != 4 {
		t.Errorf("junit: %s", jr.body)
	}
	if m.Links["junit"] != "/api/jobs/"+id+"/junit.xml" {
		t.Errorf("links %v", m.Links)
	}
	// A job that is not a batch has no JUnit XML.
	other := c.submit("10.1.10.5", "10.3.20.10", "ssh")
	c.wait(other, 30*time.Second, StateDone)
	if r := c.do("GET", "/api/jobs/"+other+"/junit.xml", nil); r.status != http.StatusConflict {
		t.Errorf("junit of a single job: %d", r.status)
	}
}

func TestBatchUploadRefused(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxBatchFlows = 3 })
	c := e.client()
	c.login("alice")
	cases := []struct {
		name string
		body map[string]string
		msg  string
	}{
		{"bad line", map[string]string{"flows_csv": "10.1.10.5,10.3.10.10,ssh,allow\n10.1.10.5,nowhere,ssh\n"}, "flows.csv:2:"},
		{"bad expect", map[string]string{"flows_csv": "src,dst,spec,expect\n10.1.10.5,10.3.10.10,ssh,perhaps\n"}, "flows.csv:2:"},
		{"unknown source", map[string]string{"flows_csv": "10.1.10.5,10.3.10.10,ssh\n192.0.2.7,10.3.10.10,ssh\n"}, "flows.csv:2: src: 192.0.2.7 is not in the modelled network"},
		{"too many flows", map[string]string{"flows_csv": "10.1.10.5,10.3.10.10,\"ssh,https,dns,ntp\"\n"}, "at most 3"},
		{"form fields too", map[string]string{"flows_csv": "10.1.10.5,10.3.10.10,ssh\n", "src": "10.1.10.5"}, "leave the form's fields empty"},
		{"empty", map[string]string{"flows_csv": "# nothing\n"}, "no flows"},
	}
	for _, tc := range cases {
		r := c.do("POST", "/api/jobs", tc.body)
		if r.status != http.StatusBadRequest || !strings.Contains(r.errorText(), tc.msg) {
			t.Errorf("%s: %d %q, want 400 with %q", tc.name, r.status, r.errorText(), tc.msg)
		}
	}
}

// TestBatchCancelledLinesNotRun: a batch job cancelled before its probes
// answered says so per line instead of staying PENDING.
func TestBatchCancelledLinesNotRun(t *testing.T) {
	fr := &fakeRunner{gate: make(chan struct{})}
	defer close(fr.gate)
	e := newEnv(t, func(c *Config) { c.Runner = fr.run })
	c := e.client()
	c.login("alice")
	r := c.do("POST", "/api/jobs", map[string]string{"flows_csv": readTestdata(t, "flows.csv")})
	if r.status != http.StatusAccepted {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	id := r.json(t)["id"].(string)
	c.wait(id, 10*time.Second, StateRunning)
	var m jobView
	json.Unmarshal(c.do("GET", "/api/jobs/"+id, nil).body, &m)
	if len(m.Tests) != 4 || m.Tests[0].Result != "PENDING" {
		t.Fatalf("running batch job: %+v", m.Tests)
	}
	c.do("DELETE", "/api/jobs/"+id, nil)
	c.wait(id, 10*time.Second, StateCancelled)
	json.Unmarshal(c.do("GET", "/api/jobs/"+id, nil).body, &m)
	for _, l := range m.Tests {
		if l.Result != "NOT RUN" {
			t.Errorf("line %d of a cancelled job: %s", l.Line, l.Result)
		}
	}
}
