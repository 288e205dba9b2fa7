package facts

import (
	"fmt"
	"strings"
	"testing"
)

// rawFile builds a raw facts file from (name, title, body) triples.
func rawFile(secs ...[3]string) string {
	var b strings.Builder
	b.WriteString("# Traceroute Simulator Facts Collection\n# Kernel: 6.1.0-header\n\n")
	for _, s := range secs {
		fmt.Fprintf(&b, "=== TSIM_SECTION_START:%s ===\nTITLE: %s\nCOMMAND: x\nTIMESTAMP: 2025-01-01 00:00:00\n---\n%s\n\nEXIT_CODE: 0\n=== TSIM_SECTION_END:%s ===\n\n", s[0], s[1], s[2], s[0])
	}
	return b.String()
}

func TestParseRawCurrentNames(t *testing.T) {
	in := rawFile(
		[3]string{"rt_tables", "Routing Tables", "#\n# reserved values\n255\tlocal\n254\tmain\n253\tdefault\n0\tunspec\n100 web # web traffic"},
		[3]string{"policy_rules", "IP Policy Rules", "0:\tfrom all lookup local\n10:\tfrom 10.1.1.0/24 lookup web\n32766:\tfrom all lookup main\n32767:\tfrom all lookup default"},
		[3]string{"routing_table_main", "IP Routing Table main", "default via 10.1.1.254 dev eth0\n10.1.1.0/24 dev eth0 proto kernel scope link src 10.1.1.1"},
		[3]string{"routing_table_100", "IP Routing Table 100", "default via 10.1.1.253 dev eth0 frob 1"},
		[3]string{"interfaces", "Network Interfaces", "1: lo: <LOOPBACK,UP> mtu 65536 state UNKNOWN\n    inet 127.0.0.1/8 scope host lo\n2: eth0: <UP> mtu 1500 state UP\n    link/ether 52:54:00:00:00:01 brd ff:ff:ff:ff:ff:ff\n    inet 10.1.1.1/24 scope global eth0"},
		[3]string{"iptables_filter", "Iptables Filter Table", "Chain INPUT (policy ACCEPT)"},
		[3]string{"iptables_save", "Iptables Save Output", "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -s 10.1.1.0/24 -j ACCEPT\nCOMMIT"},
		[3]string{"ipset_save", "Ipset Save Output", "create s hash:ip\nadd s 10.1.1.5"},
		[3]string{"ip_forwarding", "IP Forwarding Status", "1"},
		[3]string{"kernel_version", "Kernel Version", "6.1.0-test"},
		[3]string{"sysctl", "Sysctls", "net.ipv4.conf.all.rp_filter = 2"},
		[3]string{"metadata", "Metadata", "type: gateway\nlinux: true\nrole: edge"},
		[3]string{"mystery", "What", "x"},
	)
	r, find, err := ParseRaw("dir/r1_facts.txt", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "r1" || r.File != "dir/r1_facts.txt" {
		t.Errorf("name/file = %q %q", r.Name, r.File)
	}
	var ids []string
	for _, tb := range r.Tables {
		ids = append(ids, fmt.Sprintf("%d:%s:%d", tb.ID, tb.Name, len(tb.Routes)))
	}
	if got := strings.Join(ids, " "); got != "100:web:1 254:main:2" {
		t.Errorf("tables = %s", got)
	}
	if r.TableNames["web"] != 100 || r.TableNames["local"] != 255 {
		t.Errorf("table names = %v", r.TableNames)
	}
	if len(r.Rules) != 4 || r.Rules[1].Table != 100 || r.Rules[1].Pos.Line != 26 {
		t.Errorf("rules = %+v", r.Rules[1])
	}
	if len(r.Interfaces) != 2 || r.Interfaces[1].MAC != "52:54:00:00:00:01" {
		t.Errorf("interfaces = %+v", r.Interfaces)
	}
	if len(r.Iptables) != 1 || r.IPTable("filter").Chain("FORWARD") == nil || len(r.IPTable("filter").Chain("FORWARD").Rules) != 1 {
		t.Fatalf("iptables = %+v", r.Iptables)
	}
	// The iptables parser gets real file line numbers.
	if got := r.IPTable("filter").Chain("FORWARD").Rules[0].Pos; got.Line != 87 || got.File != "dir/r1_facts.txt" {
		t.Errorf("iptables rule pos = %v", got)
	}
	if len(r.Ipsets) != 1 || len(r.Ipsets[0].Members) != 1 {
		t.Errorf("ipsets = %+v", r.Ipsets)
	}
	if r.Sysctls["net.ipv4.ip_forward"] != "1" || r.Sysctls["net.ipv4.conf.all.rp_filter"] != "2" {
		t.Errorf("sysctls = %v", r.Sysctls)
	}
	if r.Kernel != "6.1.0-test" {
		t.Errorf("kernel = %q", r.Kernel)
	}
	if r.Metadata.Type != "gateway" || r.Metadata.Role != "edge" || r.Metadata.Linux == nil || !*r.Metadata.Linux {
		t.Errorf("metadata = %+v", r.Metadata)
	}
	var msgs []string
	for _, f := range find {
		if f.Router != "r1" || f.Severity != SevWarning {
			t.Errorf("finding %+v", f)
		}
		msgs = append(msgs, f.String())
	}
	want := []string{
		`dir/r1_facts.txt:49: warning: route "default via 10.1.1.253 dev eth0 frob 1": unknown route keyword "frob 1" (kept, not simulated)`,
		`dir/r1_facts.txt:146: warning: unknown section mystery ignored`,
	}
	if strings.Join(msgs, "\n") != strings.Join(want, "\n") {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(msgs, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseRawOlderNames(t *testing.T) {
	in := rawFile(
		[3]string{"routing_table", "IP Routing Table", "default via 10.1.1.254 dev eth0"},
		[3]string{"policy_rules", "IP Policy Rules", "0:\tfrom all lookup local\n50:\tdport 80 lookup web_table\n32766:\tfrom all lookup main"},
		[3]string{"routing_table_web_table", "IP Routing Table Web Table (700)", "10.2.0.0/16 via 10.1.1.1 dev eth0 metric 10"},
		[3]string{"iptables_nat", "Iptables NAT Table", "Chain PREROUTING"},
		[3]string{"ipset_list", "Ipset List", "Name: x"},
	)
	r, find, err := ParseRaw("old_facts.txt", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Tables) != 2 || r.Tables[1].ID != 700 || r.Tables[1].Name != "web_table" || r.Tables[0].ID != TableMain {
		for _, tb := range r.Tables {
			t.Errorf("table %d %q %d routes", tb.ID, tb.Name, len(tb.Routes))
		}
	}
	if r.Rules[1].Table != 700 || r.Rules[1].DPort != (PortRange{80, 80}) {
		t.Errorf("rule = %+v", r.Rules[1])
	}
	if r.Kernel != "6.1.0-header" {
		t.Errorf("kernel from header = %q", r.Kernel)
	}
	if len(find) != 1 || !strings.Contains(find[0].Message, "iptables -L") {
		t.Errorf("findings = %v", find)
	}
}

func TestParseRawTableAll(t *testing.T) {
	for _, name := range []string{"routing_table_main", "routing_table_all"} {
		testTableAll(t, name)
	}
}

func testTableAll(t *testing.T, section string) {
	in := rawFile(
		[3]string{section, "all tables", "default via 10.1.1.254 dev eth0\n10.9.0.0/16 via 10.1.1.2 dev eth0 table 100\nlocal 10.1.1.1 dev eth0 table local proto kernel scope host src 10.1.1.1"},
	)
	r, _, err := ParseRaw("a_facts.txt", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tb := range r.Tables {
		got = append(got, fmt.Sprintf("%d:%d", tb.ID, len(tb.Routes)))
	}
	if strings.Join(got, " ") != "100:1 254:1 255:1" {
		t.Errorf("tables = %v", got)
	}
}

func TestParseRawErrors(t *testing.T) {
	tests := []struct {
		name string
		secs [][3]string
		want string
	}{
		{"unknown rule table", [][3]string{{"policy_rules", "Rules", "0:\tfrom all lookup local\n5:\tfrom all lookup ghost"}},
			`f_facts.txt:10: policy rule "5:\tfrom all lookup ghost": unknown routing table "ghost"`},
		{"table without id", [][3]string{{"routing_table_ghost", "IP Routing Table Ghost", "default dev eth0"}},
			`f_facts.txt:4: section routing_table_ghost: unknown table "ghost" (not in rt_tables and no "(ID)" in the title)`},
		{"title disagrees", [][3]string{{"rt_tables", "t", "100 web"}, {"routing_table_web", "Web (200)", ""}},
			`f_facts.txt:14: section routing_table_web: title says table 200 but rt_tables says web is 100`},
		{"same table twice", [][3]string{{"routing_table", "main", "default dev eth0"}, {"routing_table_main", "main", "default dev eth1"}},
			`f_facts.txt:14: section routing_table_main: table 254 was already collected by section routing_table (line 4)`},
		{"duplicate section", [][3]string{{"interfaces", "a", ""}, {"interfaces", "b", ""}},
			`f_facts.txt:14: section interfaces appears twice (first at line 4)`},
		{"bad rt_tables", [][3]string{{"rt_tables", "t", "web 100"}}, `f_facts.txt:9: rt_tables: expected "ID NAME", got "web 100"`},
		{"bad route", [][3]string{{"routing_table", "t", "10.0.0.0/8 via nowhere"}}, `f_facts.txt:9: route "10.0.0.0/8 via nowhere": bad gateway "nowhere"`},
		{"bad ipset", [][3]string{{"ipset_save", "t", "add x 1.2.3.4"}}, `f_facts.txt:9: ipset "add x 1.2.3.4": set "x" is not created before this member`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseRaw("f_facts.txt", []byte(rawFile(tt.secs...)))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %v\nwant prefix %s", err, tt.want)
			}
		})
	}
}

func TestParseRawFailedCommand(t *testing.T) {
	in := strings.Replace(rawFile([3]string{"ipset_save", "t", "ERROR: Command 'ipset' not found or not executable"}), "EXIT_CODE: 0", "EXIT_CODE: 127", 1)
	r, find, err := ParseRaw("f_facts.txt", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if r.Ipsets != nil || len(find) != 1 || find[0].String() != "f_facts.txt:4: warning: section ipset_save: command exited with 127; section ignored" {
		t.Errorf("ipsets %v findings %v", r.Ipsets, find)
	}
}

func TestRouterName(t *testing.T) {
	for in, want := range map[string]string{"d/hq-gw_facts.txt": "hq-gw", "r1.txt": "r1", "_facts.txt": "_facts", "plain": "plain"} {
		if got := routerName(in); got != want {
			t.Errorf("routerName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseRawIPv6Note(t *testing.T) {
	in := rawFile(
		[3]string{"interfaces", "i", "2: eth0: <UP> mtu 1500 state UP\n    inet 10.0.0.1/24 scope global eth0\n    inet6 fe80::1/64 scope link\n    inet6 2001:db8::1/64 scope global"},
		[3]string{"routing_table_main", "m", "10.0.0.0/24 dev eth0\n2001:db8::/64 dev eth0"},
	)
	_, find, err := ParseRaw("v6_facts.txt", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(find) != 1 || find[0].String() != "v6_facts.txt:12: warning: IPv6 is parsed and kept but not simulated: 1 global IPv6 addresses, 1 IPv6 routes" {
		t.Errorf("findings = %v", find)
	}
	// Link-local only: nothing to say.
	_, find, _ = ParseRaw("v6_facts.txt", []byte(rawFile([3]string{"interfaces", "i", "2: eth0: <UP> mtu 1500\n    inet6 fe80::1/64 scope link"})))
	if len(find) != 0 {
		t.Errorf("findings = %v", find)
	}
}
