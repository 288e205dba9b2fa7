package facts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// legacyFile is the predecessor's per-router JSON facts file. Only what the
// model needs is declared; values whose type varies between its producers
// are json.RawMessage.
type legacyFile struct {
	Metadata map[string]any `json:"metadata"`
	Routing  struct {
		Tables     json.RawMessage `json:"tables"`
		Rules      json.RawMessage `json:"rules"`
		TableNames map[string]any  `json:"table_names"`
	} `json:"routing"`
	Network struct {
		Interfaces json.RawMessage `json:"interfaces"`
		Forwarding *bool           `json:"ip_forwarding_enabled"`
	} `json:"network"`
	Firewall struct {
		Iptables json.RawMessage `json:"iptables"`
		Ipset    struct {
			Lists json.RawMessage `json:"lists"`
		} `json:"ipset"`
	} `json:"firewall"`
}

// legacySet is one entry of firewall.ipset.lists.
type legacySet struct {
	Type    string   `json:"type"`
	Header  string   `json:"header"`
	Members []string `json:"members"`
}

// notList explains a value that should be a list but is not: the
// predecessor writes {"parsing_error": …} or {"error": …} there when its
// own parsing failed.
func notList(b json.RawMessage) (string, bool) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" || string(b) == `""` || b[0] == '[' {
		return "", false
	}
	var o map[string]any
	if json.Unmarshal(b, &o) == nil {
		for _, k := range []string{"parsing_error", "error"} {
			if v, ok := o[k].(string); ok {
				return v, true
			}
		}
	}
	return "not a list", true
}

