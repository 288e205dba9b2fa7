package trace

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/testenv"
)

// nfRouter builds a router from iptables-save text and ipset save text,
// with two interfaces: eth1 10.0.1.1/24 and eth2 10.0.2.1/24 (plus
// secondary 10.0.2.2/24 and 192.168.9.1/24 on eth2).
func nfRouter(t testing.TB, save, ipsets string) *facts.Router {
	t.Helper()
	tabs, finds, err := facts.ParseIptablesSave("t.rules", 1, save)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range finds {
		if f.Severity == facts.SevError {
			t.Fatalf("test rules do not parse: %s", f)
		}
	}
	r := &facts.Router{Name: "r1", Iptables: tabs}
	if ipsets != "" {
		var lines []facts.Line
		for i, l := range strings.Split(ipsets, "\n") {
			lines = append(lines, facts.Line{N: i + 1, Text: l})
		}
		sets, err := facts.ParseIpsetSave("t.sets", lines)
		if err != nil {
			t.Fatal(err)
		}
		r.Ipsets = sets
	}
	ifc := func(name string, addrs ...string) *facts.Interface {
		i := &facts.Interface{Name: name, State: "UP"}
		for _, a := range addrs {
			i.Addrs = append(i.Addrs, &facts.IfAddr{Prefix: netip.MustParsePrefix(a)})
		}
		return i
	}
	r.Interfaces = []*facts.Interface{ifc("lo", "127.0.0.1/8"), ifc("eth1", "10.0.1.1/24"),
		ifc("eth2", "10.0.2.1/24", "10.0.2.2/24", "192.168.9.1/24"), ifc("eth3")}
	return r
}

// basePacket is a new TCP connection 10.0.1.5:40000 -> 10.0.2.10:22 being forwarded eth1 -> eth2.
func basePacket() *Packet {
	return &Packet{Src: netip.MustParseAddr("10.0.1.5"), Dst: netip.MustParseAddr("10.0.2.10"), Proto: 6,
		SPort: 40000, DPort: 22, TCPFlags: "SYN", InIf: "eth1", OutIf: "eth2", CTState: "NEW", Length: 60, TTL: 63}
}

func icmpPacket(p *Packet) {
	p.Proto, p.SPort, p.DPort, p.ICMPType, p.ICMPCode, p.TCPFlags = 1, 0, 0, 8, 0, ""
}
func udpPacket(p *Packet) { p.Proto, p.DPort, p.TCPFlags = 17, 53, "" }

// filterWith wraps FORWARD rules in a filter table with policy DROP.
func filterWith(rules ...string) string {
	return "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n:C - [0:0]\n" +
		strings.Join(rules, "\n") + "\nCOMMIT\n"
}

type nfCase struct {
	name    string
	save    string
	sets    string
	table   string // default filter
	chain   string // default FORWARD
	pkt     func(*Packet)
	verdict string
	at      string // "CHAIN#index" of the deciding rule; "FORWARD#0" = policy
	check   func(t *testing.T, res ChainResult, p *Packet)
}

func runNF(t *testing.T, tests []nfCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fw := CompileFirewall(nfRouter(t, tt.save, tt.sets))
			p := basePacket()
			if tt.pkt != nil {
				tt.pkt(p)
			}
			table, chain := tt.table, tt.chain
			if table == "" {
				table = "filter"
			}
			if chain == "" {
				chain = "FORWARD"
			}
			res := fw.Traverse(table, chain, p)
			if res.Verdict != tt.verdict {
				t.Errorf("verdict %s, want %s (at %s#%d, reason %q)", res.Verdict, tt.verdict, res.Chain, res.Index, res.Reason)
			}
			if tt.at != "" {
				if got := res.Chain + "#" + strconv.Itoa(res.Index); got != tt.at {
					t.Errorf("decided at %s, want %s", got, tt.at)
				}
			}
			if res.Index > 0 && (res.Rule == nil || res.Rule.Index != res.Index || res.Rule.Chain != res.Chain) {
				t.Errorf("Rule %+v does not match %s#%d", res.Rule, res.Chain, res.Index)
			}
			if tt.check != nil {
				tt.check(t, res, p)
			}
		})
	}
}

