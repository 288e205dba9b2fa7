package facts

import (
	"fmt"
	"strings"
	"testing"
)

// processedJSON is the shape ansible/process_facts.py writes from raw
// facts: interfaces as a parsed `ip addr` dict, tables with "table",
// table_names, ipset lists and iptables-save text in raw_config.
const processedJSON = `{
  "metadata": {"hostname": "r9", "kernel_version": "6.1.0-9", "type": "core"},
  "routing": {
    "table_names": {"100": "priority_table"},
    "tables": [
      {"dst": "default", "gateway": "10.0.0.1", "dev": "eth0", "table": "main", "flags": ["onlink"]},
      {"dst": "10.0.0.0/24", "dev": "eth0", "protocol": "kernel", "scope": "link", "prefsrc": "10.0.0.9", "metric": 1, "table": "main"},
      {"dst": "10.9.0.0/16", "gateway": "10.0.0.2", "dev": "eth0", "table": "priority_table"},
      {"dst": "blackhole", "table": "main"},
      {"type": "unreachable", "dst": "10.66.0.0/16", "table": "100"},
      {"dst": "10.8.0.0/16", "nexthops": [{"gateway": "10.0.0.3", "dev": "eth0", "weight": 2}], "table": "main"}
    ],
    "rules": [
      {"priority": 0, "src": "all", "table": "local"},
      {"priority": 10, "src": "10.0.0.0", "srclen": 24, "dst": "10.9.0.0/16", "table": "priority_table", "iif": "eth0", "fwmark": "0x1", "fwmask": "0xff"},
      {"priority": 11, "src": "all", "ipproto": "tcp", "dport": 443, "tos": "0x10", "table": "100"},
      {"priority": 12, "src": "all", "sport_start": 1000, "sport_end": 2000, "action": "blackhole"},
      {"priority": 13, "src": "all", "action": "goto", "goto": 32766},
      {"priority": 32766, "src": "all", "table": "main"}
    ]
  },
  "network": {
    "ip_forwarding_enabled": true,
    "interfaces": {"command": "ip addr show", "exit_code": 0, "parsed": {
      "eth0": {"index": 2, "flags": ["BROADCAST", "UP"], "mtu": 1500, "state": "UP", "link_type": "ether", "mac_address": "52:54:00:00:00:09",
               "addresses": [{"family": "inet", "address": "10.0.0.9", "prefixlen": 24, "scope": "global"}]},
      "lo": {"index": 1, "flags": ["LOOPBACK", "UP"], "mtu": 65536, "state": "UNKNOWN", "link_type": "loopback",
             "addresses": [{"family": "inet", "address": "127.0.0.1", "prefixlen": 8, "scope": "host"}]}
    }}
  },
  "firewall": {
    "iptables": {"available": true, "raw_config": "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -i eth0 -j ACCEPT\nCOMMIT\n"},
    "ipset": {"available": true, "lists": [{"web": {"type": "hash:ip,port", "header": "family inet hashsize 1024", "members": ["10.0.0.5,tcp:80", "10.0.0.6,tcp:443 nomatch"]}}]}
  }
}`

