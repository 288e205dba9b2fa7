package facts

import (
	"net/netip"
	"strings"
	"testing"
)

const ipAddrSample = `1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000
    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
    inet 127.0.0.1/8 scope host lo
       valid_lft forever preferred_lft forever
    inet6 ::1/128 scope host
       valid_lft forever preferred_lft forever
2: eth0@if7: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel state UP group default qlen 1000
    link/ether 52:54:00:12:34:01 brd ff:ff:ff:ff:ff:ff link-netnsid 0
    altname enp0s3
    inet 203.0.113.10/24 brd 203.0.113.255 scope global eth0
       valid_lft forever preferred_lft forever
    inet 203.0.113.11/24 brd 203.0.113.255 scope global secondary eth0:1
    inet6 2001:db8::1/64 scope global
    inet6 fe80::5054:ff:fe12:3401/64 scope link
3: wg0: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1420 qdisc noqueue state UNKNOWN group default qlen 1000
    link/none
    inet 10.100.1.1/24 scope global wg0
4: tun0: <POINTOPOINT,MULTICAST,NOARP> mtu 1400 qdisc noop state DOWN
    link/none
    inet 10.9.0.1 peer 10.9.0.2/32 scope global tun0
`

func TestParseIPAddr(t *testing.T) {
	ifs, err := ParseIPAddr("f", lines(10, ipAddrSample))
	if err != nil {
		t.Fatal(err)
	}
	type addr struct {
		prefix, peer, scope string
		secondary           bool
	}
	want := []struct {
		name, kind, mac, state string
		index, mtu             int
		up                     bool
		addrs                  []addr
	}{
		{"lo", "loopback", "00:00:00:00:00:00", "UNKNOWN", 1, 65536, true, []addr{{"127.0.0.1/8", "", "host", false}, {"::1/128", "", "host", false}}},
		{"eth0", "ether", "52:54:00:12:34:01", "UP", 2, 1500, true, []addr{
			{"203.0.113.10/24", "", "global", false}, {"203.0.113.11/24", "", "global", true},
			{"2001:db8::1/64", "", "global", false}, {"fe80::5054:ff:fe12:3401/64", "", "link", false}}},
		{"wg0", "none", "", "UNKNOWN", 3, 1420, true, []addr{{"10.100.1.1/24", "", "global", false}}},
		{"tun0", "none", "", "DOWN", 4, 1400, false, []addr{{"10.9.0.1/32", "10.9.0.2/32", "global", false}}},
	}
	if len(ifs) != len(want) {
		t.Fatalf("got %d interfaces, want %d", len(ifs), len(want))
	}
	for i, w := range want {
		g := ifs[i]
		if g.Name != w.name || g.Kind != w.kind || g.MAC != w.mac || g.State != w.state || g.Index != w.index || g.MTU != w.mtu || g.Up() != w.up {
			t.Errorf("interface %d = %+v (up=%v), want %+v", i, g, g.Up(), w)
		}
		if len(g.Addrs) != len(w.addrs) {
			t.Fatalf("%s: %d addrs, want %d", w.name, len(g.Addrs), len(w.addrs))
		}
		for j, wa := range w.addrs {
			ga := g.Addrs[j]
			peer := ""
			if ga.Peer.IsValid() {
				peer = ga.Peer.String()
			}
			if ga.Prefix.String() != wa.prefix || peer != wa.peer || ga.Scope != wa.scope || ga.Secondary != wa.secondary {
				t.Errorf("%s addr %d = %+v, want %+v", w.name, j, ga, wa)
			}
		}
	}
	if p := ifs[1].Pos.Line; p != 16 {
		t.Errorf("eth0 line = %d, want 16", p)
	}
	if p := ifs[1].Addrs[1].Pos.Line; p != 21 {
		t.Errorf("secondary line = %d, want 21", p)
	}
	if ConnectedPrefix(ifs[3].Addrs[0]) != netip.MustParsePrefix("10.9.0.2/32") {
		t.Errorf("peer connected prefix = %v", ConnectedPrefix(ifs[3].Addrs[0]))
	}
}

func TestParseIPAddrErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"addr first", "    inet 10.0.0.1/24 scope global", "f:1: interfaces: address line before any interface"},
		{"bad index", "x: eth0: <UP> mtu 1500", "f:1: interfaces: bad interface index"},
		{"no name", "2:", "f:1: interfaces: missing interface name"},
		{"bad addr", "2: eth0: <UP> mtu 1500\n    inet 10.0.0.300/24 scope global", `f:2: interfaces: bad address "10.0.0.300/24"`},
		{"family", "2: eth0: <UP> mtu 1500\n    inet6 10.0.0.1/24 scope global", "f:2: interfaces: address family does not match inet6"},
		{"bad mtu", "2: eth0: <UP> mtu big", "f:1: interfaces: bad mtu"},
		{"flags", "2: eth0: <UP mtu 1500", "f:1: interfaces: unterminated flag list"},
		{"peer", "2: eth0: <UP>\n    inet 10.0.0.1 peer", "f:2: interfaces: peer without address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseIPAddr("f", lines(1, tt.in))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %v, want prefix %q", err, tt.want)
			}
		})
	}
}
