package hosts

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/netx"
	"github.com/tsim-dev/tsim/internal/tsimerr"
)

// upT builds a lab and registers its removal.
func upT(t *testing.T, f *facts.Facts, d *doc.Document, opts Options) *doc.Lab {
	t.Helper()
	lab, err := Up(context.Background(), f, d, opts)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	t.Cleanup(func() {
		if err := Down(context.Background(), lab.ID, opts); err != nil && !errors.Is(err, ErrNoLab) {
			t.Errorf("Down: %v", err)
		}
	})
	return lab
}

// nlIn opens a netlink handle in a lab namespace.
func nlIn(t *testing.T, ns string) *netlink.Handle {
	t.Helper()
	nh, err := netns.GetFromPath(netx.Path(ns))
	if err != nil {
		t.Fatalf("open %s: %v", ns, err)
	}
	defer nh.Close()
	h, err := netlink.NewHandleAt(nh)
	if err != nil {
		t.Fatalf("netlink in %s: %v", ns, err)
	}
	t.Cleanup(h.Close)
	return h
}

// refusedAt indexes a router's refusals by facts position.
func refusedAt(lr *doc.LabRouter) map[string]*doc.Refusal {
	m := map[string]*doc.Refusal{}
	for _, x := range lr.Refused {
		m[x.Line] = x
	}
	return m
}

