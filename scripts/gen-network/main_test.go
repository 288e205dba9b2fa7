package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/pipeline"
	"github.com/tsim-dev/tsim/internal/pool"
	"github.com/tsim-dev/tsim/internal/testenv"
)

func generate(t *testing.T, routers, flows int, seed string) string {
	t.Helper()
	dir := t.TempDir()
	args := []string{"--routers", itoa(routers), "--flows", itoa(flows), "--seed", seed, "-o", dir}
	if err := run(context.Background(), args, io.Discard); err != nil {
		t.Fatalf("gen-network %v: %v", args, err)
	}
	return dir
}

func itoa(n int) string { return strconv.Itoa(n) }

// tree reads every file under dir, by relative path.
func tree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		m[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDeterministic(t *testing.T) {
	a := tree(t, generate(t, 23, 200, "7"))
	b := tree(t, generate(t, 23, 200, "7"))
	c := tree(t, generate(t, 23, 200, "8"))
	if len(a) != 23+1 {
		t.Fatalf("%d files, want 23 facts files and flows.csv", len(a))
	}
	for name, x := range a {
		if !bytes.Equal(x, b[name]) {
			t.Errorf("%s differs between two runs with seed 7", name)
		}
	}
	if len(a) != len(b) {
		t.Errorf("seed 7 twice: %d and %d files", len(a), len(b))
	}
	same := 0
	for name, x := range a {
		if bytes.Equal(x, c[name]) {
			same++
		}
	}
	if same == len(a) {
		t.Errorf("seeds 7 and 8 gave the same bytes")
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--routers", "10"},                             // no -o
		{"--routers", "3", "-o", t.TempDir()},           // too few
		{"--routers", "2000", "-o", t.TempDir()},        // too many
		{"--flows", "-1", "-o", t.TempDir()},            // negative
		{"--routers", "10", "-o", t.TempDir(), "extra"}, // stray argument
		{"--routers", "ten", "-o", t.TempDir()},         // not a number
	} {
		if err := run(context.Background(), args, io.Discard); err == nil || !strings.Contains(err.Error(), "usage") {
			t.Errorf("%v: err %v, want a usage error", args, err)
		}
	}
}

// TestLintClean loads generated facts of several sizes with tsim's loader
// and requires zero lint errors (and warnings), and the features the issue
// asks for: ECMP, policy routing, NAT, custom chains, a long tail of rules,
// ipsets up to 50,000 members, mixed answers.
func TestLintClean(t *testing.T) {
	for _, n := range []int{5, 10, 47} {
		t.Run(itoa(n), func(t *testing.T) {
			dir := generate(t, n, 300, "1")
			f, err := facts.Load(context.Background(), filepath.Join(dir, "facts"))
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Routers) != n {
				t.Fatalf("%d routers loaded, want %d", len(f.Routers), n)
			}
			for _, x := range facts.Lint(f) {
				t.Errorf("lint: %s", x)
			}
			maxRules, maxMembers, multipath, policy, nat := 0, 0, 0, 0, 0
			for _, r := range f.Routers {
				c := facts.Counts(r)
				maxRules = max(maxRules, c.IptablesRules)
				for _, s := range r.Ipsets {
					maxMembers = max(maxMembers, len(s.Members))
				}
				for _, tb := range r.Tables {
					for _, rt := range tb.Routes {
						if len(rt.Nexthops) > 1 {
							multipath++
						}
					}
				}
				if len(r.Rules) > 3 {
					policy++
				}
				for _, tb := range r.Iptables {
					if tb.Name == "nat" {
						nat++
					}
				}
			}
			if maxRules < bigFiller || maxMembers != maxIpset {
				t.Errorf("largest ruleset %d rules (want ≥ %d), largest ipset %d members (want %d)", maxRules, bigFiller, maxMembers, maxIpset)
			}
			if multipath == 0 || policy == 0 || nat == 0 {
				t.Errorf("multipath routes %d, routers with policy rules %d, with nat %d: want each > 0", multipath, policy, nat)
			}
			allow, deny := 0, 0
			for _, rec := range readFlows(t, dir) {
				switch rec[3] {
				case "allow":
					allow++
				case "deny":
					deny++
				default:
					t.Errorf("flow %v: expect %q", rec, rec[3])
				}
			}
			if allow+deny != 300 || allow < 30 || deny < 30 {
				t.Errorf("%d allow, %d deny of 300: want both well mixed", allow, deny)
			}
		})
	}
}

