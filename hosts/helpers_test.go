package hosts

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/internal/facts"
)

const corpusDir = "../../shared/corpus/original-tsim/raw_facts"

// needRoot skips when not root, saying how to run the namespace tests.
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("namespace tests need root: run `sudo go test ./hosts/`")
	}
}

// testOpts gives each test its own registry directory.
func testOpts(t testing.TB) Options {
	return Options{RegistryDir: filepath.Join(t.TempDir(), "labs")}
}

func loadCorpus(t testing.TB) *facts.Facts {
	t.Helper()
	if _, err := os.Stat(corpusDir); err != nil {
		t.Fatalf("corpus missing: %v", err)
	}
	f, err := facts.Load(context.Background(), corpusDir)
	if err != nil {
		t.Fatalf("load corpus: %v", err)
	}
	return f
}

// netnsList returns `ip netns list` names, sorted.
func netnsList(t testing.TB) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatalf("ip netns list: %v", err)
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	sort.Strings(names)
	return names
}

// noLeak registers a check that the namespace list is as before the test.
func noLeak(t *testing.T) {
	t.Helper()
	before := strings.Join(netnsList(t), " ")
	t.Cleanup(func() {
		if after := strings.Join(netnsList(t), " "); after != before {
			t.Errorf("namespaces leaked:\nbefore: %s\nafter:  %s", before, after)
		}
	})
}