// ParseLegacyJSON converts one predecessor JSON facts file (`<router>.json`)
// into a router: routing.tables (a flat list of `ip -j route` objects, with
// an optional "table"), routing.rules, network.interfaces (either the list of
// connected routes, whose dev+prefsrc+dst length give the addresses, or the
// processed `ip addr` dict), firewall ipsets, iptables-save text in
// firewall.iptables.raw_config, and metadata. JSON has no lines, so
// positions name the file only.
func ParseLegacyJSON(file string, data []byte) (*Router, []Finding, error) {
	pos := Pos{File: file}
	var lf legacyFile
	if err := json.Unmarshal(data, &lf); err != nil {
		return nil, nil, posErrorf(pos, "not a predecessor JSON facts file: %v", jsonErr(data, err))
	}
	name := strings.TrimSuffix(filepath.Base(file), ".json")
	r := &Router{Name: name, File: file, Interfaces: []*Interface{}, Rules: []*Rule{}, Tables: []*Table{}}
	var (
		find []Finding
		e    errs
	)
	// Metadata.
	if v, ok := lf.Metadata["linux"].(bool); ok {
		r.Metadata.Linux = &v
	}
	r.Metadata.Type, _ = lf.Metadata["type"].(string)
	r.Metadata.Location, _ = lf.Metadata["location"].(string)
	r.Metadata.Role, _ = lf.Metadata["role"].(string)
	if k, _ := lf.Metadata["kernel_version"].(string); k != "" && !strings.HasPrefix(k, "Unknown") {
		r.Kernel = k
	}
	if lf.Network.Forwarding != nil {
		v := "0"
		if *lf.Network.Forwarding {
			v = "1"
		}
		setSysctl(r, "net.ipv4.ip_forward", v, 1)
	}

	names := reservedTables()
	if msg, ok := lf.Routing.TableNames["error"].(string); ok {
		find = append(find, warnf(pos, "routing.table_names: the source says %q; only reserved table names are known", msg))
	}
	for idS, nv := range lf.Routing.TableNames {
		if idS == "error" || idS == "raw_output" {
			continue
		}
		n, _ := nv.(string)
		id, err := strconv.ParseUint(idS, 10, 32)
		if err != nil || n == "" {
			e.addf(pos, "routing.table_names: bad entry %q: %v", idS, nv)
			continue
		}
		names[n] = int(id)
	}
	r.TableNames = names

	// Routes.
	var routes []map[string]any
	if isJSONArray(lf.Routing.Tables) {
		if err := json.Unmarshal(lf.Routing.Tables, &routes); err != nil {
			e.addf(pos, "routing.tables: %v", err)
		}
	} else if msg, bad := notList(lf.Routing.Tables); bad {
		find = append(find, warnf(pos, "routing.tables: %s; no routes", msg))
	}
	tables := map[int]*Table{}
	for i, o := range routes {
		rt, tid, err := legacyRoute(o, names)
		if err != nil {
			e.addf(pos, "routing.tables[%d]: %v", i, err)
			continue
		}
		if rt == nil {
			find = append(find, warnf(pos, "routing.tables[%d]: destination %v is not a prefix; skipped", i, o["dst"]))
			continue
		}
		rt.Pos = pos
		t := tables[tid]
		if t == nil {
			t = &Table{ID: tid, Name: tableName(tid, names), Routes: []*Route{}, Pos: pos}
			tables[tid] = t
		}
		t.Routes = append(t.Routes, rt)
	}
	for _, t := range tables {
		r.Tables = append(r.Tables, t)
	}
	sort.Slice(r.Tables, func(i, j int) bool { return r.Tables[i].ID < r.Tables[j].ID })

	// Rules.
	var rules []map[string]any
	if isJSONArray(lf.Routing.Rules) {
		if err := json.Unmarshal(lf.Routing.Rules, &rules); err != nil {
			e.addf(pos, "routing.rules: %v", err)
		}
	} else if msg, bad := notList(lf.Routing.Rules); bad {
		find = append(find, warnf(pos, "routing.rules: %s; no rules", msg))
	}
	for i, o := range rules {
		rule, err := legacyRule(o, names)
		if err != nil {
			e.addf(pos, "routing.rules[%d]: %v", i, err)
			continue
		}
		rule.Pos = pos
		r.Rules = append(r.Rules, rule)
	}

	// Interfaces.
	ifs, err := legacyInterfaces(lf.Network.Interfaces, pos)
	if err != nil {
		e.addf(pos, "network.interfaces: %v", err)
	}
	r.Interfaces = append(r.Interfaces, ifs...)

	// Firewall.
	var lists []map[string]legacySet
	if isJSONArray(lf.Firewall.Ipset.Lists) {
		if err := json.Unmarshal(lf.Firewall.Ipset.Lists, &lists); err != nil {
			e.addf(pos, "firewall.ipset.lists: %v", err)
		}
	} else if msg, bad := notList(lf.Firewall.Ipset.Lists); bad {
		find = append(find, warnf(pos, "firewall.ipset.lists: %s; no ipsets", msg))
	}
	var ipt map[string]json.RawMessage
	if b := bytes.TrimSpace(lf.Firewall.Iptables); len(b) > 0 && b[0] == '{' {
		if err := json.Unmarshal(b, &ipt); err != nil {
			e.addf(pos, "firewall.iptables: %v", err)
		}
	}
	for _, l := range lists {
		setNames := make([]string, 0, len(l))
		for n := range l {
			setNames = append(setNames, n)
		}
		sort.Strings(setNames)
		for _, n := range setNames {
			s := l[n]
			set := &Ipset{Name: n, Type: s.Type, Options: strings.Fields(s.Header), Members: []*Member{},
				Text: strings.TrimSpace("create " + n + " " + s.Type + " " + s.Header), Pos: pos}
			if len(set.Options) == 0 {
				set.Options = nil
			}
			for _, m := range s.Members {
				f := strings.Fields(m)
				if len(f) == 0 {
					continue
				}
				mem := &Member{Value: f[0], Text: "add " + n + " " + m, Pos: pos}
				for _, o := range f[1:] {
					if o == "nomatch" {
						mem.Nomatch = true
					} else {
						mem.Options = append(mem.Options, o)
					}
				}
				set.Members = append(set.Members, mem)
			}
			r.Ipsets = append(r.Ipsets, set)
		}
	}
	if raw, ok := ipt["raw_config"]; ok {
		var text string
		if json.Unmarshal(raw, &text) == nil && strings.Contains("\n"+text, "\n*") {
			t, w, perr := ParseIptablesSave(file, 0, text)
			find = append(find, w...)
			if perr != nil {
				e.addf(pos, "firewall.iptables.raw_config: %v", perr)
			}
			r.Iptables = canonIptables(t)
		}
	}
	if r.Iptables == nil {
		n := 0
		for _, tn := range []string{"filter", "nat", "mangle", "raw"} {
			var chains []map[string][]json.RawMessage
			if json.Unmarshal(ipt[tn], &chains) == nil {
				for _, c := range chains {
					for _, rs := range c {
						n += len(rs)
					}
				}
			}
		}
		if n > 0 {
			find = append(find, warnf(pos, "firewall.iptables holds %d rules in the predecessor's structured form without raw_config; they are not read", n))
		}
	}
	if w, ok := ipv6Note(r); ok {
		find = append(find, w)
	}
	for i := range find {
		find[i].Router = name
	}
	if err := e.err(); err != nil {
		return nil, find, err
	}
	return r, find, nil
}

