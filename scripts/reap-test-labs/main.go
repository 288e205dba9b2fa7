// Command reap-test-labs removes the labs that killed test runs left
// behind. A test builds its labs in a registry under its temporary
// directory (t.TempDir()/labs) and removes them when it ends; a test binary
// killed by its -timeout or by hand ends without cleanup, and its
// namespaces stay until the machine reboots. `make test` runs this first:
// it looks for lab registries in the temporary directories go test makes
// (TMPDIR/<Test…>/<NNN>/labs) and removes, through each registry, the labs
// whose owner process is gone — never a lab of a running test, never
// anything by name.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tsim-dev/tsim/hosts"
)

func main() {
	removed, err := reap(context.Background(), os.TempDir())
	for dir, ids := range removed {
		fmt.Printf("reap-test-labs: removed lab(s) %s left by a killed test (%s)\n", strings.Join(ids, " "), dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "reap-test-labs:", err)
		os.Exit(1)
	}
}

// reap removes the stale labs of every test registry under tmp and says
// which, per registry.
func reap(ctx context.Context, tmp string) (map[string][]string, error) {
	dirs, err := filepath.Glob(filepath.Join(tmp, "Test*", "*", "labs"))
	if err != nil {
		return nil, err
	}
	removed := map[string][]string{}
	var errs []error
	for _, dir := range dirs {
		if recs, _ := filepath.Glob(filepath.Join(dir, "*.json")); len(recs) == 0 {
			continue
		}
		ids, err := hosts.DownStale(ctx, hosts.Options{RegistryDir: dir})
		if len(ids) > 0 {
			removed[dir] = ids
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", dir, err))
		}
	}
	return removed, errors.Join(errs...)
}
