package trace

import (
	"os/exec"
	"strconv"
	"testing"
)

// TestConntrackStateKernel checks newConnState — what conntrack makes of a
// packet that belongs to no connection — and the ESTABLISHED state of
// replies against the kernel, with real packets through the router of the
// client -- router -- server lab: the router's FORWARD chain counts NEW,
// INVALID and ESTABLISHED packets in three rules, and each case reads
// which counter moved.
func TestConntrackStateKernel(t *testing.T) {
	l := newKLab(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	// The client drops what arrives, too: no stack answers a crafted reply
	// (a RST would muddle the router's connection).
	if out, err := l.run(l.c, "*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -i c0 -j DROP\nCOMMIT\n", l.restore); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	l.must(l.s, "ip", "route", "add", "default", "via", "10.0.2.1")
	rules := "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n" +
		"-A FORWARD -m conntrack --ctstate NEW -j ACCEPT\n" +
		"-A FORWARD -m conntrack --ctstate INVALID -j ACCEPT\n" +
		"-A FORWARD -m conntrack --ctstate ESTABLISHED -m conntrack --ctdir REPLY -j ACCEPT\n" +
		"-A FORWARD -m conntrack --ctstate ESTABLISHED -m conntrack --ctdir ORIGINAL -j ACCEPT\n" +
		"COMMIT\n"
	if out, err := l.run(l.r, rules, l.restore); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	states := map[string]string{"filter/FORWARD#1": "NEW", "filter/FORWARD#2": "INVALID",
		"filter/FORWARD#3": "ESTABLISHED reply", "filter/FORWARD#4": "ESTABLISHED original"}
	const client, server = "10.0.1.5", "10.0.2.10"
	// pk is one crafted packet: from the client (c) or the server (s).
	type pk struct {
		from         string // "c" or "s"
		proto        string
		flags        string // tcp flags, or the icmp type
		sport, dport int
	}
	send := func(t *testing.T, p pk) {
		t.Helper()
		ns, src, dst := l.c, client, server
		if p.from == "s" {
			ns, src, dst = l.s, server, client
		}
		if out, err := l.run(ns, "", "python3", "-c", craftScript, p.proto, src, dst, strconv.Itoa(p.sport), strconv.Itoa(p.dport), p.flags); err != nil {
			t.Fatalf("send %+v: %v %s", p, err, out)
		}
	}
	flagsOf := map[string]string{"S": "SYN", "SA": "SYN,ACK", "A": "ACK", "FA": "FIN,ACK", "R": "RST"}
	cases := []struct {
		name  string
		loose int
		pre   []pk // sent first (what the router has seen)
		probe pk
		want  string // the state the kernel gives the probe
		model bool   // no connection: compare with newConnState
	}{
		{name: "tcp SYN-ACK without a connection", loose: 1, probe: pk{"s", "tcp", "SA", 443, 41001}, want: "INVALID", model: true},
		{name: "tcp SYN-ACK without a connection, loose 0", loose: 0, probe: pk{"s", "tcp", "SA", 443, 41002}, want: "INVALID", model: true},
		{name: "tcp bare ACK picked up (loose 1)", loose: 1, probe: pk{"s", "tcp", "A", 443, 41003}, want: "NEW", model: true},
		{name: "tcp bare ACK not picked up (loose 0)", loose: 0, probe: pk{"s", "tcp", "A", 443, 41004}, want: "INVALID", model: true},
		{name: "tcp SYN", loose: 1, probe: pk{"c", "tcp", "S", 41005, 443}, want: "NEW", model: true},
		{name: "tcp RST without a connection", loose: 1, probe: pk{"s", "tcp", "R", 443, 41006}, want: "INVALID", model: true},
		{name: "udp reply without a connection", loose: 1, probe: pk{"s", "udp", "", 53, 41007}, want: "NEW", model: true},
		{name: "icmp echo reply without a connection", loose: 1, probe: pk{"s", "icmp", "0", 4108, 0}, want: "INVALID", model: true},
		{name: "icmp echo request", loose: 1, probe: pk{"c", "icmp", "8", 4109, 0}, want: "NEW", model: true},
		// Replies of connections the router saw.
		{name: "tcp SYN-ACK of a seen SYN", loose: 1, pre: []pk{{"c", "tcp", "S", 41010, 443}}, probe: pk{"s", "tcp", "SA", 443, 41010}, want: "ESTABLISHED reply"},
		{name: "udp reply of a seen datagram", loose: 1, pre: []pk{{"c", "udp", "", 41011, 53}}, probe: pk{"s", "udp", "", 53, 41011}, want: "ESTABLISHED reply"},
		{name: "icmp echo reply of a seen echo", loose: 1, pre: []pk{{"c", "icmp", "8", 4112, 0}}, probe: pk{"s", "icmp", "0", 4112, 0}, want: "ESTABLISHED reply"},
		// The handshake's ACK on a router that saw the SYN but not the
		// SYN-ACK (asymmetric path): SYN_SENT + ACK is INVALID.
		{name: "tcp ACK after a SYN whose SYN-ACK went elsewhere", loose: 1, pre: []pk{{"c", "tcp", "S", 41013, 443}}, probe: pk{"c", "tcp", "A", 41013, 443}, want: "INVALID"},
		{name: "tcp ACK after SYN and SYN-ACK", loose: 1, pre: []pk{{"c", "tcp", "S", 41014, 443}, {"s", "tcp", "SA", 443, 41014}}, probe: pk{"c", "tcp", "A", 41014, 443}, want: "ESTABLISHED original"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l.must(l.r, "sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_loose="+strconv.Itoa(c.loose))
			for _, p := range c.pre {
				send(t, p)
			}
			before := l.counters(l.r)
			send(t, c.probe)
			after := l.counters(l.r)
			got := ""
			for k, st := range states {
				if after[k] > before[k] {
					got += st
				}
			}
			if got != c.want {
				t.Errorf("kernel: %q, want %q", got, c.want)
			}
			if c.model {
				proto := map[string]int{"tcp": 6, "udp": 17, "icmp": 1}[c.probe.proto]
				typ, _ := strconv.Atoi(c.probe.flags)
				st, why := newConnState(proto, flagsOf[c.probe.flags], typ, c.loose != 0)
				if st != got {
					t.Errorf("model: %s (%s), kernel: %s", st, why, got)
				}
			}
		})
	}
}

