package hosts

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"sort"
	"strings"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
)

// ifNameMax is IFNAMSIZ-1: the longest interface name Linux accepts.
const ifNameMax = 15

// kernelTunnels are the devices a kernel creates by itself in every
// namespace once the module is loaded; facts list them but no veth is made
// for them unless they carry addresses.
var kernelTunnels = map[string]bool{
	"tunl0": true, "sit0": true, "gre0": true, "gretap0": true, "erspan0": true,
	"ip6tnl0": true, "ip6gre0": true, "ip_vti0": true, "ip6_vti0": true,
}

// plan is everything a lab will create, computed from facts and the
// document before anything touches the kernel.
type plan struct {
	id       string
	fabric   string
	segments []*segment
	routers  []*routerPlan
	hosts    []*hostPlan
}

// segment is one L2 broadcast domain: a bridge in the fabric namespace.
type segment struct {
	key    string // smallest subnet key of the group
	bridge string
	subnet []string
	// lone: one port only (a router interface without a neighbour or a
	// host in the lab). Its fabric end stays on no bridge: a bridge costs
	// the kernel an RCU grace period when the lab is removed (16 ms each
	// here, under the rtnl lock every other lab's build waits on), and a
	// bridge of one port forwards nothing.
	lone bool
}

// markLone marks the segments with a single port, once hosts are placed.
func (p *plan) markLone() {
	ports := map[*segment]int{}
	for _, rp := range p.routers {
		for _, ip := range rp.ifaces {
			if ip.seg != nil {
				ports[ip.seg]++
			}
		}
	}
	for _, hp := range p.hosts {
		if hp.seg != nil {
			ports[hp.seg]++
		}
	}
	for _, s := range p.segments {
		s.lone = ports[s] < 2
	}
}

type routerPlan struct {
	r       *facts.Router
	ns      string
	ifaces  []*ifPlan
	refused []*doc.Refusal // found while planning (bad names, …)
}

type ifPlan struct {
	ifc    *facts.Interface
	seg    *segment // nil: not attached to any bridge
	fabric string   // name of the fabric-side veth end
}

// hostPlan is one endpoint host namespace.
type hostPlan struct {
	name   string
	ns     string
	ip     netip.Addr     // the endpoint address the lab section reports
	addrs  []netip.Prefix // on eth0
	gw     netip.Addr     // default route via
	onlink bool           // gw not inside any eth0 prefix
	router string         // router whose interface it hangs off
	iface  string
	seg    *segment
	fabric string
	// internet: gateway must be resolved from the router's kernel (EXITS_NETWORK).
	internet bool
	dsts     []netip.Addr
	srcIP    netip.Addr // for the kernel query (internet hosts)
	inIface  string
}

func nsName(id, router string) string { return "tsim-" + id + "-" + router }

// vethEligible says whether an interface of the facts becomes a veth.
func vethEligible(ifc *facts.Interface) bool {
	if ifc.Name == "lo" || ifc.Kind == "loopback" {
		return false
	}
	if kernelTunnels[ifc.Name] && len(ifc.Addrs) == 0 {
		return false
	}
	return true
}

// segKeys are the L2 keys of an interface: each connected subnet, or for a
// point-to-point address the unordered pair of both ends.
func segKeys(ifc *facts.Interface) []string {
	var keys []string
	for _, a := range ifc.Addrs {
		if !a.Prefix.Addr().Is4() {
			continue
		}
		if a.Peer.IsValid() {
			x, y := a.Prefix.Addr(), a.Peer.Addr()
			if y.Less(x) {
				x, y = y, x
			}
			keys = append(keys, "p2p:"+x.String()+"-"+y.String())
			continue
		}
		keys = append(keys, a.Prefix.Masked().String())
	}
	return keys
}

