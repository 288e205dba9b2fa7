package reach

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/tsim-dev/tsim/internal/netx"
	"github.com/tsim-dev/tsim/internal/testenv"
)

// TestSnapshotSinceKernel loads a ruleset with a big chain into a
// namespace of its own, moves counters with real packets (over the
// loopback, through OUTPUT and INPUT), and checks that reading chain by
// chain from the previous snapshot gives exactly what a full dump gives:
// after packets that enter the big chain, after packets that only enter
// the small one, and after none.
func TestSnapshotSinceKernel(t *testing.T) {
	needRoot(t)
	testenv.NeedTools(t, "iptables-restore")
	h, err := newAnonNS()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var rs strings.Builder
	rs.WriteString("*filter\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:BIG - [0:0]\n:SMALL - [0:0]\n:INNER - [0:0]\n")
	rs.WriteString("-A OUTPUT -p udp --dport 1000 -j BIG\n-A OUTPUT -p udp --dport 2000 -j SMALL\n-A OUTPUT -p udp -j ACCEPT\n")
	for i := 0; i < bigChain+100; i++ {
		fmt.Fprintf(&rs, "-A BIG -s 10.%d.%d.0/24 -j DROP\n", i/250, i%250)
	}
	rs.WriteString("-A BIG -j INNER\n-A INNER -p udp -j RETURN\n-A SMALL -p udp -j RETURN\n-A INPUT -p udp -j ACCEPT\nCOMMIT\n")
	if _, stderr, err := netx.Exec(context.Background(), h, []byte(rs.String()), "iptables-restore"); err != nil {
		t.Fatalf("iptables-restore: %v: %s", err, stderr)
	}
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	lo, err := nl.LinkByName("lo")
	if err == nil {
		err = nl.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("loopback up: %v", err)
	}
	r, err := newNftReader(h)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	prev, err := r.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if !r.big {
		t.Fatalf("a chain of %d rules is not big", bigChain+100)
	}
	send := func(port int) {
		t.Helper()
		if err := netx.Do(h, func() error {
			c, err := net.Dial("udp4", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte("x"))
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name  string
		ports []int
	}{
		{"into the big chain and the one it jumps to", []int{1000}},
		{"into the small chain only", []int{2000}},
		{"into neither", []int{3000}},
		{"nothing sent", nil},
		{"both", []int{1000, 2000, 2000}},
	} {
		for _, p := range c.ports {
			send(p)
		}
		since, err := r.SnapshotSince(prev)
		if err != nil {
			t.Fatal(err)
		}
		full, err := r.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		for _, cc := range full["filter"] {
			cc.Base = false
		}
		for _, cc := range since["filter"] {
			cc.Base = false
		}
		if !reflect.DeepEqual(since["filter"], full["filter"]) {
			for name, cc := range full["filter"] {
				if s := since["filter"][name]; !reflect.DeepEqual(s, cc) {
					t.Errorf("%s: chain %s: chain by chain %+v, full dump %+v", c.name, name, s, cc)
				}
			}
		}
		prev = full
	}
}
