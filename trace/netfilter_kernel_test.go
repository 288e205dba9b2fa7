package trace

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/testenv"
)

// The kernel agreement test builds client -- router -- server in three
// network namespaces connected only to each other, loads each case's
// rules into the router with iptables-restore, sends one probe from the
// client, and compares the router's rule counters and whether the server
// saw the packet with what Traverse says for the same rules.

type kLab struct {
	t                 *testing.T
	c, r, s           string // namespace names
	restore, save, ip string
	ipset             string
}

func kernelTools(t *testing.T) (restore, save, ipset string) {
	find := func(names ...string) string {
		for _, n := range names {
			if p, err := exec.LookPath(n); err == nil {
				return p
			}
			if p := "/usr/sbin/" + n; fileExists(p) {
				return p
			}
		}
		return ""
	}
	restore = find("iptables-restore", "iptables-nft-restore", "iptables-legacy-restore")
	save = find("iptables-save", "iptables-nft-save", "iptables-legacy-save")
	ipset = find("ipset")
	if restore == "" || save == "" || ipset == "" {
		testenv.Unavailable(t, "iptables-restore, iptables-save and ipset are needed (Debian: apt-get install iptables ipset)")
	}
	return
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func (l *kLab) run(ns string, stdin string, args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s in %s: %v: %s", strings.Join(args, " "), ns, err, out)
	}
	return string(out), nil
}

func (l *kLab) must(ns string, args ...string) {
	l.t.Helper()
	if _, err := l.run(ns, "", args...); err != nil {
		l.t.Fatal(err)
	}
}