func TestParseLegacyJSONProcessed(t *testing.T) {
	r, find, err := ParseLegacyJSON("d/r9.json", []byte(processedJSON))
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "r9" || r.Kernel != "6.1.0-9" || r.Metadata.Type != "core" || r.Sysctls["net.ipv4.ip_forward"] != "1" {
		t.Errorf("router = %+v", r)
	}
	var tables []string
	for _, tb := range r.Tables {
		var rs []string
		for _, rt := range tb.Routes {
			rs = append(rs, rt.Text)
		}
		tables = append(tables, fmt.Sprintf("%d:%s", tb.ID, strings.Join(rs, "|")))
	}
	want := "100:10.9.0.0/16 via 10.0.0.2 dev eth0|unreachable 10.66.0.0/16 254:default via 10.0.0.1 dev eth0 onlink|10.0.0.0/24 dev eth0 proto kernel scope link src 10.0.0.9 metric 1|10.8.0.0/16"
	if got := strings.Join(tables, " "); got != want {
		t.Errorf("tables:\n got %s\nwant %s", got, want)
	}
	if nh := r.Table(TableMain).Routes[2].Nexthops; len(nh) != 1 || nh[0].Weight != 2 || nh[0].Gateway.String() != "10.0.0.3" {
		t.Errorf("nexthops = %+v", nh)
	}
	var rules []string
	for _, ru := range r.Rules {
		rules = append(rules, ru.Text)
	}
	wantRules := []string{
		"0: from all lookup local",
		"10: from 10.0.0.0/24 to 10.9.0.0/16 iif eth0 fwmark 0x1 lookup priority_table",
		"11: from all tos 0x10 ipproto tcp dport 443 lookup 100",
		"12: from all sport 1000-2000 blackhole",
		"13: from all goto 32766",
		"32766: from all lookup main",
	}
	if strings.Join(rules, "\n") != strings.Join(wantRules, "\n") {
		t.Errorf("rules:\n%s", strings.Join(rules, "\n"))
	}
	if ru := r.Rules[1]; ru.FwmarkMask != 0xff || ru.Table != 100 || ru.From.String() != "10.0.0.0/24" {
		t.Errorf("rule 10 = %+v", ru)
	}
	if ru := r.Rules[2]; ru.IPProto != 6 || ru.DPort != (PortRange{443, 443}) || ru.TOS != 0x10 {
		t.Errorf("rule 11 = %+v", ru)
	}
	if len(r.Interfaces) != 2 || r.Interfaces[0].Name != "lo" || r.Interfaces[1].MAC != "52:54:00:00:00:09" || r.Interfaces[1].Addrs[0].Prefix.String() != "10.0.0.9/24" {
		t.Errorf("interfaces = %+v", r.Interfaces)
	}
	if s := r.Ipset("web"); s == nil || len(s.Members) != 2 || !s.Members[1].Nomatch || s.Options[0] != "family" {
		t.Errorf("ipset = %+v", s)
	}
	if ft := r.IPTable("filter"); ft == nil || len(ft.Chain("FORWARD").Rules) != 1 {
		t.Errorf("iptables = %+v", r.Iptables)
	}
	if len(find) != 1 || !strings.Contains(find[0].Message, `destination blackhole is not a prefix`) {
		t.Errorf("findings = %v", find)
	}
}

func TestParseLegacyJSONErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{`[1,2]`, "f.json: not a predecessor JSON facts file: line 1: json: cannot unmarshal array"},
		{`{"routing": {"rules": [{"priority": 1, "table": "ghost"}]}}`, `f.json: routing.rules[0]: unknown routing table "ghost"`},
		{`{"routing": {"rules": [{"priority": "x", "table": "main"}]}}`, `f.json: routing.rules[0]: bad priority "x"`},
		{`{"routing": {"tables": [{"dst": "10.0.0.0/8", "gateway": "nope"}]}}`, `f.json: routing.tables[0]: bad gateway "nope"`},
		{`{"routing": {"tables": [{"dst": "10.0.0.0/8", "table": "ghost"}]}}`, `f.json: routing.tables[0]: unknown routing table "ghost"`},
		{`{"network": {"interfaces": [{"dev": "eth0", "prefsrc": "10.0.0.300", "dst": "10.0.0.0/24"}]}}`, `f.json: network.interfaces: [0]: bad prefsrc "10.0.0.300"`},
		{`{"routing": {"table_names": {"x": "web"}}}`, `f.json: routing.table_names: bad entry "x": web`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, _, err := ParseLegacyJSON("f.json", []byte(tt.in))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %v\nwant prefix %s", err, tt.want)
			}
		})
	}
}

// TestParseLegacyJSONFailedParts: where the predecessor's own parsing
// failed it wrote {"parsing_error": …} or {"error": …} instead of a list;
// such files load with warnings.
func TestParseLegacyJSONFailedParts(t *testing.T) {
	in := `{
  "routing": {"tables": {"parsing_error": "boom"}, "rules": {"error": "Command failed or IP wrapper not available", "exit_code": 1},
              "table_names": {"error": "rt_tables file not accessible"}},
  "network": {"interfaces": {"command": "ip addr show", "exit_code": 0, "parsing_error": "bad"}},
  "firewall": {"iptables": {"available": true, "filter": [{"INPUT": [{"number": 1, "target": "ACCEPT"}]}]},
               "ipset": {"available": false, "lists": ""}}
}`
	r, find, err := ParseLegacyJSON("p.json", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Tables) != 0 || len(r.Rules) != 0 || len(r.Interfaces) != 0 || r.Ipsets != nil {
		t.Errorf("router = %+v", r)
	}
	var got []string
	for _, f := range find {
		got = append(got, f.String())
	}
	want := []string{
		`p.json: warning: routing.table_names: the source says "rt_tables file not accessible"; only reserved table names are known`,
		`p.json: warning: routing.tables: boom; no routes`,
		`p.json: warning: routing.rules: Command failed or IP wrapper not available; no rules`,
		`p.json: warning: firewall.iptables holds 1 rules in the predecessor's structured form without raw_config; they are not read`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
