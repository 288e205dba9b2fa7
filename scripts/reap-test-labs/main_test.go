package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/hosts"
	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/netx"
	"github.com/tsim-dev/tsim/internal/testenv"
)

// TestMain runs the test binary again as a "killed test": it builds a lab
// in the registry REAP_HELPER_REGISTRY names and exits without removing it.
func TestMain(m *testing.M) {
	if dir := os.Getenv("REAP_HELPER_REGISTRY"); dir != "" {
		f, err := facts.Load(context.Background(), "")
		if err == nil {
			d := doc.New()
			d.Flows = []*doc.Flow{{ID: "f1", Src: "10.1.10.5", Dst: "10.1.50.10", Proto: "tcp", DPort: 443}}
			_, err = hosts.Up(context.Background(), f, d, hosts.Options{RegistryDir: dir})
		}
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(2)
		}
		os.Exit(0) // no hosts down: what a killed test leaves
	}
	os.Exit(m.Run())
}

// TestReapKilledTestLab: a lab whose owner process died is removed through
// its registry; a lab of a live owner in another registry is left alone.
func TestReapKilledTestLab(t *testing.T) {
	testenv.NeedRoot(t, "sudo go test ./scripts/reap-test-labs/")
	testenv.NeedTools(t, "iptables-restore")
	tmp := t.TempDir()
	dead := filepath.Join(tmp, "TestKilled123", "001", "labs")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "REAP_HELPER_REGISTRY="+dead)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helper: %v: %s", err, out)
	}
	labs, err := hosts.List(hosts.Options{RegistryDir: dead})
	if err != nil || len(labs) != 1 {
		t.Fatalf("the killed test's registry holds %v (%v), want one lab", labs, err)
	}
	// The lab's namespaces all carry its id (labs.md); this only reads
	// the list.
	nsOf := func(id string) int {
		out, err := exec.Command("ip", "netns", "list").Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(string(out), "tsim-"+id+"-")
	}
	if !labs[0].Stale || !netx.Exists(labs[0].Fabric) || nsOf(labs[0].ID) < 2 {
		t.Fatalf("the killed test's lab has no namespace: %+v", labs[0])
	}
	// A live test's lab (this process owns it) in another registry.
	live := filepath.Join(tmp, "TestLive456", "001", "labs")
	f, err := facts.Load(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	d := doc.New()
	d.Flows = []*doc.Flow{{ID: "f1", Src: "10.1.10.5", Dst: "10.1.50.10", Proto: "tcp", DPort: 443}}
	liveLab, err := hosts.Up(context.Background(), f, d, hosts.Options{RegistryDir: live})
	if err != nil {
		t.Fatal(err)
	}
	defer hosts.Down(context.Background(), liveLab.ID, hosts.Options{RegistryDir: live})

	removed, err := reap(context.Background(), tmp)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(removed[dead], " "); got != labs[0].ID || len(removed) != 1 {
		t.Errorf("removed %v, want only %s from %s", removed, labs[0].ID, dead)
	}
	if n := nsOf(labs[0].ID); n != 0 {
		t.Errorf("%d namespaces of the killed test's lab %s still exist", n, labs[0].ID)
	}
	if l, _ := hosts.List(hosts.Options{RegistryDir: live}); len(l) != 1 {
		t.Errorf("the live test's lab was touched: %v", l)
	}
}
