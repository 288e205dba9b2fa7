// Package facts owns router facts: reading every accepted input format
// (raw section files, the predecessor's JSON directories, tsim's normalized
// JSON, the built-in example), the normalized model they become, and the
// lint that checks them. It knows nothing of the CLI, of labs or of tracing.
package facts

import (
	"net/netip"
	"strconv"
)

// Facts is one normalized facts set: every router of a network.
type Facts struct {
	// Source says where the facts came from: "builtin:example" or a path.
	Source string `json:"source"`
	// Digest is "sha256:<hex>" over the input bytes, so later pipeline
	// stages can refuse facts that changed under them.
	Digest string `json:"digest"`
	// Format is the input format: "raw", "json-legacy", "normalized", "builtin".
	Format  string    `json:"format"`
	Routers []*Router `json:"routers"` // sorted by name
	// Findings are the problems noticed while loading (warnings and
	// errors that did not stop loading). Lint adds more.
	Findings []Finding `json:"findings,omitempty"`
}

// Pos is a place in an input file, for file:line messages.
type Pos struct {
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
}

func (p Pos) String() string {
	if p.File == "" {
		return "<facts>"
	}
	if p.Line == 0 {
		return p.File
	}
	return p.File + ":" + strconv.Itoa(p.Line)
}

// Severity of a finding.
type Severity string

const (
	SevError   Severity = "error"
	SevWarning Severity = "warning"
)

// Finding is one lint or load diagnostic.
type Finding struct {
	Pos      Pos      `json:"pos"`
	Severity Severity `json:"severity"`
	Router   string   `json:"router,omitempty"`
	Message  string   `json:"message"`
}

func (f Finding) String() string {
	return f.Pos.String() + ": " + string(f.Severity) + ": " + f.Message
}

// Router is everything known about one router.
type Router struct {
	Name       string       `json:"name"`
	File       string       `json:"file,omitempty"` // the file it was read from
	Metadata   Metadata     `json:"metadata"`
	Interfaces []*Interface `json:"interfaces"`
	Rules      []*Rule      `json:"rules"`  // policy rules in priority order (as printed)
	Tables     []*Table     `json:"tables"` // routing tables sorted by id; main=254, local=255, default=253
	// TableNames maps rt_tables names to ids as known for this router
	// (rt_tables section, section titles, the kernel's reserved names).
	TableNames map[string]int    `json:"table_names,omitempty"`
	Iptables   []*IPTable        `json:"iptables,omitempty"` // filter, nat, mangle, raw, security in file order
	Ipsets     []*Ipset          `json:"ipsets,omitempty"`
	Sysctls    map[string]string `json:"sysctls,omitempty"` // e.g. "net.ipv4.ip_forward": "1"
	Kernel     string            `json:"kernel,omitempty"`
}

// Metadata is what the facts say about the router's role.
type Metadata struct {
	Linux    *bool  `json:"linux,omitempty"`
	Type     string `json:"type,omitempty"` // gateway | core | access | …
	Location string `json:"location,omitempty"`
	Role     string `json:"role,omitempty"`
}

// Interface is one link of a router as `ip addr show` prints it.
type Interface struct {
	Name  string    `json:"name"`
	Index int       `json:"index,omitempty"`
	Kind  string    `json:"kind,omitempty"` // link type: ether, loopback, none (tunnels), …
	Flags []string  `json:"flags,omitempty"`
	State string    `json:"state,omitempty"` // UP, DOWN, UNKNOWN
	MTU   int       `json:"mtu,omitempty"`
	MAC   string    `json:"mac,omitempty"`
	Addrs []*IfAddr `json:"addrs,omitempty"`
	Pos   Pos       `json:"pos"`
}

// Up reports whether the interface is administratively up.
func (i *Interface) Up() bool {
	for _, f := range i.Flags {
		if f == "UP" {
			return true
		}
	}
	return i.State == "UP" || i.State == "UNKNOWN" && len(i.Flags) == 0
}

// IfAddr is an address assigned to an interface: the address and the
// prefix length of its connected subnet.
type IfAddr struct {
	Prefix netip.Prefix `json:"prefix"` // address with prefix length, not masked: 10.1.1.1/24
	Peer   netip.Prefix `json:"peer,omitempty"`
	Scope  string       `json:"scope,omitempty"`
	// Secondary marks an address ip prints as "secondary" (not the first of its subnet).
	Secondary bool `json:"secondary,omitempty"`
	Pos       Pos  `json:"pos"`
}

