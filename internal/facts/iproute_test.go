package facts

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseIPRoute(t *testing.T) {
	names := reservedTables()
	names["web"] = 700
	tests := []struct {
		name, in string
		table    int
		want     string // the route as JSON, without text/pos
		warn     string
	}{
		{"default", "default via 203.0.113.1 dev eth0 metric 100", -1,
			`{"type":"unicast","dst":"0.0.0.0/0","gateway":"203.0.113.1","dev":"eth0","metric":100}`, ""},
		{"connected", "10.1.1.0/24 dev eth1 proto kernel scope link src 10.1.1.1", -1,
			`{"type":"unicast","dst":"10.1.1.0/24","dev":"eth1","scope":"link","proto":"kernel","src":"10.1.1.1"}`, ""},
		{"host", "10.9.9.9 via inet 10.1.1.2 dev eth1 onlink", -1,
			`{"type":"unicast","dst":"10.9.9.9/32","gateway":"10.1.1.2","dev":"eth1","onlink":true}`, ""},
		{"unmasked", "10.1.1.7/24 dev eth1", -1, `{"type":"unicast","dst":"10.1.1.0/24","dev":"eth1"}`, ""},
		{"local", "local 10.1.1.1 dev eth1 table local proto kernel scope host src 10.1.1.1", 255,
			`{"type":"local","dst":"10.1.1.1/32","dev":"eth1","scope":"host","proto":"kernel","src":"10.1.1.1"}`, ""},
		{"broadcast", "broadcast 10.1.1.255 dev eth1 table local proto kernel scope link src 10.1.1.1", 255,
			`{"type":"broadcast","dst":"10.1.1.255/32","dev":"eth1","scope":"link","proto":"kernel","src":"10.1.1.1"}`, ""},
		{"blackhole", "blackhole 10.9.0.0/16 proto static", -1, `{"type":"blackhole","dst":"10.9.0.0/16","proto":"static"}`, ""},
		{"unreachable", "unreachable 10.8.0.0/16 metric 5", -1, `{"type":"unreachable","dst":"10.8.0.0/16","metric":5}`, ""},
		{"prohibit", "prohibit 10.7.0.0/16", -1, `{"type":"prohibit","dst":"10.7.0.0/16"}`, ""},
		{"throw", "throw 10.6.0.0/16 table web", 700, `{"type":"throw","dst":"10.6.0.0/16"}`, ""},
		{"nat", "nat 10.5.0.0/16 via 10.1.1.9", -1, `{"type":"nat","dst":"10.5.0.0/16","gateway":"10.1.1.9"}`, ""},
		{"multicast anycast", "anycast 10.4.0.0/16 dev eth0", -1, `{"type":"anycast","dst":"10.4.0.0/16","dev":"eth0"}`, ""},
		{"table number", "10.3.0.0/16 via 10.1.1.1 dev eth0 table 100", 100, `{"type":"unicast","dst":"10.3.0.0/16","gateway":"10.1.1.1","dev":"eth0"}`, ""},
		{"tos mtu pref", "10.2.0.0/16 tos 0x10 via 10.1.1.1 dev eth0 preference 7 mtu lock 1400 advmss 1360", -1,
			`{"type":"unicast","dst":"10.2.0.0/16","gateway":"10.1.1.1","dev":"eth0","metric":7,"tos":16,"mtu":1400,"extra":["advmss 1360"]}`, ""},
		{"flags", "10.1.0.0/16 via 10.1.1.1 dev eth0 linkdown dead", -1,
			`{"type":"unicast","dst":"10.1.0.0/16","gateway":"10.1.1.1","dev":"eth0","flags":["linkdown","dead"]}`, ""},
		{"unknown keyword", "10.0.0.0/8 via 10.1.1.1 dev eth0 frob 1 2 metric 3", -1,
			`{"type":"unicast","dst":"10.0.0.0/8","gateway":"10.1.1.1","dev":"eth0","metric":3,"extra":["frob 1 2"]}`,
			`f:1: warning: route "10.0.0.0/8 via 10.1.1.1 dev eth0 frob 1 2 metric 3": unknown route keyword "frob 1 2" (kept, not simulated)`},
		{"multipath indented", "default proto static metric 100 \n\tnexthop via 10.0.0.1 dev eth0 weight 1 \n\tnexthop via 10.0.0.2 dev eth1 weight 2 onlink dead", -1,
			`{"type":"unicast","dst":"0.0.0.0/0","metric":100,"proto":"static","nexthops":[{"gateway":"10.0.0.1","dev":"eth0","weight":1},{"gateway":"10.0.0.2","dev":"eth1","weight":2,"onlink":true,"flags":["dead"]}]}`, ""},
		{"multipath -o", "default proto static metric 100 \\\tnexthop via 10.0.0.1 dev eth0 weight 1 \\\tnexthop dev eth1 weight 1", -1,
			`{"type":"unicast","dst":"0.0.0.0/0","metric":100,"proto":"static","nexthops":[{"gateway":"10.0.0.1","dev":"eth0","weight":1},{"dev":"eth1","weight":1}]}`, ""},
		{"backslash continuation", "10.0.0.0/8 proto static \\\n  nexthop via 10.0.0.1 dev eth0 weight 1", -1,
			`{"type":"unicast","dst":"10.0.0.0/8","proto":"static","nexthops":[{"gateway":"10.0.0.1","dev":"eth0","weight":1}]}`, ""},
		{"ipv6", "default via fe80::1 dev eth0 proto ra metric 1024 expires 1799sec pref medium", -1,
			`{"type":"unicast","dst":"::/0","gateway":"fe80::1","dev":"eth0","metric":1024,"proto":"ra","extra":["expires 1799sec","pref medium"]}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, warn, err := ParseIPRoute("f", lines(1, tt.in), names)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != 1 {
				t.Fatalf("got %d routes", len(rs))
			}
			if rs[0].Table != tt.table {
				t.Errorf("table = %d, want %d", rs[0].Table, tt.table)
			}
			r := *rs[0].Route
			if r.Pos != (Pos{File: "f", Line: 1}) || r.Text == "" || strings.Contains(r.Text, `\`) {
				t.Errorf("pos/text = %v %q", r.Pos, r.Text)
			}
			r.Text, r.Pos = "", Pos{}
			b, _ := json.Marshal(r)
			got := strings.Replace(strings.Replace(string(b), `,"text":""`, "", 1), `,"pos":{}`, "", 1)
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			gw := ""
			if len(warn) > 0 {
				gw = warn[0].String()
			}
			if gw != tt.warn || len(warn) > 1 {
				t.Errorf("warnings = %v, want %q", warn, tt.warn)
			}
		})
	}
}

func TestParseIPRouteErrors(t *testing.T) {
	names := reservedTables()
	tests := []struct{ in, want string }{
		{"blackhole", "no destination"},
		{"10.0.0.0/33 dev eth0", `bad destination "10.0.0.0/33"`},
		{"10.0.0.0/8 via x", `bad gateway "x"`},
		{"10.0.0.0/8 via", "via needs a value"},
		{"10.0.0.0/8 dev eth0 metric -1", `bad metric "-1"`},
		{"10.0.0.0/8 dev eth0 table nosuch", `unknown routing table "nosuch"`},
		{"10.0.0.0/8 dev eth0 src 1.2.3", `bad src`},
		{"10.0.0.0/8 dev eth0 weight 2", `bad weight`},
		{"10.0.0.0/8 nexthop weight 1", `nexthop 1 has neither via nor dev`},
		{"10.0.0.0/8 dev eth0 mtu x", `bad mtu`},
		{"10.0.0.0/8 dev eth0 tos high", `bad tos`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, _, err := ParseIPRoute("f", lines(4, tt.in), names)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "f:4: route ") {
				t.Errorf("error = %v, want f:4: route … %q", err, tt.want)
			}
		})
	}
}