func newKLab(t *testing.T) *kLab {
	testenv.NeedRoot(t, "sudo go test ./trace -run Kernel")
	restore, save, ipset := kernelTools(t)
	suffix := strconv.Itoa(os.Getpid())
	l := &kLab{t: t, c: "tsimnf-c" + suffix, r: "tsimnf-r" + suffix, s: "tsimnf-s" + suffix, restore: restore, save: save, ipset: ipset}
	var made []string
	t.Cleanup(func() {
		for _, ns := range made {
			_ = exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	for _, ns := range []string{l.c, l.r, l.s} {
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v %s", ns, err, out)
		}
		made = append(made, ns)
		l.must(ns, "ip", "link", "set", "lo", "up")
	}
	// Links are created inside the namespaces; nothing touches the host's.
	l.must(l.r, "ip", "link", "add", "eth1", "type", "veth", "peer", "name", "c0", "netns", l.c)
	l.must(l.r, "ip", "link", "add", "eth2", "type", "veth", "peer", "name", "s0", "netns", l.s)
	l.must(l.r, "ip", "addr", "add", "10.0.1.1/24", "dev", "eth1")
	l.must(l.r, "ip", "addr", "add", "10.0.2.1/24", "dev", "eth2")
	// Second subnets, for the corpus rules that name 10.1/16 and 10.2/16.
	l.must(l.r, "ip", "addr", "add", "10.1.1.1/24", "dev", "eth1")
	l.must(l.r, "ip", "addr", "add", "10.2.1.1/24", "dev", "eth2")
	l.must(l.c, "ip", "addr", "add", "10.1.1.5/24", "dev", "c0")
	l.must(l.s, "ip", "addr", "add", "10.2.1.10/24", "dev", "s0")
	l.must(l.r, "ip", "link", "set", "eth1", "up")
	l.must(l.r, "ip", "link", "set", "eth2", "up")
	l.must(l.r, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	l.must(l.c, "ip", "addr", "add", "10.0.1.5/24", "dev", "c0")
	l.must(l.c, "ip", "link", "set", "c0", "up")
	l.must(l.c, "ip", "route", "add", "default", "via", "10.0.1.1")
	l.must(l.s, "ip", "addr", "add", "10.0.2.10/24", "dev", "s0")
	l.must(l.s, "ip", "link", "set", "s0", "up")
	// The server counts and drops what arrives, so no reply muddles the counters.
	if out, err := l.run(l.s, serverRules, restore); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	return l
}

// serverRules make the server count and drop what arrives.
const serverRules = "*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -i s0 -j DROP\nCOMMIT\n"

// probeScript sends one packet: tcp SYN, udp datagram or icmp echo (84 bytes).
const probeScript = `
import socket, sys, struct
proto, dst, sport, dport, tos, src = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
if proto == "tcp":
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
    s.bind((src, sport)); s.setblocking(False)
    try: s.connect((dst, dport))
    except BlockingIOError: pass
elif proto == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
    s.bind((src, sport)); s.sendto(b"", (dst, dport))
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
    s.bind((src, 0))
    payload = b"\x00" * 56
    hdr = struct.pack("!BBHHH", 8, 0, 0, sport, 1)
    c = sum(struct.unpack("!%dH" % ((len(hdr) + len(payload)) // 2), hdr + payload))
    c = (c >> 16) + (c & 0xffff); c += c >> 16
    s.sendto(struct.pack("!BBHHH", 8, 0, ~c & 0xffff, sport, 1) + payload, (dst, 0))
`

// counters returns "table/chain#index" -> packets for every rule of ns.
func (l *kLab) counters(ns string) map[string]uint64 {
	l.t.Helper()
	out, err := l.run(ns, "", l.save, "-c")
	if err != nil {
		l.t.Fatal(err)
	}
	tabs, _, err := facts.ParseIptablesSave("kernel", 1, out)
	if err != nil {
		l.t.Fatal(err)
	}
	m := map[string]uint64{}
	for _, tb := range tabs {
		for _, c := range tb.Chains {
			for _, r := range c.Rules {
				m[tb.Name+"/"+c.Name+"#"+strconv.Itoa(r.Index)] = r.Packets
			}
		}
	}
	return m
}

type kCase struct {
	name  string
	rules string // iptables-save text for the router
	sets  string // ipset restore text for the router
	proto string // tcp (default), udp, icmp
	dport uint16
	tos   uint8
	dst   string // probe destination (default the server, 10.0.2.10)
	src   string // probe source (default 10.0.1.5)
}

// simulate walks the hooks of a forwarded packet through the router.
func simulate(fw *Firewall, p *Packet) (hits []string, delivered bool) {
	for _, h := range []struct{ table, chain string }{
		{"raw", "PREROUTING"}, {"mangle", "PREROUTING"}, {"nat", "PREROUTING"},
		{"mangle", "FORWARD"}, {"filter", "FORWARD"}, {"mangle", "POSTROUTING"}, {"nat", "POSTROUTING"},
	} {
		if h.table == "nat" && p.CTState == "UNTRACKED" {
			continue // the kernel skips nat for untracked packets
		}
		if h.chain == "FORWARD" {
			p.TTL = 63 // ip_forward decrements before the FORWARD hook
		}
		res := fw.Traverse(h.table, h.chain, p)
		for _, v := range res.Visited {
			hits = append(hits, v.Table+"/"+v.Chain+"#"+strconv.Itoa(v.Index))
		}
		if res.Verdict != VerdictAccept {
			return hits, false
		}
	}
	return hits, true
}

func TestNetfilterAgreesWithKernel(t *testing.T) {
	l := newKLab(t)
	fwd := func(rules ...string) string {
		return "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n" + strings.Join(rules, "\n") + "\nCOMMIT\n"
	}
	nat := func(rules ...string) string {
		return "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:N - [0:0]\n" + strings.Join(rules, "\n") + "\nCOMMIT\n"
	}
	cases := []kCase{
		{name: "DNAT then conntrack DNAT state, MASQUERADE", dst: "10.0.2.99",
			rules: nat("-A PREROUTING -i eth1 -j N", "-A N -p tcp --dport 22 -j DNAT --to-destination 10.0.2.10:2222", "-A POSTROUTING -o eth2 -j MASQUERADE") +
				fwd("-A FORWARD -m conntrack --ctstate DNAT --ctorigdst 10.0.2.99 --ctorigdstport 22 -j LOG", "-A FORWARD -m conntrack --ctreplsrc 10.0.2.10 --ctrepldst 10.0.1.5 -j LOG", "-A FORWARD -d 10.0.2.10 -p tcp --dport 2222 -j ACCEPT")},
		{name: "SNAT with port kept, nat ACCEPT ends chain", proto: "udp", dport: 53,
			rules: nat("-A POSTROUTING -p udp -j SNAT --to-source 10.0.2.1:1000-50000", "-A POSTROUTING -j MASQUERADE") + fwd("-A FORWARD -j ACCEPT")},
		{name: "icmp DNAT", proto: "icmp", dst: "10.0.2.77",
			rules: nat("-A PREROUTING -d 10.0.2.77 -j DNAT --to-destination 10.0.2.10") + fwd("-A FORWARD -p icmp -d 10.0.2.10 -j ACCEPT")},
		{name: "plain accept", rules: fwd("-A FORWARD -s 10.0.1.0/24 -p tcp --dport 22 -j ACCEPT")},
		{name: "policy drop", rules: fwd("-A FORWARD -s 10.9.0.0/16 -j ACCEPT")},
		{name: "goto returns to caller's caller", rules: fwd("-A FORWARD -j A", "-A FORWARD -j LOG", "-A FORWARD -j ACCEPT", "-A A -g B", "-A A -j DROP", "-A B -j RETURN")},
		{name: "goto from built-in falls to policy", rules: fwd("-A FORWARD -g B", "-A FORWARD -j ACCEPT", "-A B -p udp -j ACCEPT")},
		{name: "RETURN in built-in", rules: fwd("-A FORWARD -j RETURN", "-A FORWARD -j ACCEPT")},
		{name: "mark set in mangle, matched in filter", rules: "*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -j MARK --set-xmark 0x5/0xff\n-A PREROUTING -m mark --mark 0x5 -j MARK --or-mark 0x100\nCOMMIT\n" +
			fwd("-A FORWARD -m mark --mark 0x104/0x1fc -j ACCEPT", "-A FORWARD -m mark --mark 0x105 -j ACCEPT")},
		{name: "connmark restore", rules: "*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j CONNMARK --set-xmark 0x7/0xffffffff\n-A PREROUTING -j CONNMARK --restore-mark --nfmask 0xff --ctmask 0x3\nCOMMIT\n" +
			fwd("-A FORWARD -m mark --mark 0x3 -j ACCEPT", "-A FORWARD -m connmark --mark 0x7 -j ACCEPT")},
		{name: "raw: ctstate and negated ctproto", rules: "*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -m conntrack --ctstate NEW -j LOG\n-A PREROUTING -m conntrack --ctstate INVALID -j LOG\n-A PREROUTING -m conntrack --ctstate UNTRACKED -j LOG\n-A PREROUTING -m conntrack ! --ctproto udp -j LOG\n-A PREROUTING -m connmark ! --mark 0x1 -j LOG\n-A PREROUTING -m conntrack --ctstate INVALID --ctproto udp -j LOG\nCOMMIT\n" +
			fwd("-A FORWARD -m conntrack --ctstate NEW -j ACCEPT")},
		{name: "notrack", rules: "*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -j CT --notrack\nCOMMIT\n" +
			fwd("-A FORWARD -m conntrack --ctstate NEW -j DROP", "-A FORWARD -m state --state UNTRACKED -j ACCEPT")},
		{name: "negations", rules: fwd("-A FORWARD ! -s 10.0.1.0/24 -j DROP", "-A FORWARD ! -p udp ! -i eth2 -o eth+ -j LOG", "-A FORWARD -p tcp ! --dport 22 -j DROP", "-A FORWARD ! -f -j ACCEPT")},
		{name: "multiport and flags", rules: fwd("-A FORWARD -p tcp -m multiport --ports 40007,9 -j LOG", "-A FORWARD -p tcp -m tcp --tcp-flags ALL SYN -j LOG", "-A FORWARD -p tcp --syn -m multiport ! --dports 20:21,23 -j ACCEPT")},
		{name: "length ttl tos", tos: 0x10, rules: fwd("-A FORWARD -m length --length 60 -j LOG", "-A FORWARD -m ttl --ttl-eq 63 -j LOG", "-A FORWARD -m tos --tos Minimize-Delay -j LOG", "-A FORWARD -m dscp --dscp 4 -j ACCEPT")},
		{name: "addrtype", rules: fwd("-A FORWARD -m addrtype --dst-type UNICAST -j LOG", "-A FORWARD -m addrtype --src-type LOCAL -j DROP", "-A FORWARD -m addrtype ! --dst-type LOCAL --limit-iface-out -j ACCEPT")},
		{name: "icmp type", proto: "icmp", rules: fwd("-A FORWARD -p icmp --icmp-type echo-reply -j DROP", "-A FORWARD -p icmp -m icmp --icmp-type 8/0 -j LOG", "-A FORWARD -p icmp ! --icmp-type 3 -j ACCEPT")},
		{name: "udp", proto: "udp", dport: 53, rules: fwd("-A FORWARD -p tcp -j DROP", "-A FORWARD -p udp -m udp --dport 50:60 -j REJECT")},
		{name: "sets", sets: "create n hash:net\nadd n 10.0.0.0/16\nadd n 10.0.1.0/24 nomatch\ncreate ipp hash:ip,port\nadd ipp 10.0.2.10,tcp:22\ncreate bp bitmap:port range 1-1024\nadd bp 22\ncreate l list:set\nadd l n\nadd l ipp\n",
			rules: fwd("-A FORWARD -m set --match-set n src -j LOG", "-A FORWARD -m set --match-set n src --return-nomatch -j LOG", "-A FORWARD -m set --match-set ipp dst -j LOG",
				"-A FORWARD -m set --match-set ipp dst,dst -j LOG", "-A FORWARD -m set --match-set l dst,dst -j LOG", "-A FORWARD -m set --match-set bp dst -j ACCEPT")},
		{name: "icmp in port sets", proto: "icmp", sets: "create ipp2 hash:ip,port\nadd ipp2 10.0.2.10,icmp:8/0\ncreate bp2 bitmap:port range 0-65535\nadd bp2 2048\n",
			rules: fwd("-A FORWARD -m set --match-set bp2 dst -j LOG", "-A FORWARD -m set --match-set ipp2 dst,dst -j ACCEPT")},
		{name: "more set types", sets: "create ipi hash:ip,port,ip\nadd ipi 10.0.2.10,tcp:22,10.0.1.5\ncreate ipn hash:ip,port,net\nadd ipn 10.0.2.10,tcp:22,10.0.0.0/16\n" +
			"create nif hash:net,iface\nadd nif 10.0.1.0/24,eth1\ncreate np hash:net,port\nadd np 10.0.2.0/24,tcp:20-30\n" +
			"create bi bitmap:ip range 10.0.2.0/24\nadd bi 10.0.2.8/29\n",
			rules: "*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j MARK --set-mark 0x305\nCOMMIT\n" +
				fwd("-A FORWARD -m set --match-set ipi dst,dst,src -j LOG", "-A FORWARD -m set --match-set ipi dst,dst,dst -j LOG", "-A FORWARD -m set --match-set ipn dst,dst,src -j LOG",
					"-A FORWARD -m set --match-set nif src,src -j LOG", "-A FORWARD -m set --match-set nif src,dst -j LOG",
					"-A FORWARD -m set --match-set np dst,dst -j LOG", "-A FORWARD -m set --match-set bi dst -j LOG", "-A FORWARD -m set ! --match-set bi src -j ACCEPT")},
		{name: "tos numeric, TOS and DSCP targets, pkttype", tos: 0x21, rules: "*mangle\n:FORWARD ACCEPT [0:0]\n-A FORWARD -m tos --tos 0x21 -j LOG\n-A FORWARD -m tos --tos 0x20 -j LOG\n-A FORWARD -j DSCP --set-dscp-class AF41\n-A FORWARD -m dscp --dscp 34 -j TOS --set-tos Maximize-Throughput\n-A FORWARD -m tos --tos 0x89/0xff -j LOG\nCOMMIT\n" +
			fwd("-A FORWARD -m pkttype --pkt-type unicast -j LOG", "-A FORWARD -m pkttype --pkt-type broadcast -j LOG", "-A FORWARD -p all -j ACCEPT")},
		{name: "icmp any and length", proto: "icmp", rules: fwd("-A FORWARD -p icmp --icmp-type any -j LOG", "-A FORWARD -m length --length 84 -j LOG", "-A FORWARD -m length ! --length 84 -j DROP", "-A FORWARD -j ACCEPT")},
		{name: "udp length and ports", proto: "udp", dport: 53, rules: fwd("-A FORWARD -m length --length 28 -j LOG", "-A FORWARD -p udp -m multiport --sports 40000:41000 -j LOG", "-A FORWARD -p udp --sport 40000: --dport :100 -j ACCEPT")},
		{name: "address lists expand to rules", rules: fwd("-A FORWARD -s 10.9.9.9,10.0.1.5 -d 10.0.2.10,10.0.2.11 -j LOG", "-A FORWARD -d 10.0.2.11,10.0.2.10 -j ACCEPT")},
		{name: "iprange and comment", rules: fwd(`-A FORWARD -m iprange --src-range 10.0.1.1-10.0.1.5 -m comment --comment "a b" -j LOG`, "-A FORWARD -m iprange ! --dst-range 10.0.2.10-10.0.2.10 -j DROP", "-A FORWARD -m limit --limit 1/hour -j ACCEPT")},
	}
	// The predecessor's corpus firewall (hq-gw, ~170 rules in three tables)
	// with probes its rules name.
	{
		corpus := corpusSaveSection(t, "hq-gw")
		for _, c := range []kCase{
			{name: "corpus icmp", proto: "icmp"}, {name: "corpus ssh"}, {name: "corpus tcp 10000", dport: 10000},
			{name: "corpus udp traceroute", proto: "udp", dport: 33440}, {name: "corpus udp 53", proto: "udp", dport: 53},
			{name: "corpus tcp 443 to the router's subnet", dst: "10.2.1.10", dport: 443},
		} {
			c.rules, c.src = corpus, "10.1.1.5"
			if c.dst == "" {
				c.dst = "10.2.1.10"
			}
			cases = append(cases, c)
		}
	}
	// Warm up ARP so the first probe of a case is not delayed.
	_, _ = l.run(l.r, fwd("-A FORWARD -j ACCEPT"), l.restore)
	_, _ = l.run(l.c, "", "python3", "-c", probeScript, "udp", "10.0.2.10", "39999", "9", "0", "10.0.1.5")
	_, _ = l.run(l.c, "", "python3", "-c", probeScript, "udp", "10.2.1.10", "39998", "9", "0", "10.1.1.5")
	time.Sleep(200 * time.Millisecond)
	empty := "*raw\nCOMMIT\n*mangle\nCOMMIT\n*nat\nCOMMIT\n*filter\nCOMMIT\n"
	for i, kc := range cases {
		t.Run(kc.name, func(t *testing.T) {
			if out, err := l.run(l.r, empty, l.restore); err != nil {
				t.Fatalf("%v %s", err, out)
			}
			// Sets still referenced (nf_tables releases them lazily) stay;
			// cases use distinct set names.
			_, _ = l.run(l.r, "", l.ipset, "destroy")
			if kc.sets != "" {
				if out, err := l.run(l.r, kc.sets, l.ipset, "restore"); err != nil {
					t.Fatalf("%v %s", err, out)
				}
			}
			if out, err := l.run(l.r, kc.rules, l.restore); err != nil {
				t.Fatalf("kernel refused the rules: %v %s", err, out)
			}
			proto, dport, dst := kc.proto, kc.dport, kc.dst
			if dst == "" {
				dst = "10.0.2.10"
			}
			src := kc.src
			if src == "" {
				src = "10.0.1.5"
			}
			if proto == "" {
				proto = "tcp"
			}
			if dport == 0 {
				dport = 22
			}
			sport := 40000 + i // a fresh conntrack tuple per case
			tabs, _, err := facts.ParseIptablesSave("case", 1, kc.rules)
			if err != nil {
				t.Fatal(err)
			}
			r := nfRouter(t, "", kc.sets)
			r.Iptables = tabs
			// The lab's router has only eth1 and eth2.
			r.Interfaces = slices.DeleteFunc(r.Interfaces, func(i *facts.Interface) bool { return i.Name == "eth3" })
			r.Interface("eth2").Addrs = r.Interface("eth2").Addrs[:1]
			for _, a := range []struct{ dev, pfx string }{{"eth1", "10.1.1.1/24"}, {"eth2", "10.2.1.1/24"}} {
				r.Interface(a.dev).Addrs = append(r.Interface(a.dev).Addrs, &facts.IfAddr{Prefix: netip.MustParsePrefix(a.pfx)})
			}
			fw := CompileFirewall(r)
			p := &Packet{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), SPort: uint16(sport), DPort: dport,
				InIf: "eth1", OutIf: "eth2", CTState: "NEW", TTL: 64, TOS: kc.tos}
			if proto == "tcp" {
				p.TOS &^= 3 // Linux keeps the ECN bits of TCP sockets for itself
			}
			switch proto {
			case "tcp":
				p.Proto, p.TCPFlags, p.Length = 6, "SYN", 60
			case "udp":
				p.Proto, p.Length = 17, 28
			case "icmp":
				p.Proto, p.ICMPType, p.SPort, p.DPort, p.Length = 1, 8, 0, 0, 84
			}
			sHits, sDelivered := simulate(fw, p)
			slices.Sort(sHits)
			// The server's first rule counts packets arriving with the header
			// the simulation predicts.
			hdr := fmt.Sprintf("-s %s -d %s -p %d", p.Src, p.Dst, p.Proto)
			if hasPorts(p.Proto) {
				hdr += fmt.Sprintf(" -m %s --sport %d --dport %d", proto, p.SPort, p.DPort)
			}
			srv := "*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -i s0 " + hdr + " -j DROP\n-A PREROUTING -i s0 -j DROP\nCOMMIT\n"
			if out, err := l.run(l.s, srv, l.restore); err != nil { // also zeroes its counters
				t.Fatalf("%v %s", err, out)
			}
			if _, err := l.run(l.c, "", "python3", "-c", probeScript, proto, dst, strconv.Itoa(sport), strconv.Itoa(int(dport)), strconv.Itoa(int(kc.tos)), src); err != nil {
				t.Fatal(err)
			}
			time.Sleep(150 * time.Millisecond)
			kernel := l.counters(l.r)
			var kHits []string
			for k, v := range kernel {
				if v > 0 {
					kHits = append(kHits, k)
				}
			}
			slices.Sort(kHits)
			sc := l.counters(l.s)
			kDelivered := sc["raw/PREROUTING#1"]+sc["raw/PREROUTING#2"] > 0
			if kDelivered && sc["raw/PREROUTING#1"] == 0 {
				t.Errorf("the server got the packet, but not with the simulated header %s", hdr)
			}

			if !slices.Equal(kHits, sHits) || kDelivered != sDelivered {
				t.Errorf("kernel: rules hit %v, delivered %v\nsimulation: rules hit %v, delivered %v", kHits, kDelivered, sHits, sDelivered)
			}
		})
	}
}

// corpusSaveSection returns the iptables_save output of a corpus router's
// raw facts.
func corpusSaveSection(t *testing.T, router string) string {
	data, err := os.ReadFile(testenv.Corpus(t, "raw_facts", router+"_facts.txt"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "=== TSIM_SECTION_START:iptables_save ===")
	if !ok {
		t.Fatalf("%s: no iptables_save section", router)
	}
	_, rest, _ = strings.Cut(rest, "\n---\n")
	body, _, _ := strings.Cut(rest, "\nEXIT_CODE:")
	return body
}
