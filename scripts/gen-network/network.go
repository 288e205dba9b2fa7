package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"strings"
)

// The generated network (N routers, S sites):
//
//	tr-1, tr-2   transit hubs on 10.254.0.0/16 (every site gateway's uplink);
//	             routes to every site, default to inet-gw
//	inet-gw      Internet edge on the transit, uplink 203.0.113.2/29,
//	             MASQUERADE, a small egress policy
//	sK-gw        site K's edge: ECMP default over tr-1/tr-2, policy routing
//	             (management LAN via tr-2 only), ECMP to the two cores, DNAT of
//	             a VIP to the DMZ, the site firewall (custom chains, ipsets)
//	sK-core1/2   site K's core: user, server and management LANs, both
//	             connected to each LAN
//	sK-dmz       site K's DMZ firewall
//
// Site K owns 10.K.0.0/16: backbone 10.K.0.0/24, users 10.K.10.0/24,
// servers 10.K.20.0/24, management 10.K.30.0/24, DMZ 10.K.200.0/24 and the
// VIP 10.K.250.10. A site is filled in the order gw, core1, dmz, core2, so
// the last site may be partial. Rule and ipset sizes follow a long tail
// (most routers a few dozen rules, a few thousands).

const (
	maxSites     = 240
	maxIpset     = 50000
	maxFiller    = 4000
	bigFiller    = 3000 // site 1's gateway: the long tail's end is always there
	fixedDate    = "2026-01-01 00:00:00"
	iptablesDate = "Thu Jan  1 00:00:00 2026"
	kernel       = "6.1.0-generated"
)

type site struct {
	k                     int
	gw, core1, core2, dmz bool
}

type network struct {
	rng     *rand.Rand
	sites   []*site
	routers []*router
	order   []string // router names in generation order
}

type iface struct {
	name  string
	addrs []netip.Prefix // address with the subnet's length
}

type router struct {
	name    string
	index   int
	ifaces  []iface
	rules   []string // ip rule lines (without the default three)
	tables  map[int][]string
	tnames  map[int]string
	mangle  []string
	nat     map[string][]string // chain → rules
	filter  []chain
	fwdPol  string
	inPol   string
	ipsets  []ipset
	sysctls map[string]string
}

type chain struct {
	name  string
	rules []string
}

