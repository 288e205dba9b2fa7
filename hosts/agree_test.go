package hosts

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/netx"
	"github.com/tsim-dev/tsim/trace"
)

// The kernel-agreement suite (issue 4): for many flows, every router hop
// of `tsim trace` is compared with what the lab's kernel answers to the
// same question — the `ip route get …` recorded in the hop's route step,
// run inside that router's namespace.

// hostAddr picks an address inside p owned by no router (.100 when the
// subnet is large enough).
func hostAddr(p netip.Prefix, owned map[netip.Addr]bool) (netip.Addr, bool) {
	p = p.Masked()
	a := p.Addr()
	if p.Bits() <= 24 {
		for range 100 {
			a = a.Next()
		}
	} else {
		a = a.Next()
	}
	for ; p.Contains(a); a = a.Next() {
		if !owned[a] && a != lastAddr(p) {
			return a, true
		}
	}
	return netip.Addr{}, false
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= 1<<(32-p.Bits()) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

type svc struct {
	proto        string
	dport, sport int
}

// agreementFlows: every ordered pair of host subnets (services rotating
// through tcp/udp/icmp ports), plus flows built from each policy rule's
// selectors (from, to, dport, sport, ipproto; fwmark through the mangle
// rules the ports trigger; iif/oif by the paths themselves), plus flows
// leaving the network and to nowhere.
func agreementFlows(f *facts.Facts) []*doc.Flow {
	owned := map[netip.Addr]bool{}
	subnets := map[netip.Prefix]bool{}
	for _, r := range f.Routers {
		for _, ifc := range r.Interfaces {
			for _, a := range ifc.Addrs {
				owned[a.Prefix.Addr()] = true
				if a.Prefix.Addr().Is4() && !a.Peer.IsValid() && a.Prefix.Bits() < 31 && !a.Prefix.Addr().IsLoopback() {
					subnets[a.Prefix.Masked()] = true
				}
			}
		}
	}
	var hosts []netip.Addr
	for p := range subnets {
		if a, ok := hostAddr(p, owned); ok {
			hosts = append(hosts, a)
		}
	}
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].Less(hosts[j]) })
	services := []svc{{"tcp", 443, 0}, {"tcp", 22, 0}, {"udp", 53, 0}, {"icmp", 0, 0}, {"tcp", 80, 0}, {"tcp", 3306, 0}, {"udp", 161, 0}}
	var flows []*doc.Flow
	add := func(src, dst netip.Addr, s svc) {
		flows = append(flows, &doc.Flow{ID: fmt.Sprintf("f%d", len(flows)+1), Src: src.String(), Dst: dst.String(), Proto: s.proto, DPort: s.dport, SPort: s.sport})
	}
	i := 0
	for _, s := range hosts {
		for _, d := range hosts {
			if s != d {
				add(s, d, services[i%len(services)])
				i++
			}
		}
	}
	inside := func(p netip.Prefix, fallback netip.Addr) netip.Addr {
		if !p.IsValid() || p.Bits() == 0 {
			return fallback
		}
		if p.Bits() == 32 {
			return p.Addr()
		}
		if a, ok := hostAddr(p, owned); ok {
			return a
		}
		return fallback
	}
	for _, r := range f.Routers {
		for ri, ru := range r.Rules {
			if isDefaultRule(ru) {
				continue
			}
			s := svc{"tcp", 443, 0}
			if !ru.DPort.Any() {
				s.dport = int(ru.DPort.Lo)
			}
			if !ru.SPort.Any() {
				s.sport = int(ru.SPort.Lo)
			}
			switch ru.IPProto {
			case 1:
				s = svc{"icmp", 0, 0}
			case 17:
				s.proto = "udp"
			}
			for k := 0; k < 3 && len(hosts) > 1; k++ {
				src := inside(ru.From, hosts[(ri+k)%len(hosts)])
				dst := inside(ru.To, hosts[(ri+k+len(hosts)/2)%len(hosts)])
				if src != dst {
					add(src, dst, s)
				}
			}
			// A rule with a destination but no protocol: also an ICMP echo
			// there, which internal FORWARD rules let through (e.g. into the
			// example's 10.99.0.0/16 routing loop).
			if ru.To.IsValid() && ru.To.Bits() > 0 && ru.IPProto == 0 && len(hosts) > 0 {
				if dst := inside(ru.To, hosts[0]); dst != hosts[ri%len(hosts)] {
					add(hosts[ri%len(hosts)], dst, svc{"icmp", 0, 0})
				}
			}
		}
	}
	// Leaving the network, to nowhere, into blackhole/unreachable ranges
	// (RFC 1918/6598 space the example discards), and to routers' own
	// addresses (local delivery).
	var routerAddrs []netip.Addr
	for a := range owned {
		if a.Is4() && !a.IsLoopback() {
			routerAddrs = append(routerAddrs, a)
		}
	}
	sort.Slice(routerAddrs, func(i, j int) bool { return routerAddrs[i].Less(routerAddrs[j]) })
	for k, h := range hosts {
		if k%3 == 0 {
			add(h, netip.MustParseAddr("8.8.8.8"), svc{"tcp", 443, 0})
			add(h, netip.MustParseAddr("172.31.255.1"), svc{"udp", 53, 0})
			add(h, netip.MustParseAddr("100.64.1.1"), svc{"icmp", 0, 0})
			add(h, netip.MustParseAddr("192.168.77.1"), svc{"tcp", 22, 0})
		}
		if len(routerAddrs) > 0 {
			add(h, routerAddrs[k%len(routerAddrs)], svc{"tcp", 22, 0})
		}
	}
	// To every subnet's broadcast address, from a host elsewhere: the
	// routers on that subnet have it in their local table (type
	// broadcast) and must not forward it. And back, from the broadcast
	// address as a source.
	var subs []netip.Prefix
	for p := range subnets {
		subs = append(subs, p)
	}
	sort.Slice(subs, func(i, j int) bool { return subs[i].Addr().Less(subs[j].Addr()) })
	bsvc := []svc{{"tcp", 443, 0}, {"icmp", 0, 0}, {"udp", 161, 0}}
	for k, p := range subs {
		if len(hosts) > 1 {
			src := hosts[k%len(hosts)]
			if p.Contains(src) {
				src = hosts[(k+1)%len(hosts)]
			}
			add(src, lastAddr(p), bsvc[k%len(bsvc)])
			// And from it: a source that is a router's broadcast
			// address fails source validation where it is checked.
			add(lastAddr(p), src, bsvc[(k+1)%len(bsvc)])
		}
	}
	return flows
}

