package serve

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"context"

	"github.com/tsim-dev/tsim/internal/pipeline"
)

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// recordingRunner is the fake runner that also keeps each request.
type recordingRunner struct {
	fakeRunner
	mu   sync.Mutex
	reqs []pipeline.Request
}

func (rr *recordingRunner) run(ctx context.Context, req pipeline.Request, deps pipeline.Deps) (*pipeline.Result, error) {
	rr.mu.Lock()
	rr.reqs = append(rr.reqs, req)
	rr.mu.Unlock()
	return rr.fakeRunner.run(ctx, req, deps)
}

func pathNodes(f flowResult) string {
	var out []string
	for _, h := range f.Path {
		s := h.Node
		if h.Kind == "router" {
			s += "(" + h.In + ">" + h.Out + ")"
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// TestTraceUpload: a job with an uploaded path (either format) skips the
// simulation and tests exactly that path; the job says where the path
// came from.
func TestTraceUpload(t *testing.T) {
	rr := &recordingRunner{}
	e := newEnv(t, func(c *Config) { c.Runner = rr.run })
	c := e.client()
	c.login("alice")
	const wgPath = "10.1.10.5 hq-core(eth1>eth0) hq-gw(eth1>wg0) dc-gw(wg0>eth0) dc-core(eth0>eth1) 10.3.10.10"
	for _, tc := range []struct {
		file, format string
	}{
		{"predecessor-trace.json", pathPredecessor},
		{"trace-document.json", pathDocument},
	} {
		t.Run(tc.format, func(t *testing.T) {
			// ssh: the simulation would take eth2 (policy routing); the
			// uploaded path says wg0, and wg0 is what the job tests.
			r := c.do("POST", "/api/jobs", map[string]string{"trace": readTestdata(t, tc.file), "services": "ssh"})
			if r.status != http.StatusAccepted {
				t.Fatalf("submit: %d %s", r.status, r.body)
			}
			id := r.json(t)["id"].(string)
			res := jobResultOf(t, c, id)
			m := c.do("GET", "/api/jobs/"+id, nil).json(t)
			if m["path_from"] != tc.format || m["src"] != "10.1.10.5" || m["dst"] != "10.3.10.10" {
				t.Errorf("job: %v", m)
			}
			if got := pathNodes(res.Flows[0]); got != wgPath {
				t.Errorf("tested path %s\nwant %s", got, wgPath)
			}
			rr.mu.Lock()
			req := rr.reqs[len(rr.reqs)-1]
			rr.mu.Unlock()
			if len(req.Given) != 1 || len(req.Given[0]) != 1 || !strings.Contains(req.Given[0][0].Reason, "given by the user") {
				t.Errorf("the pipeline was not given the path: %+v", req.Given)
			}
			if _, err := os.Stat(filepath.Join(e.data, "jobs", id, pathFile)); err != nil {
				t.Errorf("path.json: %v", err)
			}
		})
	}
}

// TestTraceUploadRefused: size limit, schema, and routers and interfaces
// that must exist in the facts.
func TestTraceUploadRefused(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	c.login("alice")
	pred := readTestdata(t, "predecessor-trace.json")
	docu := readTestdata(t, "trace-document.json")
	cases := []struct {
		name, trace, src, msg string
	}{
		{"too large", "{" + strings.Repeat(" ", maxTraceBytes) + "}", "", "at most 100000"},
		{"not JSON", "hello", "", "not a JSON object"},
		{"neither format", `{"hops": []}`, "", "neither a tsim document"},
		{"failed trace", strings.Replace(pred, `"success": true`, `"success": false`, 1), "", `"success": false`},
		{"empty path", `{"source":"10.1.10.5","destination":"10.3.10.10","path":[]}`, "", "path is empty"},
		{"bad source", strings.Replace(pred, `"source": "10.1.10.5"`, `"source": "10.1.10"`, 1), "", "source"},
		{"hop numbers", strings.Replace(pred, `"hop": 3`, `"hop": 2`, 1), "", "rising"},
		{"hop ip", strings.Replace(pred, `"ip": "10.1.1.1"`, `"ip": "x"`, 1), "", "ip"},
		{"unknown router", strings.Replace(pred, `"name": "dc-gw"`, `"name": "ghost-gw"`, 1), "", `router "ghost-gw" is not in the facts`},
		{"unknown interface", strings.Replace(pred, `"outgoing": "wg0"`, `"outgoing": "wg9"`, 1), "", `router hq-gw has no interface "wg9"`},
		{"no routers", `{"source":"10.1.10.5","destination":"10.3.10.10","path":[{"hop":1,"ip":"10.3.10.10","is_router":false}]}`, "", "crosses no router"},
		{"wrong schema", strings.Replace(docu, `"tsim/v1"`, `"tsim/v9"`, 1), "", "unsupported schema"},
		{"document without trace", `{"schema":"tsim/v1","flows":[]}`, "", `no "trace" section`},
		{"document router", strings.Replace(docu, `"node": "dc-core"`, `"node": "dc-xxx"`, 1), "", `router "dc-xxx"`},
		{"form src differs", pred, "10.1.10.6", "differs from the uploaded trace"},
	}
	for _, tc := range cases {
		r := c.do("POST", "/api/jobs", map[string]string{"trace": tc.trace, "src": tc.src, "services": "ssh"})
		if r.status != http.StatusBadRequest || !strings.Contains(r.errorText(), tc.msg) {
			t.Errorf("%s: %d %q, want 400 with %q", tc.name, r.status, r.errorText(), tc.msg)
		}
	}
	if dirs := e.jobDirs(); len(dirs) != 0 {
		t.Errorf("refused uploads left job directories: %v", dirs)
	}
}

// TestTraceUploadRealLab runs a job with an uploaded path through the real
// pipeline: the lab is built and probed along the given path.
func TestTraceUploadRealLab(t *testing.T) {
	requireRoot(t)
	e, reg := realEnv(t, 1, nil)
	c := e.client()
	c.login("alice")
	r := c.do("POST", "/api/jobs", map[string]string{"trace": readTestdata(t, "predecessor-trace.json"), "services": "https,ssh"})
	if r.status != http.StatusAccepted {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	id := r.json(t)["id"].(string)
	m := c.wait(id, 5*time.Minute, StateDone, StateFailed)
	if m["state"] != StateDone {
		t.Fatalf("job %v: %v", m["state"], m["error"])
	}
	meta, _ := e.srv.jobs.get(id)
	b, _ := json.Marshal(meta.Result)
	for _, f := range meta.Result.Flows {
		if f.Verdict != "REACHABLE" || pathNodes(f) != "10.1.10.5 hq-core(eth1>eth0) hq-gw(eth1>wg0) dc-gw(wg0>eth0) dc-core(eth0>eth1) 10.3.10.10" {
			t.Errorf("flow %s: %s", f.Port, b)
		}
	}
	assertNoLabs(t, reg, []string{meta.Lab})
}
