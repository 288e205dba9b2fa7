package hosts

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/trace"
)

// TestPathRoutersClosure: a lab of scope path holds the routers of the
// request, every ECMP branch and the reply, and nothing the flows cannot
// touch. On the example, dc-gw's ECMP route to 10.3.100.0/24 has nexthops
// on dc-core (the branch the trace took) and dc-srv (the other branch);
// the reply of 10.3.100.10 may come back through either.
func TestPathRoutersClosure(t *testing.T) {
	f, err := facts.Load(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	eng := trace.New(f)
	for _, c := range []struct {
		src, dst, proto string
		dport           int
		want            string
	}{
		// request hq-core → hq-gw → dc-gw → {dc-core, dc-srv}; the reply
		// leaves 10.3.100.0/24 by either core router back to dc-gw.
		{"10.1.30.10", "10.3.100.10", "icmp", 0, "dc-core dc-gw dc-srv hq-core hq-gw"},
		// one site, one router: nothing else.
		{"10.3.10.5", "10.3.100.10", "icmp", 0, "dc-core"},
		// the Internet edge publishes 203.0.113.5 by DNAT to the DMZ web
		// server 10.1.50.10: the closure follows the DNAT to hq-dmz's LAN
		// (the trace itself, from inside, is not translated).
		{"10.1.10.5", "203.0.113.5", "tcp", 443, "DNAT"},
		// one subnet, no router on the way: the router of that subnet,
		// whose segment the two hosts join.
		{"10.2.10.5", "10.2.10.10", "tcp", 443, "br-core"},
	} {
		d := doc.New()
		d.Flows = []*doc.Flow{{ID: "f1", Src: c.src, Dst: c.dst, Proto: c.proto, DPort: c.dport}}
		d.Trace = []*doc.Trace{eng.Trace(context.Background(), d.Flows[0])}
		var got []string
		for r := range pathRouters(f, d) {
			got = append(got, r)
		}
		slices.Sort(got)
		if c.want == "DNAT" {
			if !slices.Contains(got, "hq-dmz") || !slices.Contains(got, "inet-gw") {
				t.Errorf("%s → %s: routers %v, want inet-gw and, behind its DNAT, hq-dmz", c.src, c.dst, got)
			}
			continue
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("%s → %s: routers %v, want %s", c.src, c.dst, got, c.want)
		}
	}
}

// TestScopeDefault: without --scope a traced document gets a path lab and
// an untraced one every router.
func TestScopeDefault(t *testing.T) {
	f := tinyFacts()
	d := tracedDoc(t)
	rs, err := selectRouters(f, d, "")
	if err != nil {
		t.Fatal(err)
	}
	all, _ := selectRouters(f, doc.New(), "")
	if len(all) != len(f.Routers) || len(rs) >= len(f.Routers) {
		t.Errorf("default scope: traced document %d routers, untraced %d, facts %d", len(rs), len(all), len(f.Routers))
	}
	if _, err := selectRouters(f, d, "most"); err == nil {
		t.Error("scope most accepted")
	}
}
