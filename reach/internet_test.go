package reach

import (
	"context"
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/internal/doc"
)

// TestInternetEdges probes flows from, to and through the Internet of the
// built-in example end to end: the lab's Internet stand-in behind each
// uplink owns the uplink's gateway and the outside addresses, so replies
// come back; a DNAT'd destination has its listener at the translated
// address. Each case checks the live verdict, the request and reply paths
// the packets really took, and agreement with trace.
func TestInternetEdges(t *testing.T) {
	needRoot(t)
	f := loadFacts(t, "")
	cases := []struct {
		name       string
		flow       *doc.Flow
		verdict    string
		path, back string // routers(in>out), space-separated
		blockedBy  string
	}{
		{name: "from the Internet to the edge router itself (its reply leaves by the uplink gateway)",
			flow:    &doc.Flow{ID: "in-edge", Src: "192.0.2.50", Dst: "203.0.113.2", Proto: "icmp", Ingress: "inet-gw:eth0"},
			verdict: doc.Reachable, path: "inet-gw(eth0>)", back: "inet-gw(>eth0)"},
		{name: "from the Internet through the port forward (DNAT) to the DMZ server (F09)",
			flow:    &doc.Flow{ID: "in-dnat", Src: "192.0.2.50", Dst: "203.0.113.5", Proto: "tcp", DPort: 443, Ingress: "inet-gw:eth0"},
			verdict: doc.Reachable, path: "inet-gw(eth0>eth1) hq-dmz(eth0>eth1)", back: "hq-dmz(eth1>eth0) inet-gw(eth1>eth0)"},
		{name: "to the Internet through MASQUERADE on ISP1 (F20)",
			flow:    flow("out-masq", "10.1.10.5", "192.0.2.80", "tcp", 443),
			verdict: doc.Reachable, path: "hq-core(eth1>eth0) hq-gw(eth1>eth0) inet-gw(eth1>eth0)", back: "inet-gw(eth0>eth1) hq-gw(eth0>eth1) hq-core(eth0>eth1)"},
		{name: "to the Internet by policy routing (from+ipproto+dport) and SNAT on ISP2 (F30)",
			flow:    flow("out-snat", "10.1.50.25", "192.0.2.25", "tcp", 25),
			verdict: doc.Reachable, path: "hq-dmz(eth1>eth0) inet-gw(eth1>eth2)", back: "inet-gw(eth2>eth1) hq-dmz(eth0>eth1)"},
		{name: "from the Internet, spoofing ISP2's range on ISP1: a blackhole rule (F32)",
			flow:    &doc.Flow{ID: "in-spoof", Src: "198.51.100.3", Dst: "203.0.113.5", Proto: "tcp", DPort: 443, Ingress: "inet-gw:eth0"},
			verdict: doc.Unreachable, path: "inet-gw(eth0>)", blockedBy: "inet-gw"},
	}
	var flows []*doc.Flow
	for _, c := range cases {
		flows = append(flows, c.flow)
	}
	d := labDoc(t, f, flows)
	for _, h := range d.Lab.Hosts {
		if h.IP == "192.0.2.50" && !strings.Contains(h.Name, "inet-") {
			t.Errorf("the outside source 192.0.2.50 lives in %s, not in the Internet stand-in", h.Name)
		}
	}
	if err := Run(context.Background(), f, d, Options{Log: testLog(t), Timeout: testTimeout, ReuseEndToEnd: true}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for i, c := range cases {
		res := d.Reach[i]
		t.Run(c.name, func(t *testing.T) {
			e := res.E2E
			if e.Verdict != c.verdict {
				t.Errorf("live %s (%s), want %s", e.Verdict, e.Reason, c.verdict)
			}
			if p := strings.Join(e.Path, " "); p != c.path {
				t.Errorf("request path %q, want %q", p, c.path)
			}
			if p := strings.Join(e.ReplyPath, " "); p != c.back {
				t.Errorf("reply path %q, want %q", p, c.back)
			}
			got := ""
			if e.BlockedBy != nil {
				got = e.BlockedBy.Router
			}
			if got != c.blockedBy {
				t.Errorf("blocked_by %q, want %q", got, c.blockedBy)
			}
			if e.Agrees == nil || !*e.Agrees || len(res.Disagreements) > 0 {
				t.Errorf("live and predicted disagree: %q", res.Disagreements)
			}
			if t.Failed() {
				t.Log("\n" + summary([]*doc.Reach{res}))
			}
		})
	}
}
