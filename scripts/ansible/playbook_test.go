// Package ansible holds the test of run-shards.yml, the Ansible playbook
// that splits a flows file between hosts with `tsim run --shard I/N` and
// merges the shards' documents on the controller.
package ansible

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/internal/testenv"
)

func build(t *testing.T, root, pkg, out string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

func runCmd(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, b)
	}
	return string(b)
}

// TestPlaybook runs run-shards.yml against an inventory of three "hosts"
// that are this machine (connection=local, each with its own work
// directory): every line of a generated flows file runs in exactly one
// shard, the controller gets every shard's documents (no PDFs) and merges
// them into one PDF, the hosts' work directories are gone and no lab is left.
func TestPlaybook(t *testing.T) {
	testenv.NeedRoot(t, "sudo go test ./scripts/ansible/")
	testenv.NeedTools(t, "ansible-playbook", "iptables-restore", "ipset")
	root := testenv.RepoRoot(t)
	tmp := t.TempDir()
	tsim := filepath.Join(tmp, "tsim")
	gen := filepath.Join(tmp, "gen-network")
	build(t, root, "./cmd/tsim", tsim)
	build(t, root, "./scripts/gen-network", gen)
	runCmd(t, tmp, nil, gen, "--routers", "12", "--flows", "10", "--seed", "5", "-o", filepath.Join(tmp, "net"))
	runCmd(t, tmp, nil, tsim, "--facts", filepath.Join(tmp, "net", "facts"), "facts", "parse", "-o", filepath.Join(tmp, "facts.json"))

	const shards = 3
	var inv strings.Builder
	inv.WriteString("[tsim_runners]\n")
	for i := 1; i <= shards; i++ {
		fmt.Fprintf(&inv, "runner%d ansible_connection=local ansible_python_interpreter=/usr/bin/python3 tsim_remote_dir=%s\n",
			i, filepath.Join(tmp, fmt.Sprintf("remote-%d", i)))
	}
	inv.WriteString("\n[controller]\nlocalhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n")
	invPath := filepath.Join(tmp, "inventory.ini")
	if err := os.WriteFile(invPath, []byte(inv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	results := filepath.Join(tmp, "results")
	out := runCmd(t, tmp, []string{"ANSIBLE_HOME=" + filepath.Join(tmp, "ansible-home"), "ANSIBLE_NOCOLOR=1",
		"ANSIBLE_LOCAL_TEMP=" + filepath.Join(tmp, "ansible-tmp"), "ANSIBLE_RETRY_FILES_ENABLED=0"},
		"ansible-playbook", "-i", invPath, filepath.Join(root, "scripts", "ansible", "run-shards.yml"),
		"-e", "tsim_bin="+tsim, "-e", "tsim_facts="+filepath.Join(tmp, "facts.json"),
		"-e", "tsim_flows="+filepath.Join(tmp, "net", "flows.csv"), "-e", "tsim_results="+results,
		"-e", "tsim_become=false", "-e", "tsim_fail_on_expectations=false",
		"-e", "tsim_run_args='--probe-timeout 2s'")
	t.Logf("ansible-playbook:\n%s", out)

	// Every flows-file line (2..11: line 1 is the header) in exactly one shard.
	seen := map[int]int{}
	labs := map[string]bool{}
	for i := 1; i <= shards; i++ {
		f, err := os.Open(filepath.Join(results, fmt.Sprintf("shard-%d.ndjson", i)))
		if err != nil {
			t.Fatalf("shard %d's documents were not fetched: %v", i, err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		n := 0
		for sc.Scan() {
			var d struct {
				Flows []struct{ Line int }
				Lab   *struct{ ID string }
				Reach []json.RawMessage
			}
			if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
				t.Fatalf("shard %d: %v", i, err)
			}
			if len(d.Flows) == 0 || d.Lab == nil || len(d.Reach) == 0 {
				t.Errorf("shard %d: a document without flows, lab or reach", i)
				continue
			}
			n++
			seen[d.Flows[0].Line]++
			labs[d.Lab.ID] = true
		}
		f.Close()
		if n == 0 {
			t.Errorf("shard %d: no documents", i)
		}
		if _, err := os.Stat(filepath.Join(tmp, fmt.Sprintf("remote-%d", i))); !os.IsNotExist(err) {
			t.Errorf("runner%d's work directory is still there (%v)", i, err)
		}
	}
	for line := 2; line <= 11; line++ {
		if seen[line] != 1 {
			t.Errorf("flows line %d ran in %d shards, want 1", line, seen[line])
		}
	}
	if len(seen) != 10 {
		t.Errorf("lines run: %v, want 2..11 once each", seen)
	}
	if len(labs) != shards {
		t.Errorf("%d labs, want one per shard: %v", len(labs), labs)
	}
	var merged struct {
		Merged struct {
			PDF       string
			Pages     int
			Documents int
		}
	}
	b, err := os.ReadFile(filepath.Join(results, "tsim-merged.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &merged); err != nil {
		t.Fatal(err)
	}
	if merged.Merged.Documents != 10 || merged.Merged.Pages < 10 {
		t.Errorf("merged: %+v, want 10 documents", merged.Merged)
	}
	if st, err := os.Stat(filepath.Join(results, "tsim-merged.pdf")); err != nil || st.Size() == 0 {
		t.Errorf("merged PDF: %v", err)
	}
	// The report comes from the documents alone: no shard wrote a PDF.
	pdfs, _ := filepath.Glob(filepath.Join(results, "*.pdf"))
	if len(pdfs) != 1 {
		t.Errorf("PDFs on the controller: %v, want only tsim-merged.pdf", pdfs)
	}
	ns, _ := exec.Command("ip", "netns", "list").Output()
	for id := range labs {
		if strings.Contains(string(ns), "tsim-"+id+"-") {
			t.Errorf("lab %s left namespaces behind", id)
		}
	}
}
