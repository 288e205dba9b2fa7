package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestDiffAgreesWithKernel: a change (the ipset db_clients on dc-srv loses
// 10.1.20.0/24) is diffed, then the same flows are probed for real in a lab
// built from the facts before and from the facts after the change. The
// flows diff lists are exactly the flows whose live verdict changed, and
// the live verdicts are the ones each facts set predicts.
func TestDiffAgreesWithKernel(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	if r := tsim(t, dir, "facts", "parse", "-o", "before.json"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	b, err := os.ReadFile(filepath.Join(dir, "before.json"))
	if err != nil {
		t.Fatal(err)
	}
	var nf map[string]any
	if err := json.Unmarshal(b, &nf); err != nil {
		t.Fatal(err)
	}
	removed := false
	for _, r := range nf["facts"].(map[string]any)["routers"].([]any) {
		rm := r.(map[string]any)
		sets, _ := rm["ipsets"].([]any)
		for _, s := range sets {
			sm := s.(map[string]any)
			if rm["name"] != "dc-srv" || sm["name"] != "db_clients" {
				continue
			}
			var keep []any
			for _, m := range sm["members"].([]any) {
				if m.(map[string]any)["value"] == "10.1.20.0/24,tcp:5432" {
					removed = true
					continue
				}
				keep = append(keep, m)
			}
			sm["members"] = keep
		}
	}
	if !removed {
		t.Fatal("no db_clients member 10.1.20.0/24,tcp:5432 in the example")
	}
	after, _ := json.Marshal(nf)
	if err := os.WriteFile(filepath.Join(dir, "after.json"), after, 0o644); err != nil {
		t.Fatal(err)
	}
	type pair struct{ src, dst, spec string }
	pairs := []pair{{"10.1.20.10", "10.3.20.10", "5432/tcp,22/tcp,icmp"}, {"10.1.10.5", "10.3.10.5", "https"}}
	flows := "src,dst,spec\n"
	for _, p := range pairs {
		flows += p.src + "," + p.dst + ",\"" + p.spec + "\"\n"
	}
	os.WriteFile(filepath.Join(dir, "flows.csv"), []byte(flows), 0o644)

	r := tsim(t, dir, "diff", "--reference", "before.json", "--facts", "after.json", "--flows", "flows.csv", "--json")
	if r.code != 1 {
		t.Fatalf("diff exit %d, want 1\n%s", r.code, r.stderr)
	}
	var res struct {
		Changes []struct {
			Flow struct {
				Src, Dst, Proto string
				DPort           int `json:"dport"`
			} `json:"flow"`
			Old, New struct{ Disposition string }
		} `json:"changes"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatal(err)
	}
	type key struct {
		src, dst, proto string
		port            int
	}
	predicted := map[key]bool{}
	for _, c := range res.Changes {
		predicted[key{c.Flow.Src, c.Flow.Dst, c.Flow.Proto, c.Flow.DPort}] = true
	}
	// The kernel, before and after.
	live := map[string]map[key]string{}
	for _, facts := range []string{"before.json", "after.json"} {
		live[facts] = map[key]string{}
		for _, p := range pairs {
			r := tsim(t, dir, "--facts", facts, "run", "-s", p.src, "-d", p.dst, "-p", p.spec, "--json", "-o", "r.pdf", "--probe-timeout", "3s")
			if r.code != 0 && r.code != 1 {
				t.Fatalf("run %s: exit %d\n%s", facts, r.code, r.stderr)
			}
			var d struct {
				Lab *struct {
					ID      string `json:"id"`
					Removed bool   `json:"removed"`
				} `json:"lab"`
				Flows []struct {
					ID, Proto string
					DPort     int `json:"dport"`
				} `json:"flows"`
				Reach []struct {
					Flow string
					E2E  struct {
						Verdict string
						Agrees  *bool
					} `json:"e2e"`
				} `json:"reach"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
				t.Fatalf("run output: %v\n%s", err, r.stdout)
			}
			if d.Lab != nil {
				labGone(t, d.Lab.ID)
			}
			port := map[string]key{}
			for _, f := range d.Flows {
				port[f.ID] = key{p.src, p.dst, f.Proto, f.DPort}
			}
			for _, x := range d.Reach {
				if x.E2E.Agrees == nil || !*x.E2E.Agrees {
					t.Errorf("%s %v: the kernel says %s, unlike the trace of the same facts", facts, port[x.Flow], x.E2E.Verdict)
				}
				live[facts][port[x.Flow]] = x.E2E.Verdict
			}
		}
	}
	if len(live["before.json"]) != 4 {
		t.Fatalf("probed %d flows, want 4: %v", len(live["before.json"]), live)
	}
	for k, v := range live["before.json"] {
		changed := v != live["after.json"][k]
		if changed != predicted[k] {
			t.Errorf("%v: kernel %s before, %s after; diff lists it: %v", k, v, live["after.json"][k], predicted[k])
		}
	}
	if len(predicted) != 1 {
		t.Errorf("diff lists %d flows, want the one PostgreSQL flow from 10.1.20.10: %v", len(predicted), predicted)
	}
}
