package serve

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestIngressChoice: the form's options offer where a source enters (the
// uplinks first); a source outside the network needs one, and the job's
// flows carry it.
func TestIngressChoice(t *testing.T) {
	rr := &recordingRunner{}
	e := newEnv(t, func(c *Config) { c.Runner = rr.run })
	c := e.client()
	c.login("alice")
	cfg := c.do("GET", "/api/config", nil).json(t)
	var uplinks, choices []string
	for _, v := range cfg["uplinks"].([]any) {
		uplinks = append(uplinks, v.(string))
	}
	for _, v := range cfg["ingress"].([]any) {
		choices = append(choices, v.(string))
	}
	if strings.Join(uplinks, ",") != "inet-gw:eth0,inet-gw:eth2" || !slices.Equal(choices[:2], uplinks) || !slices.Contains(choices, "hq-core:eth1") {
		t.Errorf("uplinks %v, choices %v", uplinks, choices)
	}

	body := map[string]string{"src": "192.0.2.99", "dst": "10.1.50.10", "services": "https"}
	if r := c.do("POST", "/api/jobs", body); r.status != http.StatusBadRequest || !strings.Contains(r.errorText(), "candidate uplinks: inet-gw:eth0, inet-gw:eth2") {
		t.Errorf("outside source without ingress: %d %q", r.status, r.errorText())
	}
	body["ingress"] = "nowhere:eth0"
	if r := c.do("POST", "/api/jobs", body); r.status != http.StatusBadRequest || !strings.Contains(r.errorText(), "ingress") {
		t.Errorf("bad ingress: %d %q", r.status, r.errorText())
	}
	body["ingress"] = "inet-gw:eth2"
	r := c.do("POST", "/api/jobs", body)
	if r.status != http.StatusAccepted {
		t.Fatalf("with ingress: %d %s", r.status, r.body)
	}
	id := r.json(t)["id"].(string)
	res := jobResultOf(t, c, id)
	if got := pathNodes(res.Flows[0]); !strings.HasPrefix(got, "192.0.2.99 inet-gw(eth2>") || res.Flows[0].Verdict != "REACHABLE" {
		t.Errorf("path %s, verdict %s", got, res.Flows[0].Verdict)
	}
	rr.mu.Lock()
	fl := rr.reqs[0].Groups[0][0]
	rr.mu.Unlock()
	if fl.Ingress != "inet-gw:eth2" {
		t.Errorf("the job's flow has ingress %q", fl.Ingress)
	}
	if m := c.do("GET", "/api/jobs/"+id, nil).json(t); m["ingress"] != "inet-gw:eth2" {
		t.Errorf("job ingress %v", m["ingress"])
	}
}