func readFlows(t *testing.T, dir string) [][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "flows.csv"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 || strings.Join(recs[0], ",") != "src,dst,spec,expect" {
		t.Fatalf("flows.csv header %v", recs[:1])
	}
	return recs[1:]
}

// TestLab builds a lab of a small generated network (the default scope: the
// routers the flows can touch, here every one), with nothing refused by the
// kernel, probes a sample of the flows and checks every conclusive verdict
// against the expect column the simulation wrote.
// Inconclusive probes (UNKNOWN on a loaded machine) decide nothing.
func TestLab(t *testing.T) {
	testenv.NeedRoot(t, "sudo go test ./scripts/gen-network/")
	testenv.NeedTools(t, "iptables-restore", "ipset")
	dir := generate(t, 12, 24, "3")
	f, err := facts.Load(context.Background(), filepath.Join(dir, "facts"))
	if err != nil {
		t.Fatal(err)
	}
	var groups [][]*doc.Flow
	for i, rec := range readFlows(t, dir) {
		fl := &doc.Flow{ID: "f" + itoa(i+1), Src: rec[0], Dst: rec[1], Service: rec[2], Expect: rec[3], Line: i + 2}
		if rec[2] == "icmp" {
			fl.Proto = "icmp"
		} else {
			p, proto, _ := strings.Cut(rec[2], "/")
			fl.Proto = proto
			for _, c := range p {
				fl.DPort = fl.DPort*10 + int(c-'0')
			}
		}
		groups = append(groups, []*doc.Flow{fl})
	}
	reg := filepath.Join(t.TempDir(), "labs")
	res, err := pipeline.Run(context.Background(), pipeline.Request{Facts: f, Groups: groups, Registry: reg},
		pipeline.Deps{Pool: pool.New(0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(reg); len(ents) != 0 {
		t.Errorf("lab registry not empty after the run: %d records", len(ents))
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), "tsim-"+res.LabID+"-") {
		t.Errorf("namespaces of lab %s left behind", res.LabID)
	}
	d0 := res.Docs[0]
	if d0.Lab == nil || len(d0.Lab.Routers) == 0 || len(d0.Lab.Routers) > 12 {
		t.Fatalf("lab: %+v, want 1 to 12 routers", d0.Lab)
	}
	for _, r := range d0.Lab.Routers {
		for _, x := range r.Refused {
			t.Errorf("kernel refused %s %s %s: %s", r.Name, x.What, x.Line, x.Error)
		}
	}
	decided, hairpins := 0, 0
	for _, d := range res.Docs {
		fl := d.Flows[0]
		if len(d.Reach) == 0 || d.Reach[0].E2E == nil {
			t.Errorf("%s→%s %s: no reach result", fl.Src, fl.Dst, fl.Service)
			continue
		}
		v := d.Reach[0].E2E.Verdict
		got := map[string]string{doc.Reachable: "allow", doc.Unreachable: "deny"}[v]
		if got == "" {
			t.Logf("%s→%s %s: %s (inconclusive)", fl.Src, fl.Dst, fl.Service, v)
			continue
		}
		decided++
		if got != fl.Expect {
			t.Errorf("%s→%s %s: the lab says %s (%s), the generator's simulation %s", fl.Src, fl.Dst, fl.Service, got, v, fl.Expect)
		}
		// The network models nothing the lab cannot show: live and
		// predicted agree router by router, on the ECMP branch (request
		// and reply) the packets took.
		for _, s := range d.Reach[0].Disagreements {
			t.Errorf("%s→%s %s: %s", fl.Src, fl.Dst, fl.Service, s)
		}
		// The transit hubs forward out of the interface a packet came in
		// on: the per-router harness tests that hairpin too.
		for _, rv := range d.Reach[0].Routers {
			if rv.In != "" && rv.In == rv.Out {
				hairpins++
				if rv.Verdict != doc.Allowed && rv.Verdict != doc.Blocked {
					t.Errorf("%s→%s %s: hairpin hop %s (%s>%s) %s: %s", fl.Src, fl.Dst, fl.Service, rv.Router, rv.In, rv.Out, rv.Verdict, rv.Reason)
				}
			}
		}
	}
	if hairpins == 0 {
		t.Error("no flow's router views cross a hairpin hop: the test proves nothing about them")
	}
	t.Logf("%d of %d flows decided by the lab, %d hairpin hops", decided, len(res.Docs), hairpins)
}
