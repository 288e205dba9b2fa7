package trace

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/internal/facts"
)

// TestMultipathHashKernel compares the model of the kernel's multipath
// hash (hash.go) with the kernel itself: in a namespace of its own with a
// weighted three-way multipath route, for pinned seeds and each hash
// policy, `ip route get` (which builds a real packet and routes it as
// received on eth1, or as sent by the router without iif) must name the
// nexthop the model picks, for many addresses and ports.
func TestMultipathHashKernel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: run `sudo go test ./trace -run MultipathHashKernel`")
	}
	if _, err := os.Stat("/proc/sys/net/ipv4/fib_multipath_hash_seed"); err != nil {
		t.Skip("this kernel has no net.ipv4.fib_multipath_hash_seed")
	}
	ns := "tsimmp-" + strconv.Itoa(os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// Both ends of each veth stay in the namespace: no packet is sent,
	// the kernel is only asked for routes.
	run("ip", "link", "set", "lo", "up")
	run("ip", "link", "add", "eth1", "type", "veth", "peer", "name", "p1")
	run("ip", "link", "add", "eth2", "type", "veth", "peer", "name", "p2")
	for _, l := range []string{"eth1", "p1", "eth2", "p2"} {
		run("ip", "link", "set", l, "up")
	}
	run("ip", "addr", "add", "10.0.1.1/24", "dev", "eth1")
	run("ip", "addr", "add", "10.0.2.1/24", "dev", "eth2")
	run("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.eth1.rp_filter=0")
	run("ip", "route", "add", "10.9.0.0/16", "nexthop", "via", "10.0.2.2", "dev", "eth2", "weight", "1",
		"nexthop", "via", "10.0.2.3", "dev", "eth2", "weight", "2", "nexthop", "via", "10.0.2.4", "dev", "eth2", "weight", "1")
	rt := &facts.Route{Dst: netip.MustParsePrefix("10.9.0.0/16"), Type: facts.RouteUnicast, Nexthops: []*facts.Nexthop{
		{Gateway: netip.MustParseAddr("10.0.2.2"), Dev: "eth2", Weight: 1},
		{Gateway: netip.MustParseAddr("10.0.2.3"), Dev: "eth2", Weight: 2},
		{Gateway: netip.MustParseAddr("10.0.2.4"), Dev: "eth2", Weight: 1},
	}}
	r := newRouter(&facts.Router{Name: "r", Interfaces: []*facts.Interface{
		{Name: "eth1", Addrs: []*facts.IfAddr{{Prefix: netip.MustParsePrefix("10.0.1.1/24")}}},
		{Name: "eth2", Addrs: []*facts.IfAddr{{Prefix: netip.MustParsePrefix("10.0.2.1/24")}}},
	}})
	type config struct {
		policy, fields int
	}
	configs := []config{{0, 7}, {1, 7}, {3, hashSrcIP | hashDstIP}, {3, hashSrcIP | hashDstIP | hashIPProto | hashSrcPort | hashDstPort}, {3, hashDstIP | hashDstPort}, {3, hashSrcPort}}
	protos := []string{"tcp", "udp", "icmp"}
	checked, seen := 0, map[int]bool{}
	for _, seed := range []uint32{1, 4242, 0xdeadbeef} {
		for _, c := range configs {
			run("sysctl", "-qw", "net.ipv4.fib_multipath_hash_seed="+strconv.FormatUint(uint64(seed), 10),
				"net.ipv4.fib_multipath_hash_policy="+strconv.Itoa(c.policy), "net.ipv4.fib_multipath_hash_fields="+strconv.Itoa(c.fields))
			fields := c.fields
			switch c.policy {
			case 0:
				fields = hashSrcIP | hashDstIP
			case 1:
				fields = hashSrcIP | hashDstIP | hashIPProto | hashSrcPort | hashDstPort
			}
			for i := range 24 {
				proto := protos[i%3]
				k := flowKey{src: netip.AddrFrom4([4]byte{10, 0, 1, byte(10 + i*7)}), dst: netip.AddrFrom4([4]byte{10, 9, byte(i * 13), byte(1 + i*29)}),
					iif: "eth1", proto: map[string]int{"tcp": 6, "udp": 17, "icmp": 1}[proto], sport: uint16(30000 + i*1237), dport: uint16(20 + i*311)}
				local := i%4 == 3
				args := []string{"ip", "-j", "route", "get", k.dst.String(), "from", k.src.String(), "iif", "eth1", "ipproto", proto}
				if local {
					// Sent by the router itself from its own address.
					k.src, k.iif, k.local = netip.MustParseAddr("10.0.2.1"), "lo", true
					args = []string{"ip", "-j", "route", "get", k.dst.String(), "from", k.src.String(), "ipproto", proto}
				}
				if proto != "icmp" {
					args = append(args, "sport", strconv.Itoa(int(k.sport)), "dport", strconv.Itoa(int(k.dport)))
				}
				var got []struct {
					Gateway string `json:"gateway"`
				}
				out := run(args...)
				if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 {
					t.Fatalf("%s: %q", strings.Join(args, " "), out)
				}
				var saddr [4]byte
				if k.local {
					saddr = k.src.As4()
				}
				// `ip route get` builds a packet (an skb) also for the
				// router's own traffic, so it is hashed as one.
				want := selectNexthop(r, rt, multipathHash(seed, c.policy, fields, k, true)>>1, saddr, k.local)
				checked++
				seen[want] = true
				if got[0].Gateway != rt.Nexthops[want].Gateway.String() {
					t.Errorf("seed %d policy %d fields %#x: %s: kernel via %s, model via %s",
						seed, c.policy, c.fields, strings.Join(args[3:], " "), got[0].Gateway, rt.Nexthops[want].Gateway)
				}
			}
		}
	}
	if len(seen) != 3 {
		t.Errorf("the flows reached nexthops %v only: the test does not tell them apart", seen)
	}
	t.Logf("%d route lookups compared with the kernel", checked)

	// Equal routes are not ECMP in IPv4: fib_table_lookup takes the first
	// alias, whatever the flow; so does the model.
	run("ip", "route", "add", "10.8.0.0/16", "via", "10.0.2.2", "dev", "eth2")
	run("ip", "route", "append", "10.8.0.0/16", "via", "10.0.2.3", "dev", "eth2")
	eq := newRouter(&facts.Router{Name: "r", Interfaces: r.f.Interfaces, Tables: []*facts.Table{{ID: facts.TableMain, Routes: []*facts.Route{
		{Dst: netip.MustParsePrefix("10.8.0.0/16"), Type: facts.RouteUnicast, Gateway: netip.MustParseAddr("10.0.2.2"), Dev: "eth2", Text: "10.8.0.0/16 via 10.0.2.2 dev eth2"},
		{Dst: netip.MustParsePrefix("10.8.0.0/16"), Type: facts.RouteUnicast, Gateway: netip.MustParseAddr("10.0.2.3"), Dev: "eth2", Text: "10.8.0.0/16 via 10.0.2.3 dev eth2"},
	}}}})
	for i := range 32 {
		dst := netip.AddrFrom4([4]byte{10, 8, byte(i * 7), byte(i*31 + 1)})
		out := run("ip", "-j", "route", "get", dst.String(), "from", netip.AddrFrom4([4]byte{10, 0, 1, byte(20 + i)}).String(), "iif", "eth1")
		var got []struct {
			Gateway string `json:"gateway"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 {
			t.Fatalf("%q", out)
		}
		rt, _ := eq.table(facts.TableMain).lookup(dst, 0)
		if rt == nil || got[0].Gateway != "10.0.2.2" || rt.r.Gateway.String() != got[0].Gateway {
			t.Errorf("equal routes, %s: kernel via %s, model %v", dst, got[0].Gateway, rt)
		}
	}
}

// TestSiphash checks siphash24 against the reference vector of the
// SipHash paper (key 00..0f, message 00..0e).
func TestSiphash(t *testing.T) {
	k0, k1 := uint64(0x0706050403020100), uint64(0x0f0e0d0c0b0a0908)
	msg := make([]byte, 15)
	for i := range msg {
		msg[i] = byte(i)
	}
	if got := siphash24(k0, k1, msg); got != 0xa129ca6149be45e5 {
		t.Errorf("siphash24 = %#x, want 0xa129ca6149be45e5", got)
	}
	if got := fmt.Sprintf("%#x", siphash24(k0, k1, nil)); got != "0x726fdb47dd0e0e31" {
		t.Errorf("siphash24(empty) = %s, want 0x726fdb47dd0e0e31", got)
	}
}
