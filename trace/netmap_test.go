package trace

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
)

// TestNETMAPRoutesTheMappedAddress: NETMAP in nat PREROUTING changes the
// destination before the routing decision, as DNAT does, so the packet is
// routed to the mapped address (it was routed to the original one).
func TestNETMAPRoutesTheMappedAddress(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join("..", "internal", "example", "facts")
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	mangle := `[0:0] -A PREROUTING -i eth1 -p tcp -m tcp --dport 22 -m comment --comment "interactive ssh: low delay" -j TOS --set-tos 0x10/0xff` + "\n"
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if e.Name() == "hq-core_facts.txt" {
			if !strings.Contains(s, mangle) {
				t.Fatal("hq-core's mangle rule is not in the example")
			}
			s = strings.Replace(s, mangle, mangle+"COMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"+
				"[0:0] -A PREROUTING -d 10.9.0.0/24 -i eth1 -j NETMAP --to 10.1.20.0/24\n", 1)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := facts.Load(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	tr := New(f).Trace(context.Background(), &doc.Flow{ID: "f1", Src: "10.1.10.5", Dst: "10.9.0.10", Proto: "tcp", DPort: 22})
	if tr.Disposition != doc.Delivered || len(tr.Hops) != 3 || tr.Hops[1].Out != "eth2" || tr.Hops[2].Node != "10.1.20.10" {
		var b strings.Builder
		RenderText(&b, &doc.Document{Flows: []*doc.Flow{{ID: "f1", Src: "10.1.10.5", Dst: "10.9.0.10", Proto: "tcp", DPort: 22}}, Trace: []*doc.Trace{tr}}, false)
		t.Fatalf("want hq-core to route the mapped 10.1.20.10 out of eth2 and deliver it:\n%s", b.String())
	}
}
