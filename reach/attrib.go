package reach

import (
	"fmt"
	"strings"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
)

// ruleMap ties a router's kernel rules to the facts: the lab applies the
// facts' rules in order and drops the ones the kernel refuses, so kernel
// rule k of a chain is the k-th rule of that chain that was not refused.
type ruleMap struct {
	router string
	chains map[string]map[string]*chainMap // table -> chain
	// refused are the facts rules the kernel refused, by position.
	refused map[string]*doc.Refusal
	// reachable are the chains a packet can meet per kind of hop: the
	// hooks' built-in chains and the user chains they jump to.
	reachable map[string]map[*chainMap]bool
}

type chainMap struct {
	table, name string
	policy      string // "" for user chains
	kernel      []*facts.IptRule
	all         []*facts.IptRule // every facts rule, refused ones too
	// rank orders rules by when a packet entering the chain's hook meets
	// them (a jump's target chain is ranked where the jump is); the
	// policy ranks after every rule of its chain.
	rank       []int
	policyRank int
	// notes say, per kernel rule, how the lab's rule differs from the
	// facts ("" where it does not; nil when the kernel was not read
	// back); policyNote the same for the chain's policy.
	notes      []string
	policyNote string
}

// hookChains are the built-in chains a packet meets, per kind of router
// hop, in the order the kernel's hooks run them.
var hookChains = map[string][][2]string{
	hopForward: {{"raw", "PREROUTING"}, {"mangle", "PREROUTING"}, {"nat", "PREROUTING"},
		{"mangle", "FORWARD"}, {"filter", "FORWARD"}, {"security", "FORWARD"},
		{"mangle", "POSTROUTING"}, {"nat", "POSTROUTING"}},
	hopInput: {{"raw", "PREROUTING"}, {"mangle", "PREROUTING"}, {"nat", "PREROUTING"},
		{"mangle", "INPUT"}, {"filter", "INPUT"}, {"security", "INPUT"}, {"nat", "INPUT"}},
	hopOutput: {{"raw", "OUTPUT"}, {"mangle", "OUTPUT"}, {"nat", "OUTPUT"}, {"filter", "OUTPUT"},
		{"security", "OUTPUT"}, {"mangle", "POSTROUTING"}, {"nat", "POSTROUTING"}},
}

// Kinds of router hop.
const (
	hopForward = "forward"
	hopInput   = "input"
	hopOutput  = "output"
)

func newRuleMap(r *facts.Router, refusals []*doc.Refusal) *ruleMap {
	m := &ruleMap{router: r.Name, chains: map[string]map[string]*chainMap{}, refused: map[string]*doc.Refusal{}}
	for _, x := range refusals {
		if x.What == "iptables" {
			m.refused[x.Line] = x
		}
	}
	for _, t := range r.Iptables {
		cm := map[string]*chainMap{}
		m.chains[t.Name] = cm
		for _, c := range t.Chains {
			ch := &chainMap{table: t.Name, name: c.Name, policy: c.Policy, all: c.Rules}
			for _, rule := range c.Rules {
				if m.refused[rule.Pos.String()] == nil {
					ch.kernel = append(ch.kernel, rule)
				}
			}
			ch.rank = make([]int, len(ch.kernel))
			for i := range ch.rank {
				ch.rank[i] = -1
			}
			ch.policyRank = -1
			cm[c.Name] = ch
		}
	}
	m.rank()
	return m
}

// rank orders every kernel rule and policy by when a packet entering its
// hook meets it (depth-first through jumps) and computes the chains each
// kind of hop can meet.
func (m *ruleMap) rank() {
	// Rank by depth-first walk from each built-in chain in hook order.
	n := 0
	for _, tm := range m.chains {
		for _, ch := range tm {
			ch.rank = make([]int, len(ch.kernel))
			for i := range ch.rank {
				ch.rank[i] = -1
			}
			ch.policyRank = -1
		}
	}
	var walk func(ch *chainMap, depth int)
	walk = func(ch *chainMap, depth int) {
		if depth > 32 {
			return
		}
		for i, rule := range ch.kernel {
			if ch.rank[i] < 0 {
				ch.rank[i] = n
				n++
			}
			if rule.Target != nil {
				if sub := m.chains[ch.table][rule.Target.Name]; sub != nil && sub.policy == "" && sub != ch {
					walk(sub, depth+1)
				}
			}
		}
	}
	seen := map[[2]string]bool{}
	for _, kind := range []string{hopForward, hopInput, hopOutput} {
		for _, tc := range hookChains[kind] {
			ch := m.chains[tc[0]][tc[1]]
			if ch == nil || seen[tc] {
				continue
			}
			seen[tc] = true
			walk(ch, 0)
			ch.policyRank = n
			n++
		}
	}
	m.reachable = map[string]map[*chainMap]bool{}
	for kind, hooks := range hookChains {
		set := map[*chainMap]bool{}
		var add func(ch *chainMap, depth int)
		add = func(ch *chainMap, depth int) {
			if ch == nil || set[ch] || depth > 32 {
				return
			}
			set[ch] = true
			for _, rule := range ch.kernel {
				if rule.Target != nil {
					if sub := m.chains[ch.table][rule.Target.Name]; sub != nil && sub.policy == "" {
						add(sub, depth+1)
					}
				}
			}
		}
		for _, tc := range hooks {
			add(m.chains[tc[0]][tc[1]], 0)
		}
		m.reachable[kind] = set
	}
	for _, tm := range m.chains {
		for _, ch := range tm {
			for i := range ch.rank {
				if ch.rank[i] < 0 {
					ch.rank[i] = n
					n++
				}
			}
			if ch.policyRank < 0 {
				ch.policyRank = n
				n++
			}
		}
	}
}

