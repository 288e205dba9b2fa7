// Package testenv owns what tests need from the machine they run on: root,
// tools on PATH, and the repository's test corpus. On a developer's machine a
// missing requirement skips the test with a message saying how to run it; under
// `make test` (TSIM_TEST_STRICT=1) it fails the test instead, so the suite never
// passes by silently skipping what it was meant to prove.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// StrictEnv is the environment variable `make test` sets: a test that cannot
// run for want of root or a tool fails instead of skipping.
const StrictEnv = "TSIM_TEST_STRICT"

// Strict reports whether missing requirements fail tests instead of skipping them.
func Strict() bool {
	v := os.Getenv(StrictEnv)
	return v != "" && v != "0"
}

// Unavailable skips t with why, or fails it under Strict.
func Unavailable(t testing.TB, why string) {
	t.Helper()
	if Strict() {
		t.Fatalf("%s (%s is set: the suite must run this test, not skip it)", why, StrictEnv)
	}
	t.Skip(why)
}

// NeedRoot requires root, as namespace tests do; how is the command that runs
// the test as root, e.g. "sudo go test ./hosts/".
func NeedRoot(t testing.TB, how string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "needs root (network namespaces): run `"+how+"`")
	}
}

// NeedTools requires every named program on PATH.
func NeedTools(t testing.TB, tools ...string) {
	t.Helper()
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		Unavailable(t, strings.Join(missing, ", ")+" not installed (scripts/install-deps.sh installs what the suite needs)")
	}
}

// NeedFile requires a file that a package installs, e.g. bash-completion's script.
func NeedFile(t testing.TB, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		Unavailable(t, path+" missing (Debian package "+pkg+"; scripts/install-deps.sh installs it)")
	}
}

// RepoRoot is the directory holding the module's go.mod, found upwards from
// the test's working directory (its package directory).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testenv: no go.mod above the test's directory")
		}
		dir = parent
	}
}

// Corpus is the path of sub inside the predecessor's test corpus, which the
// repository carries in testdata/corpus/original-tsim (MIT, see its README).
// A missing file is a failure: the corpus is part of the repository. The path
// is relative to the test's directory, so file names in golden output are the
// same in every checkout.
func Corpus(t testing.TB, sub ...string) string {
	t.Helper()
	root := RepoRoot(t)
	p := filepath.Join(append([]string{root, "testdata", "corpus", "original-tsim"}, sub...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("test corpus: %v", err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, p)
	if err != nil {
		return p
	}
	return rel
}
