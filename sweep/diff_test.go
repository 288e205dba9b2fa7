package sweep

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
)

// editedExample writes the built-in example's raw facts into a temporary
// directory with edits applied (router file → old line → new text; ""
// removes the line) and loads it.
func editedExample(t *testing.T, edits map[string][][2]string) *facts.Facts {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join("..", "internal", "example", "facts")
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for _, ed := range edits[strings.TrimSuffix(e.Name(), "_facts.txt")] {
			if !strings.Contains(s, ed[0]+"\n") {
				t.Fatalf("%s: no line %q", e.Name(), ed[0])
			}
			repl := ed[1]
			if repl != "" {
				repl += "\n"
			}
			s = strings.Replace(s, ed[0]+"\n", repl, 1)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := facts.Load(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

type flowKey struct {
	proto    string
	s, d, pt uint32
}

// TestDiffListsExactlyTheChangedFlows builds facts pairs (a rule added, a
// rule removed, a route changed, an ipset member removed) and wants diff
// over a small space, and over the same flows as a list, to name exactly
// the flows whose traced answers differ (brute force over every flow).
func TestDiffListsExactlyTheChangedFlows(t *testing.T) {
	ref := editedExample(t, nil)
	cases := []struct {
		name  string
		edits map[string][][2]string
		min   int // changed flows expected at least (the edit matters here)
	}{
		{"rule added", map[string][][2]string{"dc-srv": {{
			"[0:0] -A FORWARD -o eth1 -j DB_GUARD",
			"[0:0] -A FORWARD -s 10.1.20.4/30 -o eth1 -p tcp -m tcp --dport 5430:5433 -j REJECT --reject-with icmp-port-unreachable\n[0:0] -A FORWARD -o eth1 -j DB_GUARD"}}}, 1},
		{"rule removed", map[string][][2]string{"dc-srv": {{
			"[0:0] -A FORWARD -s 10.0.0.0/8 -d 10.0.0.0/8 -p icmp -m icmp --icmp-type 8 -j ACCEPT", ""}}}, 1},
		{"route changed", map[string][][2]string{"hq-gw": {{
			"10.3.0.0/16 via 10.100.0.3 dev wg0 proto static metric 10 ",
			"10.3.0.0/16 via 10.100.0.3 dev wg0 proto static metric 10 \nblackhole 10.3.20.8/30 proto static "}}}, 1},
		{"ipset member removed", map[string][][2]string{"dc-srv": {{"add db_clients 10.1.20.0/24,tcp:5432", ""}}}, 1},
		// At the top of the chain: every later rule's number shifts, which
		// changes no answer; only the pings from 10.1.20.2 change.
		{"rule inserted first", map[string][][2]string{"dc-srv": {{
			"[0:0] -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
			"[0:0] -A FORWARD -s 10.1.20.2/32 -p icmp -j DROP\n[0:0] -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"}}}, 1},
	}
	src, _ := ParseRange("10.1.20.0/28")
	dst, _ := ParseRange("10.3.20.0/28")
	spec := "20-23/tcp,442-444/tcp,5430-5434/tcp,53/udp,icmp"
	protos, err := ParseSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	sp := Space{Src: src, Dst: dst, Protos: protos}
	var all []*doc.Flow
	for s := src.Lo; s <= src.Hi; s++ {
		for d := dst.Lo; d <= dst.Hi; d++ {
			for _, p := range protos {
				ports := p.Ports
				if p.Name == "icmp" {
					ports = []Range{{0, 0}}
				}
				for _, r := range ports {
					for pt := r.Lo; pt <= r.Hi; pt++ {
						all = append(all, FlowAt("f", p.Name, s, d, pt))
					}
				}
			}
		}
	}
	key := func(f *doc.Flow) flowKey {
		r, _ := ParseRange(f.Src)
		q, _ := ParseRange(f.Dst)
		return flowKey{f.Proto, r.Lo, q.Lo, uint32(f.DPort)}
	}
	ctx := context.Background()
	rm := NewModel(ref)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cm := NewModel(editedExample(t, tc.edits))
			want := map[flowKey]bool{}
			for _, f := range all {
				o := AnswerOf(rm.Engine.Trace(ctx, f))
				n := AnswerOf(cm.Engine.Trace(ctx, f))
				if len(What(o, n)) > 0 {
					want[key(f)] = true
				}
			}
			if len(want) < tc.min {
				t.Fatalf("the edit changes %d flows of the space; the test needs it to change some", len(want))
			}
			if tc.name == "rule inserted first" {
				for k := range want {
					if k.proto != "icmp" || addrOf(k.s).String() != "10.1.20.2" {
						t.Errorf("%v changed: only pings from 10.1.20.2 should", k)
					}
				}
			}
			// Over the flows as a list.
			ch, err := DiffFlows(ctx, rm, cm, all)
			if err != nil {
				t.Fatal(err)
			}
			got := map[flowKey]bool{}
			for _, c := range ch {
				got[key(c.Flow)] = true
			}
			compareSets(t, "flows", got, want)
			// Over the space.
			sch, st, err := DiffSpace(ctx, sp, rm, cm)
			if err != nil {
				t.Fatal(err)
			}
			got = map[flowKey]bool{}
			for _, c := range sch {
				g := c.Group
				for s := g.Src.Lo; s <= g.Src.Hi; s++ {
					for d := g.Dst.Lo; d <= g.Dst.Hi; d++ {
						if s == d {
							continue
						}
						for pt := g.Runs[0].Ports.Lo; pt <= g.Runs[0].Ports.Hi; pt++ {
							got[flowKey{g.Proto, s, d, pt}] = true
						}
					}
				}
			}
			compareSets(t, "space", got, want)
			t.Logf("%d flows changed of %d; space: %d classes, %d traces, %d lines", len(want), len(all), st.Classes, st.Traces, len(sch))
			for _, c := range sch {
				t.Log(c.Line())
			}
		})
	}
}