// check compares a first snapshot with the expected kernel rules and
// returns the chains whose rule count differs (their texts are then not
// trusted).
func (m *ruleMap) check(c Counters) []string {
	var bad []string
	for tn, tm := range m.chains {
		for cn, ch := range tm {
			k := c[tn][cn]
			if k == nil && len(ch.kernel) == 0 {
				continue
			}
			got := 0
			if k != nil {
				got = len(k.Rules)
			}
			if got != len(ch.kernel) {
				bad = append(bad, fmt.Sprintf("%s %s: kernel has %d rules, facts minus refusals %d", tn, cn, got, len(ch.kernel)))
			}
		}
	}
	return bad
}

// moved is one counter that moved during a probe, with its facts rule.
type moved struct {
	table, chain string
	index        int // facts index (1-based), 0 = policy
	target       string
	rule         *facts.IptRule // nil for a policy
	ch           *chainMap      // nil: a chain the facts do not have
	rank         int
	delta        Count
	// note says how the lab's rule differs from the facts ("" if not).
	note string
}

func (mv *moved) live() *doc.LiveRule {
	lr := &doc.LiveRule{Table: mv.table, Chain: mv.chain, Index: mv.index}
	if mv.rule != nil {
		lr.Text = mv.rule.Text
	} else {
		lr.Text = ":" + mv.chain + " " + mv.target
	}
	return lr
}

func (mv *moved) ref(router string) *doc.RuleRef {
	l := mv.live()
	return &doc.RuleRef{Router: router, Table: l.Table, Chain: l.Chain, Index: l.Index, Rule: l.Text}
}

// diff lists every counter that moved between two snapshots, in rank
// order.
func (m *ruleMap) diff(before, after Counters) []*moved {
	var out []*moved
	for tn, tm := range after {
		for cn, ac := range tm {
			bc := before[tn][cn]
			ch := m.chains[tn][cn]
			if ac.Policy.Packets > polPackets(bc) {
				mv := &moved{table: tn, chain: cn, delta: sub(ac.Policy, polCount(bc)), ch: ch}
				if ch != nil {
					mv.target, mv.rank = ch.policy, ch.policyRank
				}
				if ch != nil {
					mv.note = ch.policyNote
				}
				if mv.target != "" {
					out = append(out, mv)
				}
			}
			for i, a := range ac.Rules {
				var b Count
				if bc != nil && i < len(bc.Rules) {
					b = bc.Rules[i]
				}
				if a.Packets <= b.Packets {
					continue
				}
				mv := &moved{table: tn, chain: cn, index: i + 1, delta: sub(a, b), rank: 1 << 30, ch: ch}
				if ch != nil && i < len(ch.kernel) && len(ac.Rules) == len(ch.kernel) {
					mv.rule = ch.kernel[i]
					mv.index = mv.rule.Index
					mv.rank = ch.rank[i]
					if mv.rule.Target != nil {
						mv.target = mv.rule.Target.Name
					}
					if i < len(ch.notes) {
						mv.note = ch.notes[i]
					}
				}
				if i < len(ac.Targets) && ac.Targets[i] != "" {
					// The kernel's target decides, whatever the facts say.
					mv.target = ac.Targets[i]
				}
				out = append(out, mv)
			}
		}
	}
	sortMoved(out)
	return out
}

func sortMoved(ms []*moved) {
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && less(ms[j], ms[j-1]); j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}

func less(a, b *moved) bool {
	if a.rank != b.rank {
		return a.rank < b.rank
	}
	if a.table != b.table {
		return a.table < b.table
	}
	if a.chain != b.chain {
		return a.chain < b.chain
	}
	return a.index < b.index
}

