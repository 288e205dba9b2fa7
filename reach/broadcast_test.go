package reach

import (
	"context"
	"fmt"
	"testing"

	"github.com/tsim-dev/tsim/internal/doc"
)

// TestBroadcastAgrees probes flows of the built-in example sent to a
// subnet's broadcast address: the router holding it (a broadcast route of
// its local table) receives the packet through INPUT and never forwards
// it. Live and trace must agree, a filter drop in INPUT must be the
// rule's, a packet the stack then drops must have cause "broadcast" (not
// blackhole), and the lab must have no host on the broadcast address.
func TestBroadcastAgrees(t *testing.T) {
	needRoot(t)
	f := loadFacts(t, "")
	cases := []struct {
		flow            *doc.Flow
		disp            string // trace's
		router, blocked string // blocked_by: "table CHAIN index", "" for routing
		cause           string
	}{
		// The reported flow: 198.51.100.7 is the brd of inet-gw's
		// 198.51.100.2/29; INPUT (policy DROP) ends in LOG_DROP.
		{flow("B1", "10.2.99.5", "198.51.100.7", "tcp", 443), doc.Denied, "inet-gw", "filter LOG_DROP 2", causeFilter},
		// hq-core's INPUT accepts the echo, the kernel ignores it
		// (icmp_echo_ignore_broadcasts=1).
		{flow("B2", "10.1.10.9", "10.1.1.255", "icmp", 0), doc.NullRouted, "hq-core", "", causeBroadcast},
	}
	var flows []*doc.Flow
	for _, c := range cases {
		flows = append(flows, c.flow)
	}
	lab := labDoc(t, f, flows)
	for i, c := range cases {
		if got := lab.Trace[i].Disposition; got != c.disp {
			t.Fatalf("%s: trace %s (%s), want %s", c.flow.ID, got, lab.Trace[i].Reason, c.disp)
		}
	}
	for _, h := range lab.Lab.Hosts {
		if h.IP == "198.51.100.7" || h.IP == "10.1.1.255" {
			t.Errorf("the lab has a host on the broadcast address %s (%s:%s)", h.IP, h.Router, h.Iface)
		}
	}
	for _, reuse := range []bool{false, true} {
		t.Run(fmt.Sprintf("reuse=%v", reuse), func(t *testing.T) {
			d := *lab
			if err := Run(context.Background(), f, &d, Options{Log: testLog(t), Timeout: testTimeout, ReuseEndToEnd: reuse}); err != nil {
				t.Fatalf("Run: %v", err)
			}
			for i, c := range cases {
				res := d.Reach[i]
				e := res.E2E
				if e.Verdict != doc.Unreachable || e.Agrees == nil || !*e.Agrees {
					t.Errorf("%s: live %s (%s), predicted %s, agrees %v", c.flow.ID, e.Verdict, e.Reason, e.Predicted, e.Agrees)
				}
				got := ""
				if b := e.BlockedBy; b != nil {
					got = b.Router
					if b.Chain != "" {
						got += " " + ruleKey(b.Table, b.Chain, b.Index)
					}
				}
				want := c.router
				if c.blocked != "" {
					want += " " + c.blocked
				}
				if got != want || e.Cause != c.cause {
					t.Errorf("%s: blocked by %q cause %q (%s), want %q cause %q", c.flow.ID, got, e.Cause, e.Reason, want, c.cause)
				}
				if len(res.Disagreements) != 0 {
					t.Errorf("%s: disagreements %q", c.flow.ID, res.Disagreements)
				}
			}
			if t.Failed() {
				t.Log("\n" + summary(d.Reach))
			}
		})
	}
}

// TestBroadcastEchoAnswered: with icmp_echo_ignore_broadcasts=0 in a
// router's facts the lab's router answers an echo to its subnet
// broadcast, from its own address, and trace says so (DELIVERED).
func TestBroadcastEchoAnswered(t *testing.T) {
	needRoot(t)
	f := loadFacts(t, "")
	r := f.Router("hq-core")
	if r.Sysctls == nil {
		r.Sysctls = map[string]string{}
	}
	r.Sysctls["net.ipv4.icmp_echo_ignore_broadcasts"] = "0"
	fl := flow("B3", "10.1.10.9", "10.1.1.255", "icmp", 0)
	lab := labDoc(t, f, []*doc.Flow{fl})
	if tr := lab.Trace[0]; tr.Disposition != doc.Delivered || len(tr.ReplyHops) == 0 || tr.ReplyHops[0].Node != "hq-core" {
		t.Fatalf("trace %s (%s), want DELIVERED with hq-core answering", tr.Disposition, tr.Reason)
	}
	for _, reuse := range []bool{false, true} {
		d := *lab
		if err := Run(context.Background(), f, &d, Options{Log: testLog(t), Timeout: testTimeout, ReuseEndToEnd: reuse}); err != nil {
			t.Fatalf("Run: %v", err)
		}
		e := d.Reach[0].E2E
		if e.Verdict != doc.Reachable || e.Agrees == nil || !*e.Agrees || len(d.Reach[0].Disagreements) != 0 {
			t.Errorf("reuse=%v: live %s (%s), predicted %s, disagreements %q\n%s", reuse, e.Verdict, e.Reason, e.Predicted, d.Reach[0].Disagreements, summary(d.Reach))
		}
	}
}