// PortRange is an inclusive port range; the zero value means "any".
type PortRange struct {
	Lo uint16 `json:"lo"`
	Hi uint16 `json:"hi"`
}

// Any reports whether the range is unset.
func (p PortRange) Any() bool { return p.Lo == 0 && p.Hi == 0 }

// Contains reports whether port is in the range (an unset range contains all).
func (p PortRange) Contains(port uint16) bool {
	return p.Any() || port >= p.Lo && port <= p.Hi
}

// Rule actions as the kernel names them.
const (
	ActionLookup      = "lookup"
	ActionGoto        = "goto"
	ActionNop         = "nop"
	ActionBlackhole   = "blackhole"
	ActionUnreachable = "unreachable"
	ActionProhibit    = "prohibit"
)

// Rule is one policy routing rule (`ip rule show`).
type Rule struct {
	Priority int  `json:"priority"`
	Not      bool `json:"not,omitempty"`
	// From and To are invalid (zero) for "all".
	From       netip.Prefix `json:"from,omitzero"`
	To         netip.Prefix `json:"to,omitzero"`
	IIF        string       `json:"iif,omitempty"`
	OIF        string       `json:"oif,omitempty"`
	HasFwmark  bool         `json:"has_fwmark,omitempty"`
	Fwmark     uint32       `json:"fwmark,omitempty"`
	FwmarkMask uint32       `json:"fwmask,omitempty"` // 0xffffffff when no mask was printed
	HasTOS     bool         `json:"has_tos,omitempty"`
	TOS        uint8        `json:"tos,omitempty"`     // tos or dsfield value as printed
	IPProto    int          `json:"ipproto,omitempty"` // 0 = any
	SPort      PortRange    `json:"sport,omitzero"`
	DPort      PortRange    `json:"dport,omitzero"`
	UIDRange   string       `json:"uidrange,omitempty"`
	L3MDev     bool         `json:"l3mdev,omitempty"`
	// Action is one of the Action* constants.
	Action    string `json:"action"`
	Table     int    `json:"table,omitempty"` // resolved table id for lookup
	TableName string `json:"table_name,omitempty"`
	Goto      int    `json:"goto,omitempty"` // target priority for goto
	// SuppressPrefixLen is -1 when absent.
	SuppressPrefixLen int    `json:"suppress_prefixlength"`
	SuppressIfGroup   string `json:"suppress_ifgroup,omitempty"`
	Realms            string `json:"realms,omitempty"`   // as printed, "A" or "A/B"
	Protocol          string `json:"protocol,omitempty"` // who installed the rule (proto …)
	Text              string `json:"text"`               // the original line
	Pos               Pos    `json:"pos"`
}

// Reserved routing table ids.
const (
	TableUnspec  = 0
	TableDefault = 253
	TableMain    = 254
	TableLocal   = 255
)

// Table is one routing table.
type Table struct {
	ID     int      `json:"id"`
	Name   string   `json:"name,omitempty"`
	Routes []*Route `json:"routes"`
	Pos    Pos      `json:"pos"` // the section it came from
}

// Route types as `ip route` prints them.
const (
	RouteUnicast     = "unicast"
	RouteLocal       = "local"
	RouteBroadcast   = "broadcast"
	RouteMulticast   = "multicast"
	RouteAnycast     = "anycast"
	RouteBlackhole   = "blackhole"
	RouteUnreachable = "unreachable"
	RouteProhibit    = "prohibit"
	RouteThrow       = "throw"
	RouteNAT         = "nat"
)

// Route is one route of a table.
type Route struct {
	Type     string       `json:"type"`
	Dst      netip.Prefix `json:"dst"` // 0.0.0.0/0 for default
	Gateway  netip.Addr   `json:"gateway,omitzero"`
	Dev      string       `json:"dev,omitempty"`
	Metric   int          `json:"metric,omitempty"`
	Scope    string       `json:"scope,omitempty"`
	Proto    string       `json:"proto,omitempty"`
	Src      netip.Addr   `json:"src,omitzero"`
	Onlink   bool         `json:"onlink,omitempty"`
	TOS      uint8        `json:"tos,omitempty"`
	MTU      int          `json:"mtu,omitempty"`
	Nexthops []*Nexthop   `json:"nexthops,omitempty"` // multipath
	Flags    []string     `json:"flags,omitempty"`    // linkdown, dead, pervasive, offload, …
	Extra    []string     `json:"extra,omitempty"`    // keywords kept but not modelled
	Text     string       `json:"text"`
	Pos      Pos          `json:"pos"`
}

