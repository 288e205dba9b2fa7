package facts

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseIPRule(t *testing.T) {
	names := reservedTables()
	names["priority_table"] = 100
	all := netip.Prefix{}
	tests := []struct {
		in   string
		want Rule
	}{
		{"0:\tfrom all lookup local", Rule{Priority: 0, Action: "lookup", Table: 255, TableName: "local"}},
		{"32766:\tfrom all lookup main", Rule{Priority: 32766, Action: "lookup", Table: 254, TableName: "main"}},
		{"50:\tfrom 10.1.1.0/24 lookup priority_table", Rule{Priority: 50, From: netip.MustParsePrefix("10.1.1.0/24"), Action: "lookup", Table: 100, TableName: "priority_table"}},
		{"51:\tfrom 10.1.3.5 lookup 100", Rule{Priority: 51, From: netip.MustParsePrefix("10.1.3.5/32"), Action: "lookup", Table: 100, TableName: "100"}},
		{"52:\tnot from 10.0.0.0/8 to 192.168.0.0/16 table 7", Rule{Priority: 52, Not: true, From: netip.MustParsePrefix("10.0.0.0/8"), To: netip.MustParsePrefix("192.168.0.0/16"), Action: "lookup", Table: 7, TableName: "7"}},
		{"53:\tfrom all iif eth0 [detached] oif wg0 lookup main", Rule{Priority: 53, IIF: "eth0", OIF: "wg0", Action: "lookup", Table: 254, TableName: "main"}},
		{"54:\tfrom all fwmark 0x1 lookup main", Rule{Priority: 54, HasFwmark: true, Fwmark: 1, FwmarkMask: 0xffffffff, Action: "lookup", Table: 254, TableName: "main"}},
		{"55:\tfrom all fwmark 0x10/0xf0 lookup main", Rule{Priority: 55, HasFwmark: true, Fwmark: 0x10, FwmarkMask: 0xf0, Action: "lookup", Table: 254, TableName: "main"}},
		{"56:\tfrom all tos 0x10 lookup main", Rule{Priority: 56, HasTOS: true, TOS: 0x10, Action: "lookup", Table: 254, TableName: "main"}},
		{"57:\tfrom all dsfield 0x08 lookup main", Rule{Priority: 57, HasTOS: true, TOS: 8, Action: "lookup", Table: 254, TableName: "main"}},
		{"58:\tfrom all ipproto tcp dport 22 lookup main", Rule{Priority: 58, IPProto: 6, DPort: PortRange{22, 22}, Action: "lookup", Table: 254, TableName: "main"}},
		{"59:\tfrom all ipproto 17 sport 1000-2000 lookup main", Rule{Priority: 59, IPProto: 17, SPort: PortRange{1000, 2000}, Action: "lookup", Table: 254, TableName: "main"}},
		{"60:\tfrom all ipproto ipproto-132 lookup main", Rule{Priority: 60, IPProto: 132, Action: "lookup", Table: 254, TableName: "main"}},
		{"61:\tfrom all uidrange 1000-2000 lookup main", Rule{Priority: 61, UIDRange: "1000-2000", Action: "lookup", Table: 254, TableName: "main"}},
		{"1000:\tfrom all lookup [l3mdev-table]", Rule{Priority: 1000, L3MDev: true, Action: "lookup"}},
		{"1001:\tfrom all l3mdev lookup main", Rule{Priority: 1001, L3MDev: true, Action: "lookup", Table: 254, TableName: "main"}},
		{"62:\tfrom all goto 32766", Rule{Priority: 62, Action: "goto", Goto: 32766}},
		{"63:\tfrom all goto 70 [unresolved]", Rule{Priority: 63, Action: "goto", Goto: 70}},
		{"64:\tfrom 10.9.0.0/16 blackhole", Rule{Priority: 64, From: netip.MustParsePrefix("10.9.0.0/16"), Action: "blackhole"}},
		{"65:\tfrom all unreachable", Rule{Priority: 65, Action: "unreachable"}},
		{"66:\tfrom all prohibit", Rule{Priority: 66, Action: "prohibit"}},
		{"67:\tfrom all nop", Rule{Priority: 67, Action: "nop"}},
		{"68:\tfrom all lookup main suppress_prefixlength 0", Rule{Priority: 68, Action: "lookup", Table: 254, TableName: "main", SuppressPrefixLen: 0}},
		{"69:\tfrom all lookup main suppress_ifgroup 5", Rule{Priority: 69, Action: "lookup", Table: 254, TableName: "main", SuppressIfGroup: "5"}},
		{"70:\tfrom all realms 1/2 lookup main", Rule{Priority: 70, Realms: "1/2", Action: "lookup", Table: 254, TableName: "main"}},
		{"71:\tfrom all lookup main proto static", Rule{Priority: 71, Protocol: "static", Action: "lookup", Table: 254, TableName: "main"}},
		{"72:\tfrom 10.1.1.7/24 to all lookup main", Rule{Priority: 72, From: netip.MustParsePrefix("10.1.1.0/24"), To: all, Action: "lookup", Table: 254, TableName: "main"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			rs, err := ParseIPRule("f", lines(3, tt.in), names)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != 1 {
				t.Fatalf("got %d rules", len(rs))
			}
			w := tt.want
			if w.SuppressPrefixLen == 0 && !strings.Contains(tt.in, "suppress_prefixlength") {
				w.SuppressPrefixLen = -1
			}
			w.Text = tt.in
			w.Pos = Pos{File: "f", Line: 3}
			if *rs[0] != w {
				t.Errorf("got  %+v\nwant %+v", *rs[0], w)
			}
		})
	}
}