type ipset struct {
	name, typ string
	members   []string
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func newNetwork(routers int, seed uint64) (*network, error) {
	if routers < 4 {
		return nil, fmt.Errorf("--routers %d: at least 4 (2 transit hubs, the Internet edge and one site gateway)", routers)
	}
	siteRouters := routers - 3
	nsites := (siteRouters + 3) / 4
	if nsites > maxSites {
		return nil, fmt.Errorf("--routers %d: at most %d (%d sites of 4 routers)", routers, 3+4*maxSites, maxSites)
	}
	n := &network{rng: rand.New(rand.NewPCG(seed, seed^0x7473696d))}
	left := siteRouters
	for k := 1; k <= nsites; k++ {
		s := &site{k: k}
		for _, p := range []*bool{&s.gw, &s.core1, &s.dmz, &s.core2} {
			if left > 0 {
				*p = true
				left--
			}
		}
		n.sites = append(n.sites, s)
	}
	n.build()
	return n, nil
}

// longTail draws a Pareto-distributed size ≥ xm, capped at max.
func (n *network) longTail(xm float64, alpha float64, max int) int {
	u := 1 - n.rng.Float64() // (0,1]
	v := xm * math.Pow(u, -1/alpha)
	if v > float64(max) {
		return max
	}
	return int(v)
}

func transitAddr(k int) netip.Addr {
	h := k + 9 // 10.254.0.1-3 are the hubs and the edge
	return netip.AddrFrom4([4]byte{10, 254, byte(h / 250), byte(h%250 + 1)})
}

func (r *router) init() *router {
	r.tables = map[int][]string{}
	r.nat = map[string][]string{}
	return r
}

func (n *network) add(r *router) {
	r.index = len(n.routers) + 1
	if r.fwdPol == "" {
		r.fwdPol = "DROP"
	}
	if r.inPol == "" {
		r.inPol = "ACCEPT"
	}
	n.routers = append(n.routers, r)
}

func (n *network) build() {
	hubs := []string{"10.254.0.1", "10.254.0.2"}
	for i, a := range hubs {
		r := (&router{name: fmt.Sprintf("tr-%d", i+1), fwdPol: "ACCEPT",
			ifaces: []iface{{"eth0", []netip.Prefix{pfx(a + "/16")}}}}).init()
		main := []string{"default via 10.254.0.3 dev eth0 proto static "}
		main = append(main, "10.254.0.0/16 dev eth0 proto kernel scope link src "+a+" ")
		for _, s := range n.sites {
			if s.gw {
				main = append(main, fmt.Sprintf("10.%d.0.0/16 via %s dev eth0 proto static ", s.k, transitAddr(s.k)))
			}
		}
		r.tables[254] = main
		fwd := []string{
			`-p tcp -m tcp --dport 23 -m comment --comment "no telnet across the transit" -j DROP`,
			"-p udp -m multiport --dports 137:139 -j DROP",
		}
		fwd = append(fwd, n.filler(n.longTail(15, 1.1, maxFiller), "TRANSIT")...)
		r.filter = []chain{{"FORWARD", fwd}}
		n.add(r)
	}
	{
		r := (&router{name: "inet-gw", ifaces: []iface{
			{"eth0", []netip.Prefix{pfx("10.254.0.3/16")}},
			{"eth1", []netip.Prefix{pfx("203.0.113.2/29")}},
		}}).init()
		main := []string{
			"default via 203.0.113.1 dev eth1 proto static ",
			"10.254.0.0/16 dev eth0 proto kernel scope link src 10.254.0.3 ",
			"203.0.113.0/29 dev eth1 proto kernel scope link src 203.0.113.2 ",
		}
		for _, s := range n.sites {
			if s.gw {
				main = append(main, fmt.Sprintf("10.%d.0.0/16 via %s dev eth0 proto static ", s.k, transitAddr(s.k)))
			}
		}
		r.tables[254] = main
		r.filter = []chain{
			{"FORWARD", []string{
				"-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
				"-m conntrack --ctstate INVALID -j DROP",
				"-i eth0 -o eth1 -j EGRESS",
				`-m limit --limit 10/min -j LOG --log-prefix "inet-gw drop: "`,
			}},
			{"EGRESS", append(n.filler(n.longTail(15, 1.1, maxFiller), "EGRESS"),
				"-p tcp -m multiport --dports 80,443 -j ACCEPT",
				"-p udp -m udp --dport 53 -j ACCEPT",
				"-p icmp -m icmp --icmp-type 8 -j ACCEPT",
				"-j RETURN")},
		}
		r.nat["POSTROUTING"] = []string{"-s 10.0.0.0/8 -o eth1 -j MASQUERADE"}
		n.add(r)
	}
	for _, s := range n.sites {
		if s.gw {
			n.gateway(s)
		}
		if s.core1 {
			n.core(s, 1)
		}
		if s.dmz {
			n.dmzRouter(s)
		}
		if s.core2 {
			n.core(s, 2)
		}
	}
}

func (n *network) gateway(s *site) {
	k := s.k
	ta := transitAddr(k).String()
	r := (&router{name: fmt.Sprintf("s%d-gw", k), inPol: "DROP", ifaces: []iface{
		{"eth0", []netip.Prefix{netip.PrefixFrom(transitAddr(k), 16)}},
		{"eth1", []netip.Prefix{pfx(fmt.Sprintf("10.%d.0.1/24", k))}},
	}}).init()
	r.rules = []string{
		fmt.Sprintf("90:\tfrom all to 10.%d.0.0/16 lookup main", k),
		fmt.Sprintf("100:\tfrom 10.%d.30.0/24 lookup mgmt", k),
		"110:\tfrom all fwmark 0x20/0xff lookup mgmt",
	}
	r.tnames = map[int]string{100: "mgmt"}
	r.tables[100] = []string{"default via 10.254.0.2 dev eth0 proto static "}
	main := []string{
		"default proto static metric 10 \n\tnexthop via 10.254.0.1 dev eth0 weight 1 \n\tnexthop via 10.254.0.2 dev eth0 weight 1 ",
		fmt.Sprintf("10.%d.0.0/24 dev eth1 proto kernel scope link src 10.%d.0.1 ", k, k),
	}
	switch {
	case s.core1 && s.core2:
		main = append(main, fmt.Sprintf("10.%d.0.0/17 proto static metric 10 \n\tnexthop via 10.%d.0.2 dev eth1 weight 1 \n\tnexthop via 10.%d.0.3 dev eth1 weight 1 ", k, k, k))
	case s.core1:
		main = append(main, fmt.Sprintf("10.%d.0.0/17 via 10.%d.0.2 dev eth1 proto static metric 10 ", k, k))
	}
	if s.dmz {
		main = append(main, fmt.Sprintf("10.%d.200.0/24 via 10.%d.0.4 dev eth1 proto static ", k, k))
	}
	main = append(main, fmt.Sprintf("blackhole 10.%d.250.0/24 proto static ", k))
	main = append(main, "10.254.0.0/16 dev eth0 proto kernel scope link src "+ta+" ")
	r.tables[254] = main

	// Filter: the site's policy, most of it in custom chains.
	fromTransit := n.filler(map[bool]int{true: bigFiller, false: n.longTail(15, 1.1, maxFiller)}[k == 1], "FROM_TRANSIT")
	if s.dmz {
		fromTransit = append(fromTransit, fmt.Sprintf("-d 10.%d.200.0/24 -p tcp -m multiport --dports 80,443 -j ACCEPT", k))
	}
	fromTransit = append(fromTransit,
		fmt.Sprintf(`-d 10.%d.20.0/24 -p tcp -m tcp --dport 3306 -m comment --comment "no remote database access" -j DROP`, k),
		fmt.Sprintf("-d 10.%d.20.0/24 -p tcp -m multiport --dports 443,5432 -j ACCEPT", k),
		fmt.Sprintf("-m set --match-set svc_%d dst,dst -j ACCEPT", k),
		fmt.Sprintf("-d 10.%d.30.0/24 -p tcp -m tcp --dport 22 -m set --match-set partners_%d src -j ACCEPT", k, k),
		fmt.Sprintf("-d 10.%d.20.0/24 -p udp -m udp --dport 53 -j ACCEPT", k),
		"-j RETURN")
	toTransit := []string{
		fmt.Sprintf(`-s 10.%d.30.0/24 -m comment --comment "management reaches everything" -j ACCEPT`, k),
		"-d 10.0.0.0/8 -p tcp -m multiport --dports 22,80,443,3306,5432,8443 -j ACCEPT",
		"! -d 10.0.0.0/8 -p tcp -m multiport --dports 80,443 -j ACCEPT",
		"-p udp -m udp --dport 53 -j ACCEPT",
		"-j RETURN",
	}
	r.filter = []chain{
		{"INPUT", []string{
			"-i lo -j ACCEPT",
			"-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
			"-p icmp -m icmp --icmp-type 8 -j ACCEPT",
			fmt.Sprintf("-s 10.%d.30.0/24 -p tcp -m tcp --dport 22 -j ACCEPT", k),
		}},
		{"FORWARD", []string{
			"-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
			"-m conntrack --ctstate INVALID -j DROP",
			fmt.Sprintf(`-m set --match-set blocked_%d src -m comment --comment "quarantined hosts" -j DROP`, k),
			"-s 10.0.0.0/8 -d 10.0.0.0/8 -p icmp -m icmp --icmp-type 8 -j ACCEPT",
			"-i eth0 -o eth1 -j FROM_TRANSIT",
			"-i eth1 -o eth0 -j TO_TRANSIT",
			fmt.Sprintf(`-m limit --limit 10/min -j LOG --log-prefix "s%d-gw drop: "`, k),
		}},
		{"FROM_TRANSIT", fromTransit},
		{"TO_TRANSIT", toTransit},
	}
	r.mangle = []string{
		fmt.Sprintf(`-s 10.%d.20.0/24 -p udp -m udp --sport 514 -m comment --comment "syslog via the management hub" -j MARK --set-xmark 0x20/0xff`, k),
	}
	if s.dmz {
		r.nat["PREROUTING"] = []string{fmt.Sprintf("-d 10.%d.250.10/32 -i eth0 -p tcp -m tcp --dport 443 -j DNAT --to-destination 10.%d.200.10:443", k, k)}
	}

	// ipsets: a quarantine list with a long tail of sizes (site 1 holds the
	// maximum), partners' management LANs, and published services.
	size := n.longTail(20, 1.0, maxIpset)
	if k == 1 {
		size = maxIpset
	}
	blocked := ipset{name: fmt.Sprintf("blocked_%d", k), typ: "hash:ip"}
	for _, o := range n.sites {
		if o.core1 && len(blocked.members) < size {
			blocked.members = append(blocked.members, fmt.Sprintf("10.%d.10.66", o.k))
		}
	}
	// Outside 10/8 and never an endpoint: 172.16.0.0/12, scrambled.
	off := n.rng.Uint32N(1 << 20)
	for i := uint32(0); len(blocked.members) < size; i++ {
		v := (i*2654435761 + off) & (1<<20 - 1)
		blocked.members = append(blocked.members, fmt.Sprintf("172.%d.%d.%d", 16+v>>16, v>>8&255, v&255|1))
	}
	blocked.members = dedupe(blocked.members)
	partners := ipset{name: fmt.Sprintf("partners_%d", k), typ: "hash:net"}
	for _, o := range n.sites {
		if o.k == k || n.rng.IntN(3) == 0 {
			partners.members = append(partners.members, fmt.Sprintf("10.%d.30.0/24", o.k))
		}
	}
	svc := ipset{name: fmt.Sprintf("svc_%d", k), typ: "hash:ip,port", members: []string{
		fmt.Sprintf("10.%d.20.10,tcp:8443", k),
		fmt.Sprintf("10.%d.20.11,tcp:8443", k),
		fmt.Sprintf("10.%d.20.12,udp:514", k),
	}}
	r.ipsets = []ipset{blocked, partners, svc}
	n.add(r)
}

func dedupe(l []string) []string {
	seen := make(map[string]bool, len(l))
	out := l[:0]
	for _, x := range l {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func (n *network) core(s *site, which int) {
	k := s.k
	r := (&router{name: fmt.Sprintf("s%d-core%d", k, which), fwdPol: "ACCEPT"}).init()
	own := fmt.Sprintf("10.%d.0.%d", k, 1+which)
	r.ifaces = []iface{{"eth0", []netip.Prefix{pfx(own + "/24")}}}
	main := []string{
		fmt.Sprintf("default via 10.%d.0.1 dev eth0 proto static ", k),
		fmt.Sprintf("10.%d.0.0/24 dev eth0 proto kernel scope link src %s ", k, own),
	}
	for i, lan := range []int{10, 20, 30} {
		dev := fmt.Sprintf("eth%d", i+1)
		a := fmt.Sprintf("10.%d.%d.%d", k, lan, which)
		r.ifaces = append(r.ifaces, iface{dev, []netip.Prefix{pfx(a + "/24")}})
		main = append(main, fmt.Sprintf("10.%d.%d.0/24 dev %s proto kernel scope link src %s ", k, lan, dev, a))
	}
	if s.dmz {
		main = append(main, fmt.Sprintf("10.%d.200.0/24 via 10.%d.0.4 dev eth0 proto static ", k, k))
	}
	r.tables[254] = main
	lan := append(n.filler(n.longTail(10, 1.1, maxFiller), "LAN_PROTECT"),
		"-p tcp -m tcp --dport 23 -j DROP",
		fmt.Sprintf(`-s 10.%d.10.0/24 -d 10.%d.30.0/24 -m comment --comment "users never reach management" -j REJECT --reject-with icmp-admin-prohibited`, k, k),
		"-j RETURN")
	r.filter = []chain{
		{"FORWARD", []string{
			"-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
			"-j LAN_PROTECT",
		}},
		{"LAN_PROTECT", lan},
	}
	n.add(r)
}

func (n *network) dmzRouter(s *site) {
	k := s.k
	r := (&router{name: fmt.Sprintf("s%d-dmz", k), ifaces: []iface{
		{"eth0", []netip.Prefix{pfx(fmt.Sprintf("10.%d.0.4/24", k))}},
		{"eth1", []netip.Prefix{pfx(fmt.Sprintf("10.%d.200.1/24", k))}},
	}}).init()
	r.tables[254] = []string{
		fmt.Sprintf("default via 10.%d.0.1 dev eth0 proto static ", k),
		fmt.Sprintf("10.%d.0.0/24 dev eth0 proto kernel scope link src 10.%d.0.4 ", k, k),
		fmt.Sprintf("10.%d.200.0/24 dev eth1 proto kernel scope link src 10.%d.200.1 ", k, k),
	}
	// The site's LANs straight through the cores, so replies to a LAN take
	// the way the requests came (not the gateway, which would see them
	// without their connection).
	switch {
	case s.core1 && s.core2:
		r.tables[254] = append(r.tables[254], fmt.Sprintf("10.%d.0.0/17 proto static metric 10 \n\tnexthop via 10.%d.0.2 dev eth0 weight 1 \n\tnexthop via 10.%d.0.3 dev eth0 weight 1 ", k, k, k))
	case s.core1:
		r.tables[254] = append(r.tables[254], fmt.Sprintf("10.%d.0.0/17 via 10.%d.0.2 dev eth0 proto static metric 10 ", k, k))
	}
	r.filter = []chain{
		{"FORWARD", []string{
			"-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
			"-p icmp -m icmp --icmp-type 8 -j ACCEPT",
			"-i eth0 -o eth1 -j DMZ_IN",
			"-i eth1 -o eth0 -p udp -m udp --dport 53 -j ACCEPT",
			"-i eth1 -o eth0 -p tcp -m multiport --dports 80,443 -j ACCEPT",
		}},
		{"DMZ_IN", append(n.filler(n.longTail(15, 1.1, maxFiller), "DMZ_IN"),
			"-p tcp -m multiport --dports 80,443 -j ACCEPT",
			fmt.Sprintf("-s 10.%d.30.0/24 -p tcp -m tcp --dport 22 -j ACCEPT", k),
			"-j RETURN")},
	}
	n.add(r)
}

// filler returns count change-ticket rules between addresses no flow
// endpoint uses (host parts 100-250), the bulk of a real ruleset.
func (n *network) filler(count int, what string) []string {
	out := make([]string, 0, count)
	ns := len(n.sites)
	for i := range count {
		a := fmt.Sprintf("10.%d.%d.%d", 1+n.rng.IntN(ns), []int{10, 20, 30}[n.rng.IntN(3)], 100+n.rng.IntN(151))
		b := fmt.Sprintf("10.%d.%d.%d", 1+n.rng.IntN(ns), []int{20, 200}[n.rng.IntN(2)], 100+n.rng.IntN(151))
		var m string
		switch n.rng.IntN(4) {
		case 0:
			m = fmt.Sprintf("-p tcp -m multiport --dports %d,%d", 1024+n.rng.IntN(9000), 1024+n.rng.IntN(9000))
		case 1:
			m = fmt.Sprintf("-p udp -m udp --dport %d", 1024+n.rng.IntN(9000))
		default:
			m = fmt.Sprintf("-p tcp -m tcp --dport %d", 1024+n.rng.IntN(9000))
		}
		out = append(out, fmt.Sprintf(`-s %s/32 -d %s/32 %s -m comment --comment "%s CHG-%06d" -j ACCEPT`, a, b, m, strings.ToLower(what), i+1))
	}
	return out
}
