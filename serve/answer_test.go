package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// jobResultOf waits for a job and decodes its result.
func jobResultOf(t *testing.T, c *client, id string) *jobResult {
	t.Helper()
	c.wait(id, 30*time.Second, StateDone)
	r := c.do("GET", "/api/jobs/"+id, nil)
	var v struct {
		Result *jobResult `json:"result"`
	}
	if err := json.Unmarshal(r.body, &v); err != nil || v.Result == nil {
		t.Fatalf("job %s: no result: %s", id, r.body)
	}
	return v.Result
}

// TestResultNamesRouterAndRule: each service's row names the port, the
// verdict, the deciding router and rule with FILE:LINE and the path; a
// range gives one row per port; the summary counts reachable services.
func TestResultNamesRouterAndRule(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	c.login("alice")

	// A guest to the Internet: ssh is rejected by br-gw's GUEST chain,
	// https leaves the network.
	res := jobResultOf(t, c, c.submit("10.2.99.5", "198.51.100.5", "ssh,https"))
	if len(res.Flows) != 2 || res.Summary != "1 of 2 reachable" || res.Reachable {
		t.Fatalf("result %+v", res)
	}
	ssh, https := res.Flows[0], res.Flows[1]
	if ssh.Port != "22/tcp" || ssh.Verdict != "UNREACHABLE" || ssh.Router != "br-gw" ||
		ssh.Rule != "-A GUEST -p tcp -j REJECT --reject-with tcp-reset" || ssh.Pos != "builtin:example/br-gw_facts.txt:128" ||
		ssh.Where != "filter GUEST #3" {
		t.Errorf("ssh row: %+v", ssh)
	}
	var nodes []string
	for _, h := range ssh.Path {
		nodes = append(nodes, h.Node)
	}
	if strings.Join(nodes, " ") != "10.2.99.5 br-gw" {
		t.Errorf("ssh path %v", nodes)
	}
	if https.Port != "443/tcp" || https.Verdict != "REACHABLE" || https.Router != "" || len(https.Path) < 2 {
		t.Errorf("https row: %+v", https)
	}

	// A chain policy decides: its ":CHAIN POLICY" line is the FILE:LINE.
	res = jobResultOf(t, c, c.submit("10.1.10.5", "10.3.20.10", "ssh"))
	if f := res.Flows[0]; f.Router != "dc-gw" || f.Rule != "policy DROP" || f.Pos != "builtin:example/dc-gw_facts.txt:109" {
		t.Errorf("policy row: %+v", f)
	}

	// A range: one row per port.
	res = jobResultOf(t, c, c.submit("10.1.10.5", "10.3.20.10", "1-4/tcp"))
	var ports []string
	for _, f := range res.Flows {
		ports = append(ports, f.Port)
	}
	if strings.Join(ports, ",") != "1/tcp,2/tcp,3/tcp,4/tcp" || res.Summary != "0 of 4 reachable" {
		t.Errorf("range rows %v, summary %q", ports, res.Summary)
	}

	// The list carries the verdict too.
	l := c.do("GET", "/api/jobs", nil)
	if !strings.Contains(string(l.body), `"summary":"0 of 4 reachable"`) || !strings.Contains(string(l.body), `"summary":"1 of 2 reachable"`) {
		t.Errorf("job list lacks the verdicts: %s", l.body)
	}
}

// TestQueuePositionLive: a waiting job's stream gets its new queue
// position whenever a job ahead leaves the queue.
func TestQueuePositionLive(t *testing.T) {
	fr := &fakeRunner{gate: make(chan struct{}), started: make(chan string, 4)}
	e := newEnv(t, func(c *Config) { c.Runner = fr.run; c.Workers = 1 })
	defer close(fr.gate)
	c := e.client()
	c.login("alice")
	c.submit("10.1.10.5", "10.3.20.10", "ssh") // runs (held at the gate)
	<-fr.started
	b := c.submit("10.1.10.5", "10.3.20.10", "ssh")
	d := c.submit("10.1.10.5", "10.3.20.10", "https")
	if v := c.do("GET", "/api/jobs/"+d, nil).json(t); v["queue_position"] != 2.0 {
		t.Fatalf("third job: %v", v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.ts.URL+"/api/jobs/"+d+"/events", nil)
	res, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var positions []int
	readSSE(t, res.Body, func(ev sseEvent) {
		var je jobEvent
		json.Unmarshal([]byte(ev.data), &je)
		if je.Position > 0 {
			positions = append(positions, je.Position)
		}
		if je.Position == 2 && len(positions) == 1 {
			// The job ahead is cancelled: this one moves up, live.
			if r := c.do("DELETE", "/api/jobs/"+b, nil); r.status != http.StatusAccepted {
				t.Errorf("cancel: %d", r.status)
			}
		}
		if je.Position == 1 {
			cancel()
		}
	})
	if fmt.Sprint(positions) != "[2 1]" {
		t.Errorf("queue positions on the stream: %v, want [2 1]", positions)
	}
}

// TestListJobsPaginated: GET /api/jobs pages with limit/offset and says
// where the next page is.
func TestListJobsPaginated(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxPerUser = 20 })
	c := e.client()
	c.login("alice")
	var ids []string
	for i := 0; i < 7; i++ {
		ids = append(ids, c.submit("10.1.10.5", "10.3.20.10", "ssh"))
		e.clock.Add(time.Second) // distinct creation times: newest first is well defined
	}
	for _, id := range ids {
		c.wait(id, 30*time.Second, StateDone)
	}
	type page struct {
		Jobs   []jobView `json:"jobs"`
		Total  int       `json:"total"`
		Offset int       `json:"offset"`
		Limit  int       `json:"limit"`
		Next   string    `json:"next"`
	}
	get := func(q string) page {
		r := c.do("GET", "/api/jobs"+q, nil)
		var p page
		if err := json.Unmarshal(r.body, &p); err != nil || r.status != 200 {
			t.Fatalf("GET /api/jobs%s: %d %s", q, r.status, r.body)
		}
		return p
	}
	p := get("?limit=3")
	if len(p.Jobs) != 3 || p.Total != 7 || p.Next != "/api/jobs?offset=3&limit=3" || p.Jobs[0].ID != ids[6] {
		t.Errorf("first page: %d jobs, total %d, next %q", len(p.Jobs), p.Total, p.Next)
	}
	p = get(strings.TrimPrefix(p.Next, "/api/jobs"))
	if len(p.Jobs) != 3 || p.Jobs[0].ID != ids[3] {
		t.Errorf("second page: %+v", p)
	}
	p = get("?offset=6&limit=3")
	if len(p.Jobs) != 1 || p.Next != "" || p.Jobs[0].ID != ids[0] {
		t.Errorf("last page: %+v", p)
	}
	if p := get(""); len(p.Jobs) != 7 || p.Limit != 50 {
		t.Errorf("default page: %d jobs, limit %d", len(p.Jobs), p.Limit)
	}
	for _, q := range []string{"?limit=0", "?limit=201", "?limit=x", "?offset=-1"} {
		if r := c.do("GET", "/api/jobs"+q, nil); r.status != http.StatusBadRequest {
			t.Errorf("GET /api/jobs%s: %d, want 400", q, r.status)
		}
	}
}
