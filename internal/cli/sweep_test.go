package cli

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSweepCommand sweeps a small space of the example in every format and
// checks lines, exit codes and usage errors.
func TestSweepCommand(t *testing.T) {
	out, errs, code := run(t, "", "sweep", "-s", "10.1.20.0/24", "-d", "10.3.20.0/24", "-p", "5430-5434/tcp", "--format", "text")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (some flows denied); stderr %s", code, errs)
	}
	for _, want := range []string{
		"10.1.20.0-10.1.20.254 → 10.3.20.0 tcp: 5430-5431 DENIED by dc-gw filter FORWARD policy, 5432 DELIVERED by dc-srv, 5433-5434 DENIED by dc-gw filter FORWARD policy",
		// dc-srv's subnet broadcast: received by its local table's
		// broadcast route, never forwarded, dropped in INPUT.
		"10.1.20.0-10.1.20.254 → 10.3.20.255 tcp: 5430-5431 DENIED by dc-gw filter FORWARD policy, 5432 DENIED by dc-srv filter LOG_DROP #2, 5433-5434 DENIED by dc-gw filter FORWARD policy",
		"# 327680 flows in ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Everything delivered: exit 0 (the subnets' broadcasts, .255, are
	// the routers' own: no host answers there).
	if _, errs, code := run(t, "", "sweep", "-s", "10.1.20.0-10.1.20.254", "-d", "10.3.20.2-10.3.20.254", "-p", "5432/tcp"); code != 0 {
		t.Errorf("exit %d, want 0; stderr %s", code, errs)
	}
	out, _, _ = run(t, "", "sweep", "-s", "10.1.20.0/24", "-d", "10.3.20.0/24", "-p", "5432", "--format", "csv")
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) < 2 || strings.Join(recs[0], ",") != "src,dst,proto,ports,answer" {
		t.Fatalf("csv: %v %q", err, out)
	}
	out, _, _ = run(t, "", "sweep", "-s", "10.1.20.0/24", "-d", "10.3.20.0/24", "-p", "5432", "--json")
	var js struct {
		Classes int `json:"classes"`
		Groups  []struct {
			Src, Dst, Proto string
			Runs            []struct{ Ports, Label string }
		} `json:"groups"`
	}
	if err := json.Unmarshal([]byte(out), &js); err != nil || js.Classes == 0 || len(js.Groups) == 0 || js.Groups[0].Runs[0].Ports != "5432" {
		t.Fatalf("json: %v %+v", err, js)
	}
	// By rule: the answers with their share; 256 × 256 × 5 flows in all.
	// To 10.3.20.1 (dc-srv) and 10.3.20.255 (its broadcast) INPUT drops
	// 5432; the replies to 10.1.20.255 (hq-core's broadcast) stop there.
	out, _, code = run(t, "", "sweep", "-s", "10.1.20.0/24", "-d", "10.3.20.0/24", "-p", "5430-5434/tcp", "--by-rule", "--text")
	for _, want := range []string{"262144 flows        80%  DENIED by dc-gw filter FORWARD policy\n", "64770 flows      19.8%  DELIVERED by dc-srv\n",
		"512 flows     0.156%  DENIED by dc-srv filter LOG_DROP #2\n", "# 327680 flows in "} {
		if code != 1 || !strings.Contains(out, want) {
			t.Errorf("--by-rule: exit %d, output lacks %q:\n%s", code, want, out)
		}
	}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"sweep", "-d", "10.0.0.0/8"}, "sweep: missing required flag --src"},
		{[]string{"sweep", "-s", "10.0.0.0/33", "-d", "10.0.0.0/8"}, "--src"},
		{[]string{"sweep", "-s", "10.0.0.0/8", "-d", "10.0.0.0/8", "-p", "9-1/tcp"}, "9-1/tcp"},
		{[]string{"sweep", "-s", "10.0.0.0/8", "-d", "10.0.0.0/8", "--format", "xml"}, "--format"},
		{[]string{"trace", "-s", "10.1.10.0/24", "-d", "10.3.20.10"}, "tsim sweep"},
		{[]string{"run", "-s", "10.1.10.5", "-d", "10.3.20.1-10.3.20.9", "-p", "22"}, "tsim sweep"},
	} {
		out, errs, code := run(t, "", c.args...)
		if code != 2 || !strings.Contains(errs, c.msg) || out != "" || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want exit 2, one line naming %q", c.args, code, errs, out, c.msg)
		}
	}
}