func TestTraverseMatches(t *testing.T) {
	acc := func(rule string) string { return filterWith(rule) }
	tests := []nfCase{
		{name: "policy when nothing matches", save: acc("-A FORWARD -s 10.9.0.0/16 -j ACCEPT"), verdict: "DROP", at: "FORWARD#0"},
		{name: "source prefix", save: acc("-A FORWARD -s 10.0.1.0/24 -j ACCEPT"), verdict: "ACCEPT", at: "FORWARD#1"},
		{name: "source not masked", save: acc("-A FORWARD -s 10.0.1.77/24 -j ACCEPT"), verdict: "ACCEPT"},
		{name: "source dotted mask", save: acc("-A FORWARD -s 10.0.0.0/255.255.0.0 -j ACCEPT"), verdict: "ACCEPT"},
		{name: "source list", save: acc("-A FORWARD -s 192.168.0.1,10.0.1.5 -j ACCEPT"), verdict: "ACCEPT"},
		{name: "negated source", save: acc("-A FORWARD ! -s 10.0.1.0/24 -j ACCEPT"), verdict: "DROP"},
		{name: "negated source matches others", save: acc("-A FORWARD ! -s 10.9.0.0/16 -j ACCEPT"), verdict: "ACCEPT"},
		{name: "legacy negation", save: acc("-A FORWARD -d ! 10.0.2.10 -j ACCEPT"), verdict: "DROP"},
		{name: "destination host", save: acc("-A FORWARD -d 10.0.2.10/32 -j ACCEPT"), verdict: "ACCEPT"},
		{name: "in interface", save: acc("-A FORWARD -i eth1 -j ACCEPT"), verdict: "ACCEPT"},
		{name: "in interface other", save: acc("-A FORWARD -i eth2 -j ACCEPT"), verdict: "DROP"},
		{name: "interface wildcard", save: acc("-A FORWARD -o eth+ -j ACCEPT"), verdict: "ACCEPT"},
		{name: "interface wildcard is a prefix", save: acc("-A FORWARD -o et+ -j ACCEPT"), verdict: "ACCEPT"},
		{name: "interface wildcard no match", save: acc("-A FORWARD -o wg+ -j ACCEPT"), verdict: "DROP"},
		{name: "negated interface wildcard", save: acc("-A FORWARD ! -o wg+ -j ACCEPT"), verdict: "ACCEPT"},
		{name: "in interface absent on hook", save: acc("-A FORWARD -i eth1 -j ACCEPT"), pkt: func(p *Packet) { p.InIf = "" }, verdict: "DROP"},
		{name: "protocol name", save: acc("-A FORWARD -p tcp -j ACCEPT"), verdict: "ACCEPT"},
		{name: "protocol number", save: acc("-A FORWARD -p 6 -j ACCEPT"), verdict: "ACCEPT"},
		{name: "protocol other", save: acc("-A FORWARD -p udp -j ACCEPT"), verdict: "DROP"},
		{name: "negated protocol", save: acc("-A FORWARD ! -p icmp -j ACCEPT"), verdict: "ACCEPT"},
		{name: "protocol all", save: acc("-A FORWARD -p all -j ACCEPT"), verdict: "ACCEPT"},
		{name: "negated protocol all still matches", save: acc("-A FORWARD ! -p all -j ACCEPT"), verdict: "ACCEPT"},
		{name: "fragment never", save: acc("-A FORWARD -f -j ACCEPT"), verdict: "DROP"},
		{name: "negated fragment", save: acc("-A FORWARD ! -f -j ACCEPT"), verdict: "ACCEPT"},
		{name: "tcp dport", save: acc("-A FORWARD -p tcp -m tcp --dport 22 -j ACCEPT"), verdict: "ACCEPT"},
		{name: "implicit tcp dport", save: acc("-A FORWARD -p tcp --dport 22 -j ACCEPT"), verdict: "ACCEPT"},
		{name: "tcp dport service name", save: acc("-A FORWARD -p tcp --dport ssh -j ACCEPT"), verdict: "ACCEPT"},
		{name: "tcp dport other", save: acc("-A FORWARD -p tcp --dport 23 -j ACCEPT"), verdict: "DROP"},
		{name: "tcp dport range", save: acc("-A FORWARD -p tcp --dport 20:30 -j ACCEPT"), verdict: "ACCEPT"},
		{name: "tcp sport open range", save: acc("-A FORWARD -p tcp --sport 1024: -j ACCEPT"), verdict: "ACCEPT"},
		{name: "tcp negated dport", save: acc("-A FORWARD -p tcp ! --dport 22 -j ACCEPT"), verdict: "DROP"},
		{name: "tcp negated dport other proto", save: acc("-A FORWARD -p tcp ! --dport 22 -j ACCEPT"), pkt: udpPacket, verdict: "DROP"},
		{name: "udp dport", save: acc("-A FORWARD -p udp --dport 53 -j ACCEPT"), pkt: udpPacket, verdict: "ACCEPT"},
		{name: "udp rule on tcp", save: acc("-A FORWARD -p udp --dport 22 -j ACCEPT"), verdict: "DROP"},
		{name: "syn", save: acc("-A FORWARD -p tcp --syn -j ACCEPT"), verdict: "ACCEPT"},
		{name: "not syn", save: acc("-A FORWARD -p tcp ! --syn -j ACCEPT"), verdict: "DROP"},
		{name: "tcp flags", save: acc("-A FORWARD -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT"), verdict: "ACCEPT"},
		{name: "tcp flags ack", save: acc("-A FORWARD -p tcp -m tcp --tcp-flags ACK ACK -j ACCEPT"), verdict: "DROP"},
		{name: "tcp flags negated", save: acc("-A FORWARD -p tcp -m tcp ! --tcp-flags SYN,ACK SYN,ACK -j ACCEPT"), verdict: "ACCEPT"},
		{name: "multiport dports", save: acc("-A FORWARD -p tcp -m multiport --dports 80,443,20:25 -j ACCEPT"), verdict: "ACCEPT"},
		{name: "multiport dports miss", save: acc("-A FORWARD -p tcp -m multiport --dports 80,443 -j ACCEPT"), verdict: "DROP"},
		{name: "multiport negated", save: acc("-A FORWARD -p tcp -m multiport ! --dports 80,443 -j ACCEPT"), verdict: "ACCEPT"},
		{name: "multiport ports either", save: acc("-A FORWARD -p tcp -m multiport --ports 40000 -j ACCEPT"), verdict: "ACCEPT"},
		{name: "multiport sports", save: acc("-A FORWARD -p tcp -m multiport --sports 1:1023 -j ACCEPT"), verdict: "DROP"},
		{name: "multiport not icmp", save: acc("-A FORWARD -m multiport ! --dports 80 -j ACCEPT"), pkt: icmpPacket, verdict: "DROP"},
		{name: "icmp type number", save: acc("-A FORWARD -p icmp --icmp-type 8 -j ACCEPT"), pkt: icmpPacket, verdict: "ACCEPT"},
		{name: "icmp type name", save: acc("-A FORWARD -p icmp -m icmp --icmp-type echo-request -j ACCEPT"), pkt: icmpPacket, verdict: "ACCEPT"},
		{name: "icmp type/code", save: acc("-A FORWARD -p icmp -m icmp --icmp-type 8/0 -j ACCEPT"), pkt: icmpPacket, verdict: "ACCEPT"},
		{name: "icmp type/code other code", save: acc("-A FORWARD -p icmp -m icmp --icmp-type 8/1 -j ACCEPT"), pkt: icmpPacket, verdict: "DROP"},
		{name: "icmp other type", save: acc("-A FORWARD -p icmp --icmp-type echo-reply -j ACCEPT"), pkt: icmpPacket, verdict: "DROP"},
		{name: "icmp any", save: acc("-A FORWARD -p icmp --icmp-type any -j ACCEPT"), pkt: icmpPacket, verdict: "ACCEPT"},
		{name: "icmp negated", save: acc("-A FORWARD -p icmp ! --icmp-type 0 -j ACCEPT"), pkt: icmpPacket, verdict: "ACCEPT"},
		{name: "ctstate NEW", save: acc("-A FORWARD -m conntrack --ctstate NEW -j ACCEPT"), verdict: "ACCEPT"},
		{name: "ctstate established", save: acc("-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"), verdict: "DROP"},
		{name: "ctstate invalid", save: acc("-A FORWARD -m conntrack --ctstate INVALID -j ACCEPT"), verdict: "DROP"},
		{name: "ctstate negated", save: acc("-A FORWARD -m conntrack ! --ctstate ESTABLISHED -j ACCEPT"), verdict: "ACCEPT"},
		{name: "state NEW", save: acc("-A FORWARD -m state --state NEW,ESTABLISHED -j ACCEPT"), verdict: "ACCEPT"},
		{name: "ctstate DNAT after DNAT", save: acc("-A FORWARD -m conntrack --ctstate DNAT -j ACCEPT"), pkt: func(p *Packet) { p.DNATed = true }, verdict: "ACCEPT"},
		{name: "ctstate DNAT without", save: acc("-A FORWARD -m conntrack --ctstate DNAT -j ACCEPT"), verdict: "DROP"},
		{name: "ctorigdst before DNAT", save: acc("-A FORWARD -m conntrack --ctorigdst 1.2.3.4 -j ACCEPT"),
			pkt: func(p *Packet) { p.OrigSrc, p.OrigDst = p.Src, netip.MustParseAddr("1.2.3.4") }, verdict: "ACCEPT"},
		{name: "ctproto", save: acc("-A FORWARD -m conntrack --ctproto tcp --ctdir ORIGINAL -j ACCEPT"), verdict: "ACCEPT"},
		{name: "mark", save: acc("-A FORWARD -m mark --mark 0x1 -j ACCEPT"), pkt: func(p *Packet) { p.Mark = 1 }, verdict: "ACCEPT"},
		{name: "mark masked", save: acc("-A FORWARD -m mark --mark 0x10/0xf0 -j ACCEPT"), pkt: func(p *Packet) { p.Mark = 0x1f }, verdict: "ACCEPT"},
		{name: "mark other", save: acc("-A FORWARD -m mark --mark 0x1 -j ACCEPT"), verdict: "DROP"},
		{name: "mark negated", save: acc("-A FORWARD -m mark ! --mark 0x1 -j ACCEPT"), verdict: "ACCEPT"},
		{name: "connmark", save: acc("-A FORWARD -m connmark --mark 0x5 -j ACCEPT"), pkt: func(p *Packet) { p.CTMark = 5 }, verdict: "ACCEPT"},
		{name: "comment", save: acc(`-A FORWARD -m comment --comment "allow all" -j ACCEPT`), verdict: "ACCEPT"},
		{name: "limit matches a single probe", save: acc("-A FORWARD -m limit --limit 1/min --limit-burst 1 -j ACCEPT"), verdict: "ACCEPT"},
		{name: "hashlimit", save: acc("-A FORWARD -m hashlimit --hashlimit-upto 1/sec --hashlimit-name x -j ACCEPT"), verdict: "ACCEPT"},
		{name: "iprange src", save: acc("-A FORWARD -m iprange --src-range 10.0.1.1-10.0.1.9 -j ACCEPT"), verdict: "ACCEPT"},
		{name: "iprange dst miss", save: acc("-A FORWARD -m iprange --dst-range 10.0.2.11-10.0.2.20 -j ACCEPT"), verdict: "DROP"},
		{name: "iprange negated", save: acc("-A FORWARD -m iprange ! --dst-range 10.0.2.11-10.0.2.20 -j ACCEPT"), verdict: "ACCEPT"},
		{name: "addrtype dst unicast", save: acc("-A FORWARD -m addrtype --dst-type UNICAST -j ACCEPT"), verdict: "ACCEPT"},
		{name: "addrtype dst local", save: acc("-A FORWARD -m addrtype --dst-type LOCAL -j ACCEPT"),
			pkt: func(p *Packet) { p.Dst = netip.MustParseAddr("192.168.9.1") }, verdict: "ACCEPT"},
		{name: "addrtype dst local limited to other iface", save: acc("-A FORWARD -m addrtype --dst-type LOCAL --limit-iface-in -j ACCEPT"),
			pkt: func(p *Packet) { p.Dst = netip.MustParseAddr("192.168.9.1") }, verdict: "DROP"},
		{name: "addrtype broadcast", save: acc("-A FORWARD -m addrtype --dst-type BROADCAST -j ACCEPT"),
			pkt: func(p *Packet) { p.Dst = netip.MustParseAddr("10.0.2.255") }, verdict: "ACCEPT"},
		{name: "addrtype negated local", save: acc("-A FORWARD -m addrtype ! --dst-type LOCAL -j ACCEPT"), verdict: "ACCEPT"},
		{name: "addrtype loopback", save: acc("-A FORWARD -m addrtype --src-type LOCAL -j ACCEPT"),
			pkt: func(p *Packet) { p.Src = netip.MustParseAddr("127.0.0.5") }, verdict: "ACCEPT"},
		{name: "length", save: acc("-A FORWARD -m length --length 0:100 -j ACCEPT"), verdict: "ACCEPT"},
		{name: "length miss", save: acc("-A FORWARD -m length --length 1000:1500 -j ACCEPT"), verdict: "DROP"},
		{name: "tos", save: acc("-A FORWARD -m tos --tos 0x10/0x3f -j ACCEPT"), pkt: func(p *Packet) { p.TOS = 0x10 }, verdict: "ACCEPT"},
		{name: "tos symbolic", save: acc("-A FORWARD -m tos --tos Minimize-Delay -j ACCEPT"), pkt: func(p *Packet) { p.TOS = 0x50 }, verdict: "ACCEPT"},
		{name: "dscp", save: acc("-A FORWARD -m dscp --dscp 0x2e -j ACCEPT"), pkt: func(p *Packet) { p.TOS = 46 << 2 }, verdict: "ACCEPT"},
		{name: "dscp class", save: acc("-A FORWARD -m dscp --dscp-class AF41 -j ACCEPT"), pkt: func(p *Packet) { p.TOS = 34 << 2 }, verdict: "ACCEPT"},
		{name: "dscp negated", save: acc("-A FORWARD -m dscp ! --dscp 0 -j ACCEPT"), verdict: "DROP"},
		{name: "ttl", save: acc("-A FORWARD -m ttl --ttl-gt 10 -j ACCEPT"), verdict: "ACCEPT"},
		{name: "ttl unknown", save: acc("-A FORWARD -m ttl --ttl-lt 10 -j ACCEPT"), pkt: func(p *Packet) { p.TTL = 0 }, verdict: "UNKNOWN"},
		{name: "pkttype unicast", save: acc("-A FORWARD -m pkttype --pkt-type unicast -j ACCEPT"), verdict: "ACCEPT"},
		{name: "pkttype broadcast", save: acc("-A FORWARD -m pkttype --pkt-type broadcast -j ACCEPT"), verdict: "DROP"},
		{name: "policy none", save: acc("-A FORWARD -m policy --dir in --pol none -j ACCEPT"), verdict: "ACCEPT"},
		{name: "policy ipsec", save: acc("-A FORWARD -m policy --dir in --pol ipsec -j ACCEPT"), verdict: "DROP"},
		{name: "all matches of a rule", save: acc("-A FORWARD -s 10.0.1.0/24 -d 10.0.2.0/24 -i eth1 -o eth2 -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -j ACCEPT"), verdict: "ACCEPT"},
		{name: "one failing match", save: acc("-A FORWARD -s 10.0.1.0/24 -d 10.0.3.0/24 -p tcp --dport 22 -j ACCEPT"), verdict: "DROP"},
	}
	runNF(t, tests)
}

