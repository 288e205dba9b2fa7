package trace

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"strconv"
	"strings"
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
	checkHops(t, e, id+" request", tr.Hops)
	checkConnection(t, e, fl, id, tr)
}

// checkConnection: the direction of a negative answer, the reply of a
// positive one, and the ECMP branches.
func checkConnection(t *testing.T, e *Engine, fl *doc.Flow, id string, tr *doc.Trace) {
	t.Helper()
	positive := Positive(tr.Disposition)
	switch {
	case positive && tr.Direction != "":
		t.Errorf("%s: %s with direction %q", id, tr.Disposition, tr.Direction)
	case !positive && tr.Direction != doc.Request && tr.Direction != doc.Reply:
		t.Errorf("%s: %s with direction %q", id, tr.Disposition, tr.Direction)
	}
	if tr.DeniedBy != nil && tr.DeniedBy.Direction != tr.Direction {
		t.Errorf("%s: denied_by.direction %q, direction %q", id, tr.DeniedBy.Direction, tr.Direction)
	}
	if positive || tr.Direction == doc.Reply {
		if len(tr.ReplyHops) == 0 {
			t.Fatalf("%s: %s (%s) without reply hops", id, tr.Disposition, tr.Direction)
		}
		checkHops(t, e, id+" reply", tr.ReplyHops)
	}
	if positive {
		// The reply ends where the request started: the source host, the
		// router that sent it, or outside the network.
		last, first := tr.ReplyHops[len(tr.ReplyHops)-1], tr.Hops[0]
		switch {
		case last.Kind == doc.HopHost && last.Node != fl.Src:
			t.Errorf("%s: the reply ends at host %s", id, last.Node)
		case last.Kind == doc.HopRouter && (first.Kind != doc.HopRouter || first.Node != last.Node):
			t.Errorf("%s: the reply ends at router %s, the request started at %s", id, last.Node, first.Node)
		}
	} else if tr.Direction == doc.Request && len(tr.ReplyHops) > 0 && !strings.HasPrefix(tr.Reason, "the handshake's ACK") {
		t.Errorf("%s: the request was stopped, yet reply hops", id)
	}
	if len(tr.Branches) == 1 {
		t.Errorf("%s: one branch listed", id)
	}
	if len(tr.Branches) > 0 {
		if tr.Branch < 1 || tr.Branch > len(tr.Branches) || tr.KernelBranch > len(tr.Branches) {
			t.Fatalf("%s: branch %d, kernel branch %d of %d", id, tr.Branch, tr.KernelBranch, len(tr.Branches))
		}
		if rep := tr.Branches[tr.Branch-1]; rep.Disposition != tr.Disposition || rep.Direction != tr.Direction {
			t.Errorf("%s: representative branch %s/%s, flow %s/%s", id, rep.Disposition, rep.Direction, tr.Disposition, tr.Direction)
		}
		seen := map[string]bool{}
		for i, b := range tr.Branches {
			if b.Branch != i+1 || len(b.Choices) == 0 {
				t.Errorf("%s: branch %d numbered %d with choices %v", id, i+1, b.Branch, b.Choices)
			}
			key := strings.Join(b.Choices, "|")
			if seen[key] {
				t.Errorf("%s: two branches with choices %s", id, key)
			}
			seen[key] = true
			if b.Kernel != (tr.KernelBranch == b.Branch) {
				t.Errorf("%s: branch %d kernel %v, kernel branch %d", id, b.Branch, b.Kernel, tr.KernelBranch)
			}
			bt := &doc.Trace{Disposition: b.Disposition, Direction: b.Direction, Reason: b.Reason, Hops: b.Hops, ReplyHops: b.ReplyHops, DeniedBy: b.DeniedBy}
			checkHops(t, e, id+" branch", b.Hops)
			checkConnection(t, e, fl, id+" branch "+strconv.Itoa(b.Branch), bt)
		}
	}
}

// checkHops: the structure of one direction's hops.
func checkHops(t *testing.T, e *Engine, id string, hops []*doc.Hop) {
	t.Helper()
	for i, h := range hops {
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
		if i < len(hops)-1 && h.Out == "" {
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

// TestRequestMemo: reusing a request's walk for the ECMP branches that
// take its nexthops changes nothing in any trace (every pair of
// addresses of the asymmetric network, the lab, the corpus and the
// example, four protocols), and some branches did reuse one.
func TestRequestMemo(t *testing.T) {
	ex, err := facts.Load(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	asym, err := facts.Load(context.Background(), "testdata/asym")
	if err != nil {
		t.Fatal(err)
	}
	lab := loadLab(t)
	sets := map[string]*facts.Facts{"asym": asym, "lab": lab.Facts(), "corpus": loadCorpus(t, "raw_facts"), "example": ex}
	reused := int64(0)
	for name, f := range sets {
		memo, every := New(f), New(f)
		every.walkEveryRequest = true
		var addrs []string
		for _, r := range f.Routers {
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
		for i, s := range addrs {
			for j, d := range addrs {
				fl := []doc.Flow{{Proto: "icmp"}, {Proto: "tcp", DPort: 22}, {Proto: "udp", DPort: 53}, {Proto: "tcp", DPort: 443, SPort: 443}}[(i+j)%4]
				fl.ID, fl.Src, fl.Dst = "f", s, d
				a, b := memo.Trace(context.Background(), &fl), every.Trace(context.Background(), &fl)
				ja, _ := json.Marshal(a)
				jb, _ := json.Marshal(b)
				if !bytes.Equal(ja, jb) {
					t.Fatalf("%s %s→%s %s: traces differ with the request's walk reused:\n%s\n%s", name, s, d, fl.Proto, ja, jb)
				}
			}
		}
		if every.requestReuses.Load() != 0 {
			t.Errorf("%s: the request's walk was reused with walkEveryRequest", name)
		}
		reused += memo.requestReuses.Load()
	}
	if reused == 0 {
		t.Error("no branch reused a request's walk: the test proves nothing")
	}
	t.Logf("%d branches reused a request's walk", reused)
}
