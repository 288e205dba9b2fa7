// Package doc owns the JSON document that flows between tsim's stages
// (DESIGN §3.2, §14): its types, reading it from stdin (with one-line errors
// for garbage), and writing it. Each stage fills its own section and passes
// the others through untouched. It does not compute anything.
package doc

// Schema is the current document schema version.
const Schema = "tsim/v1"

// Document is the pipeline document.
type Document struct {
	Schema string         `json:"schema"`
	Facts  *FactsRef      `json:"facts,omitempty"`
	Flows  []*Flow        `json:"flows,omitempty"`
	Trace  []*Trace       `json:"trace,omitempty"`
	Lab    *Lab           `json:"lab,omitempty"`
	Reach  []*Reach       `json:"reach,omitempty"`
	Report *Report        `json:"report,omitempty"`
	Merged *Merged        `json:"merged,omitempty"`
	Errors []*Error       `json:"errors,omitempty"`
	Extra  map[string]any `json:"-"` // unknown top-level sections, passed through
}

// FactsRef references the facts a document was made from.
type FactsRef struct {
	Source  string `json:"source"`
	Digest  string `json:"digest"`
	Routers int    `json:"routers"`
}

// Flow is one probe-able flow: one service between two addresses.
type Flow struct {
	ID    string `json:"id"`
	Src   string `json:"src"`
	Dst   string `json:"dst"`
	Proto string `json:"proto"` // tcp | udp | icmp
	SPort int    `json:"sport,omitempty"`
	DPort int    `json:"dport,omitempty"`
	// Service is the SPEC token this flow came from (e.g. "ssh", "443/tcp").
	Service string `json:"service,omitempty"`
	// Expect is allow|deny when a flows file says what should happen.
	Expect string `json:"expect,omitempty"`
	// Ingress is ROUTER:IFACE for a source outside the network.
	Ingress string `json:"ingress,omitempty"`
	// Line is the flows-file line the flow came from (0: not from a file);
	// `run --flows` makes one document and report per line.
	Line int `json:"line,omitempty"`
}

// Dispositions of a trace (Batfish vocabulary).
const (
	Delivered     = "DELIVERED"
	ExitsNetwork  = "EXITS_NETWORK"
	Denied        = "DENIED"
	NoRoute       = "NO_ROUTE"
	NullRouted    = "NULL_ROUTED"
	Loop          = "LOOP"
	UnknownSource = "UNKNOWN_SOURCE"
	Unknown       = "UNKNOWN"
)

// Directions of a connection.
const (
	Request = "request"
	Reply   = "reply"
)

// Trace is the simulation result of one flow: a connection, the request
// and (for tcp, udp and icmp echo) its reply, down every ECMP branch.
//
// Disposition, Reason, Direction and DeniedBy are the connection's: positive
// only when every branch delivers the request and brings the reply back.
// Hops and ReplyHops are the representative branch's: the first branch
// whose disposition is the flow's (branch 1 when all agree).
type Trace struct {
	Flow        string `json:"flow"`
	Disposition string `json:"disposition"`
	Reason      string `json:"reason,omitempty"` // one line: why (UNKNOWN rule, hint, …)
	// Direction is where a negative disposition was decided: request or
	// reply ("" when positive or when nothing was sent).
	Direction string `json:"direction,omitempty"`
	Hops      []*Hop `json:"hops"`
	// ReplyHops is the reply's path, from the destination back to the
	// source; absent when the request did not arrive.
	ReplyHops []*Hop   `json:"reply_hops,omitempty"`
	DeniedBy  *RuleRef `json:"denied_by,omitempty"`
	// Branches lists every ECMP branch when multipath routes gave more
	// than one path (absent otherwise); Branch is the 1-based number of
	// the representative one.
	Branches []*Branch `json:"branches,omitempty"`
	Branch   int       `json:"branch,omitempty"`
	// KernelBranch is the branch the kernel's multipath hash takes with
	// the routers' hash settings and seeds (0: not computable, e.g. a
	// random seed).
	KernelBranch int      `json:"kernel_branch,omitempty"`
	Alternatives []string `json:"alternatives,omitempty"` // choices the model made (a subnet shared by several routers)
	// Notes lists assumptions, e.g. kernel defaults used for sysctls the
	// facts lack.
	Notes []string `json:"notes,omitempty"`
}

