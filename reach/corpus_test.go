package reach

import (
	"context"
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/testenv"
)

// TestCorpusPaths probes several paths of the predecessor's corpus, whose
// lab the kernel only partly accepts: where a path consults a route the
// kernel refused, both views say UNKNOWN and name the refused line; where
// it does not, live agrees with the prediction.
func TestCorpusPaths(t *testing.T) {
	needRoot(t)
	f := loadFacts(t, testenv.Corpus(t, "raw_facts"))
	flows := []*doc.Flow{
		flow("ssh-to-gw", "10.1.1.50", "10.1.1.1", "tcp", 22),       // INPUT of hq-gw
		flow("dc-https", "10.3.10.50", "10.3.21.100", "tcp", 443),   // dropped on dc-srv
		flow("dmz-to-lab", "10.1.3.50", "10.1.11.75", "icmp", 0),    // no neighbour on hq-core eth0
		flow("lab-to-dc", "10.1.10.25", "10.3.20.100", "tcp", 22),   // refused route on hq-lab
		flow("wifi-to-dc", "10.2.5.25", "10.3.2.3", "tcp", 22),      // refused route on br-wifi
		flow("dc-to-hq-dns", "10.3.1.2", "10.1.1.2", "udp", 53),     // refused route on dc-gw
		flow("core-to-branch", "10.1.2.1", "10.2.2.1", "icmp", 0),   // refused route on hq-gw
		flow("lab-hosts", "10.1.10.25", "10.1.11.75", "udp", 10000), // inside hq-lab
	}
	d := labDoc(t, f, flows)
	refusedRoutes := 0
	for _, r := range d.Lab.Routers {
		for _, x := range r.Refused {
			if x.What == "route" {
				refusedRoutes++
			}
		}
	}
	if refusedRoutes == 0 {
		t.Fatal("the corpus lab refused no route: this test needs refusals")
	}
	if err := Run(context.Background(), f, d, Options{Log: testLog(t), Timeout: testTimeout}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	byFlow := map[string]*doc.Reach{}
	for _, r := range d.Reach {
		byFlow[r.Flow] = r
		if r.E2E == nil || r.E2E.Verdict == "" {
			t.Errorf("%s: no end-to-end verdict", r.Flow)
			continue
		}
		for _, v := range r.Routers {
			if v.Verdict == "" || v.Verdict == doc.Unknown && v.Reason == "" {
				t.Errorf("%s at %s: verdict %q without reason", r.Flow, v.Router, v.Verdict)
			}
		}
		if r.E2E.Verdict == doc.Unknown && r.E2E.Reason == "" {
			t.Errorf("%s: UNKNOWN without a reason", r.Flow)
		}
	}
	check := func(id, verdict, blockedBy string) *doc.Reach {
		t.Helper()
		r := byFlow[id]
		if r == nil {
			t.Fatalf("no result for %s", id)
		}
		e := r.E2E
		if e.Verdict != verdict {
			t.Errorf("%s: end to end %s (%s), want %s", id, e.Verdict, e.Reason, verdict)
		}
		got := ""
		if b := e.BlockedBy; b != nil {
			got = b.Router
			if b.Chain != "" {
				got += " " + ruleKey(b.Table, b.Chain, b.Index)
			}
		}
		if got != blockedBy {
			t.Errorf("%s: blocked_by %q, want %q", id, got, blockedBy)
		}
		return r
	}
	agreeing := func(r *doc.Reach) {
		t.Helper()
		if len(r.Disagreements) > 0 {
			t.Errorf("%s: disagreements %q", r.Flow, r.Disagreements)
		}
	}
	r := check("ssh-to-gw", doc.Reachable, "")
	agreeing(r)
	if len(r.Routers) != 1 || liveKey(r.Routers[0].Rule) != "filter INPUT 38" || !strings.Contains(r.Routers[0].Rule.Text, "--dport 22") {
		t.Errorf("ssh-to-gw: per-router view %s", summary([]*doc.Reach{r}))
	}
	agreeing(check("dc-https", doc.Unreachable, "dc-srv filter FORWARD 53"))
	r = check("dmz-to-lab", doc.Unreachable, "hq-core")
	agreeing(r)
	if !strings.Contains(r.E2E.Reason, "no neighbour") {
		t.Errorf("dmz-to-lab: reason %q does not say no neighbour answered", r.E2E.Reason)
	}
	for _, id := range []string{"lab-to-dc", "wifi-to-dc", "dc-to-hq-dns", "core-to-branch"} {
		r := check(id, doc.Unknown, "")
		if !strings.Contains(r.E2E.Reason, "kernel refuses") {
			t.Errorf("%s: UNKNOWN reason %q does not name the refused line", id, r.E2E.Reason)
		}
		unknown := false
		for _, v := range r.Routers {
			if v.Verdict == doc.Unknown && strings.Contains(v.Reason, "kernel refuses") {
				unknown = true
			}
		}
		if !unknown {
			t.Errorf("%s: no router of the per-router view is UNKNOWN for the refused line:\n%s", id, summary([]*doc.Reach{r}))
		}
	}
	if t.Failed() {
		t.Log("\n" + summary(d.Reach))
	}
}