func TestTraverseChains(t *testing.T) {
	tests := []nfCase{
		{name: "jump and accept in user chain", save: filterWith("-A FORWARD -j A", "-A A -p tcp -j ACCEPT"), verdict: "ACCEPT", at: "A#1"},
		{name: "user chain falls off, caller continues", save: filterWith("-A FORWARD -j A", "-A FORWARD -j ACCEPT", "-A A -p udp -j DROP"), verdict: "ACCEPT", at: "FORWARD#2"},
		{name: "RETURN continues caller", save: filterWith("-A FORWARD -j A", "-A FORWARD -j REJECT", "-A A -j RETURN", "-A A -j ACCEPT"), verdict: "REJECT", at: "FORWARD#2",
			check: func(t *testing.T, res ChainResult, _ *Packet) {
				if res.RejectWith != "icmp-port-unreachable" {
					t.Errorf("RejectWith %q", res.RejectWith)
				}
			}},
		{name: "reject with", save: filterWith("-A FORWARD -p tcp -j REJECT --reject-with tcp-reset"), verdict: "REJECT",
			check: func(t *testing.T, res ChainResult, _ *Packet) {
				if res.RejectWith != "tcp-reset" {
					t.Errorf("RejectWith %q", res.RejectWith)
				}
			}},
		{name: "RETURN in built-in is policy", save: filterWith("-A FORWARD -j RETURN", "-A FORWARD -j ACCEPT"), verdict: "DROP", at: "FORWARD#0"},
		{name: "nested jumps return level by level", save: filterWith("-A FORWARD -j A", "-A FORWARD -j DROP", "-A A -j B", "-A A -j ACCEPT", "-A B -j RETURN"), verdict: "ACCEPT", at: "A#2"},
		{name: "goto returns to caller's caller", save: filterWith("-A FORWARD -j A", "-A FORWARD -j ACCEPT", "-A A -g B", "-A A -j DROP", "-A B -j RETURN"), verdict: "ACCEPT", at: "FORWARD#2"},
		{name: "goto from built-in ends at policy", save: filterWith("-A FORWARD -g B", "-A FORWARD -j ACCEPT", "-A B -p udp -j ACCEPT"), verdict: "DROP", at: "FORWARD#0"},
		{name: "non-matching jump is skipped", save: filterWith("-A FORWARD -p udp -j A", "-A FORWARD -j ACCEPT", "-A A -j DROP"), verdict: "ACCEPT", at: "FORWARD#2"},
		{name: "LOG continues and is visited", save: filterWith(`-A FORWARD -j LOG --log-prefix "x: "`, "-A FORWARD -s 10.0.1.5 -j NFLOG", "-A FORWARD -j ACCEPT"), verdict: "ACCEPT", at: "FORWARD#3",
			check: func(t *testing.T, res ChainResult, _ *Packet) {
				if len(res.Visited) != 3 || res.Visited[0].Target != "LOG" || res.Visited[1].Target != "NFLOG" || res.Visited[2].Index != 3 {
					t.Errorf("Visited %+v", res.Visited)
				}
			}},
		{name: "counting rule continues", save: filterWith("-A FORWARD -s 10.0.1.5", "-A FORWARD -j ACCEPT"), verdict: "ACCEPT", at: "FORWARD#2"},
		{name: "empty built-in chain is policy", save: filterWith(), verdict: "DROP", at: "FORWARD#0"},
		{name: "absent chain accepts", save: filterWith(), chain: "PREROUTING", verdict: "ACCEPT", at: "PREROUTING#0"},
		{name: "absent table accepts", save: filterWith(), table: "nat", chain: "POSTROUTING", verdict: "ACCEPT"},
		{name: "chain loop is UNKNOWN", save: filterWith("-A FORWARD -j A", "-A A -j B", "-A B -j A"), verdict: "UNKNOWN"},
		{name: "mark set then matched later", save: "*mangle\n:PREROUTING ACCEPT [0:0]\n:X - [0:0]\n" +
			"-A PREROUTING -p tcp -j MARK --set-xmark 0x1/0xffffffff\n-A PREROUTING -m mark --mark 0x1 -j X\n-A PREROUTING -j DROP\n-A X -j ACCEPT\nCOMMIT\n",
			table: "mangle", chain: "PREROUTING", verdict: "ACCEPT", at: "X#1",
			check: func(t *testing.T, res ChainResult, p *Packet) {
				if p.Mark != 1 || !res.Marked {
					t.Errorf("mark %#x marked %v", p.Mark, res.Marked)
				}
			}},
		{name: "mark arithmetic", save: "*mangle\n:PREROUTING ACCEPT [0:0]\n" +
			"-A PREROUTING -j MARK --set-mark 0xf0\n-A PREROUTING -j MARK --and-mark 0x30\n-A PREROUTING -j MARK --or-mark 0x1\n-A PREROUTING -j MARK --xor-mark 0x3\n" +
			"-A PREROUTING -j MARK --set-xmark 0x100/0x100\nCOMMIT\n",
			table: "mangle", chain: "PREROUTING", pkt: func(p *Packet) { p.Mark = 0xff00 }, verdict: "ACCEPT",
			check: func(t *testing.T, _ ChainResult, p *Packet) {
				// 0xff00 set 0xf0 -> 0xf0; and 0x30 -> 0x30; or 1 -> 0x31; xor 3 -> 0x32; set-xmark 0x100/0x100 -> 0x132
				if p.Mark != 0x132 {
					t.Errorf("mark %#x, want 0x132", p.Mark)
				}
			}},
		{name: "connmark save and restore", save: "*mangle\n:PREROUTING ACCEPT [0:0]\n" +
			"-A PREROUTING -j CONNMARK --set-xmark 0x7/0xffffffff\n-A PREROUTING -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff\n" +
			"-A PREROUTING -m mark --mark 0x7 -j CONNMARK --save-mark --nfmask 0x1 --ctmask 0xff\nCOMMIT\n",
			table: "mangle", chain: "PREROUTING", verdict: "ACCEPT",
			check: func(t *testing.T, res ChainResult, p *Packet) {
				if p.Mark != 7 || p.CTMark != 1 || !res.Marked {
					t.Errorf("mark %#x ctmark %#x", p.Mark, p.CTMark)
				}
			}},
		{name: "TOS and DSCP targets", save: "*mangle\n:FORWARD ACCEPT [0:0]\n-A FORWARD -j DSCP --set-dscp 0x2e\n-A FORWARD -m dscp --dscp 46 -j TOS --set-tos 0x10/0x3f\nCOMMIT\n",
			table: "mangle", chain: "FORWARD", pkt: func(p *Packet) { p.TOS = 0x01 }, verdict: "ACCEPT",
			check: func(t *testing.T, _ ChainResult, p *Packet) {
				// DSCP 46 keeps ECN: 0xb9; TOS 0x10/0x3f: (0xb9 &^ 0x3f) ^ 0x10 = 0x90
				if p.TOS != 0x90 {
					t.Errorf("TOS %#x, want 0x90", p.TOS)
				}
			}},
		{name: "NOTRACK makes ctstate UNTRACKED", save: "*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -m conntrack --ctstate INVALID -j CT --notrack\n-A PREROUTING -m conntrack --ctstate UNTRACKED -j DROP\nCOMMIT\n",
			table: "raw", chain: "PREROUTING", verdict: "DROP", at: "PREROUTING#2"},
		{name: "raw: conntrack options without ctstate fail even negated", save: "*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -m conntrack ! --ctproto udp -j DROP\n-A PREROUTING -m connmark ! --mark 0x1 -j DROP\nCOMMIT\n",
			table: "raw", chain: "PREROUTING", verdict: "ACCEPT", at: "PREROUTING#0"},
		{name: "raw: ctstate INVALID and other options unevaluated", save: "*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -m conntrack --ctstate NEW -j ACCEPT\n-A PREROUTING -m conntrack --ctstate INVALID --ctproto udp -j DROP\nCOMMIT\n",
			table: "raw", chain: "PREROUTING", verdict: "DROP", at: "PREROUTING#2"},
		{name: "mangle: negated connmark with conntrack", save: "*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -m connmark ! --mark 0x1 -j DROP\nCOMMIT\n",
			table: "mangle", chain: "PREROUTING", verdict: "DROP", at: "PREROUTING#1"},
		{name: "TTL target", save: "*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j TTL --ttl-dec 3\n-A PREROUTING -m ttl --ttl-eq 60 -j DROP\nCOMMIT\n",
			table: "mangle", chain: "PREROUTING", verdict: "DROP"},
	}
	runNF(t, tests)
}

