package trace

import (
	"context"
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
)

// TestBroadcastDestination: a router's subnet broadcast address is a
// broadcast route of its local table (priority 0, before main): the packet
// is received, never forwarded, and its protocol decides. In testdata/asym
// router a has 10.12.0.1/24 on eth1, so 10.12.0.255 is a broadcast of a
// (and b, on the same subnet, would get it only if a forwarded it).
func TestBroadcastDestination(t *testing.T) {
	const route = "broadcast 10.12.0.255 dev eth1 proto kernel scope link src 10.12.0.1"
	for _, tc := range []struct {
		name, proto string
		dport       int
		sysctl      string // icmp_echo_ignore_broadcasts in a's facts ("" absent)
		want        string
		action      string
		reason      string
		replySrc    string // the reply's source (an echo answered)
	}{
		{name: "tcp", proto: "tcp", dport: 443, want: doc.NullRouted, action: "drop", reason: "TCP discards a segment sent to a broadcast address without an answer"},
		{name: "icmp default", proto: "icmp", want: doc.NullRouted, action: "drop", reason: "icmp_echo_ignore_broadcasts=1"},
		{name: "icmp ignored", proto: "icmp", sysctl: "1", want: doc.NullRouted, action: "drop", reason: "is ignored"},
		{name: "icmp answered", proto: "icmp", sysctl: "0", want: doc.Delivered, action: "deliver", replySrc: "10.1.0.1"},
		{name: "udp", proto: "udp", dport: 161, want: doc.Unknown, action: "unknown", reason: "the facts do not list sockets"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := facts.Load(context.Background(), "testdata/asym")
			if err != nil {
				t.Fatal(err)
			}
			a := f.Router("a")
			if tc.sysctl != "" {
				if a.Sysctls == nil {
					a.Sysctls = map[string]string{}
				}
				a.Sysctls[sysEchoIgnoreBcast] = tc.sysctl
			}
			fl := doc.Flow{ID: "f", Src: "10.1.0.5", Dst: "10.12.0.255", Proto: tc.proto, DPort: tc.dport}
			tr := New(f).Trace(context.Background(), &fl)
			if tr.Disposition != tc.want {
				t.Fatalf("disposition %s (%s), want %s", tr.Disposition, tr.Reason, tc.want)
			}
			if got := hopsString(tr.Hops); got != "10.1.0.5 a(eth0>)" {
				t.Errorf("request path %q: the broadcast must end at a, not be forwarded", got)
			}
			last := tr.Hops[len(tr.Hops)-1]
			if last.Out != "" {
				t.Errorf("a sends the packet out of %s", last.Out)
			}
			rs := stepOn(tr.Hops, "a", doc.StepRoute, "broadcast")
			if rs == nil || rs.Text != route || rs.Table != "local" {
				t.Fatalf("no local-table route step %q on a: %+v", route, rs)
			}
			ls := stepOn(tr.Hops, "a", doc.StepLocal, "")
			if ls == nil || ls.Action != tc.action || ls.Text != route {
				t.Fatalf("local step %+v, want action %s naming %q", ls, tc.action, route)
			}
			if !strings.Contains(ls.Detail, "broadcast 10.12.0.255 dev eth1, local table") || !strings.Contains(ls.Detail, "not forwarded") {
				t.Errorf("local step detail %q does not name the broadcast route", ls.Detail)
			}
			if tc.reason != "" && !strings.Contains(tr.Reason, tc.reason) {
				t.Errorf("reason %q lacks %q", tr.Reason, tc.reason)
			}
			if tc.replySrc != "" {
				if len(tr.ReplyHops) == 0 || tr.ReplyHops[0].IP != tc.replySrc {
					t.Fatalf("reply hops %s: want the reply from %s", hopsString(tr.ReplyHops), tc.replySrc)
				}
			} else if len(tr.ReplyHops) != 0 {
				t.Errorf("a reply was walked: %s", hopsString(tr.ReplyHops))
			}
			if tc.sysctl == "" && tc.proto == "icmp" && !strings.Contains(strings.Join(tr.Notes, "\n"), sysEchoIgnoreBcast) {
				t.Errorf("notes %q do not say the kernel default was assumed", tr.Notes)
			}
		})
	}
}

// TestBroadcastNotForwarded: a unicast address of the same subnet (b's
// 10.12.0.2) is still forwarded by a: only the broadcast route is local.
func TestBroadcastNotForwarded(t *testing.T) {
	e := loadAsym(t)
	fl := doc.Flow{ID: "f", Src: "10.1.0.5", Dst: "10.12.0.2", Proto: "icmp"}
	tr := e.Trace(context.Background(), &fl)
	if got := hopsString(tr.Hops); !strings.HasPrefix(got, "10.1.0.5 a(eth0>eth1) b(eth0>") {
		t.Fatalf("10.12.0.2 (b's address): path %q %s %s", got, tr.Disposition, tr.Reason)
	}
}