func labRouter(t *testing.T, lab *doc.Lab, name string) *doc.LabRouter {
	t.Helper()
	for _, r := range lab.Routers {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("router %s not in lab", name)
	return nil
}

// checkKernelEqualsFacts compares, router by router, what the kernel holds
// with the facts minus the refused lines.
func checkKernelEqualsFacts(t *testing.T, f *facts.Facts, lab *doc.Lab) {
	t.Helper()
	if !netx.Exists(lab.Fabric) {
		t.Errorf("fabric namespace %s missing", lab.Fabric)
	}
	for _, r := range f.Routers {
		lr := labRouter(t, lab, r.Name)
		if !netx.Exists(lr.Netns) {
			t.Errorf("%s: namespace %s missing", r.Name, lr.Netns)
			continue
		}
		ref := refusedAt(lr)
		h := nlIn(t, lr.Netns)
		checkLinks(t, h, r, ref)
		checkRules(t, lr.Netns, r, ref)
		checkRoutes(t, h, r, ref)
		checkIptables(t, lr.Netns, r, ref)
	}
}

func checkLinks(t *testing.T, h *netlink.Handle, r *facts.Router, ref map[string]*doc.Refusal) {
	t.Helper()
	for _, ifc := range r.Interfaces {
		if !vethEligible(ifc) || ref[ifc.Pos.String()] != nil {
			continue
		}
		l, err := h.LinkByName(ifc.Name)
		if err != nil {
			t.Errorf("%s: interface %s missing: %v", r.Name, ifc.Name, err)
			continue
		}
		a := l.Attrs()
		if ifc.MTU >= 68 && a.MTU != ifc.MTU {
			t.Errorf("%s %s: mtu %d, facts %d", r.Name, ifc.Name, a.MTU, ifc.MTU)
		}
		if up := a.Flags&unix.IFF_UP != 0; up != ifc.Up() {
			t.Errorf("%s %s: up=%v, facts %v", r.Name, ifc.Name, up, ifc.Up())
		}
		got := map[string]bool{}
		addrs, _ := h.AddrList(l, unix.AF_INET)
		for _, x := range addrs {
			p, _ := netip.AddrFromSlice(x.IP)
			ones, _ := x.Mask.Size()
			got[netip.PrefixFrom(p.Unmap(), ones).String()] = true
		}
		want := map[string]bool{}
		for _, x := range ifc.Addrs {
			if x.Prefix.Addr().Is4() && ref[x.Pos.String()] == nil {
				want[x.Prefix.String()] = true
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s %s: addresses %v, facts %v", r.Name, ifc.Name, got, want)
		}
	}
}

// ruleCanon renders a rule canonically from iproute2's JSON (an independent
// reader of the kernel) or from the facts.
func ruleCanon(prio int, not bool, from, to, iif, oif string, mark, mask uint32, tos, proto int, dport, sport, action string) string {
	return fmt.Sprintf("%d not=%v %s>%s i=%s o=%s m=%#x/%#x tos=%d p=%d d=%s s=%s %s", prio, not, from, to, iif, oif, mark, mask, tos, proto, dport, sport, action)
}

func jsonPrefix(m map[string]any, key string) string {
	v, _ := m[key].(string)
	if v == "" || v == "all" {
		return "all"
	}
	if l, ok := m[key+"len"].(float64); ok {
		return fmt.Sprintf("%s/%d", v, int(l))
	}
	return v + "/32"
}

func jsonNum(m map[string]any, key string) (uint64, bool) {
	switch v := m[key].(type) {
	case float64:
		return uint64(v), true
	case string:
		n, err := strconv.ParseUint(v, 0, 32)
		return n, err == nil
	}
	return 0, false
}

func jsonPorts(m map[string]any, key string) string {
	switch v := m[key].(type) {
	case float64:
		return fmt.Sprintf("%d-%d", int(v), int(v))
	case string:
		if a, b, ok := strings.Cut(v, "-"); ok {
			return a + "-" + b
		}
		return v + "-" + v
	}
	return ""
}

var reservedTables = map[string]int{"local": 255, "main": 254, "default": 253}

func checkRules(t *testing.T, ns string, r *facts.Router, ref map[string]*doc.Refusal) {
	t.Helper()
	if len(r.Rules) == 0 {
		return
	}
	out, err := exec.Command("ip", "-n", ns, "-j", "rule", "show").Output()
	if err != nil {
		t.Fatalf("%s: ip rule: %v", r.Name, err)
	}
	var live []map[string]any
	if err := json.Unmarshal(out, &live); err != nil {
		t.Fatalf("%s: ip -j rule: %v", r.Name, err)
	}
	got := map[string]int{}
	for _, m := range live {
		prio, _ := jsonNum(m, "priority")
		mark, hasMark := jsonNum(m, "fwmark")
		mask, hasMask := jsonNum(m, "fwmask")
		if hasMark && !hasMask {
			mask = 0xffffffff
		}
		tos, _ := jsonNum(m, "tos")
		if d, ok := jsonNum(m, "dsfield"); ok {
			tos = d
		}
		proto := 0
		if p, ok := m["ipproto"].(string); ok {
			proto, _ = facts.ParseIPProto(p)
		}
		iif, _ := m["iif"].(string)
		oif, _ := m["oif"].(string)
		not, _ := m["not"].(bool)
		action := ""
		if tb, ok := m["table"].(string); ok {
			id, ok := reservedTables[tb]
			if !ok {
				id, _ = strconv.Atoi(tb)
			}
			action = fmt.Sprintf("lookup %d", id)
		}
		if a, ok := m["action"].(string); ok {
			action = a
		}
		if g, ok := jsonNum(m, "goto"); ok {
			action = fmt.Sprintf("goto %d", g)
		}
		got[ruleCanon(int(prio), not, jsonPrefix(m, "src"), jsonPrefix(m, "dst"), iif, oif, uint32(mark), uint32(mask), int(tos), proto,
			jsonPorts(m, "dport"), jsonPorts(m, "sport"), action)]++
	}
	want := map[string]int{}
	pfx := func(p netip.Prefix) string {
		if !p.IsValid() || p.Bits() == 0 {
			return "all"
		}
		return p.String()
	}
	ports := func(p facts.PortRange) string {
		if p.Any() {
			return ""
		}
		return fmt.Sprintf("%d-%d", p.Lo, p.Hi)
	}
	for _, x := range r.Rules {
		if ref[x.Pos.String()] != nil {
			continue
		}
		var mask uint32
		if x.HasFwmark {
			mask = x.FwmarkMask
		}
		action := x.Action
		switch x.Action {
		case facts.ActionLookup:
			action = fmt.Sprintf("lookup %d", x.Table)
		case facts.ActionGoto:
			action = fmt.Sprintf("goto %d", x.Goto)
		}
		want[ruleCanon(x.Priority, x.Not, pfx(x.From), pfx(x.To), x.IIF, x.OIF, x.Fwmark, mask, int(x.TOS), x.IPProto,
			ports(x.DPort), ports(x.SPort), action)]++
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: rule %s: kernel has %d, facts %d", r.Name, k, got[k], n)
		}
	}
	for k, n := range got {
		if want[k] == 0 {
			t.Errorf("%s: kernel rule %s (x%d) not in the facts", r.Name, k, n)
		}
	}
}

func prefixOf(n interface{ String() string }, ok bool) netip.Prefix {
	if !ok {
		return netip.Prefix{}
	}
	p, err := netip.ParsePrefix(n.String())
	if err != nil {
		return netip.Prefix{}
	}
	return p
}

func checkRoutes(t *testing.T, h *netlink.Handle, r *facts.Router, ref map[string]*doc.Refusal) {
	t.Helper()
	idx := map[int]string{}
	links, _ := h.LinkList()
	for _, l := range links {
		idx[l.Attrs().Index] = l.Attrs().Name
	}
	live, err := h.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatalf("%s: route list: %v", r.Name, err)
	}
	key := func(table int, dst netip.Prefix, gw netip.Addr, dev string, metric int) string {
		return fmt.Sprintf("t%d %s via %v dev %s metric %d", table, dst, gw, dev, metric)
	}
	got := map[string]bool{}
	for _, x := range live {
		dst := netip.MustParsePrefix("0.0.0.0/0")
		if x.Dst != nil {
			dst = prefixOf(x.Dst, true)
		}
		gw, _ := netip.AddrFromSlice(x.Gw)
		dev := idx[x.LinkIndex]
		if x.Type != unix.RTN_UNICAST && x.Type != unix.RTN_LOCAL && x.Type != unix.RTN_BROADCAST {
			dev = ""
		}
		got[key(x.Table, dst, gw.Unmap(), dev, x.Priority)] = true
	}
	for _, tb := range r.Tables {
		for _, rt := range tb.Routes {
			if !rt.Dst.Addr().Is4() || ref[rt.Pos.String()] != nil || len(rt.Nexthops) > 0 {
				continue
			}
			dev := rt.Dev
			if rt.Type != "" && rt.Type != facts.RouteUnicast && rt.Type != facts.RouteLocal && rt.Type != facts.RouteBroadcast {
				dev = ""
			}
			k := key(tb.ID, rt.Dst.Masked(), rt.Gateway, dev, rt.Metric)
			if !got[k] {
				t.Errorf("%s: route %q (%s) missing from the kernel (want %s)", r.Name, rt.Text, rt.Pos, k)
			}
		}
	}
}