func natTable(rules ...string) string {
	return "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:N - [0:0]\n" +
		strings.Join(rules, "\n") + "\nCOMMIT\n"
}

func wantNAT(kind, from, to string) func(*testing.T, ChainResult, *Packet) {
	return func(t *testing.T, res ChainResult, _ *Packet) {
		if res.NAT == nil || *res.NAT != (NAT{Kind: kind, From: from, To: to}) {
			t.Errorf("NAT %+v, want %s %s -> %s", res.NAT, kind, from, to)
		}
	}
}

func TestTraverseNAT(t *testing.T) {
	tests := []nfCase{
		{name: "DNAT with port", save: natTable("-A PREROUTING -i eth1 -p tcp --dport 22 -j DNAT --to-destination 10.0.2.20:2222"),
			chain: "PREROUTING", table: "nat", verdict: "ACCEPT", at: "PREROUTING#1",
			check: func(t *testing.T, res ChainResult, p *Packet) {
				wantNAT("DNAT", "10.0.2.10:22", "10.0.2.20:2222")(t, res, p)
				if p.Dst.String() != "10.0.2.20" || p.DPort != 2222 || !p.DNATed || p.OrigDst.String() != "10.0.2.10" {
					t.Errorf("packet %+v", p)
				}
			}},
		{name: "DNAT address only keeps port", save: natTable("-A PREROUTING -j N", "-A N -p tcp -j DNAT --to-destination 10.0.2.20"),
			chain: "PREROUTING", table: "nat", verdict: "ACCEPT", at: "N#1", check: wantNAT("DNAT", "10.0.2.10:22", "10.0.2.20:22")},
		{name: "DNAT icmp has no ports", save: natTable("-A PREROUTING -j DNAT --to-destination 10.0.2.20:80"),
			chain: "PREROUTING", table: "nat", pkt: icmpPacket, verdict: "ACCEPT", check: wantNAT("DNAT", "10.0.2.10", "10.0.2.20")},
		{name: "DNAT port range keeps a port inside", save: natTable("-A PREROUTING -p tcp -j DNAT --to-destination 10.0.2.20:20-30"),
			chain: "PREROUTING", table: "nat", verdict: "ACCEPT", check: wantNAT("DNAT", "10.0.2.10:22", "10.0.2.20:22")},
		{name: "DNAT port range outside is UNKNOWN", save: natTable("-A PREROUTING -p tcp -j DNAT --to-destination 10.0.2.20:80-90"),
			chain: "PREROUTING", table: "nat", verdict: "UNKNOWN"},
		{name: "DNAT address range is UNKNOWN", save: natTable("-A PREROUTING -p tcp -j DNAT --to-destination 10.0.2.20-10.0.2.30"),
			chain: "PREROUTING", table: "nat", verdict: "UNKNOWN"},
		{name: "first NAT rule ends the chain", save: natTable("-A POSTROUTING -o eth2 -j SNAT --to-source 10.0.2.1", "-A POSTROUTING -j MASQUERADE"),
			chain: "POSTROUTING", table: "nat", verdict: "ACCEPT", at: "POSTROUTING#1",
			check: func(t *testing.T, res ChainResult, p *Packet) {
				wantNAT("SNAT", "10.0.1.5:40000", "10.0.2.1:40000")(t, res, p)
				if !p.SNATed || p.Src.String() != "10.0.2.1" {
					t.Errorf("packet %+v", p)
				}
			}},
		{name: "ACCEPT in nat ends without NAT", save: natTable("-A POSTROUTING -d 10.0.2.0/24 -j ACCEPT", "-A POSTROUTING -j MASQUERADE"),
			chain: "POSTROUTING", table: "nat", verdict: "ACCEPT", at: "POSTROUTING#1",
			check: func(t *testing.T, res ChainResult, _ *Packet) {
				if res.NAT != nil {
					t.Errorf("NAT %+v", res.NAT)
				}
			}},
		{name: "MASQUERADE uses primary address", save: natTable("-A POSTROUTING -o eth2 -j MASQUERADE"),
			chain: "POSTROUTING", table: "nat", pkt: func(p *Packet) { p.Dst = netip.MustParseAddr("8.8.8.8") }, verdict: "ACCEPT",
			check: wantNAT("MASQUERADE", "10.0.1.5:40000", "10.0.2.1:40000")},
		{name: "MASQUERADE picks the gateway's subnet", save: natTable("-A POSTROUTING -o eth2 -j MASQUERADE"),
			chain: "POSTROUTING", table: "nat", pkt: func(p *Packet) {
				p.Dst, p.Gateway = netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("192.168.9.254")
			},
			verdict: "ACCEPT", check: wantNAT("MASQUERADE", "10.0.1.5:40000", "192.168.9.1:40000")},
		{name: "MASQUERADE without address drops", save: natTable("-A POSTROUTING -j MASQUERADE"),
			chain: "POSTROUTING", table: "nat", pkt: func(p *Packet) { p.OutIf = "eth3" }, verdict: "DROP"},
		{name: "MASQUERADE to-ports", save: natTable("-A POSTROUTING -p udp -j MASQUERADE --to-ports 1000"),
			chain: "POSTROUTING", table: "nat", pkt: udpPacket, verdict: "ACCEPT", check: wantNAT("MASQUERADE", "10.0.1.5:40000", "10.0.2.1:1000")},
		{name: "REDIRECT to the in interface", save: natTable("-A PREROUTING -p tcp -j REDIRECT --to-ports 3128"),
			chain: "PREROUTING", table: "nat", verdict: "ACCEPT", check: wantNAT("REDIRECT", "10.0.2.10:22", "10.0.1.1:3128")},
		{name: "NETMAP prerouting maps destination", save: natTable("-A PREROUTING -j NETMAP --to 172.16.0.0/16"),
			chain: "PREROUTING", table: "nat", verdict: "ACCEPT", check: wantNAT("NETMAP", "10.0.2.10:22", "172.16.2.10:22")},
	}
	runNF(t, tests)
}

