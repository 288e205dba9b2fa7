package facts

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// Lint checks facts like a compiler: problems noticed while loading plus
// semantic ones (route gateways not on a connected subnet of their device,
// routes on devices the router lacks, one address on two routers). Findings
// are sorted by file and line. What the machine running tsim can build (an
// ipset type its kernel lacks, say) is not a property of the facts: labs
// report it per router at `hosts up`, so the same facts lint the same
// everywhere.
func Lint(f *Facts) []Finding {
	out := append([]Finding(nil), f.Findings...)
	owners := map[netip.Addr][]string{}
	for _, r := range f.Routers {
		out = append(out, lintRouter(r)...)
		for _, i := range r.Interfaces {
			for _, a := range i.Addrs {
				ad := a.Prefix.Addr()
				if ad.IsLoopback() || ad.IsLinkLocalUnicast() {
					continue
				}
				owners[ad] = append(owners[ad], r.Name+" "+i.Name)
				if n := len(owners[ad]); n > 1 && !sameRouter(owners[ad][0], owners[ad][n-1]) {
					out = append(out, Finding{Pos: a.Pos, Severity: SevError, Router: r.Name,
						Message: fmt.Sprintf("address %s on %s is also on %s (duplicate address in one segment)", ad, owners[ad][n-1], owners[ad][0])})
				}
			}
		}
	}
	SortFindings(out)
	return out
}

// SortFindings orders findings by file and line, as a compiler prints them.
func SortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		if fs[i].Pos.File != fs[j].Pos.File {
			return fs[i].Pos.File < fs[j].Pos.File
		}
		return fs[i].Pos.Line < fs[j].Pos.Line
	})
}

func sameRouter(a, b string) bool {
	return strings.SplitN(a, " ", 2)[0] == strings.SplitN(b, " ", 2)[0]
}

func lintRouter(r *Router) []Finding {
	var out []Finding
	connected := map[string][]netip.Prefix{}
	for _, i := range r.Interfaces {
		for _, a := range i.Addrs {
			connected[i.Name] = append(connected[i.Name], a.Prefix.Masked())
			if a.Peer.IsValid() {
				connected[i.Name] = append(connected[i.Name], a.Peer.Masked())
			}
		}
	}
	onDev := func(gw netip.Addr, dev string) bool {
		for _, p := range connected[dev] {
			if p.Contains(gw) {
				return true
			}
		}
		return false
	}
	for _, t := range r.Tables {
		for _, rt := range t.Routes {
			if rt.Dev != "" && r.Interface(rt.Dev) == nil {
				out = append(out, Finding{Pos: rt.Pos, Severity: SevError, Router: r.Name,
					Message: fmt.Sprintf("route %q: device %s does not exist on %s", rt.Text, rt.Dev, r.Name)})
				continue
			}
			check := func(gw netip.Addr, dev string, onlink bool) {
				if !gw.IsValid() || onlink || dev == "" || !gw.Is4() {
					return
				}
				if !onDev(gw, dev) {
					out = append(out, Finding{Pos: rt.Pos, Severity: SevError, Router: r.Name,
						Message: fmt.Sprintf("route %q (table %s): gateway %s is not on a connected subnet of %s (the kernel refuses it: Nexthop has invalid gateway)", rt.Text, tableLabel(t), gw, dev)})
				}
			}
			check(rt.Gateway, rt.Dev, rt.Onlink)
			for _, nh := range rt.Nexthops {
				check(nh.Gateway, nh.Dev, nh.Onlink)
			}
		}
	}
	return out
}

func tableLabel(t *Table) string {
	if t.Name != "" {
		return fmt.Sprintf("%s(%d)", t.Name, t.ID)
	}
	return fmt.Sprint(t.ID)
}
