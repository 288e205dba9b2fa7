package facts

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"
)

// LintOptions tunes Lint.
type LintOptions struct {
	// IpsetTypes says whether the running kernel can create an ipset type;
	// nil skips that check (e.g. when linting facts for another machine).
	IpsetTypes func(typ string) (ok bool, known bool)
}

// Lint checks facts like a compiler: problems noticed while loading plus
// semantic ones (route gateways not on a connected subnet of their device,
// routes on devices the router lacks, one address on two routers, ipset
// types the running kernel cannot create). Findings are sorted by file and line.
func Lint(f *Facts, opts LintOptions) []Finding {
	out := append([]Finding(nil), f.Findings...)
	owners := map[netip.Addr][]string{}
	for _, r := range f.Routers {
		out = append(out, lintRouter(r, opts)...)
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

func lintRouter(r *Router, opts LintOptions) []Finding {
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
	if opts.IpsetTypes != nil {
		for _, s := range r.Ipsets {
			if ok, known := opts.IpsetTypes(s.Type); known && !ok {
				out = append(out, Finding{Pos: s.Pos, Severity: SevWarning, Router: r.Name,
					Message: fmt.Sprintf("ipset %s: type %s cannot be created by the running kernel (labs will skip it; rules using it become refused)", s.Name, s.Type)})
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

// KernelIpsetTypes reads the running kernel's configuration
// (/proc/config.gz) once and answers whether an ipset type can be created.
// When the configuration is unreadable every answer is "unknown".
func KernelIpsetTypes() func(typ string) (ok bool, known bool) {
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