func TestTraverseIpset(t *testing.T) {
	sets := strings.Join([]string{
		"create ips hash:ip family inet hashsize 1024 maxelem 65536",
		"add ips 10.0.1.5",
		"create nets hash:net family inet",
		"add nets 10.0.0.0/16",
		"add nets 10.0.1.0/24 nomatch",
		"create ipport hash:ip,port family inet",
		"add ipport 10.0.2.10,tcp:22",
		"add ipport 10.0.2.10,udp:53",
		"add ipport 10.0.2.10,icmp:8/0",
		"create netport hash:net,port family inet",
		"add netport 10.0.2.0/24,tcp:20-25",
		"create ipportip hash:ip,port,ip family inet",
		"add ipportip 10.0.2.10,tcp:22,10.0.1.5",
		"create ipportnet hash:ip,port,net family inet",
		"add ipportnet 10.0.2.10,tcp:22,10.0.0.0/8",
		"create netnet hash:net,net family inet",
		"add netnet 10.0.1.0/24,10.0.2.0/24",
		"create netiface hash:net,iface family inet",
		"add netiface 10.0.1.0/24,eth1",
		"create bip bitmap:ip range 10.0.2.0-10.0.2.255",
		"add bip 10.0.2.8/29",
		"create bport bitmap:port range 1-1024",
		"add bport 22",
		"create ipmark hash:ip,mark family inet markmask 0xff",
		"add ipmark 10.0.1.5,0x5",
		"create macs hash:mac",
		"add macs 00:11:22:33:44:55",
		"create ipmac bitmap:ip,mac range 10.0.0.0/16",
		"create lst list:set",
		"add lst ips",
		"add lst macs",
		"create lst2 list:set",
		"add lst2 macs",
		"add lst2 ips",
		"create masked hash:ip family inet netmask 24",
		"add masked 10.0.2.0",
		"create six hash:ip family inet6",
		"add six ::1",
	}, "\n")
	m := func(rule string) string { return filterWith(rule) }
	tests := []nfCase{
		{name: "hash:ip src", save: m("-A FORWARD -m set --match-set ips src -j ACCEPT"), verdict: "ACCEPT"},
		{name: "hash:ip dst miss", save: m("-A FORWARD -m set --match-set ips dst -j ACCEPT"), verdict: "DROP"},
		{name: "hash:ip negated", save: m("-A FORWARD -m set ! --match-set ips dst -j ACCEPT"), verdict: "ACCEPT"},
		{name: "hash:ip netmask", save: m("-A FORWARD -m set --match-set masked dst -j ACCEPT"), verdict: "ACCEPT"},
		{name: "hash:net nomatch wins", save: m("-A FORWARD -m set --match-set nets src -j ACCEPT"), verdict: "DROP"},
		{name: "hash:net outside nomatch", save: m("-A FORWARD -m set --match-set nets dst -j ACCEPT"), verdict: "ACCEPT"},
		{name: "hash:net return-nomatch", save: m("-A FORWARD -m set --match-set nets src --return-nomatch -j ACCEPT"), verdict: "ACCEPT"},
		{name: "hash:ip,port", save: m("-A FORWARD -m set --match-set ipport dst,dst -j ACCEPT"), verdict: "ACCEPT"},
		{name: "hash:ip,port wrong port direction", save: m("-A FORWARD -m set --match-set ipport dst,src -j ACCEPT"), verdict: "DROP"},
		{name: "hash:ip,port too few flags", save: m("-A FORWARD -m set --match-set ipport dst -j ACCEPT"), verdict: "DROP"},
		{name: "hash:ip,port udp", save: m("-A FORWARD -m set --match-set ipport dst,dst -j ACCEPT"), pkt: udpPacket, verdict: "ACCEPT"},
		{name: "hash:ip,port icmp", save: m("-A FORWARD -m set --match-set ipport dst,dst -j ACCEPT"), pkt: icmpPacket, verdict: "ACCEPT"},
		{name: "hash:ip,port proto differs", save: m("-A FORWARD -m set --match-set ipport dst,dst -j ACCEPT"), pkt: func(p *Packet) { udpPacket(p); p.DPort = 22 }, verdict: "DROP"},
		{name: "hash:net,port range", save: m("-A FORWARD -m set --match-set netport dst,dst -j ACCEPT"), verdict: "ACCEPT"},
		{name: "hash:ip,port,ip", save: m("-A FORWARD -m set --match-set ipportip dst,dst,src -j ACCEPT"), verdict: "ACCEPT"},
		{name: "hash:ip,port,ip wrong third", save: m("-A FORWARD -m set --match-set ipportip dst,dst,dst -j ACCEPT"), verdict: "DROP"},
		{name: "hash:ip,port,net", save: m("-A FORWARD -m set --match-set ipportnet dst,dst,src -j ACCEPT"), verdict: "ACCEPT"},
		{name: "hash:net,net", save: m("-A FORWARD -m set --match-set netnet src,dst -j ACCEPT"), verdict: "ACCEPT"},
		{name: "hash:net,net reversed", save: m("-A FORWARD -m set --match-set netnet dst,src -j ACCEPT"), verdict: "DROP"},
		{name: "hash:net,iface in", save: m("-A FORWARD -m set --match-set netiface src,src -j ACCEPT"), verdict: "ACCEPT"},
		{name: "hash:net,iface out", save: m("-A FORWARD -m set --match-set netiface src,dst -j ACCEPT"), verdict: "DROP"},
		{name: "bitmap:ip", save: m("-A FORWARD -m set --match-set bip dst -j ACCEPT"), verdict: "ACCEPT"},
		{name: "bitmap:ip miss", save: m("-A FORWARD -m set --match-set bip src -j ACCEPT"), verdict: "DROP"},
		{name: "bitmap:port", save: m("-A FORWARD -m set --match-set bport dst -j ACCEPT"), verdict: "ACCEPT"},
		{name: "bitmap:port not icmp", save: m("-A FORWARD -m set --match-set bport dst -j ACCEPT"), pkt: icmpPacket, verdict: "DROP"},
		{name: "hash:ip,mark", save: m("-A FORWARD -m set --match-set ipmark src,src -j ACCEPT"), pkt: func(p *Packet) { p.Mark = 0x105 }, verdict: "ACCEPT"},
		{name: "hash:ip,mark other mark", save: m("-A FORWARD -m set --match-set ipmark src,src -j ACCEPT"), verdict: "DROP"},
		{name: "hash:mac UNKNOWN", save: m("-A FORWARD -m set --match-set macs src -j ACCEPT"), verdict: "UNKNOWN"},
		{name: "bitmap:ip,mac UNKNOWN", save: m("-A FORWARD -m set --match-set ipmac src -j ACCEPT"), verdict: "UNKNOWN"},
		{name: "mac set not consulted when rule fails", save: m("-A FORWARD -p udp -m set --match-set macs src -j ACCEPT"), verdict: "DROP"},
		{name: "list:set first member matches", save: m("-A FORWARD -m set --match-set lst src -j ACCEPT"), verdict: "ACCEPT"},
		{name: "list:set unknown member first", save: m("-A FORWARD -m set --match-set lst2 src -j ACCEPT"), verdict: "UNKNOWN"},
		{name: "list:set no member matches", save: m("-A FORWARD -m set --match-set lst dst -j ACCEPT"), verdict: "UNKNOWN"},
		{name: "inet6 set never matches", save: m("-A FORWARD -m set ! --match-set six src -j ACCEPT"), verdict: "ACCEPT"},
		{name: "missing set UNKNOWN", save: m("-A FORWARD -m set --match-set nosuch src -j ACCEPT"), verdict: "UNKNOWN"},
	}
	for i := range tests {
		tests[i].sets = sets
	}
	runNF(t, tests)
}

