package serve

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tsim-dev/tsim/hosts"
	"github.com/tsim-dev/tsim/internal/testenv"
)

// requireRoot: jobs build labs in network namespaces.
func requireRoot(t *testing.T) {
	t.Helper()
	testenv.NeedRoot(t, "sudo go test ./serve/")
}

// realEnv is a server on 127.0.0.1 running the real pipeline with its own
// lab registry, so the test can check that every lab went away.
func realEnv(t *testing.T, workers int, mod func(*Config)) (*testEnv, string) {
	t.Helper()
	reg := filepath.Join(t.TempDir(), "labs")
	e := newEnv(t, func(c *Config) {
		c.Runner = nil // pipeline.Run
		c.Now = nil
		c.Registry = reg
		c.Workers = workers
		c.MaxPerUser = 20
		c.JobTimeout = 5 * time.Minute
		if mod != nil {
			mod(c)
		}
	})
	return e, reg
}

// assertNoLabs checks the registry and the kernel for labs of the jobs.
func assertNoLabs(t *testing.T, reg string, labIDs []string) {
	t.Helper()
	labs, err := hosts.List(hosts.Options{RegistryDir: reg})
	if err != nil {
		t.Fatalf("lab registry: %v", err)
	}
	if len(labs) != 0 {
		t.Errorf("labs left in the registry: %+v", labs)
	}
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatalf("ip netns list: %v", err)
	}
	for _, id := range labIDs {
		if id == "" {
			t.Error("a job reported no lab id")
			continue
		}
		if strings.Contains(string(out), "tsim-"+id+"-") {
			t.Errorf("namespaces of lab %s left:\n%s", id, out)
		}
	}
}