func checkIptables(t *testing.T, ns string, r *facts.Router, ref map[string]*doc.Refusal) {
	t.Helper()
	if len(r.Iptables) == 0 {
		return
	}
	out, _, err := netx.Exec(context.Background(), mustNS(ns), nil, "iptables-save")
	if err != nil {
		t.Fatalf("%s: iptables-save: %v", r.Name, err)
	}
	got := map[string]int{}
	table := ""
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, "*"):
			table = l[1:]
		case strings.HasPrefix(l, "-A "):
			got[table+" "+strings.Fields(l)[1]]++
		}
	}
	want := map[string]int{}
	for _, tb := range r.Iptables {
		for _, c := range tb.Chains {
			for _, x := range c.Rules {
				if ref[x.Pos.String()] == nil {
					want[tb.Name+" "+c.Name]++
				}
			}
		}
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: iptables %s: kernel has %d rules, facts minus refused %d", r.Name, k, got[k], n)
		}
	}
}

// inconsistentRoutes lists, from the facts alone, the routes a kernel must
// refuse: a gateway outside every connected subnet of the route's device
// (on that router), or a device the router does not have.
func inconsistentRoutes(r *facts.Router) map[string]string {
	out := map[string]string{}
	for _, tb := range r.Tables {
		for _, rt := range tb.Routes {
			if !rt.Dst.Addr().Is4() || len(rt.Nexthops) > 0 || rt.Onlink {
				continue
			}
			ifc := r.Interface(rt.Dev)
			if rt.Dev != "" && ifc == nil {
				out[rt.Pos.String()] = rt.Text
				continue
			}
			if !rt.Gateway.IsValid() || ifc == nil {
				continue
			}
			on := false
			for _, a := range ifc.Addrs {
				if a.Prefix.Masked().Contains(rt.Gateway) {
					on = true
				}
			}
			// A link route on the device in the same table also makes
			// the gateway reachable (the kernel looks there first).
			for _, x := range tb.Routes {
				if x.Dev == rt.Dev && !x.Gateway.IsValid() && len(x.Nexthops) == 0 &&
					(x.Type == "" || x.Type == facts.RouteUnicast) && x.Dst.Masked().Contains(rt.Gateway) {
					on = true
				}
			}
			if !on {
				out[rt.Pos.String()] = rt.Text
			}
		}
	}
	return out
}