// kernelRoute is one answer of `ip -j route get`.
type kernelRoute struct {
	Type    string `json:"type"`
	Dst     string `json:"dst"`
	Gateway string `json:"gateway"`
	Dev     string `json:"dev"`
	Table   string `json:"table"`
	err     string
}

func (k kernelRoute) String() string {
	if k.err != "" {
		return "error: " + k.err
	}
	s := k.Type
	if s == "" {
		s = "unicast"
	}
	if k.Gateway != "" {
		s += " via " + k.Gateway
	}
	return s + " dev " + k.Dev + " table " + k.Table
}

type agreement struct {
	owners  map[netip.Addr][]where // router interfaces owning each address
	mu      sync.Mutex
	cache   map[string]kernelRoute
	flows   int
	checked int
	bad     []string
	// replies and multipath count the reply legs and multipath route
	// hops compared; kernelBranches the branches the kernel's hash takes.
	replies, multipath                      int
	ecmpFlows, ecmpBranches, kernelBranches int
	// broadcasts counts hops trace received by a broadcast route.
	broadcasts int
}

func (a *agreement) kernel(ns, query string) kernelRoute {
	key := ns + "|" + query
	a.mu.Lock()
	k, ok := a.cache[key]
	a.mu.Unlock()
	if ok {
		return k
	}
	args := append([]string{"-n", ns, "-j"}, strings.Fields(strings.TrimPrefix(query, "ip "))...)
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		k.err = strings.TrimSpace(string(out))
	} else {
		var rs []kernelRoute
		if jerr := json.Unmarshal(out, &rs); jerr != nil || len(rs) == 0 {
			k.err = fmt.Sprintf("unparsable: %s", out)
		} else {
			k = rs[0]
		}
	}
	a.mu.Lock()
	a.cache[key] = k
	a.mu.Unlock()
	return k
}

