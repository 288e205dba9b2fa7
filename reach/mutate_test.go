package reach

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tsim-dev/tsim/hosts"
	"github.com/tsim-dev/tsim/internal/doc"
)

// TestLiveDiffersOnPurpose changes the lab after `hosts up` so that live and
// predicted must differ, and checks that reach says so: agrees=false, the
// router and the kernel's rule (not the facts' text) that really decided,
// no other router blamed, and the disagreement in the report. The flow is
// F01 (https from an HQ user to the DMZ web server: hq-core → hq-gw →
// hq-dmz, accepted at hq-gw by HQ_EGRESS #3).
func TestLiveDiffersOnPurpose(t *testing.T) {
	needRoot(t)
	f := loadFacts(t, "")
	// Every router: the mutations send packets where the facts do not, so
	// the lab must hold routers no trace of the facts touches (inet-gw).
	lab := labDocScope(t, f, []*doc.Flow{flow("F01", "10.1.10.5", "10.1.50.10", "tcp", 443), flow("ping", "10.1.10.5", "10.1.50.10", "icmp", 0)}, hosts.ScopeAll)
	gw := labNetns(t, lab, "hq-gw")
	sh := func(t *testing.T, args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", append([]string{"netns", "exec", gw}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	const egress3 = "-d 10.1.50.0/24 -o eth0 -p tcp -m multiport --dports 22,80,443"
	cases := []struct {
		name         string
		icmp         bool // probe the ICMP flow (a TCP SYN would be dropped by a FORWARD policy first)
		change, undo [][]string
		blockedBy    string // "router table chain index", or "router" for routing
		cause        string
		ruleText     string // in blocked_by.rule
		note         string // in the disagreements
		pathDiffers  bool
		// silent: the drop moves no counter and sends no error; the probe
		// must end because the router that blackholes it received it,
		// not by its timeout, which is set to ten minutes (if the probe
		// waited for it, go test's own -timeout would fail the test).
		silent bool
	}{
		{name: "a rule's target changed",
			change:    [][]string{{"iptables", "-R", "HQ_EGRESS", "3"}},
			undo:      [][]string{{"iptables", "-R", "HQ_EGRESS", "3"}},
			blockedBy: "hq-gw filter HQ_EGRESS 3", cause: causeFilter, ruleText: "-j DROP",
			note: "the lab's rule differs from the facts"},
		{name: "a DROP inserted",
			change:    [][]string{{"iptables", "-I", "FORWARD", "1", "-p", "tcp", "--dport", "443", "-j", "DROP"}},
			undo:      [][]string{{"iptables", "-D", "FORWARD", "1"}},
			blockedBy: "hq-gw filter FORWARD 1", cause: causeFilter, ruleText: "--dport 443 -j DROP",
			note: "is not in the facts"},
		{name: "a route replaced by a blackhole",
			change:    [][]string{{"ip", "route", "replace", "blackhole", "10.1.50.0/24"}},
			undo:      [][]string{{"ip", "route", "replace", "10.1.50.0/24", "via", "10.1.0.3", "dev", "eth0", "proto", "static"}},
			blockedBy: "hq-gw", cause: causeBlackhole, silent: true},
		{name: "a route deleted: the default route takes the packet elsewhere",
			change:    [][]string{{"ip", "route", "del", "10.1.50.0/24"}},
			undo:      [][]string{{"ip", "route", "add", "10.1.50.0/24", "via", "10.1.0.3", "dev", "eth0", "proto", "static"}},
			blockedBy: "inet-gw filter FORWARD 0", cause: causeFilter, pathDiffers: true},
		{name: "forwarding disabled on the incoming interface",
			change:    [][]string{{"sysctl", "-qw", "net.ipv4.conf.eth1.forwarding=0"}},
			undo:      [][]string{{"sysctl", "-qw", "net.ipv4.conf.eth1.forwarding=1"}},
			blockedBy: "hq-gw", cause: causeForwarding},
		{name: "rp_filter: the source's route now points elsewhere",
			change: [][]string{{"sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1", "net.ipv4.conf.eth1.rp_filter=1"},
				{"ip", "route", "del", "10.1.10.0/24"}},
			undo: [][]string{{"ip", "route", "add", "10.1.10.0/24", "via", "10.1.1.2", "dev", "eth1", "proto", "static"},
				{"sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.eth1.rp_filter=0"}},
			blockedBy: "hq-gw", cause: causeRPFilter},
		{name: "a routing loop between hq-gw and hq-core (the TTL runs out at hq-gw)", icmp: true,
			change:    [][]string{{"ip", "route", "replace", "10.1.50.0/24", "via", "10.1.1.2", "dev", "eth1"}},
			undo:      [][]string{{"ip", "route", "replace", "10.1.50.0/24", "via", "10.1.0.3", "dev", "eth0", "proto", "static"}},
			blockedBy: "hq-gw", cause: causeLoop, pathDiffers: true},
	}
	// The first two edit HQ_EGRESS #3 in place: give them its match.
	cases[0].change[0] = append(cases[0].change[0], append(strings.Fields(egress3), "-j", "DROP")...)
	cases[0].undo[0] = append(cases[0].undo[0], append(strings.Fields(egress3), "-j", "ACCEPT")...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, a := range c.change {
				sh(t, a...)
			}
			defer func() {
				for _, a := range c.undo {
					sh(t, a...)
				}
			}()
			d := *lab
			d.Reach = nil
			timeout := testTimeout
			if c.silent {
				timeout = 10 * time.Minute
			}
			if err := Run(context.Background(), f, &d, Options{Log: testLog(t), Timeout: timeout, ReuseEndToEnd: true}); err != nil {
				t.Fatalf("Run: %v", err)
			}
			res := d.Reach[0]
			if c.icmp {
				res = d.Reach[1]
			}
			e := res.E2E
			got := ""
			if b := e.BlockedBy; b != nil {
				got = b.Router
				if b.Chain != "" {
					got += " " + ruleKey(b.Table, b.Chain, b.Index)
				}
				if !strings.Contains(b.Rule, c.ruleText) {
					t.Errorf("blocked_by rule %q, want the kernel's rule (…%s…)", b.Rule, c.ruleText)
				}
				if b.Direction != doc.Request {
					t.Errorf("direction %q, want request", b.Direction)
				}
			}
			if e.Verdict != doc.Unreachable || got != c.blockedBy || e.Cause != c.cause {
				t.Errorf("live %s blocked by %q (%s) cause %q, want UNREACHABLE by %q cause %q", e.Verdict, got, e.Reason, e.Cause, c.blockedBy, c.cause)
			}
			if e.Agrees == nil || *e.Agrees {
				t.Errorf("agrees %v, want false", e.Agrees)
			}
			if e.PathDiffers != c.pathDiffers {
				t.Errorf("path_differs %v, want %v (live %v, predicted %v)", e.PathDiffers, c.pathDiffers, e.Path, e.PredictedPath)
			}
			blocker, _, _ := strings.Cut(c.blockedBy, " ")
			for _, v := range e.Routers {
				if v.Verdict == doc.Blocked && v.Router != blocker {
					t.Errorf("%s blamed too: %s", v.Router, v.Reason)
				}
				if v.Router == "hq-dmz" && v.Verdict != doc.Unknown {
					t.Errorf("hq-dmz, which no packet reached, is %s (%s), want UNKNOWN", v.Verdict, v.Reason)
				}
			}
			all := strings.Join(res.Disagreements, "\n")
			if !strings.Contains(all, "end to end: live UNREACHABLE") || c.note != "" && !strings.Contains(all, c.note) ||
				c.pathDiffers && !strings.Contains(all, "path: live") {
				t.Errorf("disagreements do not say it (want %q):\n%s", c.note, all)
			}
			if t.Failed() {
				t.Log("\n" + summary([]*doc.Reach{res}))
			}
		})
	}
	// Restored, the lab agrees with the facts again.
	d := *lab
	d.Reach = nil
	if err := Run(context.Background(), f, &d, Options{Log: testLog(t), Timeout: testTimeout, ReuseEndToEnd: true}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, r := range d.Reach {
		if e := r.E2E; e.Verdict != doc.Reachable || e.Agrees == nil || !*e.Agrees || len(r.Disagreements) > 0 {
			t.Errorf("restored lab, %s: %s, agrees %v, %q", r.Flow, e.Verdict, e.Agrees, r.Disagreements)
		}
	}
}
