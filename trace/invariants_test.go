package trace

import (
	"context"
	"net/netip"
	"testing"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
)

// TestInvariants traces every pair of (router address, host behind each
// subnet, outside address) on the lab, the corpus and the example, for
// several protocols, and checks what must hold for any trace.
func TestInvariants(t *testing.T) {
	ex, err := facts.Load(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	sets := map[string]*Engine{"lab": loadLab(t), "corpus": New(loadCorpus(t, "raw_facts")), "example": New(ex)}
	valid := map[string]bool{doc.Delivered: true, doc.ExitsNetwork: true, doc.Denied: true, doc.NoRoute: true,
		doc.NullRouted: true, doc.Loop: true, doc.UnknownSource: true, doc.Unknown: true}
	for name, e := range sets {
		t.Run(name, func(t *testing.T) {
			addrs := []string{"8.8.8.8", "172.31.255.1"}
			for _, r := range e.Facts().Routers {
				for _, i := range r.Interfaces {
					for _, a := range i.Addrs {
						if a.Prefix.Addr().Is4() && !a.Prefix.Addr().IsLoopback() {
							addrs = append(addrs, a.Prefix.Addr().String())
							if a.Prefix.Bits() <= 29 {
								addrs = append(addrs, a.Prefix.Masked().Addr().Next().Next().Next().Next().String())
							}
						}
					}
				}
			}
			n := 0
			for i, s := range addrs {
				for j, d := range addrs {
					p := []doc.Flow{{Proto: "icmp"}, {Proto: "tcp", DPort: 22}, {Proto: "udp", DPort: 53}, {Proto: "tcp", DPort: 443, SPort: 443}}[(i+j)%4]
					fl := p
					fl.ID, fl.Src, fl.Dst = "f", s, d
					tr := e.Trace(context.Background(), &fl)
					n++
					check(t, e, &fl, tr, valid)
				}
			}
			t.Logf("%d flows", n)
		})
	}
}

func check(t *testing.T, e *Engine, fl *doc.Flow, tr *doc.Trace, valid map[string]bool) {
	t.Helper()
	id := fl.Src + "->" + fl.Dst + " " + fl.Proto
	if !valid[tr.Disposition] {
		t.Fatalf("%s: disposition %q", id, tr.Disposition)
	}
	if (tr.DeniedBy != nil) != (tr.Disposition == doc.Denied) {
		t.Fatalf("%s: %s with denied_by %+v", id, tr.Disposition, tr.DeniedBy)
	}
	if tr.Disposition != doc.Delivered && tr.Disposition != doc.ExitsNetwork && tr.Reason == "" && tr.DeniedBy == nil {
		t.Errorf("%s: %s without a reason", id, tr.Disposition)
	}
	if tr.Disposition == doc.UnknownSource {
		if len(tr.Hops) != 0 {
			t.Errorf("%s: UNKNOWN_SOURCE with hops", id)
		}
		return
	}
	if len(tr.Hops) == 0 {
		t.Fatalf("%s: %s without hops", id, tr.Disposition)
	}
	last := tr.Hops[len(tr.Hops)-1]
	switch tr.Disposition {
	case doc.ExitsNetwork:
		if last.Kind != doc.HopInternet {
			t.Errorf("%s: EXITS_NETWORK ends at %s", id, last.Kind)
		}
	case doc.Delivered:
		if last.Kind == doc.HopInternet {
			t.Errorf("%s: delivered to the internet", id)
		}
	}
	for i, h := range tr.Hops {
		if h.Kind != doc.HopRouter {
			continue
		}
		r := e.Facts().Router(h.Node)
		if r == nil {
			t.Fatalf("%s: hop %d names unknown router %s", id, i, h.Node)
		}
		for _, ifc := range []string{h.In, h.Out} {
			if ifc != "" && ifc != "lo" && r.Interface(ifc) == nil {
				t.Errorf("%s: %s has no interface %q", id, h.Node, ifc)
			}
		}
		if h.IP != "" {
			if _, err := netip.ParseAddr(h.IP); err != nil {
				t.Errorf("%s: hop ip %q", id, h.IP)
			}
		}
		if i < len(tr.Hops)-1 && h.Out == "" {
			t.Errorf("%s: router hop %d %s passes the packet on without an out interface", id, i, h.Node)
		}
		for _, s := range h.Steps {
			if s.Kind == doc.StepRoute && s.Query == "" {
				t.Errorf("%s: %s route step without query", id, h.Node)
			}
			if s.Kind == doc.StepFilter && s.Index > 0 && s.Text == "" {
				t.Errorf("%s: %s filter step #%d without rule text", id, h.Node, s.Index)
			}
		}
	}
}

// FuzzTrace traces arbitrary flows on the lab: whatever the input, a trace
// is either refused by Validate or satisfies the invariants, never a panic.
func FuzzTrace(f *testing.F) {
	f.Add("10.0.1.5", "10.0.3.9", "tcp", 23, 0, "")
	f.Add("198.51.100.7", "203.0.113.2", "tcp", 8080, 1234, "r2:eth9")
	f.Add("10.0.1.5", "10.9.1.1", "icmp", 0, 0, "")
	e := loadLab(f)
	valid := map[string]bool{doc.Delivered: true, doc.ExitsNetwork: true, doc.Denied: true, doc.NoRoute: true,
		doc.NullRouted: true, doc.Loop: true, doc.UnknownSource: true, doc.Unknown: true}
	f.Fuzz(func(t *testing.T, src, dst, proto string, dport, sport int, ingress string) {
		fl := &doc.Flow{ID: "f1", Src: src, Dst: dst, Proto: proto, DPort: dport, SPort: sport, Ingress: ingress}
		tr := e.Trace(context.Background(), fl)
		if e.Validate(fl) != nil {
			if tr.Disposition != doc.Unknown {
				t.Fatalf("invalid flow traced: %s", tr.Disposition)
			}
			return
		}
		check(t, e, fl, tr, valid)
	})
}

// TestConcurrent: one Engine serves many goroutines (run with -race),
// including the first use of each router, whose model is built lazily.
func TestConcurrent(t *testing.T) {
	e := loadLab(t)
	want := map[string]string{}
	flows, err := FlowsFromSpec("10.0.1.5", "10.0.2.5", "999,1001,1003,2001,2009,icmp", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range flows {
		want[f.ID] = pathString(e.Trace(context.Background(), f))
	}
	fresh := New(e.Facts())
	done := make(chan string, 8)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < 50; i++ {
				for _, f := range flows {
					if got := pathString(fresh.Trace(context.Background(), f)); got != want[f.ID] {
						done <- f.ID + ": " + got + " != " + want[f.ID]
						return
					}
				}
			}
			done <- ""
		}()
	}
	for g := 0; g < 8; g++ {
		if s := <-done; s != "" {
			t.Error(s)
		}
	}
}