func TestTraverseUnknown(t *testing.T) {
	tests := []nfCase{
		{name: "unknown module", save: filterWith("-A FORWARD -m recent --rcheck --name x -j DROP", "-A FORWARD -j ACCEPT"), verdict: "UNKNOWN", at: "FORWARD#1",
			check: func(t *testing.T, res ChainResult, _ *Packet) {
				for _, s := range []string{"filter/FORWARD rule 1", "-m recent", "t.rules:8"} {
					if !strings.Contains(res.Reason, s) {
						t.Errorf("reason %q lacks %q", res.Reason, s)
					}
				}
			}},
		{name: "lazy: other match fails first", save: filterWith("-A FORWARD -p udp -m recent --rcheck -j DROP", "-A FORWARD -j ACCEPT"), verdict: "ACCEPT"},
		{name: "lazy: other match fails after", save: filterWith("-A FORWARD -m physdev --physdev-in x -p udp -j DROP", "-A FORWARD -j ACCEPT"), verdict: "ACCEPT"},
		{name: "mac", save: filterWith("-A FORWARD -m mac --mac-source 00:11:22:33:44:55 -j DROP"), verdict: "UNKNOWN"},
		{name: "owner", save: filterWith("-A FORWARD -m owner --uid-owner 0 -j DROP"), verdict: "UNKNOWN"},
		{name: "unknown option of a known module", save: filterWith("-A FORWARD -p tcp -m tcp --tcp-option 2 -j DROP"), verdict: "UNKNOWN"},
		{name: "unknown target", save: filterWith("-A FORWARD -j NFQUEUE --queue-num 1"), verdict: "UNKNOWN",
			check: func(t *testing.T, res ChainResult, _ *Packet) {
				if !strings.Contains(res.Reason, "NFQUEUE") {
					t.Errorf("reason %q", res.Reason)
				}
			}},
		{name: "unknown target not reached", save: filterWith("-A FORWARD -p udp -j NFQUEUE", "-A FORWARD -j ACCEPT"), verdict: "ACCEPT"},
		{name: "hostname source", save: filterWith("-A FORWARD -s example.com -j DROP"), verdict: "UNKNOWN"},
		{name: "undeclared chain target", save: filterWith("-A FORWARD -j NOPE"), verdict: "UNKNOWN"},
	}
	runNF(t, tests)
}

