package reach

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tsim-dev/tsim/hosts"
	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/testenv"
	"github.com/tsim-dev/tsim/trace"
)

// needRoot requires root: reach tests send packets through namespaces.
func needRoot(t testing.TB) {
	t.Helper()
	testenv.NeedRoot(t, "sudo go test ./reach/")
}

func loadFacts(t testing.TB, path string) *facts.Facts {
	t.Helper()
	if path != "" {
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("facts missing: %v", err)
		}
	}
	f, err := facts.Load(context.Background(), path)
	if err != nil {
		t.Fatalf("load facts %q: %v", path, err)
	}
	return f
}

// labDoc traces flows and builds a lab for them (only the routers on
// their paths); the lab is removed when the test ends.
func labDoc(t testing.TB, f *facts.Facts, flows []*doc.Flow) *doc.Document {
	t.Helper()
	return labDocScope(t, f, flows, "")
}

// labDocScope is labDoc with a lab of the given scope ("": the default,
// the routers the flows can touch).
func labDocScope(t testing.TB, f *facts.Facts, flows []*doc.Flow, scope string) *doc.Document {
	t.Helper()
	d := doc.New()
	d.Facts = &doc.FactsRef{Source: f.Source, Digest: f.Digest, Routers: len(f.Routers)}
	d.Flows = flows
	ts, err := trace.New(f).TraceAll(context.Background(), flows)
	if err != nil {
		t.Fatalf("trace: %v", err)
	}
	d.Trace = ts
	reg := filepath.Join(t.TempDir(), "labs")
	lab, err := hosts.Up(context.Background(), f, d, hosts.Options{RegistryDir: reg, Scope: scope})
	if err != nil {
		t.Fatalf("hosts up: %v", err)
	}
	t.Cleanup(func() {
		if err := hosts.Down(context.Background(), lab.ID, hosts.Options{RegistryDir: reg}); err != nil {
			t.Errorf("hosts down: %v", err)
		}
		for _, n := range netnsList(t) {
			if strings.HasPrefix(n, "tsim-"+lab.ID+"-") {
				t.Errorf("namespace %s left behind", n)
			}
		}
	})
	return d
}

func netnsList(t testing.TB) []string {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatalf("ip netns list: %v", err)
	}
	var names []string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

func testLog(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}

func flow(id, src, dst, proto string, dport int) *doc.Flow {
	return &doc.Flow{ID: id, Src: src, Dst: dst, Proto: proto, DPort: dport}
}

// testTimeout bounds probes that get no answer in the tests: longer than
// the CLI's default, so that a loaded machine (other tests building labs
// at the same time) does not turn a slow answer into a lost one. Drops
// are still decided from counters at once.
const testTimeout = time.Second