func TestParseIPRuleErrors(t *testing.T) {
	names := reservedTables()
	tests := []struct{ in, want string }{
		{"from all lookup main", `f:1: policy rule "from all lookup main": expected "PRIORITY: selectors action"`},
		{"x:\tfrom all lookup main", `bad priority "x"`},
		{"5:\tfrom all lookup nosuch", `f:1: policy rule "5:\tfrom all lookup nosuch": unknown routing table "nosuch" (not in rt_tables`},
		{"5:\tfrom all", "no action"},
		{"5:\tfrom", "from needs a value"},
		{"5:\tfrom 10.0.0.0/33 lookup main", `bad from prefix`},
		{"5:\tfwmark zz lookup main", `bad fwmark "zz"`},
		{"5:\tfwmark 1/zz lookup main", `bad fwmark mask`},
		{"5:\ttos lowdelay lookup main", `bad tos "lowdelay"`},
		{"5:\tipproto bogus lookup main", `unknown ipproto "bogus"`},
		{"5:\tdport 99999 lookup main", `bad dport`},
		{"5:\tdport 20-10 lookup main", `bad dport`},
		{"5:\tfrom all lookup main goto 7", `second action "goto"`},
		{"5:\tfrom all goto x", `bad goto target`},
		{"5:\tfrom all frobnicate 3 lookup main", `unknown keyword "frobnicate"`},
		{"5:\tfrom all lookup main suppress_prefixlength x", `bad suppress_prefixlength`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseIPRule("f", lines(1, tt.in), names)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "f:1: ") {
				t.Errorf("error = %v, want f:1: … %q", err, tt.want)
			}
		})
	}
	// Every bad line is reported, not only the first.
	_, err := ParseIPRule("f", lines(1, "x\n1:\tfrom all lookup main\ny"), names)
	pe, ok := err.(*ParseError)
	if !ok || len(pe.Findings) != 2 || pe.Findings[1].Pos.Line != 3 || !strings.Contains(err.Error(), "(and 1 more problem)") {
		t.Errorf("multi-error = %v", err)
	}
}

func TestParseDSField(t *testing.T) {
	// Values of iproute2's stock rt_dsfield file.
	for in, want := range map[string]uint8{"0x10": 0x10, "8": 8, "default": 0, "AF11": 0x28, "af12": 0x30, "AF13": 0x38,
		"AF21": 0x48, "AF33": 0x78, "AF41": 0x88, "AF43": 0x98, "CS1": 0x20, "CS5": 0xa0, "CS7": 0xe0, "EF": 0xb8} {
		if got, ok := ParseDSField(in); !ok || got != want {
			t.Errorf("ParseDSField(%q) = %#x, %v; want %#x", in, got, ok, want)
		}
	}
	for _, in := range []string{"AF51", "AF14", "CS8", "lowdelay", "0x100", ""} {
		if _, ok := ParseDSField(in); ok {
			t.Errorf("ParseDSField(%q) accepted", in)
		}
	}
}
