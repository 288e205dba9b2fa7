package hosts

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/trace"
)

// tracedDoc: flows between the LANs, from a router's own address, and to
// the Internet, traced by the simulator.
func tracedDoc(t *testing.T) *doc.Document {
	t.Helper()
	d := tinyDoc()
	d.Flows = append(d.Flows,
		&doc.Flow{ID: "f2", Src: "10.0.1.10", Dst: "8.8.8.8", Proto: "udp", DPort: 9999},
		&doc.Flow{ID: "f3", Src: "10.0.1.1", Dst: "10.0.2.10", Proto: "udp", DPort: 9999},
	)
	tr, err := trace.New(tinyFacts()).TraceAll(context.Background(), d.Flows)
	if err != nil {
		t.Fatal(err)
	}
	d.Trace = tr
	return d
}

func TestHostsWhereTheTraceSays(t *testing.T) {
	needRoot(t)
	d := tracedDoc(t)
	if d.Trace[1].Disposition != doc.ExitsNetwork {
		t.Fatalf("f2 trace: %s, want EXITS_NETWORK", d.Trace[1].Disposition)
	}
	opts := testOpts(t)
	lab := upT(t, tinyFacts(), d, opts)
	if d.Lab != lab {
		t.Error("Up did not fill d.Lab")
	}
	var got []string
	for _, h := range lab.Hosts {
		got = append(got, h.IP+"@"+h.Router+":"+h.Iface)
	}
	sort.Strings(got)
	want := "10.0.1.10@r1:eth0 10.0.2.10@r2:eth1 8.8.8.8@r2:eth2"
	if strings.Join(got, " ") != want {
		t.Errorf("hosts %v, want %s (no host for r1's own 10.0.1.1)", got, want)
	}
	// The internet host receives what r2 routes out of its uplink.
	if n := udpProbe(t, hostNS(t, lab, "10.0.1.10"), hostNS(t, lab, "8.8.8.8"), "8.8.8.8", 9999, 3); n != 3 {
		t.Errorf("internet host got %d of 3 probes", n)
	}
}

func TestScopePath(t *testing.T) {
	needRoot(t)
	d := tracedDoc(t)
	opts := testOpts(t)
	opts.Scope = ScopePath
	lab := upT(t, tinyFacts(), d, opts)
	var names []string
	for _, r := range lab.Routers {
		names = append(names, r.Name)
	}
	if strings.Join(names, " ") != "r1 r2" {
		t.Errorf("scope path routers %v, want r1 r2 (r3 is on no path)", names)
	}
	if n := udpProbe(t, hostNS(t, lab, "10.0.1.10"), hostNS(t, lab, "10.0.2.10"), "10.0.2.10", 9999, 2); n != 2 {
		t.Errorf("path lab delivered %d of 2", n)
	}
	opts.Scope = ScopePath
	if _, err := Up(context.Background(), tinyFacts(), tinyDoc(), opts); err == nil || !strings.Contains(err.Error(), "trace") {
		t.Errorf("scope path without a trace: %v, want an error naming the trace stage", err)
	}
}