func polPackets(c *ChainCounters) uint64 {
	if c == nil {
		return 0
	}
	return c.Policy.Packets
}

func polCount(c *ChainCounters) Count {
	if c == nil {
		return Count{}
	}
	return c.Policy
}

func sub(a, b Count) Count {
	return Count{a.Packets - b.Packets, a.Bytes - min(a.Bytes, b.Bytes)}
}

func blocking(target string) bool {
	switch strings.ToUpper(target) {
	case "DROP", "REJECT", "TARPIT":
		return true
	}
	return false
}

// establishedOnly reports a rule that only matches packets of known
// connections (ctstate/state ⊆ ESTABLISHED,RELATED): it cannot be what
// decided a probe's first packet, only its replies and later packets.
func establishedOnly(r *facts.IptRule) bool {
	if r == nil {
		return false
	}
	for _, m := range r.Matches {
		if m.Module != "conntrack" && m.Module != "state" {
			continue
		}
		for _, o := range m.Options {
			if (o.Name != "ctstate" && o.Name != "state") || o.Neg {
				continue
			}
			only := true
			for _, a := range o.Args {
				for _, s := range strings.Split(a, ",") {
					if s != "ESTABLISHED" && s != "RELATED" {
						only = false
					}
				}
			}
			if only {
				return true
			}
		}
	}
	return false
}

// decision is what the counters say one router did to a probe.
type decision struct {
	block  *moved // the first DROP/REJECT rule or DROP policy that moved
	accept *moved // the filter rule or policy that accepted the first packet
	moved  []*moved
}

// decide reads a router's moved counters for a hop of this kind. The
// deciding rule is the terminal rule (or policy) the probe's first packet
// met: a blocking one if any moved in a chain such a packet meets (the
// probe stopped there); otherwise the earliest-ranked filter ACCEPT or
// ACCEPT policy among those chains, skipping ESTABLISHED/RELATED-only
// rules, which count the replies. Counters of other chains (the router's
// own ICMP errors in OUTPUT, say) are listed but decide nothing.
func (m *ruleMap) decide(ms []*moved, kind string) decision {
	d := decision{moved: ms}
	in := m.reachable[kind]
	for _, mv := range ms {
		if blocking(mv.target) && (mv.ch == nil || in[mv.ch]) {
			d.block = mv
			break
		}
	}
	var est *moved
	for _, mv := range ms {
		if mv.table != "filter" || !strings.EqualFold(mv.target, "ACCEPT") || mv.ch != nil && !in[mv.ch] {
			continue
		}
		if establishedOnly(mv.rule) {
			if est == nil {
				est = mv
			}
			continue
		}
		d.accept = mv
		return d
	}
	d.accept = est
	return d
}

func (d decision) deltas() []*doc.CounterDelta {
	out := make([]*doc.CounterDelta, 0, len(d.moved))
	for _, mv := range d.moved {
		out = append(out, &doc.CounterDelta{Table: mv.table, Chain: mv.chain, Index: mv.index,
			Packets: mv.delta.Packets, Bytes: mv.delta.Bytes, Target: mv.target})
	}
	return out
}

// neededRefusal returns a refused iptables line the packet would have met
// on this router before its decision (any reachable rule of the hooks'
// non-filter tables; filter rules ranked before the deciding one), or nil.
func (m *ruleMap) neededRefusal(kind string, decided *moved) (*facts.IptRule, *doc.Refusal) {
	if len(m.refused) == 0 {
		return nil, nil
	}
	limit := 1 << 30
	if decided != nil && decided.table == "filter" {
		limit = decided.rank
	}
	visited := map[*chainMap]bool{}
	var found *facts.IptRule
	var walk func(ch *chainMap, filter bool, depth int)
	walk = func(ch *chainMap, filter bool, depth int) {
		if ch == nil || visited[ch] || depth > 32 || found != nil {
			return
		}
		visited[ch] = true
		k := 0
		for _, rule := range ch.all {
			if m.refused[rule.Pos.String()] != nil {
				if !filter || k >= len(ch.rank) || ch.rank[k] < limit {
					found = rule
					return
				}
				continue
			}
			if filter && k < len(ch.rank) && ch.rank[k] > limit {
				return
			}
			k++
			if rule.Target != nil {
				if sub := m.chains[ch.table][rule.Target.Name]; sub != nil && sub.policy == "" {
					walk(sub, filter, depth+1)
				}
			}
		}
	}
	for _, tc := range hookChains[kind] {
		walk(m.chains[tc[0]][tc[1]], tc[0] == "filter", 0)
		if found != nil {
			return found, m.refused[found.Pos.String()]
		}
	}
	return nil, nil
}