// check compares one trace with the kernel, hop by hop: the request and
// the reply of every ECMP branch. On the branch the kernel's hash takes
// (the lab pins every router's seed, the engine knows it) a multipath
// route must lead where the kernel's does; on the others any nexthop of
// the route is the kernel's answer for some seed.
func (a *agreement) check(fl *doc.Flow, tr *doc.Trace, lab *doc.Lab) {
	nsOf := map[string]string{}
	for _, r := range lab.Routers {
		nsOf[r.Name] = r.Netns
	}
	branches := tr.Branches
	if len(branches) == 0 {
		branches = []*doc.Branch{{Hops: tr.Hops, ReplyHops: tr.ReplyHops, Disposition: tr.Disposition, Direction: tr.Direction, Kernel: true}}
	}
	if len(tr.Branches) > 0 {
		a.mu.Lock()
		a.ecmpFlows++
		a.ecmpBranches += len(tr.Branches)
		if tr.KernelBranch > 0 {
			a.kernelBranches++
		}
		a.mu.Unlock()
	}
	for _, b := range branches {
		// A leg that arrived ends DELIVERED (or leaves the network);
		// the stopped one has the branch's disposition.
		reqDisp, repDisp := doc.Delivered, b.Disposition
		if b.Direction == doc.Request && !strings.HasPrefix(b.Reason, "the handshake's ACK") {
			reqDisp = b.Disposition
		} else if b.Direction != doc.Reply {
			repDisp = doc.Delivered
		}
		a.checkLeg(fl, "request", b.Hops, reqDisp, b.Kernel, nsOf)
		if len(b.ReplyHops) > 0 {
			a.mu.Lock()
			a.replies++
			a.mu.Unlock()
			a.checkLeg(fl, "reply", b.ReplyHops, repDisp, b.Kernel, nsOf)
		}
	}
}

// checkLeg compares the router hops of one direction with the kernel.
func (a *agreement) checkLeg(fl *doc.Flow, dir string, hops []*doc.Hop, disp string, kernelBranch bool, nsOf map[string]string) {
	for i, h := range hops {
		if h.Kind != doc.HopRouter {
			continue
		}
		var rs *doc.Step
		for _, s := range h.Steps {
			if s.Kind == doc.StepRoute && s.Query != "" {
				rs = s
			}
		}
		if rs == nil {
			continue // decided before routing (local input, denied in PREROUTING …)
		}
		k := a.kernel(nsOf[h.Node], rs.Query)
		a.mu.Lock()
		a.checked++
		a.mu.Unlock()
		last := i == len(hops)-1
		var want, why string
		switch {
		case rs.Action == facts.RouteBlackhole || rs.Action == facts.RouteUnreachable || rs.Action == facts.RouteProhibit:
			want = rs.Action
			if k.err == "" && k.Type != rs.Action {
				why = "trace discards here"
			}
		case rs.Action == "none" || last && disp == doc.NoRoute && h.Out == "":
			want = "no route"
			if k.err == "" && k.Type != "unreachable" {
				why = "trace finds no route"
			}
		case rs.Action == facts.RouteBroadcast:
			// A broadcast address of this router: received, never
			// forwarded.
			want = "broadcast"
			a.mu.Lock()
			a.broadcasts++
			a.mu.Unlock()
			if k.Type != "broadcast" {
				why = "trace receives it as a broadcast (local table)"
			}
		case rs.Action == facts.RouteLocal || h.Out == "" && last && disp == doc.Delivered:
			want = "local"
			if k.Type != "local" {
				why = "trace delivers locally"
			}
		case h.Out != "":
			gw := rs.Gateway // the chosen nexthop (typed: no text parsing)
			multipath := rs.Nexthops > 1
			want = "dev " + h.Out
			if gw != "" {
				want = "via " + gw + " " + want
			}
			if multipath {
				a.mu.Lock()
				a.multipath++
				a.mu.Unlock()
				want += fmt.Sprintf(" (nexthop %d of %d, the kernel's hash: %d)", rs.Nexthop, rs.Nexthops, rs.HashNexthop)
			}
			switch {
			case k.err != "":
				why = "kernel has no route"
			case multipath && !kernelBranch:
				// Another branch: the kernel takes it for other seeds
				// only; its route must still offer this nexthop.
				if !strings.Contains(rs.Text, "via "+gw+" ") {
					why = "the route does not offer the branch's nexthop"
				}
			case multipath && rs.HashNexthop == 0:
				why = "the lab pins the seed, but trace could not compute the kernel's nexthop"
			case k.Dev != h.Out:
				why = "different out interface"
			case k.Gateway != gw:
				why = "different next hop"
			case i+1 < len(hops) && hops[i+1].Kind == doc.HopRouter:
				// Following the kernel's next hop must land on the trace's
				// next router, on the interface the trace enters by.
				next := hops[i+1]
				to := k.Gateway
				if to == "" {
					// The destination of this leg, as the router sees it.
					to = strings.Fields(rs.Query)[3]
				}
				if addr, err := netip.ParseAddr(to); err == nil {
					if own := a.owners[addr]; len(own) > 0 && !slices.Contains(own, where{next.Node, next.In}) {
						why = fmt.Sprintf("kernel's next hop %s belongs to %v, trace goes to %s:%s", to, own, next.Node, next.In)
					}
				}
			}
		default:
			continue
		}
		if why != "" {
			a.mu.Lock()
			a.bad = append(a.bad, fmt.Sprintf("%s %s→%s %s/%d %s hop %s (in %s): %s — trace: %s (table %s, %q at %s); kernel: %s\n    query: %s",
				fl.ID, fl.Src, fl.Dst, fl.Proto, fl.DPort, dir, h.Node, h.In, why, want, rs.Table, rs.Text, rs.Pos, k, rs.Query))
			a.mu.Unlock()
		}
	}
}