// TestDiffCommand diffs the example against itself (nothing changed, exit
// 0) and against a copy without one ipset member (exit 1, the changed
// flows listed), over a flows file and over a space, and writes the PDF.
func TestDiffCommand(t *testing.T) {
	dir := t.TempDir()
	before := filepath.Join(dir, "before.json")
	if _, errs, code := run(t, "", "facts", "parse", "-o", before); code != 0 {
		t.Fatal(errs)
	}
	b, err := os.ReadFile(before)
	if err != nil {
		t.Fatal(err)
	}
	// The proposed change: 10.1.20.0/24 leaves the ipset db_clients on dc-srv.
	var nf map[string]any
	if err := json.Unmarshal(b, &nf); err != nil {
		t.Fatal(err)
	}
	removed := false
	for _, r := range nf["facts"].(map[string]any)["routers"].([]any) {
		rm := r.(map[string]any)
		if rm["name"] != "dc-srv" {
			continue
		}
		for _, s := range rm["ipsets"].([]any) {
			sm := s.(map[string]any)
			if sm["name"] != "db_clients" {
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
		t.Fatal("no db_clients member 10.1.20.0/24,tcp:5432 in the normalized example")
	}
	edited, err := json.Marshal(nf)
	if err != nil {
		t.Fatal(err)
	}
	after := filepath.Join(dir, "after.json")
	if err := os.WriteFile(after, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	flows := filepath.Join(dir, "flows.csv")
	os.WriteFile(flows, []byte("src,dst,spec\n10.1.20.10,10.3.20.10,5432/tcp\n10.1.10.5,10.3.20.10,5432/tcp\n"), 0o644)

	if out, errs, code := run(t, "", "diff", "--reference", before, "--facts", before, "--flows", flows, "--text"); code != 0 || !strings.Contains(out, "# 0 changed of 2 flows") {
		t.Errorf("same facts: exit %d, out %q, stderr %q", code, out, errs)
	}
	pdfPath := filepath.Join(dir, "change.pdf")
	out, errs, code := run(t, "", "diff", "--reference", before, "--facts", after, "--flows", flows, "--text", "-o", pdfPath)
	if code != 1 || out != "10.1.20.10 → 10.3.20.10 5432/tcp: DELIVERED by dc-srv → DENIED by dc-srv filter DB_GUARD #3\n# 1 changed of 2 flows (flows "+flows+")\n" {
		t.Errorf("flows: exit %d, out %q, stderr %q", code, out, errs)
	}
	if st, err := os.Stat(pdfPath); err != nil || st.Size() < 1000 {
		t.Errorf("no PDF written: %v", err)
	}
	out, errs, code = run(t, "", "diff", "--reference", before, "--facts", after, "-s", "10.1.0.0/16", "-d", "10.3.0.0/16", "-p", "1-65535/tcp", "--format", "csv")
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	// Sources 10.1.20.0-254 and 10.1.20.255 (hq-core's broadcast: the
	// reply is received there as a broadcast, NULL_ROUTED before the
	// change) to the hosts of 10.3.20.0/24.
	if code != 1 || err != nil || len(recs) != 5 || recs[1][0] != "10.1.20.0-10.1.20.254" || recs[1][3] != "5432" {
		t.Errorf("space: exit %d, %v, %q, stderr %q", code, err, out, errs)
	}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"diff", "--flows", flows}, "diff: missing required flag --reference"},
		{[]string{"diff", "--reference", before}, "--flows FILE or a space"},
		{[]string{"diff", "--reference", before, "--flows", flows, "-s", "10.0.0.1"}, "--flows excludes"},
	} {
		out, errs, code := run(t, "", c.args...)
		if code != 2 || !strings.Contains(errs, c.msg) || out != "" {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want exit 2 naming %q", c.args, code, errs, out, c.msg)
		}
	}
}

// TestFactsCheckShadowed appends to dc-srv's FORWARD chain a rule an
// earlier rule shadows and wants `facts check` to warn at its position.
func TestFactsCheckShadowed(t *testing.T) {
	dir := t.TempDir()
	before := filepath.Join(dir, "before.json")
	if _, errs, code := run(t, "", "facts", "parse", "-o", before); code != 0 {
		t.Fatal(errs)
	}
	b, _ := os.ReadFile(before)
	var nf map[string]any
	if err := json.Unmarshal(b, &nf); err != nil {
		t.Fatal(err)
	}
	const text = "-A FORWARD -o eth1 -p tcp -m tcp --dport 5432 -j DROP"
	for _, r := range nf["facts"].(map[string]any)["routers"].([]any) {
		rm := r.(map[string]any)
		if rm["name"] != "dc-srv" {
			continue
		}
		for _, tb := range rm["iptables"].([]any) {
			if tb.(map[string]any)["name"] != "filter" {
				continue
			}
			for _, c := range tb.(map[string]any)["chains"].([]any) {
				cm := c.(map[string]any)
				if cm["name"] != "FORWARD" {
					continue
				}
				rules := cm["rules"].([]any)
				var rule map[string]any
				json.Unmarshal([]byte(`{"chain": "FORWARD", "text": "`+text+`", "pos": {"file": "change.txt", "line": 7},
					"matches": [{"options": [{"name": "out-interface", "args": ["eth1"]}]}, {"options": [{"name": "protocol", "args": ["tcp"]}]},
					{"module": "tcp", "options": [{"name": "dport", "args": ["5432"]}]}], "target": {"name": "DROP"}}`), &rule)
				rule["index"] = len(rules) + 1
				cm["rules"] = append(rules, rule)
			}
		}
	}
	edited, _ := json.Marshal(nf)
	proposed := filepath.Join(dir, "proposed.json")
	os.WriteFile(proposed, edited, 0o644)
	out, errs, code := run(t, "", "--facts", proposed, "facts", "check")
	if code != 0 || !strings.Contains(out, "change.txt:7: warning: filter/FORWARD rule 9 can never match: everything it matches is matched first by rule #5 (shadowed): "+text) {
		t.Errorf("exit %d, stderr %q, out:\n%s", code, errs, out)
	}
}