// Branch is one ECMP path of a flow: one choice of nexthop at every
// multipath route on the request and reply paths.
type Branch struct {
	Branch int `json:"branch"` // 1-based
	// Choices names the nexthop taken at each multipath route, in path
	// order: "request dc-gw: nexthop 2 of 2 via 10.3.0.3 dev eth2".
	Choices     []string `json:"choices"`
	Disposition string   `json:"disposition"`
	Reason      string   `json:"reason,omitempty"`
	Direction   string   `json:"direction,omitempty"`
	Hops        []*Hop   `json:"hops"`
	ReplyHops   []*Hop   `json:"reply_hops,omitempty"`
	DeniedBy    *RuleRef `json:"denied_by,omitempty"`
	// Kernel: the kernel's hash takes this branch (see Trace.KernelBranch).
	Kernel bool `json:"kernel,omitempty"`
}

// Hop kinds.
const (
	HopRouter   = "router"
	HopHost     = "host"
	HopInternet = "internet"
)

// Hop is one node on a traced path.
type Hop struct {
	Node  string  `json:"node"`
	Kind  string  `json:"kind"`
	IP    string  `json:"ip"`
	In    string  `json:"in"`
	Out   string  `json:"out"`
	Steps []*Step `json:"steps"`
}

// Step kinds.
const (
	StepPolicy = "policy"
	StepRoute  = "route"
	StepFilter = "filter"
	StepNAT    = "nat"
	StepMangle = "mangle"
	StepLocal  = "local"
	// StepConntrack is the connection state a packet has on a router
	// (ESTABLISHED for a reply of a connection the router saw, NEW or
	// INVALID otherwise), with the kernel's reason.
	StepConntrack = "conntrack"
)

// Step explains one decision on a hop.
type Step struct {
	Kind string `json:"kind"`
	// Policy: the rule that selected the table.
	Priority int    `json:"priority,omitempty"`
	Table    string `json:"table,omitempty"` // routing table name/id, or netfilter table
	Chain    string `json:"chain,omitempty"`
	Index    int    `json:"index,omitempty"`  // 1-based rule index, 0 = policy
	Text     string `json:"text,omitempty"`   // original rule / route text
	Action   string `json:"action,omitempty"` // ACCEPT, DROP, REJECT, DNAT, lookup, …
	Detail   string `json:"detail,omitempty"` // human explanation
	// Route: the query a kernel would be asked (ip route get …).
	Query string `json:"query,omitempty"`
	// NAT: the translation.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	Pos  string `json:"pos,omitempty"` // file:line of the deciding line

	// Route (unicast): the next hop the packet leaves by. Gateway is ""
	// for a directly connected destination.
	Gateway string `json:"gateway,omitempty"`
	Device  string `json:"device,omitempty"`
	// Route: routes of the table that matched but that the kernel refuses
	// (it would not have them), skipped by the lookup.
	Refused []*RefusedRoute `json:"refused,omitempty"`
	// Route (multipath): the nexthop this branch took, 1-based, of
	// Nexthops; HashNexthop is the one the kernel's hash picks (0: not
	// computable).
	Nexthop     int `json:"nexthop,omitempty"`
	Nexthops    int `json:"nexthops,omitempty"`
	HashNexthop int `json:"hash_nexthop,omitempty"`
}

// RefusedRoute is a route of the facts the kernel would refuse to install.
type RefusedRoute struct {
	Route  string `json:"route"`  // the route line
	Reason string `json:"reason"` // why the kernel refuses it
	Pos    string `json:"pos,omitempty"`
}

// RuleRef names a firewall rule that decided a flow.
type RuleRef struct {
	Router string `json:"router"`
	Table  string `json:"table"`
	Chain  string `json:"chain"`
	Index  int    `json:"index"`
	Rule   string `json:"rule"`
	// Direction is request or reply: which packet of the connection the
	// rule dropped ("" in documents written before replies were traced).
	Direction string `json:"direction,omitempty"`
	// Pos is FILE:LINE of the rule in the facts, when known.
	Pos string `json:"pos,omitempty"`
}

// Lab describes a lab built by `hosts up`.
type Lab struct {
	ID      string       `json:"id"`
	Routers []*LabRouter `json:"routers"`
	Hosts   []*LabHost   `json:"hosts"`
	Fabric  string       `json:"fabric,omitempty"` // fabric namespace
	Removed bool         `json:"removed,omitempty"`
}

// LabRouter is one router namespace of a lab.
type LabRouter struct {
	Name    string     `json:"name"`
	Netns   string     `json:"netns"`
	Refused []*Refusal `json:"refused"`
	// HashSeed is the net.ipv4.fib_multipath_hash_seed the lab pinned on
	// this router (0: the kernel has no such sysctl, the seed is random),
	// so that ECMP picks the same nexthop on every run.
	HashSeed uint32 `json:"hash_seed,omitempty"`
}