func runAgreement(t *testing.T, f *facts.Facts) *doc.Lab {
	opts := testOpts(t)
	lab := upT(t, f, doc.New(), opts)
	// Pin every router's multipath hash seed, in the lab and for trace,
	// so that ECMP routes are compared exactly on the kernel's branch.
	// A seed the facts pin is the router's own.
	const seed = 4242
	for _, r := range lab.Routers {
		s := strconv.Itoa(seed)
		if fr := f.Router(r.Name); fr != nil && strings.TrimSpace(fr.Sysctls["net.ipv4.fib_multipath_hash_seed"]) != "" &&
			strings.TrimSpace(fr.Sysctls["net.ipv4.fib_multipath_hash_seed"]) != "0" {
			s = strings.TrimSpace(fr.Sysctls["net.ipv4.fib_multipath_hash_seed"])
		}
		if out, err := exec.Command("ip", "netns", "exec", r.Netns, "sysctl", "-qw", "net.ipv4.fib_multipath_hash_seed="+s).CombinedOutput(); err != nil {
			t.Fatalf("pin the hash seed in %s: %v: %s", r.Netns, err, out)
		}
	}
	e := trace.New(f)
	e.SetHashSeed(seed)
	flows := agreementFlows(f)
	a := &agreement{cache: map[string]kernelRoute{}, flows: len(flows), owners: map[netip.Addr][]where{}}
	for _, r := range f.Routers {
		for _, ifc := range r.Interfaces {
			for _, x := range ifc.Addrs {
				a.owners[x.Prefix.Addr()] = append(a.owners[x.Prefix.Addr()], where{r.Name, ifc.Name})
			}
		}
	}
	g := errgroup.Group{}
	g.SetLimit(8)
	disp := map[string]int{}
	var mu sync.Mutex
	for _, fl := range flows {
		g.Go(func() error {
			tr := e.Trace(context.Background(), fl)
			mu.Lock()
			disp[tr.Disposition]++
			mu.Unlock()
			a.check(fl, tr, lab)
			return nil
		})
	}
	g.Wait()
	t.Logf("kernel agreement: %d flows (%d replies; %d flows with %d ECMP branches, the kernel's named for %d), %d router hops compared (%d on multipath routes, %d received as broadcasts), %d disagreements; dispositions %v",
		a.flows, a.replies, a.ecmpFlows, a.ecmpBranches, a.kernelBranches, a.checked, a.multipath, a.broadcasts, len(a.bad), disp)
	if a.broadcasts == 0 {
		t.Errorf("no flow to a subnet broadcast reached a router holding it: nothing compared")
	}
	if a.ecmpFlows > 0 && a.kernelBranches != a.ecmpFlows {
		t.Errorf("the seed is pinned, but trace named the kernel's branch for only %d of %d ECMP flows", a.kernelBranches, a.ecmpFlows)
	}
	sort.Strings(a.bad)
	for i, b := range a.bad {
		if i == 60 {
			t.Errorf("… and %d more", len(a.bad)-i)
			break
		}
		t.Errorf("disagreement: %s", b)
	}
	if a.checked == 0 || a.replies == 0 {
		t.Errorf("%d hops and %d replies compared", a.checked, a.replies)
	}
	return lab
}