// craftScript sends one packet with the given tcp flags (S, SA, A, FA, R)
// or icmp type, or a udp datagram, from SRC:SPORT to DST:DPORT (for icmp,
// SPORT is the echo id).
const craftScript = `
import socket, sys, struct
proto, src, dst, sport, dport, flags = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
def csum(b):
    if len(b) % 2: b += b"\0"
    c = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    c = (c >> 16) + (c & 0xffff); c += c >> 16
    return ~c & 0xffff
if proto == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src, sport)); s.sendto(b"x", (dst, dport))
elif proto == "tcp":
    bits = {"S": 0x02, "SA": 0x12, "A": 0x10, "FA": 0x11, "R": 0x04}[flags]
    # A consistent handshake: the client's SYN is seq 1000, the server's
    # SYN-ACK seq 5000 ack 1001, the client's ACK seq 1001 ack 5001.
    client = sport > dport
    seq = (1001 if bits & 0x10 and not bits & 0x02 else 1000) if client else 5000
    ack = (5001 if client else 1001) if bits & 0x10 else 0
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, bits, 64240, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(hdr))
    hdr = hdr[:16] + struct.pack("!H", csum(pseudo + hdr)) + hdr[18:]
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    s.bind((src, 0)); s.sendto(hdr, (dst, 0))
else:
    typ = int(flags)
    payload = b"\x00" * 56
    hdr = struct.pack("!BBHHH", typ, 0, 0, sport, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.bind((src, 0))
    s.sendto(struct.pack("!BBHHH", typ, 0, csum(hdr + payload), sport, 1) + payload, (dst, 0))
`