// buildPlan computes namespaces, segments and veth names for the routers.
func buildPlan(id string, routers []*facts.Router) (*plan, error) {
	p := &plan{id: id}
	used := map[string]bool{}
	for _, r := range routers {
		rp := &routerPlan{r: r, ns: nsName(id, r.Name)}
		if r.Name == "" || strings.ContainsAny(r.Name, "/\x00 ") {
			return nil, fmt.Errorf("router name %q cannot name a namespace", r.Name)
		}
		used[rp.ns] = true
		p.routers = append(p.routers, rp)
	}
	p.fabric = uniqueName(nsName(id, "fabric"), used)

	// Union-find over interfaces: a multi-subnet interface joins its subnets.
	parent := map[string]string{}
	var find func(string) string
	find = func(k string) string {
		if parent[k] == k {
			return k
		}
		parent[k] = find(parent[k])
		return parent[k]
	}
	union := func(a, b string) {
		ra, rb := find(a), find(b)
		if ra == rb {
			return
		}
		if rb < ra {
			ra, rb = rb, ra
		}
		parent[rb] = ra
	}
	for ri, rp := range p.routers {
		seen := map[string]bool{}
		for _, ifc := range rp.r.Interfaces {
			if !vethEligible(ifc) {
				continue
			}
			pos := ifc.Pos.String()
			switch {
			case len(ifc.Name) > ifNameMax:
				rp.refused = append(rp.refused, &doc.Refusal{What: "interface", Line: pos,
					Error: fmt.Sprintf("interface name %q is longer than %d characters (IFNAMSIZ)", ifc.Name, ifNameMax)})
				continue
			case seen[ifc.Name]:
				rp.refused = append(rp.refused, &doc.Refusal{What: "interface", Line: pos,
					Error: fmt.Sprintf("interface %q appears twice", ifc.Name)})
				continue
			}
			seen[ifc.Name] = true
			ip := &ifPlan{ifc: ifc, fabric: fmt.Sprintf("r%03di%02d", ri, len(rp.ifaces))}
			rp.ifaces = append(rp.ifaces, ip)
			keys := segKeys(ifc)
			for _, k := range keys {
				if _, ok := parent[k]; !ok {
					parent[k] = k
				}
			}
			for _, k := range keys[min(1, len(keys)):] {
				union(keys[0], k)
			}
		}
	}
	groups := map[string]*segment{}
	for k := range parent {
		root := find(k)
		s := groups[root]
		if s == nil {
			s = &segment{key: root}
			groups[root] = s
		}
		s.subnet = append(s.subnet, k)
	}
	bridges := map[string]bool{}
	roots := make([]string, 0, len(groups))
	for r := range groups {
		roots = append(roots, r)
	}
	sort.Strings(roots)
	for _, r := range roots {
		s := groups[r]
		sort.Strings(s.subnet)
		s.bridge = bridgeName(r, bridges)
		p.segments = append(p.segments, s)
	}
	for _, rp := range p.routers {
		for _, ip := range rp.ifaces {
			if keys := segKeys(ip.ifc); len(keys) > 0 {
				ip.seg = groups[find(keys[0])]
			}
		}
	}
	return p, nil
}

// bridgeName is content-addressed (a hash of the segment key), so the same
// subnet gets the same bridge name in every lab of the same facts.
func bridgeName(key string, used map[string]bool) string {
	h := fnv.New32a()
	h.Write([]byte(key))
	v := h.Sum32()
	for {
		n := fmt.Sprintf("br%08x", v)
		if !used[n] {
			used[n] = true
			return n
		}
		v++
	}
}

func uniqueName(n string, used map[string]bool) string {
	for used[n] {
		n += "_"
	}
	used[n] = true
	return n
}

// segmentOf returns the segment of router/iface in the plan.
func (p *plan) ifaceOf(router, iface string) (*routerPlan, *ifPlan) {
	for _, rp := range p.routers {
		if rp.r.Name != router {
			continue
		}
		for _, ip := range rp.ifaces {
			if ip.ifc.Name == iface {
				return rp, ip
			}
		}
		return rp, nil
	}
	return nil, nil
}