func TestKernelAgreementCorpus(t *testing.T) {
	needRoot(t)
	runAgreement(t, loadCorpus(t))
}

func TestKernelAgreementExample(t *testing.T) {
	needRoot(t)
	f, err := facts.Load(context.Background(), "")
	if err != nil {
		t.Fatalf("built-in example: %v", err)
	}
	lab := runAgreement(t, f)
	// The example is meant to be reproducible: nothing may be refused.
	for _, r := range lab.Routers {
		for _, x := range r.Refused {
			t.Errorf("example lab: %s refused %s %s: %s", r.Name, x.What, x.Line, x.Error)
		}
	}
	if len(lab.Routers) < 8 {
		t.Errorf("example lab has %d routers, the design asks for at least 8", len(lab.Routers))
	}
}

// TestKernelAgreementAsym runs the suite on trace's asymmetric test network
// (requests through b, replies through c, an ECMP route whose seed the
// facts pin).
func TestKernelAgreementAsym(t *testing.T) {
	needRoot(t)
	f, err := facts.Load(context.Background(), "../trace/testdata/asym")
	if err != nil {
		t.Fatal(err)
	}
	runAgreement(t, f)
}

// TestConnectionsAgreeAsym sends real connections through a lab of trace's
// asymmetric network (requests through b, replies through c) and compares
// whether each one works with what trace says of the connection on the
// branch the kernel takes: the reply dropped INVALID at c, the tcp
// handshake's ACK dropped INVALID at b (the SYN-ACK went through c), a udp
// reply that c lets through as NEW, a masqueraded and a DNAT'd connection
// translated back, a DNAT whose reply bypasses the DNAT router. A failure
// trace blames on a rule must have moved that rule's counter in the lab.
func TestConnectionsAgreeAsym(t *testing.T) {
	needRoot(t)
	f, err := facts.Load(context.Background(), "../trace/testdata/asym")
	if err != nil {
		t.Fatal(err)
	}
	flows := []*doc.Flow{
		{ID: "icmp", Src: "10.1.0.5", Dst: "10.4.0.10", Proto: "icmp"},
		{ID: "ssh", Src: "10.1.0.5", Dst: "10.4.0.10", Proto: "tcp", DPort: 22},
		{ID: "dns", Src: "10.1.0.5", Dst: "10.4.0.10", Proto: "udp", DPort: 53},
		{ID: "masq", Src: "10.1.0.5", Dst: "10.4.0.10", Proto: "udp", DPort: 5353},
		{ID: "dnat", Src: "10.1.0.5", Dst: "10.4.0.200", Proto: "tcp", DPort: 80},
		{ID: "bypass", Src: "10.1.0.5", Dst: "10.4.0.201", Proto: "tcp", DPort: 80},
		{ID: "ecmp", Src: "10.1.0.5", Dst: "10.6.0.10", Proto: "icmp"},
	}
	e := trace.New(f)
	d := doc.New()
	d.Flows = flows
	if d.Trace, err = e.TraceAll(context.Background(), flows); err != nil {
		t.Fatal(err)
	}
	lab := upT(t, f, d, testOpts(t))
	nsOf := map[string]string{}
	for _, r := range lab.Routers {
		nsOf[r.Name] = r.Netns
		seed := "4242"
		if s := strings.TrimSpace(f.Router(r.Name).Sysctls["net.ipv4.fib_multipath_hash_seed"]); s != "" && s != "0" {
			seed = s
		}
		if out, err := exec.Command("ip", "netns", "exec", r.Netns, "sysctl", "-qw", "net.ipv4.fib_multipath_hash_seed="+seed).CombinedOutput(); err != nil {
			t.Fatalf("pin the hash seed: %v: %s", err, out)
		}
	}
	src := hostNS(t, lab, "10.1.0.5")
	for i, fl := range flows {
		tr := d.Trace[i]
		// The connection on the branch the kernel takes.
		disp, deniedBy := tr.Disposition, tr.DeniedBy
		if len(tr.Branches) > 0 {
			if tr.KernelBranch == 0 {
				t.Fatalf("%s: the facts pin the seed, but trace names no kernel branch", fl.ID)
			}
			b := tr.Branches[tr.KernelBranch-1]
			disp, deniedBy = b.Disposition, b.DeniedBy
		}
		t.Run(fl.ID, func(t *testing.T) {
			server := hostNS(t, lab, "10.4.0.10")
			if strings.HasPrefix(fl.Dst, "10.6.") {
				server = hostNS(t, lab, fl.Dst)
			}
			var before []uint64
			if deniedBy != nil {
				before = counters(t, nsOf[deniedBy.Router], deniedBy.Table, deniedBy.Chain)
			}
			port := fl.DPort
			if fl.Dst == "10.4.0.200" || fl.Dst == "10.4.0.201" {
				port = 8080 // the DNAT's translated port
			}
			ok := connect(t, src, server, fl.Proto, fl.Dst, fl.DPort, port)
			if ok != trace.Positive(disp) {
				t.Errorf("live: connection works %v; trace: %s (%s)", ok, disp, tr.Reason)
			}
			if deniedBy != nil && deniedBy.Index > 0 {
				after := counters(t, nsOf[deniedBy.Router], deniedBy.Table, deniedBy.Chain)
				if len(after) < deniedBy.Index || after[deniedBy.Index-1] <= before[deniedBy.Index-1] {
					t.Errorf("trace blames %s %s %s #%d, whose counter did not move", deniedBy.Router, deniedBy.Table, deniedBy.Chain, deniedBy.Index)
				}
			}
		})
	}
}

