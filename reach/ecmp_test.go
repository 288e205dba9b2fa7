package reach

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/internal/doc"
)

// TestExampleECMPEverySeed covers the example's ECMP + asymmetric flow (F23,
// ICMP 10.1.10.5 → 10.3.100.10) for any multipath hash seed. dc-gw's route to
// 10.3.100.0/24 has two nexthops, dc-core and dc-srv; the echo reply always
// returns through dc-core (the storage host's gateway). Through dc-core the
// connection works; through dc-srv, dc-core sees only the reply, which its
// conntrack calls INVALID, and `FORWARD -m conntrack --ctstate INVALID -j
// DROP` (#2) ends it. For each pinned seed the test asks the kernel which
// branch dc-gw takes (`ip route get … iif`) and asserts what that branch must
// give, until both branches have been seen; no outcome depends on the seed
// the machine happens to have.
func TestExampleECMPEverySeed(t *testing.T) {
	needRoot(t)
	f := loadFacts(t, "")
	fl := flow("F23", "10.1.10.5", "10.3.100.10", "icmp", 0)
	lab := labDoc(t, f, []*doc.Flow{fl})
	ns := labNetns(t, lab, "dc-gw")
	iif := hopIn(t, lab, "dc-gw")
	branch := func() string {
		out, err := exec.Command("ip", "-n", ns, "route", "get", "10.3.100.10", "from", "10.1.10.5", "iif", iif, "ipproto", "icmp").CombinedOutput()
		if err != nil {
			t.Fatalf("ip route get in %s: %v: %s", ns, err, out)
		}
		switch {
		case strings.Contains(string(out), "via 10.3.0.2 "):
			return "dc-core"
		case strings.Contains(string(out), "via 10.3.0.3 "):
			return "dc-srv"
		}
		t.Fatalf("dc-gw routes F23 neither via dc-core nor via dc-srv: %s", out)
		return ""
	}
	// The lab pinned a seed on every router (so runs repeat) and recorded it.
	for _, r := range lab.Lab.Routers {
		out, err := exec.Command("ip", "netns", "exec", r.Netns, "sysctl", "-n", "net.ipv4.fib_multipath_hash_seed").Output()
		if err != nil {
			t.Fatalf("read the seed of %s: %v", r.Name, err)
		}
		if got := strings.Fields(string(out)); r.HashSeed == 0 || len(got) == 0 || got[0] != fmt.Sprint(r.HashSeed) {
			t.Errorf("%s: recorded hash_seed %d, kernel %q", r.Name, r.HashSeed, out)
		}
	}
	seen := map[string][]int{}
	for seed := 1; seed <= 64 && (len(seen["dc-core"]) < 2 || len(seen["dc-srv"]) < 2); seed++ {
		// Every router gets the seed, and the lab's record says so: reach
		// then also checks that trace's multipath hash, with the lab's
		// seeds, names the branch the kernel took.
		for _, r := range lab.Lab.Routers {
			if out, err := exec.Command("ip", "netns", "exec", r.Netns, "sysctl", "-q", "-w", fmt.Sprintf("net.ipv4.fib_multipath_hash_seed=%d", seed)).CombinedOutput(); err != nil {
				t.Fatalf("pin the hash seed: %v: %s", err, out)
			}
			r.HashSeed = uint32(seed)
		}
		b := branch()
		seen[b] = append(seen[b], seed)
		if len(seen[b]) > 2 {
			continue // two seeds per branch are enough
		}
		t.Run(fmt.Sprintf("seed=%d/via=%s", seed, b), func(t *testing.T) {
			d := *lab
			d.Reach = nil
			if err := Run(context.Background(), f, &d, Options{Log: testLog(t), Timeout: testTimeout, ReuseEndToEnd: true}); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if again := branch(); again != b {
				t.Fatalf("the kernel's branch changed during the probe: %s, then %s", b, again)
			}
			e := d.Reach[0].E2E
			got := ""
			if e.BlockedBy != nil {
				got = e.BlockedBy.Router + " " + ruleKey(e.BlockedBy.Table, e.BlockedBy.Chain, e.BlockedBy.Index)
			}
			wantPath := "hq-core(eth1>eth0) hq-gw(eth1>wg0) dc-gw(wg0>eth0) " + b + "(eth0>eth2)"
			if p := strings.Join(e.Path, " "); p != wantPath {
				t.Errorf("observed request path %q, want %q", p, wantPath)
			}
			switch b {
			case "dc-core":
				if e.Verdict != doc.Reachable || got != "" {
					t.Errorf("via dc-core: %s (%s) blocked by %q, want REACHABLE", e.Verdict, e.Reason, got)
				}
				if p := strings.Join(e.ReplyPath, " "); p != "dc-core(eth2>eth0) dc-gw(eth0>wg0) hq-gw(wg0>eth1) hq-core(eth0>eth1)" {
					t.Errorf("observed reply path %q", p)
				}
			case "dc-srv":
				if e.Verdict != doc.Unreachable || got != "dc-core filter FORWARD 2" {
					t.Errorf("via dc-srv: %s (%s) blocked by %q, want UNREACHABLE by dc-core filter FORWARD 2 (the reply is INVALID there)", e.Verdict, e.Reason, got)
				}
				if e.BlockedBy == nil || e.BlockedBy.Direction != doc.Reply || e.Cause != causeFilter {
					t.Errorf("via dc-srv: blocked_by %+v cause %q, want the reply stopped by a filter rule", e.BlockedBy, e.Cause)
				}
				if p := strings.Join(e.ReplyPath, " "); p != "dc-core(eth2>eth0)" {
					t.Errorf("observed reply path %q, want dc-core(eth2>eth0) only", p)
				}
			}
			// Every router with evidence is judged by it; only the one that
			// stopped the connection is blamed, and the prediction for the
			// branch the kernel took agrees with all of it.
			for _, v := range e.Routers {
				if v.Verdict == doc.Blocked && (b == "dc-core" || v.Router != "dc-core") {
					t.Errorf("%s blamed: %s %s", v.Router, v.Verdict, v.Reason)
				}
				if !v.Agrees {
					t.Errorf("%s: live %s, predicted %s", v.Router, v.Verdict, v.Predicted)
				}
			}
			// The per-router view tests both branches' routers alone.
			var tested []string
			for _, v := range d.Reach[0].Routers {
				tested = append(tested, v.Router)
			}
			if got := strings.Join(tested, " "); got != "hq-core hq-gw dc-gw dc-core dc-srv" {
				t.Errorf("per-router view tests %q, want every branch's routers", got)
			}
			if e.Agrees == nil || !*e.Agrees || e.PathDiffers || len(d.Reach[0].Disagreements) > 0 {
				t.Errorf("live and the branch's prediction disagree: agrees %v, path_differs %v, %q", e.Agrees, e.PathDiffers, d.Reach[0].Disagreements)
			}
			if t.Failed() {
				t.Log("\n" + summary(d.Reach))
			}
		})
	}
	t.Logf("seeds by branch: %v", seen)
	// A lab whose record names another seed than its kernels use: trace's
	// hash then predicts the other branch, and reach must say so.
	if len(seen["dc-core"]) > 0 && len(seen["dc-srv"]) > 0 {
		t.Run("recorded seed differs from the kernel's", func(t *testing.T) {
			for _, r := range lab.Lab.Routers {
				if out, err := exec.Command("ip", "netns", "exec", r.Netns, "sysctl", "-q", "-w", fmt.Sprintf("net.ipv4.fib_multipath_hash_seed=%d", seen["dc-srv"][0])).CombinedOutput(); err != nil {
					t.Fatalf("pin the hash seed: %v: %s", err, out)
				}
				r.HashSeed = uint32(seen["dc-core"][0])
			}
			d := *lab
			d.Reach = nil
			if err := Run(context.Background(), f, &d, Options{Log: testLog(t), Timeout: testTimeout, ReuseEndToEnd: true}); err != nil {
				t.Fatalf("Run: %v", err)
			}
			res := d.Reach[0]
			if !res.E2E.PathDiffers || !strings.Contains(strings.Join(res.Disagreements, "\n"), "ECMP: the packets took branch 2, trace's multipath hash with the lab's seeds predicts branch 1") {
				t.Errorf("path_differs %v, disagreements %q", res.E2E.PathDiffers, res.Disagreements)
			}
		})
	}
	if len(seen["dc-core"]) == 0 || len(seen["dc-srv"]) == 0 {
		t.Errorf("64 seeds did not cover both branches: %v", seen)
	}
}

func labNetns(t *testing.T, d *doc.Document, router string) string {
	t.Helper()
	for _, r := range d.Lab.Routers {
		if r.Name == router {
			return r.Netns
		}
	}
	t.Fatalf("no router %s in the lab", router)
	return ""
}

// hopIn is the interface the traced flow enters router on.
func hopIn(t *testing.T, d *doc.Document, router string) string {
	t.Helper()
	for _, h := range d.Trace[0].Hops {
		if h.Node == router {
			return h.In
		}
	}
	t.Fatalf("the trace does not cross %s", router)
	return ""
}
