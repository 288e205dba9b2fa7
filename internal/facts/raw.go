package facts

import (
	"cmp"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// RawSuffix ends every raw facts file name; the router name is what precedes it.
const RawSuffix = "_facts.txt"

// reservedTables are the table names the kernel and iproute2 always know.
func reservedTables() map[string]int {
	return map[string]int{"unspec": TableUnspec, "default": TableDefault, "main": TableMain, "local": TableLocal}
}

// titleID finds the numeric table id older collectors put in a section
// title: "IP Routing Table Priority Table (100)".
var titleID = regexp.MustCompile(`\((\d+)\)\s*$`)

// ignoredSections are collected for people, not for the model.
func ignoredSection(name string) bool {
	switch name {
	case "interface_stats", "hostname", "conntrack", "conntrack_info", "conntrack_unavailable",
		"netfilter_modules", "loaded_modules", "iptables_info", "ip6tables_save", "ipset_list":
		return true
	}
	return false
}

// ParseRaw reads one raw facts file (`<router>_facts.txt`) into a router.
// It accepts the current section names (routing_table_main,
// routing_table_<id>, rt_tables) and the older ones (routing_table for
// main, routing_table_<name> with the id only in the title). Only the tables
// that were collected are present: the collector usually skips the local
// table, and nothing here invents it.
func ParseRaw(file string, data []byte) (*Router, []Finding, error) {
	rf, err := ParseSections(file, data)
	if err != nil {
		return nil, nil, err
	}
	name := routerName(file)
	r := &Router{Name: name, File: file, Interfaces: []*Interface{}, Rules: []*Rule{}, Tables: []*Table{}}
	var (
		find = rf.Warnings
		e    errs
	)
	addErr := func(err error) {
		if err == nil {
			return
		}
		if pe, ok := err.(*ParseError); ok {
			e.list = append(e.list, pe.Findings...)
			return
		}
		e.addf(Pos{File: file}, "%v", err)
	}

	// Index sections, refusing duplicates: two answers to one question
	// cannot both be right.
	byName := make(map[string]*Section, len(rf.Sections))
	for _, s := range rf.Sections {
		if prev := byName[s.Name]; prev != nil {
			e.addf(s.Pos, "section %s appears twice (first at line %d)", s.Name, prev.Pos.Line)
			continue
		}
		byName[s.Name] = s
	}
	usable := func(s *Section) bool {
		if s == nil {
			return false
		}
		if s.HasExit && s.ExitCode != 0 {
			find = append(find, warnf(s.Pos, "section %s: command exited with %d; section ignored", s.Name, s.ExitCode))
			return false
		}
		return true
	}

	// Table names: reserved, then rt_tables, then section titles.
	names := reservedTables()
	if s := byName["rt_tables"]; usable(s) {
		for _, l := range s.Body {
			t := strings.TrimSpace(l.Text)
			if i := strings.IndexByte(t, '#'); i >= 0 {
				t = strings.TrimSpace(t[:i])
			}
			if t == "" {
				continue
			}
			var fieldBuf [4]string
			f := appendFields(fieldBuf[:0], t)
			id, perr := strconv.ParseUint(f[0], 0, 32)
			if len(f) != 2 || perr != nil {
				e.addf(Pos{File: file, Line: l.N}, "rt_tables: expected \"ID NAME\", got %s", quoteLine(t))
				continue
			}
			names[f[1]] = int(id)
		}
	}
	type tableSection struct {
		s  *Section
		id int
	}
	var tsecs []tableSection
	for _, s := range rf.Sections {
		if byName[s.Name] != s {
			continue
		}
		suffix, ok := strings.CutPrefix(s.Name, "routing_table")
		if !ok || suffix != "" && suffix[0] != '_' {
			continue
		}
		suffix = strings.TrimPrefix(suffix, "_")
		if !usable(s) {
			continue
		}
		var id int
		switch {
		case suffix == "" || suffix == "main" || suffix == "all":
			// "all" is `ip route show table all`: its lines name their
			// tables except main's.
			id = TableMain
		case isDigits(suffix):
			n, perr := strconv.ParseUint(suffix, 10, 32)
			if perr != nil {
				e.addf(s.Pos, "section %s: bad table id", s.Name)
				continue
			}
			id = int(n)
		default:
			if m := titleID.FindStringSubmatch(s.Title); m != nil {
				n, perr := strconv.ParseUint(m[1], 10, 32)
				if perr != nil {
					e.addf(s.Pos, "section %s: bad table id in title %q", s.Name, s.Title)
					continue
				}
				if known, ok := names[suffix]; ok && known != int(n) {
					e.addf(s.Pos, "section %s: title says table %d but rt_tables says %s is %d", s.Name, n, suffix, known)
					continue
				}
				names[suffix] = int(n)
				id = int(n)
			} else if known, ok := names[suffix]; ok {
				id = known
			} else {
				e.addf(s.Pos, "section %s: unknown table %q (not in rt_tables and no \"(ID)\" in the title)", s.Name, suffix)
				continue
			}
		}
		tsecs = append(tsecs, tableSection{s, id})
	}
	r.TableNames = names

	tables := map[int]*Table{}
	table := func(id int, pos Pos) *Table {
		t := tables[id]
		if t == nil {
			t = &Table{ID: id, Name: tableName(id, names), Routes: []*Route{}, Pos: pos}
			tables[id] = t
		}
		return t
	}
	owner := map[int]*Section{}
	for _, ts := range tsecs {
		if prev := owner[ts.id]; prev != nil {
			e.addf(ts.s.Pos, "section %s: table %d was already collected by section %s (line %d)", ts.s.Name, ts.id, prev.Name, prev.Pos.Line)
			continue
		}
		owner[ts.id] = ts.s
		t := table(ts.id, ts.s.Pos)
		routes, w, perr := ParseIPRoute(file, ts.s.Body, names)
		find = append(find, w...)
		addErr(perr)
		t.Routes = slices.Grow(t.Routes, len(routes)) // most stay in t
		for _, pr := range routes {
			if pr.Table >= 0 && pr.Table != ts.id {
				other := table(pr.Table, ts.s.Pos)
				other.Routes = append(other.Routes, pr.Route)
				continue
			}
			t.Routes = append(t.Routes, pr.Route)
		}
	}
	r.Tables = slices.Grow(r.Tables, len(tables))
	for _, t := range tables {
		r.Tables = append(r.Tables, t)
	}
	slices.SortFunc(r.Tables, func(a, b *Table) int { return cmp.Compare(a.ID, b.ID) })

	hasSave := byName["iptables_save"] != nil
	// Size the sysctl map once rather than let it grow line by line.
	sysctls := 1 // ip_forwarding
	for _, s := range rf.Sections {
		if s.Name == "sysctl" || s.Name == "sysctls" {
			sysctls += len(s.Body)
		}
	}
	for _, s := range rf.Sections {
		if byName[s.Name] != s {
			continue
		}
		switch {
		case strings.HasPrefix(s.Name, "routing_table"), s.Name == "rt_tables":
			// done above
		case s.Name == "policy_rules":
			if usable(s) {
				rules, perr := ParseIPRule(file, s.Body, names)
				addErr(perr)
				r.Rules = append(r.Rules, rules...)
			}
		case s.Name == "interfaces":
			if usable(s) {
				ifs, perr := ParseIPAddr(file, s.Body)
				addErr(perr)
				r.Interfaces = append(r.Interfaces, ifs...)
			}
		case s.Name == "iptables_save":
			if usable(s) {
				t, w, perr := ParseIptablesSave(file, s.FirstLine(), s.BodyText())
				find = append(find, w...)
				addErr(perr)
				r.Iptables = canonIptables(t)
			}
		case s.Name == "ipset_save":
			if usable(s) {
				sets, perr := ParseIpsetSave(file, s.Body)
				addErr(perr)
				r.Ipsets = sets
			}
		case s.Name == "ip_forwarding":
			if usable(s) && len(s.Body) > 0 {
				setSysctl(r, "net.ipv4.ip_forward", strings.TrimSpace(s.Body[0].Text), sysctls)
			}
		case s.Name == "kernel_version":
			if usable(s) && len(s.Body) > 0 {
				r.Kernel = strings.TrimSpace(s.Body[0].Text)
			}
		case s.Name == "sysctl" || s.Name == "sysctls":
			if usable(s) {
				for _, l := range s.Body {
					k, v, ok := strings.Cut(l.Text, "=")
					if !ok {
						if strings.TrimSpace(l.Text) != "" {
							find = append(find, warnf(Pos{File: file, Line: l.N}, "sysctl: expected \"key = value\", got %s", quoteLine(l.Text)))
						}
						continue
					}
					setSysctl(r, strings.TrimSpace(k), strings.TrimSpace(v), sysctls)
				}
			}
		case s.Name == "metadata":
			if usable(s) {
				parseMetadata(r, s)
			}
		case s.Name == "iptables_filter" || s.Name == "iptables_nat" || s.Name == "iptables_mangle" || s.Name == "iptables_raw":
			if !hasSave {
				find = append(find, warnf(s.Pos, "section %s is `iptables -L` output, which is not read; collect iptables_save", s.Name))
			}
		case strings.HasSuffix(s.Name, "_warning") || strings.HasSuffix(s.Name, "_missing"):
			msg := ""
			if len(s.Body) > 0 {
				msg = ": " + strings.TrimSpace(s.Body[0].Text)
			}
			find = append(find, warnf(s.Pos, "section %s%s", s.Name, msg))
		case ignoredSection(s.Name):
		default:
			find = append(find, warnf(s.Pos, "unknown section %s ignored", s.Name))
		}
	}
	if r.Kernel == "" {
		r.Kernel = rf.Header["Kernel"]
	}
	if w, ok := ipv6Note(r); ok {
		find = append(find, w)
	}
	for i := range find {
		find[i].Router = name
	}
	if err := e.err(); err != nil {
		for i := range e.list {
			e.list[i].Router = name
		}
		return nil, find, err
	}
	return r, find, nil
}

// routerName is the file name without "_facts.txt" (or, for a raw file
// named otherwise, without its extension).
func routerName(file string) string {
	base := filepath.Base(file)
	if n, ok := strings.CutSuffix(base, RawSuffix); ok && n != "" {
		return n
	}
	return strings.TrimSuffix(base, filepath.Ext(base))
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// tableName is the name a table id is known by ("" when none): a
// collector-given name wins over the reserved ones only for ids those don't use.
func tableName(id int, names map[string]int) string {
	best := ""
	for n, i := range names {
		if i == id && (best == "" || n < best) {
			best = n
		}
	}
	return best
}

// setSysctl sets one sysctl; size is how many the router may have.
func setSysctl(r *Router, k, v string, size int) {
	if r.Sysctls == nil {
		r.Sysctls = make(map[string]string, size)
	}
	r.Sysctls[k] = v
}

// parseMetadata reads a `metadata` section of "key: value" or "key=value"
// lines (linux, type, location, role).
func parseMetadata(r *Router, s *Section) {
	for _, l := range s.Body {
		k, v, ok := strings.Cut(l.Text, ":")
		if !ok {
			k, v, ok = strings.Cut(l.Text, "=")
		}
		if !ok {
			continue
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		switch k {
		case "linux":
			b := v == "true" || v == "1" || v == "yes"
			r.Metadata.Linux = &b
		case "type":
			r.Metadata.Type = v
		case "location":
			r.Metadata.Location = v
		case "role":
			r.Metadata.Role = v
		}
	}
}

// canonIptables turns empty target option lists into nil: the field is
// omitempty, so only nil survives a normalized-JSON round trip unchanged.
func canonIptables(ts []*IPTable) []*IPTable {
	for _, t := range ts {
		for _, c := range t.Chains {
			for _, r := range c.Rules {
				if r.Target != nil && len(r.Target.Options) == 0 {
					r.Target.Options = nil
				}
				for _, m := range r.Matches {
					for _, o := range m.Options {
						if len(o.Args) == 0 {
							o.Args = nil
						}
					}
				}
			}
		}
	}
	return ts
}

// ipv6Note flags, once per router, that global IPv6 addresses or routes are
// kept in the model but not simulated. Loopback and link-local addresses,
// which every Linux interface has, do not count.
func ipv6Note(r *Router) (Finding, bool) {
	addrs, routes := 0, 0
	var first Pos
	for _, i := range r.Interfaces {
		for _, a := range i.Addrs {
			ad := a.Prefix.Addr()
			if ad.Is6() && !ad.IsLoopback() && !ad.IsLinkLocalUnicast() {
				if addrs == 0 {
					first = a.Pos
				}
				addrs++
			}
		}
	}
	for _, t := range r.Tables {
		for _, rt := range t.Routes {
			if rt.Dst.Addr().Is6() && !rt.Dst.Addr().IsLinkLocalUnicast() && !rt.Dst.Addr().IsMulticast() {
				if addrs == 0 && routes == 0 {
					first = rt.Pos
				}
				routes++
			}
		}
	}
	if addrs+routes == 0 {
		return Finding{}, false
	}
	return warnf(first, "IPv6 is parsed and kept but not simulated: %d global IPv6 addresses, %d IPv6 routes", addrs, routes), true
}