// connect opens one real connection from the src host to dst:dport, served
// in the server host on port, and reports whether an answer came back:
// tcp connect, send and receive; udp datagram and reply; icmp echo.
func connect(t *testing.T, srcNS, serverNS, proto, dst string, dport, port int) bool {
	t.Helper()
	const wait = 3 * time.Second
	switch proto {
	case "icmp":
		return exec.Command("ip", "netns", "exec", srcNS, "ping", "-n", "-c", "1", "-W", "3", dst).Run() == nil
	case "udp":
		var ln *net.UDPConn
		if err := netx.Do(mustNS(serverNS), func() (err error) {
			ln, err = net.ListenUDP("udp4", &net.UDPAddr{Port: port})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			buf := make([]byte, 64)
			ln.SetReadDeadline(time.Now().Add(wait))
			if n, from, err := ln.ReadFromUDP(buf); err == nil {
				ln.WriteToUDP(buf[:n], from)
			}
		}()
		var c *net.UDPConn
		if err := netx.Do(mustNS(srcNS), func() (err error) {
			c, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP(dst), Port: dport})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("ping"))
		c.SetReadDeadline(time.Now().Add(wait))
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		return err == nil && string(buf[:n]) == "ping"
	}
	var ln net.Listener
	if err := netx.Do(mustNS(serverNS), func() (err error) {
		ln, err = net.Listen("tcp4", ":"+strconv.Itoa(port))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(wait))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err == nil {
			c.Write([]byte("pong"))
		}
	}()
	var c net.Conn
	if err := netx.Do(mustNS(srcNS), func() (err error) {
		c, err = net.DialTimeout("tcp4", net.JoinHostPort(dst, strconv.Itoa(dport)), wait)
		return err
	}); err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write([]byte("ping")); err != nil {
		return false
	}
	buf := make([]byte, 4)
	_, err := io.ReadFull(c, buf)
	return err == nil && string(buf) == "pong"
}
