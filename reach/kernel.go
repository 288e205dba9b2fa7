package reach

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/vishvananda/netns"

	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/netx"
)

// What a rule did is what the kernel's rule says, not the facts' text: a
// lab can be changed after `hosts up` (a target edited, a rule inserted),
// and then counter k of a chain no longer belongs to the facts' k-th rule.
// Run compares the first snapshot's rule counts and targets with the
// facts; where they differ it reads the router's ruleset back from the
// kernel (iptables-save, once) and aligns it with the facts rule by rule.

// kernelTables reads a lab router's ruleset as its kernel has it.
func kernelTables(ctx context.Context, ns netns.NsHandle) ([]*facts.IPTable, error) {
	out, _, err := netx.Exec(ctx, ns, nil, "iptables-save")
	if err != nil {
		return nil, fmt.Errorf("iptables-save: %w", err)
	}
	ts, _, err := facts.ParseIptablesSave("kernel", 1, string(out))
	return ts, err
}

// mismatch reports why a first snapshot does not fit the facts' rules
// (minus the kernel's refusals): a chain with another rule count, or a
// rule with another target; "" when it fits.
func (m *ruleMap) mismatch(c Counters) string {
	if b := m.check(c); len(b) > 0 {
		return b[0]
	}
	tables := make([]string, 0, len(m.chains))
	for tn := range m.chains {
		tables = append(tables, tn)
	}
	sort.Strings(tables)
	for _, tn := range tables {
		for cn, ch := range m.chains[tn] {
			k := c[tn][cn]
			if k == nil || len(k.Targets) != len(ch.kernel) {
				continue
			}
			for i, r := range ch.kernel {
				if kt := k.Targets[i]; kt != "" && !strings.EqualFold(kt, targetName(r)) {
					return fmt.Sprintf("%s %s rule %d: kernel target %s, facts %s", tn, cn, i+1, kt, targetName(r))
				}
			}
		}
	}
	return ""
}

func targetName(r *facts.IptRule) string {
	if r == nil || r.Target == nil {
		return ""
	}
	return r.Target.Name
}

// meaningKey is a rule's meaning for alignment: matches and target with
// their options, independent of how the text was spelled.
func meaningKey(r *facts.IptRule) string {
	var ms []string
	for _, m := range r.Matches {
		for _, o := range m.Options {
			ms = append(ms, m.Module+"|"+optKey(o))
		}
	}
	sort.Strings(ms)
	t := ""
	if r.Target != nil {
		t = r.Target.Name
		for _, o := range r.Target.Options {
			t += "|" + optKey(o)
		}
	}
	return strings.Join(ms, " ") + " -> " + t
}

func optKey(o *facts.Option) string {
	args := make([]string, len(o.Args))
	for i, a := range o.Args {
		if ad, err := netip.ParseAddr(a); err == nil {
			a = netip.PrefixFrom(ad, ad.BitLen()).String()
		}
		args[i] = a
	}
	neg := ""
	if o.Neg {
		neg = "!"
	}
	return neg + o.Name + "=" + strings.Join(args, ",")
}

// align pairs the kernel's rules of a chain with the facts' rules: the
// longest common subsequence of their meanings, then, inside each gap of
// equal length on both sides, position by position. It returns for each
// kernel rule the index of its facts rule, or -1 for a rule the facts do
// not have.
func align(fr, kr []*facts.IptRule) []int {
	n, m := len(fr), len(kr)
	fk := make([]string, n)
	kk := make([]string, m)
	for i, r := range fr {
		fk[i] = meaningKey(r)
	}
	for j, r := range kr {
		kk[j] = meaningKey(r)
	}
	// l[i][j]: LCS length of fr[i:] and kr[j:].
	l := make([][]int, n+1)
	for i := range l {
		l[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			switch {
			case fk[i] == kk[j]:
				l[i][j] = l[i+1][j+1] + 1
			case l[i+1][j] >= l[i][j+1]:
				l[i][j] = l[i+1][j]
			default:
				l[i][j] = l[i][j+1]
			}
		}
	}
	out := make([]int, m)
	for j := range out {
		out[j] = -1
	}
	var pairs [][2]int
	for i, j := 0, 0; i < n && j < m; {
		switch {
		case fk[i] == kk[j]:
			pairs = append(pairs, [2]int{i, j})
			i++
			j++
		case l[i+1][j] >= l[i][j+1]:
			i++
		default:
			j++
		}
	}
	pairs = append(pairs, [2]int{n, m})
	pi, pj := 0, 0
	for _, p := range pairs {
		if p[0]-pi == p[1]-pj {
			for k := 0; k < p[0]-pi; k++ {
				out[pj+k] = pi + k
			}
		}
		if p[1] < m {
			out[p[1]] = p[0]
		}
		pi, pj = p[0]+1, p[1]+1
	}
	return out
}

// realign replaces the facts' view of the router's rules by the kernel's:
// every chain's kernel list becomes the kernel's rules, each carrying the
// facts index it stands for (or its kernel position when the facts do not
// have it) and a note where it differs from the facts.
func (m *ruleMap) realign(kt []*facts.IPTable) {
	for _, t := range kt {
		cm := m.chains[t.Name]
		if cm == nil {
			cm = map[string]*chainMap{}
			m.chains[t.Name] = cm
		}
		for _, c := range t.Chains {
			ch := cm[c.Name]
			if ch == nil {
				ch = &chainMap{table: t.Name, name: c.Name, policy: c.Policy}
				cm[c.Name] = ch
			}
			fr := ch.kernel
			idx := align(fr, c.Rules)
			kernel := make([]*facts.IptRule, len(c.Rules))
			notes := make([]string, len(c.Rules))
			for j, kr := range c.Rules {
				r := *kr
				if i := idx[j]; i >= 0 {
					f := fr[i]
					r.Index, r.Pos = f.Index, f.Pos
					if meaningKey(f) == meaningKey(kr) {
						r.Text = f.Text
					} else {
						notes[j] = fmt.Sprintf("the lab's rule differs from the facts: kernel has %q where the facts have #%d %q", kr.Text, f.Index, f.Text)
					}
				} else {
					r.Index = j + 1
					notes[j] = fmt.Sprintf("kernel rule #%d %q is not in the facts", j+1, kr.Text)
				}
				kernel[j] = &r
			}
			if c.Policy != "" && ch.policy != "" && !strings.EqualFold(c.Policy, ch.policy) {
				ch.policyNote = fmt.Sprintf("the lab's policy of %s %s is %s, the facts say %s", t.Name, c.Name, c.Policy, ch.policy)
				ch.policy = c.Policy
			}
			ch.kernel, ch.notes = kernel, notes
		}
	}
	m.rank()
}
