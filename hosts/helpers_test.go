package hosts

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/netx"
	"github.com/tsim-dev/tsim/internal/testenv"
)

// needRoot requires root for the namespace tests.
func needRoot(t testing.TB) {
	t.Helper()
	testenv.NeedRoot(t, "sudo go test ./hosts/")
}

// testOpts gives each test its own registry directory and checks, when
// the test ends, that no namespace of any lab it reserved is left (other
// processes' namespaces on this machine are none of its business).
func testOpts(t *testing.T) Options {
	t.Helper()
	var mu sync.Mutex
	ids := map[string]bool{}
	opts := Options{RegistryDir: filepath.Join(t.TempDir(), "labs")}
	opts.onID = func(id string) {
		mu.Lock()
		ids[id] = true
		mu.Unlock()
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range netnsList(t) {
			for id := range ids {
				if strings.HasPrefix(n, "tsim-"+id+"-") {
					t.Errorf("namespace %s of lab %s left behind", n, id)
				}
			}
		}
		if ents, _ := os.ReadDir(opts.RegistryDir); len(ents) != 0 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Errorf("registry not empty at the end: %v", names)
		}
	})
	return opts
}

func loadCorpus(t testing.TB) *facts.Facts {
	t.Helper()
	f, err := facts.Load(context.Background(), testenv.Corpus(t, "raw_facts"))
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

// mustNS opens a lab namespace by name for a test; a namespace that is not
// there panics (fails the test) rather than falling back to the host's.
func mustNS(name string) netns.NsHandle {
	h, err := netns.GetFromPath(netx.Path(name))
	if err != nil {
		panic(fmt.Sprintf("namespace %s: %v", name, err))
	}
	return h
}
