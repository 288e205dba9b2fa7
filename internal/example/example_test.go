package example

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/internal/testenv"
)

// TestEmbedded checks the embedded set is the whole example: nine routers,
// each file a complete collection named after its router.
func TestEmbedded(t *testing.T) {
	names, err := fs.Glob(FS, "facts/*_facts.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"br-core", "br-gw", "dc-core", "dc-gw", "dc-srv", "hq-core", "hq-dmz", "hq-gw", "inet-gw"}
	if len(names) != len(want) {
		t.Fatalf("embedded %d files %v, want %d", len(names), names, len(want))
	}
	for i, n := range names {
		router := strings.TrimSuffix(filepath.Base(n), "_facts.txt")
		if router != want[i] {
			t.Errorf("file %d is %s, want %s", i, router, want[i])
		}
		b, err := fs.ReadFile(FS, n)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if !strings.Contains(s, "# Hostname: "+router+"\n") ||
			!strings.Contains(s, "=== TSIM_FACTS_COLLECTION_COMPLETE ===\n") {
			t.Errorf("%s: not a complete collection of %s", n, router)
		}
		if strings.Contains(s, "tsimex") {
			t.Errorf("%s mentions a build namespace name; the facts must not depend on the run", n)
		}
	}
}

// The running kernel's release is the only thing allowed to differ between
// machines: the header line and the kernel_version section's output.
var (
	kernelHeader  = regexp.MustCompile(`(?m)^# Kernel: .*$`)
	kernelSection = regexp.MustCompile(`(=== TSIM_SECTION_START:kernel_version ===\n(?:.*\n){4}).*`)
)

func normalize(s string) string {
	s = kernelHeader.ReplaceAllString(s, "# Kernel: <release>")
	// Chain counters of iptables-save -c count whatever the kernel sent
	// while the network came up (an IGMP report now and then): they are not
	// part of what the example means.
	s = chainCounters.ReplaceAllString(s, "${1}[0:0]")
	s = ruleCounters.ReplaceAllString(s, "[0:0] -A ")
	return kernelSection.ReplaceAllString(s, "${1}<release>")
}

var (
	chainCounters = regexp.MustCompile(`(?m)^(:\S+ \S+ )\[\d+:\d+\]`)
	ruleCounters  = regexp.MustCompile(`(?m)^\[\d+:\d+\] -A `)
)

// TestRegenerate rebuilds the example in namespaces with
// scripts/example/build.sh and requires the collected files to equal the
// embedded ones: the kernel accepts every line of the example, and the
// embedded files are what the script produces.
func TestRegenerate(t *testing.T) {
	testenv.NeedRoot(t, "sudo go test ./internal/example")
	testenv.NeedTools(t, "bash", "ip", "iptables-restore", "ipset")
	out := t.TempDir()
	cmd := exec.Command("bash", "../../scripts/example/build.sh", "--out", out)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1767225600")
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("build.sh: %v\n%s", err, b)
	}
	// build.sh names its namespaces tsimex<pid>-…; none may remain.
	prefix := "tsimex" + strconv.Itoa(cmd.Process.Pid) + "-"
	if list, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, l := range strings.Split(string(list), "\n") {
			if strings.HasPrefix(l, prefix) {
				t.Errorf("namespace left behind: %s", l)
			}
		}
	}
	got, err := filepath.Glob(filepath.Join(out, "*_facts.txt"))
	if err != nil {
		t.Fatal(err)
	}
	embedded, _ := fs.Glob(FS, "facts/*_facts.txt")
	if len(got) != len(embedded) {
		t.Fatalf("build.sh wrote %d files, %d embedded", len(got), len(embedded))
	}
	for _, p := range got {
		fresh, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		old, err := fs.ReadFile(FS, "facts/"+filepath.Base(p))
		if err != nil {
			t.Fatalf("%s: not embedded: %v", filepath.Base(p), err)
		}
		if normalize(string(fresh)) != normalize(string(old)) {
			t.Errorf("%s differs from the embedded copy; regenerate with scripts/example/build.sh:\n%s",
				filepath.Base(p), firstDiff(normalize(string(old)), normalize(string(fresh))))
		}
	}
}

// TestVerifyFlows runs build.sh --verify: real probes for every flow of
// docs/example-network.md, checked against the documented path, result and
// deciding rules (for F23, those of the ECMP branch the kernel took). It
// takes about a minute; `go test -short` leaves it out, `make test` runs it.
func TestVerifyFlows(t *testing.T) {
	if testing.Short() && !testenv.Strict() {
		t.Skip("probes every documented flow (about a minute): not in -short")
	}
	testenv.NeedRoot(t, "sudo go test ./internal/example -run VerifyFlows")
	testenv.NeedTools(t, "bash", "ip", "iptables-restore", "ipset", "socat", "ping", "conntrack", "python3")
	cmd := exec.Command("bash", "../../scripts/example/build.sh", "--out", t.TempDir(), "--verify")
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("build.sh --verify: %v\n%s", err, b)
	}
	if n := strings.Count(string(b), "\nPASS "); n != 40 {
		t.Errorf("%d flows passed, want all 40:\n%s", n, b)
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return "line " + strconv.Itoa(i+1) + ":\n- " + al[i] + "\n+ " + bl[i]
		}
	}
	return "length differs"
}