func isJSONArray(b json.RawMessage) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '['
}

// jsonErr adds a line number to a JSON syntax error.
func jsonErr(data []byte, err error) error {
	var off int64
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	default:
		return err
	}
	// Offset counts the bytes read, the offending one included.
	end := min(max(int(off)-1, 0), len(data))
	return fmt.Errorf("line %d: %w", 1+bytes.Count(data[:end], []byte("\n")), err)
}

func str(o map[string]any, k string) string {
	switch v := o[k].(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

// legacyRoute converts one `ip -j route`-like object. It returns nil (no
// error) for the destinations the predecessor itself skipped ("blackhole"
// as dst, from its text parser).
func legacyRoute(o map[string]any, names map[string]int) (*Route, int, error) {
	rt := &Route{Type: RouteUnicast}
	if t := str(o, "type"); t != "" {
		if !isRouteType(t) {
			return nil, 0, fmt.Errorf("unknown route type %q", t)
		}
		rt.Type = t
	}
	dst := str(o, "dst")
	switch {
	case dst == "default" || dst == "":
		rt.Dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	default:
		p, err := parsePrefixOrAddr(dst)
		if err != nil {
			return nil, 0, nil
		}
		rt.Dst = p.Masked()
	}
	if g := str(o, "gateway"); g != "" {
		a, err := netip.ParseAddr(g)
		if err != nil {
			return nil, 0, fmt.Errorf("bad gateway %q", g)
		}
		rt.Gateway = a
	}
	if s := str(o, "prefsrc"); s != "" {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, 0, fmt.Errorf("bad prefsrc %q", s)
		}
		rt.Src = a
	}
	rt.Dev = str(o, "dev")
	rt.Scope = str(o, "scope")
	rt.Proto = str(o, "protocol")
	if rt.Proto == "" {
		rt.Proto = str(o, "proto")
	}
	if m := str(o, "metric"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil {
			return nil, 0, fmt.Errorf("bad metric %q", m)
		}
		rt.Metric = n
	}
	if fl, ok := o["flags"].([]any); ok {
		for _, x := range fl {
			if s, _ := x.(string); s == "onlink" {
				rt.Onlink = true
			} else if s != "" {
				rt.Flags = append(rt.Flags, s)
			}
		}
	}
	if nhs, ok := o["nexthops"].([]any); ok {
		for _, x := range nhs {
			m, _ := x.(map[string]any)
			nh := &Nexthop{Dev: str(m, "dev")}
			if g := str(m, "gateway"); g != "" {
				a, err := netip.ParseAddr(g)
				if err != nil {
					return nil, 0, fmt.Errorf("bad nexthop gateway %q", g)
				}
				nh.Gateway = a
			}
			if w := str(m, "weight"); w != "" {
				nh.Weight, _ = strconv.Atoi(w)
			}
			rt.Nexthops = append(rt.Nexthops, nh)
		}
	}
	rt.Text = legacyRouteText(rt)
	tid := TableMain
	if t := str(o, "table"); t != "" {
		id, ok := resolveTable(t, names)
		if !ok {
			return nil, 0, fmt.Errorf("unknown routing table %q", t)
		}
		tid = id
	}
	return rt, tid, nil
}

// legacyRouteText renders a converted route as `ip route` would print it,
// so messages can quote it like a raw line.
func legacyRouteText(rt *Route) string {
	var b strings.Builder
	if rt.Type != RouteUnicast {
		b.WriteString(rt.Type + " ")
	}
	if rt.Dst.Bits() == 0 {
		b.WriteString("default")
	} else {
		b.WriteString(rt.Dst.String())
	}
	if rt.Gateway.IsValid() {
		b.WriteString(" via " + rt.Gateway.String())
	}
	if rt.Dev != "" {
		b.WriteString(" dev " + rt.Dev)
	}
	if rt.Proto != "" {
		b.WriteString(" proto " + rt.Proto)
	}
	if rt.Scope != "" {
		b.WriteString(" scope " + rt.Scope)
	}
	if rt.Src.IsValid() {
		b.WriteString(" src " + rt.Src.String())
	}
	if rt.Metric != 0 {
		b.WriteString(" metric " + strconv.Itoa(rt.Metric))
	}
	if rt.Onlink {
		b.WriteString(" onlink")
	}
	return b.String()
}

// legacyRule converts a rule object: the wrapper's {priority, src, dst,
// table, iif, oif, fwmark} and native `ip -j rule` keys.
func legacyRule(o map[string]any, names map[string]int) (*Rule, error) {
	r := &Rule{SuppressPrefixLen: -1, Action: ActionLookup}
	p := str(o, "priority")
	n, err := strconv.ParseUint(p, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("bad priority %q", p)
	}
	r.Priority = int(n)
	text := []string{p + ":"}
	if b, _ := o["not"].(bool); b {
		r.Not = true
		text = append(text, "not")
	}
	for _, k := range []string{"src", "dst"} {
		v := str(o, k)
		kw := map[string]string{"src": "from", "dst": "to"}[k]
		if v == "" || v == "all" {
			if k == "src" {
				text = append(text, "from all")
			}
			continue
		}
		if l := str(o, k+"len"); l != "" && !strings.Contains(v, "/") {
			v += "/" + l
		}
		pr, err := parsePrefixOrAddr(v)
		if err != nil {
			return nil, fmt.Errorf("bad %s %q", k, v)
		}
		if k == "src" {
			r.From = pr.Masked()
		} else {
			r.To = pr.Masked()
		}
		text = append(text, kw+" "+v)
	}
	if v := str(o, "iif"); v != "" {
		r.IIF = v
		text = append(text, "iif "+v)
	}
	if v := str(o, "oif"); v != "" {
		r.OIF = v
		text = append(text, "oif "+v)
	}
	if v := str(o, "fwmark"); v != "" {
		m, err := strconv.ParseUint(v, 0, 32)
		if err != nil {
			return nil, fmt.Errorf("bad fwmark %q", v)
		}
		r.HasFwmark, r.Fwmark, r.FwmarkMask = true, uint32(m), 0xffffffff
		if mk := str(o, "fwmask"); mk != "" {
			mm, err := strconv.ParseUint(mk, 0, 32)
			if err != nil {
				return nil, fmt.Errorf("bad fwmask %q", mk)
			}
			r.FwmarkMask = uint32(mm)
		}
		text = append(text, "fwmark "+v)
	}
	if v := str(o, "tos"); v != "" {
		t, err := strconv.ParseUint(v, 0, 8)
		if err != nil {
			return nil, fmt.Errorf("bad tos %q", v)
		}
		r.HasTOS, r.TOS = true, uint8(t)
		text = append(text, "tos "+v)
	}
	if v := str(o, "ipproto"); v != "" {
		pn, ok := ParseIPProto(v)
		if !ok {
			return nil, fmt.Errorf("unknown ipproto %q", v)
		}
		r.IPProto = pn
		text = append(text, "ipproto "+v)
	}
	for _, k := range []string{"sport", "dport"} {
		v := str(o, k)
		if v == "" {
			if lo, hi := str(o, k+"_start"), str(o, k+"_end"); lo != "" && hi != "" {
				v = lo + "-" + hi
			}
		}
		if v == "" {
			continue
		}
		pr, err := parsePortRange(v)
		if err != nil {
			return nil, fmt.Errorf("bad %s %q", k, v)
		}
		if k == "sport" {
			r.SPort = pr
		} else {
			r.DPort = pr
		}
		text = append(text, k+" "+v)
	}
	if a := str(o, "action"); a != "" && a != "unicast" && a != ActionLookup {
		switch a {
		case ActionGoto, ActionNop, ActionBlackhole, ActionUnreachable, ActionProhibit:
			r.Action = a
		default:
			return nil, fmt.Errorf("unknown action %q", a)
		}
	}
	if r.Action == ActionGoto {
		g := str(o, "goto")
		gn, err := strconv.Atoi(g)
		if err != nil {
			return nil, fmt.Errorf("bad goto %q", g)
		}
		r.Goto = gn
		text = append(text, "goto "+g)
	} else if r.Action == ActionLookup {
		t := str(o, "table")
		if t == "" {
			return nil, fmt.Errorf("rule without table")
		}
		id, ok := resolveTable(t, names)
		if !ok {
			return nil, fmt.Errorf("unknown routing table %q", t)
		}
		r.Table, r.TableName = id, t
		text = append(text, "lookup "+t)
	} else {
		text = append(text, r.Action)
	}
	r.Text = strings.Join(text, " ")
	return r, nil
}

// legacyInterfaces reads network.interfaces in either of its shapes.
func legacyInterfaces(raw json.RawMessage, pos Pos) ([]*Interface, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var out []*Interface
	byName := map[string]*Interface{}
	get := func(n string) *Interface {
		if i := byName[n]; i != nil {
			return i
		}
		// A connected route implies the link was up; the dict shape overrides this.
		i := &Interface{Name: n, State: "UP", Pos: pos}
		byName[n] = i
		out = append(out, i)
		return i
	}
	if raw[0] == '[' {
		// The list of connected routes: dev + prefsrc + the dst length.
		var list []map[string]any
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, err
		}
		for i, o := range list {
			dev, src := str(o, "dev"), str(o, "prefsrc")
			if dev == "" || src == "" {
				continue
			}
			a, err := netip.ParseAddr(src)
			if err != nil {
				return out, fmt.Errorf("[%d]: bad prefsrc %q", i, src)
			}
			bits := a.BitLen()
			if d := str(o, "dst"); d != "" && d != "default" {
				p, err := parsePrefixOrAddr(d)
				if err != nil {
					return out, fmt.Errorf("[%d]: bad dst %q", i, d)
				}
				bits = p.Bits()
			}
			ifc := get(dev)
			// The entry's scope is the route's ("link"), not the address's: leave it unset.
			ifc.Addrs = append(ifc.Addrs, &IfAddr{Prefix: netip.PrefixFrom(a, bits), Pos: pos})
		}
		return out, nil
	}
	var shaped struct {
		Parsed map[string]struct {
			Index     int      `json:"index"`
			Flags     []string `json:"flags"`
			MTU       int      `json:"mtu"`
			State     string   `json:"state"`
			LinkType  string   `json:"link_type"`
			MAC       string   `json:"mac_address"`
			Addresses []struct {
				Family    string `json:"family"`
				Address   string `json:"address"`
				PrefixLen int    `json:"prefixlen"`
				Scope     string `json:"scope"`
				Secondary bool   `json:"secondary"`
			} `json:"addresses"`
		} `json:"parsed"`
	}
	if err := json.Unmarshal(raw, &shaped); err != nil {
		return nil, err
	}
	ifNames := make([]string, 0, len(shaped.Parsed))
	for n := range shaped.Parsed {
		ifNames = append(ifNames, n)
	}
	sort.Slice(ifNames, func(i, j int) bool {
		a, b := shaped.Parsed[ifNames[i]], shaped.Parsed[ifNames[j]]
		if a.Index != b.Index {
			return a.Index < b.Index
		}
		return ifNames[i] < ifNames[j]
	})
	for _, n := range ifNames {
		p := shaped.Parsed[n]
		ifc := get(n)
		ifc.Index, ifc.Flags, ifc.MTU, ifc.State, ifc.Kind, ifc.MAC = p.Index, p.Flags, p.MTU, p.State, p.LinkType, p.MAC
		for _, a := range p.Addresses {
			ad, err := netip.ParseAddr(a.Address)
			if err != nil {
				return out, fmt.Errorf("%s: bad address %q", n, a.Address)
			}
			pr := netip.PrefixFrom(ad, a.PrefixLen)
			if !pr.IsValid() {
				return out, fmt.Errorf("%s: bad prefix length %d", n, a.PrefixLen)
			}
			ifc.Addrs = append(ifc.Addrs, &IfAddr{Prefix: pr, Scope: a.Scope, Secondary: a.Secondary, Pos: pos})
		}
	}
	return out, nil
}