// Refusal is something the kernel refused to apply.
type Refusal struct {
	What  string `json:"what"` // route, rule, ipset, iptables, address, …
	Line  string `json:"line"` // file:line or the line text
	Error string `json:"error"`
}

// LabHost is an endpoint host namespace.
type LabHost struct {
	Name   string `json:"name"`
	Netns  string `json:"netns"`
	IP     string `json:"ip"`
	Router string `json:"router"`
	Iface  string `json:"iface"`
}

// Reach verdicts.
const (
	Reachable   = "REACHABLE"
	Unreachable = "UNREACHABLE"
	Allowed     = "ALLOWED"
	Blocked     = "BLOCKED"
)

// Reach is the emulation result of one flow.
type Reach struct {
	Flow    string         `json:"flow"`
	E2E     *E2E           `json:"e2e"`
	Routers []*RouterReach `json:"routers"`
	// Disagreements lists, one line each, where a live verdict differs
	// from trace's prediction.
	Disagreements []string `json:"disagreements,omitempty"`
}

// E2E is the end-to-end verdict.
type E2E struct {
	Verdict   string   `json:"verdict"`
	Reason    string   `json:"reason,omitempty"`
	BlockedBy *RuleRef `json:"blocked_by,omitempty"`
	Predicted string   `json:"predicted,omitempty"`
	Agrees    *bool    `json:"agrees,omitempty"`
	// Routers is what each router on the path did to the end-to-end probe
	// (from its counter deltas), in path order up to where it stopped.
	Routers []*RouterReach `json:"routers,omitempty"`
	// Cause is what stopped an UNREACHABLE connection at BlockedBy.Router:
	// filter (an iptables rule or policy: BlockedBy names it) or a routing
	// cause (blackhole, unreachable, prohibit, no_route, rp_filter,
	// forwarding, loop, no_neighbour, broadcast). BlockedBy.Direction says whether
	// the request or the reply died.
	Cause string `json:"cause,omitempty"`
	// Path and ReplyPath are the routers the probe's packets really
	// crossed, request and reply, as "router(in>out)": found from every
	// lab router's counters, in the order the kernel's routes link them.
	// PredictedPath and PredictedReplyPath are trace's.
	Path               []string `json:"path,omitempty"`
	ReplyPath          []string `json:"reply_path,omitempty"`
	PredictedPath      []string `json:"predicted_path,omitempty"`
	PredictedReplyPath []string `json:"predicted_reply_path,omitempty"`
	// PathDiffers: the packets took another path than predicted (the
	// request's or the reply's routers differ, or routers off both paths
	// saw the probe: AlsoSeen).
	PathDiffers bool     `json:"path_differs,omitempty"`
	AlsoSeen    []string `json:"also_seen,omitempty"`
}

// RouterReach is one router's verdict for a flow.
type RouterReach struct {
	Router    string          `json:"router"`
	In        string          `json:"in,omitempty"`  // ingress interface
	Out       string          `json:"out,omitempty"` // egress interface
	Verdict   string          `json:"verdict"`
	Reason    string          `json:"reason,omitempty"`
	Rule      *LiveRule       `json:"rule,omitempty"`
	Predicted string          `json:"predicted"`
	Agrees    bool            `json:"agrees"`
	Counters  []*CounterDelta `json:"counters,omitempty"`
}

// LiveRule is the deciding rule found from counters.
type LiveRule struct {
	Table string `json:"table"`
	Chain string `json:"chain"`
	Index int    `json:"index"` // 1-based, 0 = chain policy
	Text  string `json:"text"`
}

// CounterDelta is a counter that moved during a probe.
type CounterDelta struct {
	Table   string `json:"table"`
	Chain   string `json:"chain"`
	Index   int    `json:"index"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	Target  string `json:"target,omitempty"` // the rule's target or the policy
}

// Report records the PDF written by `report`.
type Report struct {
	PDF   string `json:"pdf"`
	Pages int    `json:"pages"`
	// Sections lists where each part of the PDF starts (summary, one per
	// service), so merge can bookmark them.
	Sections []Section `json:"sections,omitempty"`
}

// Section is one bookmarked part of a report PDF.
type Section struct {
	Title string `json:"title"`
	Page  int    `json:"page"` // 1-based page number in the report PDF
}

// Merged records the PDF written by `merge`.
type Merged struct {
	PDF       string `json:"pdf"`
	Pages     int    `json:"pages"`
	Documents int    `json:"documents"`
}

// Error is a stage error recorded in the document.
type Error struct {
	Stage   string `json:"stage"`
	Message string `json:"message"`
}