// TestTraverseNoPolicy: facts without chain policies (the predecessor's
// JSON) are UNKNOWN only when a walk reaches the policy.
func TestTraverseNoPolicy(t *testing.T) {
	r := nfRouter(t, filterWith("-A FORWARD -p udp -j ACCEPT"), "")
	r.IPTable("filter").Chain("FORWARD").Policy = ""
	fw := CompileFirewall(r)
	if res := fw.Traverse("filter", "FORWARD", basePacket()); res.Verdict != VerdictUnknown || res.Index != 0 || !strings.Contains(res.Reason, "policy") {
		t.Errorf("tcp: %+v", res)
	}
	p := basePacket()
	udpPacket(p)
	if res := fw.Traverse("filter", "FORWARD", p); res.Verdict != VerdictAccept || res.Index != 1 {
		t.Errorf("udp: %+v", res)
	}
}

func TestUnknowns(t *testing.T) {
	r := nfRouter(t, filterWith("-A FORWARD -j ACCEPT", "-A FORWARD -m recent --rcheck -j DROP", "-A A -j NFQUEUE", "-A A -m ttl --ttl-eq 3 -j ACCEPT"), "")
	got := CompileFirewall(r).Unknowns()
	if len(got) != 2 {
		t.Fatalf("Unknowns = %v, want 2", got)
	}
	if got[0].Pos.String() != "t.rules:9" || !strings.Contains(got[0].Message, "recent") || got[0].Severity != facts.SevWarning {
		t.Errorf("first unknown %s", got[0])
	}
	if got[1].Pos.String() != "t.rules:10" || !strings.Contains(got[1].Message, "NFQUEUE") {
		t.Errorf("second unknown %s", got[1])
	}
}