func TestCorpusLab(t *testing.T) {
	needRoot(t)
	f := loadCorpus(t)
	opts := testOpts(t)
	lab := upT(t, f, doc.New(), opts)
	if len(lab.Routers) != len(f.Routers) {
		t.Fatalf("lab has %d routers, facts %d", len(lab.Routers), len(f.Routers))
	}
	checkKernelEqualsFacts(t, f, lab)

	kernelHas := kernelIpsetTypes()
	nUnsupported, nInconsistent := 0, 0
	for _, r := range f.Routers {
		lr := labRouter(t, lab, r.Name)
		ref := refusedAt(lr)
		for _, s := range r.Ipsets {
			ok, known := kernelHas(s.Type)
			x := ref[s.Pos.String()]
			switch {
			case known && !ok:
				nUnsupported++
				if x == nil || x.What != "ipset" {
					t.Errorf("%s: ipset %s (%s, unsupported here) not refused", r.Name, s.Name, s.Type)
				}
			case known && ok && x != nil:
				t.Errorf("%s: ipset %s (%s, supported) refused: %s", r.Name, s.Name, s.Type, x.Error)
			}
		}
		for pos, text := range inconsistentRoutes(r) {
			nInconsistent++
			if x := ref[pos]; x == nil || x.What != "route" {
				t.Errorf("%s: inconsistent route %q (%s) not refused", r.Name, text, pos)
			}
		}
		for _, x := range lr.Refused {
			if x.Line == "" || x.Error == "" || x.What == "" {
				t.Errorf("%s: refusal without what/line/error: %+v", r.Name, x)
			}
			// The corpus's interfaces and addresses are all valid: a
			// refusal here means the lab is broken (and would make the
			// kernel-vs-facts comparison vacuous).
			if x.What == "interface" || x.What == "address" || x.What == "rule" {
				t.Errorf("%s: %s refused: %s %s", r.Name, x.What, x.Line, x.Error)
			}
		}
	}
	t.Logf("corpus lab: %d ipsets of types this kernel lacks and %d inconsistent routes, all refused", nUnsupported, nInconsistent)
	if nInconsistent == 0 {
		t.Errorf("found no inconsistent route in the corpus; the check is broken")
	}
	recs, err := readRecords(opts.dir())
	if err != nil || len(recs) != 1 || !recs[0].Complete {
		t.Fatalf("registry: %v %+v", err, recs)
	}
	// Nothing of the lab is in the root namespace: no fabric end, no bridge.
	for _, it := range recs[0].Items {
		if it.Kind == itemLink && it.Netns == lab.Fabric {
			if _, err := net.InterfaceByName(it.Name); err == nil {
				t.Errorf("lab link %s exists in the root namespace", it.Name)
			}
		}
	}
	if err := Down(context.Background(), lab.ID, opts); err != nil {
		t.Fatalf("Down: %v", err)
	}
	if ents, _ := os.ReadDir(opts.dir()); len(ents) != 0 {
		t.Errorf("registry not empty after Down: %v", ents)
	}
}

func TestStrictCorpusFailsAndCleansUp(t *testing.T) {
	needRoot(t)
	f := loadCorpus(t)
	opts := testOpts(t)
	opts.Strict = true
	_, err := Up(context.Background(), f, doc.New(), opts)
	if err == nil {
		t.Fatal("strict Up of the corpus succeeded; it has refused lines")
	}
	if code := tsimerr.ExitCode(err); code != tsimerr.ExitEnv {
		t.Errorf("exit code %d, want %d (%v)", code, tsimerr.ExitEnv, err)
	}
	if ents, _ := os.ReadDir(opts.dir()); len(ents) != 0 {
		t.Errorf("registry not empty: %v", ents)
	}
}

// kernelIpsetTypes reads the running kernel's configuration
// (/proc/config.gz) once and answers whether an ipset type can be created.
// When the configuration is unreadable every answer is "unknown".
func kernelIpsetTypes() func(typ string) (ok bool, known bool) {
	cfg := map[string]string{}
	if fh, err := os.Open("/proc/config.gz"); err == nil {
		defer fh.Close()
		if zr, err := gzip.NewReader(fh); err == nil {
			sc := bufio.NewScanner(zr)
			for sc.Scan() {
				line := sc.Text()
				if strings.HasPrefix(line, "CONFIG_IP_SET_") {
					k, v, _ := strings.Cut(line, "=")
					cfg[k] = v
				} else if strings.HasPrefix(line, "# CONFIG_IP_SET_") && strings.HasSuffix(line, " is not set") {
					cfg[strings.Fields(line)[1]] = "n"
				}
			}
		}
	}
	return func(typ string) (bool, bool) {
		if len(cfg) == 0 {
			return false, false
		}
		key := "CONFIG_IP_SET_" + strings.ToUpper(strings.NewReplacer(":", "_", ",", "").Replace(typ))
		v, ok := cfg[key]
		if !ok {
			return false, false
		}
		return v == "y" || v == "m", true
	}
}