// Nexthop is one path of a multipath route.
type Nexthop struct {
	Gateway netip.Addr `json:"gateway,omitzero"`
	Dev     string     `json:"dev,omitempty"`
	Weight  int        `json:"weight,omitempty"`
	Onlink  bool       `json:"onlink,omitempty"`
	Flags   []string   `json:"flags,omitempty"` // linkdown, dead, …
}

// IPTable is one netfilter table from iptables-save.
type IPTable struct {
	Name   string   `json:"name"` // filter, nat, mangle, raw, security
	Chains []*Chain `json:"chains"`
	Pos    Pos      `json:"pos"`
}

// Chain returns the named chain or nil.
func (t *IPTable) Chain(name string) *Chain {
	for _, c := range t.Chains {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Chain is a built-in or user chain.
type Chain struct {
	Name string `json:"name"`
	// Policy is ACCEPT/DROP for built-in chains, "" for user chains.
	Policy  string     `json:"policy,omitempty"`
	Packets uint64     `json:"packets,omitempty"`
	Bytes   uint64     `json:"bytes,omitempty"`
	Rules   []*IptRule `json:"rules"`
	Pos     Pos        `json:"pos"`
}

// Builtin reports whether the chain is a built-in chain (has a policy).
func (c *Chain) Builtin() bool { return c.Policy != "" }

// IptRule is one `-A` line parsed into matches and a target.
type IptRule struct {
	Chain   string   `json:"chain"`
	Index   int      `json:"index"` // 1-based position in its chain
	Packets uint64   `json:"packets,omitempty"`
	Bytes   uint64   `json:"bytes,omitempty"`
	Matches []*Match `json:"matches"`
	Target  *Target  `json:"target,omitempty"` // nil: no target (counting rule)
	Text    string   `json:"text"`             // the original line, without any [p:b] prefix
	Pos     Pos      `json:"pos"`
}

// Match is one match: the built-in options (-s, -d, -i, -o, -p, -f) have
// Module "" and one option each; "-m NAME opts…" has Module NAME. A
// protocol's implicit match (e.g. "-p tcp --dport 22" without -m tcp) is
// recorded with Module set to the protocol name.
type Match struct {
	Module  string    `json:"module,omitempty"`
	Options []*Option `json:"options"`
}

// Option is one option with its arguments; Name is the long name without
// dashes ("source", "destination", "in-interface", "out-interface",
// "protocol", "fragment" for built-ins; "dport", "ctstate", "match-set", … for modules).
type Option struct {
	Name string   `json:"name"`
	Neg  bool     `json:"neg,omitempty"`
	Args []string `json:"args,omitempty"`
}

// Target is the rule's jump (-j) or goto (-g) with its options.
type Target struct {
	Name    string    `json:"name"`
	Goto    bool      `json:"goto,omitempty"`
	Options []*Option `json:"options,omitempty"`
}

// Ipset is one set from `ipset save`.
type Ipset struct {
	Name    string    `json:"name"`
	Type    string    `json:"type"`              // hash:ip, hash:net, bitmap:port, …
	Options []string  `json:"options,omitempty"` // create options as tokens: family inet hashsize 1024 …
	Members []*Member `json:"members"`
	Text    string    `json:"text"` // the create line
	Pos     Pos       `json:"pos"`
}

// Member is one `add` line of a set.
type Member struct {
	Value   string   `json:"value"` // "10.1.1.0/24", "10.1.1.1,tcp:80", …
	Nomatch bool     `json:"nomatch,omitempty"`
	Options []string `json:"options,omitempty"` // other tokens after the value (timeout N, comment "x", …)
	Text    string   `json:"text"`
	Pos     Pos      `json:"pos"`
}

// Router returns the named router or nil.
func (f *Facts) Router(name string) *Router {
	for _, r := range f.Routers {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// Table returns the table with id or nil.
func (r *Router) Table(id int) *Table {
	for _, t := range r.Tables {
		if t.ID == id {
			return t
		}
	}
	return nil
}

// Interface returns the named interface or nil.
func (r *Router) Interface(name string) *Interface {
	for _, i := range r.Interfaces {
		if i.Name == name {
			return i
		}
	}
	return nil
}

// IPTable returns the named netfilter table or nil.
func (r *Router) IPTable(name string) *IPTable {
	for _, t := range r.Iptables {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Ipset returns the named set or nil.
func (r *Router) Ipset(name string) *Ipset {
	for _, s := range r.Ipsets {
		if s.Name == name {
			return s
		}
	}
	return nil
}