// TestTraverseCorpus runs the predecessor's corpus firewalls: they use only
// understood matches, so no rule is UNKNOWN, and known flows get the
// verdicts their rules say.
func TestTraverseCorpus(t *testing.T) {
	r := corpusRouter(t, "hq-gw")
	fw := CompileFirewall(r)
	if u := fw.Unknowns(); len(u) != 0 {
		t.Errorf("corpus rules not understood: %v", u)
	}
	p := basePacket()
	p.Src, p.Dst, p.DPort, p.InIf, p.OutIf = netip.MustParseAddr("10.1.1.10"), netip.MustParseAddr("10.2.1.10"), 443, "eth1", "wg0"
	res := fw.Traverse("filter", "FORWARD", p)
	if res.Verdict != "DROP" || res.Index == 0 {
		t.Errorf("tcp/443 between sites: %s at %s#%d", res.Verdict, res.Chain, res.Index)
	}
	icmpPacket(p)
	res = fw.Traverse("filter", "FORWARD", p)
	if res.Verdict != "ACCEPT" || res.Chain != "ALLOW_BASIC_TRAFFIC" || res.Index != 2 || len(res.Visited) != 3 {
		t.Errorf("icmp: %s at %s#%d visited %v", res.Verdict, res.Chain, res.Index, res.Visited)
	}
	p = basePacket()
	p.Src, p.Dst, p.DPort, p.InIf = netip.MustParseAddr("203.0.113.5"), netip.MustParseAddr("198.51.100.1"), 80, "eth0"
	res = fw.Traverse("nat", "PREROUTING", p)
	if res.NAT == nil || res.NAT.Kind != "DNAT" || p.Dst.String() != "10.1.1.10" {
		t.Errorf("DNAT: %+v %+v", res, p)
	}
	p = basePacket()
	p.Src, p.Dst, p.OutIf = netip.MustParseAddr("10.1.1.10"), netip.MustParseAddr("8.8.8.8"), "eth0"
	res = fw.Traverse("nat", "POSTROUTING", p)
	if res.NAT == nil || res.NAT.Kind != "MASQUERADE" || res.Index != 2 {
		t.Errorf("MASQUERADE: %+v", res)
	}
}

func corpusRouter(t testing.TB, name string) *facts.Router {
	t.Helper()
	f, err := facts.Load(t.Context(), testenv.Corpus(t, "raw_facts"))
	if err != nil {
		t.Fatalf("corpus not loadable: %v", err)
	}
	r := f.Router(name)
	if r == nil {
		t.Fatalf("no router %s", name)
	}
	return r
}

func BenchmarkTraverse(b *testing.B) {
	r := corpusRouter(b, "hq-gw")
	fw := CompileFirewall(r)
	n := 0
	for _, c := range r.IPTable("filter").Chains {
		n += len(c.Rules)
	}
	b.Logf("filter table: %d rules", n)
	base := basePacket()
	// A source no rule names: the walk visits every INPUT rule (and the
	// jumped-to chain) up to the final LOG and DROP.
	base.Src, base.Dst, base.DPort, base.InIf, base.OutIf = netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("10.1.1.1"), 443, "eth0", ""
	walked := len(r.IPTable("filter").Chain("INPUT").Rules) + len(r.IPTable("filter").Chain("ALLOW_BASIC_TRAFFIC").Rules)
	b.Logf("rules walked per Traverse: %d", walked)
	b.ReportAllocs()
	for b.Loop() {
		p := *base
		if res := fw.Traverse("filter", "INPUT", &p); res.Verdict != "DROP" || res.Index != walked-7 {
			b.Fatalf("verdict %s at %s#%d", res.Verdict, res.Chain, res.Index)
		}
	}
}

// FuzzCompileTraverse checks that no parsed ruleset makes CompileFirewall
// or Traverse panic, and that verdicts stay within the four kinds.
func FuzzCompileTraverse(f *testing.F) {
	f.Add(filterWith("-A FORWARD -p tcp -m multiport --dports 1:5,22 -j A", "-A A -m set --match-set s src,dst -g B", "-A B -j RETURN"), "create s hash:ip,port\nadd s 10.0.1.5,tcp:22", "FORWARD")
	f.Add(natTable("-A PREROUTING -j DNAT --to-destination 1.2.3.4:5-6", "-A POSTROUTING -j NETMAP --to 10.0.0.0/8"), "", "PREROUTING")
	f.Add("*mangle\n-A PREROUTING -j MARK --set-xmark 0x1/0x1\n-A PREROUTING -m tos --tos 0x10/0x3f -j TOS --and-tos 0x3\nCOMMIT\n", "create l list:set\nadd l l", "PREROUTING")
	f.Fuzz(func(t *testing.T, save, sets, chain string) {
		tabs, _, err := facts.ParseIptablesSave("f", 1, save)
		if err != nil {
			return
		}
		r := &facts.Router{Name: "r", Iptables: tabs}
		var lines []facts.Line
		for i, l := range strings.Split(sets, "\n") {
			lines = append(lines, facts.Line{N: i + 1, Text: l})
		}
		if s, err := facts.ParseIpsetSave("s", lines); err == nil {
			r.Ipsets = s
		}
		fw := CompileFirewall(r)
		_ = fw.Unknowns()
		for _, tb := range []string{"raw", "mangle", "nat", "filter"} {
			for _, p := range []*Packet{basePacket(), func() *Packet { p := basePacket(); icmpPacket(p); return p }()} {
				res := fw.Traverse(tb, chain, p)
				switch res.Verdict {
				case VerdictAccept, VerdictDrop, VerdictReject, VerdictUnknown:
				default:
					t.Fatalf("verdict %q", res.Verdict)
				}
			}
		}
	})
}

func TestParseICMPType(t *testing.T) {
	tests := []struct {
		in          string
		typ, lo, hi int
		wantErr     bool
	}{
		{"echo-request", 8, 0, 0xff, false},
		{"Echo-Request", 8, 0, 0xff, false},
		{"port-unreachable", 3, 3, 3, false},
		{"8", 8, 0, 0xff, false},
		{"3/4", 3, 4, 4, false},
		{"0", 0, 0, 0xff, false},
		{"256", 0, 0, 0, true},
		{"3/300", 0, 0, 0, true},
		{"bogus", 0, 0, 0, true},
		{"", 0, 0, 0, true},
	}
	for _, tc := range tests {
		typ, lo, hi, err := parseICMPType(tc.in)
		if (err != nil) != tc.wantErr || err == nil && (typ != tc.typ || lo != tc.lo || hi != tc.hi) {
			t.Errorf("parseICMPType(%q) = %d %d %d %v", tc.in, typ, lo, hi, err)
		}
	}
}