func compareSets(t *testing.T, what string, got, want map[flowKey]bool) {
	t.Helper()
	n := 0
	for k := range want {
		if !got[k] && n < 5 {
			t.Errorf("%s: %s %s -> %s port %d changed but is not listed", what, k.proto, addrOf(k.s), addrOf(k.d), k.pt)
			n++
		}
	}
	for k := range got {
		if !want[k] && n < 10 {
			t.Errorf("%s: %s %s -> %s port %d is listed but did not change", what, k.proto, addrOf(k.s), addrOf(k.d), k.pt)
			n++
		}
	}
}

// TestSweepThroughNETMAP: hq-core maps 10.9.0.0/24 onto the HQ servers
// 10.1.20.0/24 for the users (NETMAP in nat PREROUTING), so the cuts of
// the servers' subnet (hq-core's own 10.1.20.1, its broadcast …) matter
// before the translation.
// Every flow of a small space is traced and must equal its class.
func TestSweepThroughNETMAP(t *testing.T) {
	mangle := `[0:0] -A PREROUTING -i eth1 -p tcp -m tcp --dport 22 -m comment --comment "interactive ssh: low delay" -j TOS --set-tos 0x10/0xff`
	f := editedExample(t, map[string][][2]string{"hq-core": {{mangle, mangle + "\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n" +
		"[0:0] -A PREROUTING -d 10.9.0.0/24 -i eth1 -j NETMAP --to 10.1.20.0/24"}}})
	m := NewModel(f)
	src, _ := ParseRange("10.1.10.0/28")
	dst, _ := ParseRange("10.9.0.0/24")
	protos, _ := ParseSpec("22/tcp,443/tcp,5432/tcp,icmp")
	sp := Space{Src: src, Dst: dst, Protos: protos}
	cs, st, err := Run(context.Background(), sp, m)
	if err != nil {
		t.Fatal(err)
	}
	ix := indexClasses(cs)
	labels := map[string]bool{}
	n := 0
	for s := src.Lo; s <= src.Hi; s++ {
		for d := dst.Lo; d <= dst.Hi; d++ {
			for _, p := range protos {
				ports := p.Ports
				if p.Name == "icmp" {
					ports = []Range{{0, 0}}
				}
				for _, r := range ports {
					for pt := r.Lo; pt <= r.Hi; pt++ {
						c := ix.find(p.Name, s, d, pt)
						got := AnswerOf(m.Engine.Trace(context.Background(), FlowAt("x", p.Name, s, d, pt)))
						labels[got.Label()] = true
						if c == nil || full(got) != full(c.Answers[0]) {
							if n++; n < 5 {
								t.Errorf("%s %s -> %s:%d traced %q, class says %v", p.Name, addrOf(s), addrOf(d), pt, full(got), c)
							}
						}
					}
				}
			}
		}
	}
	if !labels["DELIVERED by hq-core"] || len(labels) < 2 {
		t.Errorf("the space has one answer (%v): the NETMAP does not matter here, the test proves nothing", labels)
	}
	t.Logf("%d classes, %d traces; answers %v", st.Classes, st.Traces, labels)
}
