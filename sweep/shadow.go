package sweep

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tsim-dev/tsim/internal/facts"
)

// Shadowed rules: a rule no packet can reach because earlier rules of its
// chain with a terminating target (ACCEPT, DROP, REJECT, RETURN, a goto,
// NAT) match everything it matches. A rule is a box over the header
// dimensions the check understands; an earlier rule with any match it does
// not understand never counts as covering (conservative: no false alarm),
// while for the rule under test such a match is ignored (it only makes the
// rule match less).

// Dimensions of a rule box.
const (
	dimSrc = iota
	dimDst
	dimProto
	dimSport
	dimDport
	dimICMP
	dimIn
	dimOut
	dimState
	nDims
)

var dimMax = [nDims]uint32{dimSrc: ^uint32(0), dimDst: ^uint32(0), dimProto: 255, dimSport: 65535, dimDport: 65535, dimICMP: 255,
	dimIn: 0, dimOut: 0, dimState: 4}

var ctStates = []string{"NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED"}

// rbox is a rule's match set: per dimension, a sorted list of disjoint ranges.
type rbox [nDims][]Range

func fullBox(ifaces int) rbox {
	var b rbox
	for d := range b {
		hi := dimMax[d]
		if d == dimIn || d == dimOut {
			hi = uint32(ifaces) // the router's interfaces, and one for any other name
		}
		b[d] = []Range{{0, hi}}
	}
	return b
}

func rsIntersect(a, b []Range) []Range {
	var out []Range
	for _, x := range a {
		for _, y := range b {
			if lo, hi := max(x.Lo, y.Lo), min(x.Hi, y.Hi); lo <= hi {
				out = append(out, Range{lo, hi})
			}
		}
	}
	return normalize(out)
}

func rsMinus(a, b []Range) []Range {
	out := slices.Clone(a)
	for _, y := range b {
		var next []Range
		for _, x := range out {
			if y.Hi < x.Lo || y.Lo > x.Hi {
				next = append(next, x)
				continue
			}
			if x.Lo < y.Lo {
				next = append(next, Range{x.Lo, y.Lo - 1})
			}
			if x.Hi > y.Hi {
				next = append(next, Range{y.Hi + 1, x.Hi})
			}
		}
		out = next
	}
	return out
}

func (b *rbox) empty() bool {
	for d := range b {
		if len(b[d]) == 0 {
			return true
		}
	}
	return false
}

// covered reports whether box is inside the union of boxes; budget bounds
// the work (false when it runs out: not proven).
func covered(box rbox, boxes []rbox, base int, used map[int]bool, budget *int) bool {
	if box.empty() {
		return true
	}
	*budget--
	if *budget < 0 {
		return false
	}
	for i, c := range boxes {
		in := box
		disjoint := false
		for d := range in {
			in[d] = rsIntersect(box[d], c[d])
			if len(in[d]) == 0 {
				disjoint = true
				break
			}
		}
		if disjoint {
			continue
		}
		used[base+i] = true
		// box minus c: one piece per dimension where c does not hold box.
		rest := boxes[i+1:]
		cur := box
		for d := range box {
			out := rsMinus(cur[d], c[d])
			if len(out) == 0 {
				continue
			}
			piece := cur
			piece[d] = out
			if !covered(piece, rest, base+i+1, used, budget) {
				return false
			}
			cur[d] = rsIntersect(cur[d], c[d])
		}
		return true
	}
	return false
}

// ruleBox computes a rule's box; exact says every match was understood.
func ruleBox(ir *facts.IptRule, ifIndex map[string]int) (rbox, bool) {
	b := fullBox(len(ifIndex))
	exact := true
	set := func(d int, rs []Range, neg bool) {
		if neg {
			rs = rsMinus(b[d], rs)
		}
		b[d] = rsIntersect(b[d], rs)
	}
	for _, m := range ir.Matches {
		for _, o := range m.Options {
			arg := ""
			if len(o.Args) > 0 {
				arg = o.Args[0]
			}
			ok := true
			switch m.Module + "/" + o.Name {
			case "/source", "/destination":
				var rs []Range
				for _, piece := range strings.Split(arg, ",") {
					p, good := parsePrefix(piece)
					if !good {
						ok = false
						break
					}
					p = p.Masked()
					lo := u32(p.Addr())
					rs = append(rs, Range{lo, lo | hostMask(p.Bits())})
				}
				if ok {
					d := dimSrc
					if o.Name == "destination" {
						d = dimDst
					}
					set(d, normalize(rs), o.Neg)
				}
			case "iprange/src-range", "iprange/dst-range":
				r, err := ParseRange(arg)
				if err != nil {
					ok = false
					break
				}
				d := dimSrc
				if o.Name == "dst-range" {
					d = dimDst
				}
				set(d, []Range{r}, o.Neg)
			case "/protocol":
				n, good := protoNum2(arg)
				if !good {
					ok = false
					break
				}
				if n == 0 {
					break // all
				}
				set(dimProto, []Range{{n, n}}, o.Neg)
			case "/in-interface", "/out-interface":
				d := dimIn
				if o.Name == "out-interface" {
					d = dimOut
				}
				name, wild := strings.CutSuffix(arg, "+")
				var rs []Range
				for n, i := range ifIndex {
					if n == name || wild && strings.HasPrefix(n, name) {
						rs = append(rs, Range{uint32(i), uint32(i)})
					}
				}
				if wild || len(rs) == 0 {
					// Names beyond the facts: exact for a covering rule only
					// when negated away; the "other" slot stands for them.
					if o.Neg {
						ok = false
						break
					}
					exact = exact && !wild && len(rs) > 0
					rs = append(rs, Range{uint32(len(ifIndex)), uint32(len(ifIndex))})
				}
				set(d, normalize(rs), o.Neg)
			case "tcp/dport", "tcp/destination-port", "udp/dport", "udp/destination-port",
				"tcp/sport", "tcp/source-port", "udp/sport", "udp/source-port":
				lo, hi, good := portPair(arg)
				if !good {
					ok = false
					break
				}
				d := dimDport
				if strings.HasPrefix(o.Name, "s") {
					d = dimSport
				}
				set(d, []Range{{lo, hi}}, o.Neg)
			case "multiport/dports", "multiport/destination-ports", "multiport/sports", "multiport/source-ports":
				var rs []Range
				for _, x := range strings.Split(arg, ",") {
					lo, hi, good := portPair(x)
					if !good {
						ok = false
						break
					}
					rs = append(rs, Range{lo, hi})
				}
				if ok {
					d := dimDport
					if strings.HasPrefix(o.Name, "s") {
						d = dimSport
					}
					set(d, normalize(rs), o.Neg)
				}
			case "icmp/icmp-type":
				n, err := strconv.Atoi(arg)
				if err != nil || n < 0 || n > 255 {
					ok = false
					break
				}
				set(dimICMP, []Range{{uint32(n), uint32(n)}}, o.Neg)
			case "conntrack/ctstate", "state/state":
				var rs []Range
				for _, s := range strings.Split(arg, ",") {
					i := slices.Index(ctStates, s)
					if i < 0 {
						ok = false
						break
					}
					rs = append(rs, Range{uint32(i), uint32(i)})
				}
				if ok {
					set(dimState, normalize(rs), o.Neg)
				}
			case "comment/comment":
			default:
				ok = false
			}
			exact = exact && ok
		}
	}
	return b, exact
}

func protoNum2(s string) (uint32, bool) {
	switch strings.ToLower(s) {
	case "all", "0":
		return 0, true
	case "tcp", "6":
		return 6, true
	case "udp", "17":
		return 17, true
	case "icmp", "1":
		return 1, true
	}
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 256 {
		return uint32(n), true
	}
	return 0, false
}

func portPair(s string) (uint32, uint32, bool) {
	a, b, isRange := strings.Cut(s, ":")
	if !isRange {
		p, ok := portNumber(a)
		return p, p, ok
	}
	lo, hi := uint32(0), uint32(65535)
	var ok bool
	if a != "" {
		if lo, ok = portNumber(a); !ok {
			return 0, 0, false
		}
	}
	if b != "" {
		if hi, ok = portNumber(b); !ok {
			return 0, 0, false
		}
	}
	return min(lo, hi), max(lo, hi), true
}

// terminal reports whether a packet matching the rule leaves its chain.
func terminal(t *facts.Target, table string) bool {
	if t == nil {
		return false
	}
	if t.Goto {
		return true
	}
	switch t.Name {
	case "ACCEPT", "DROP", "REJECT", "RETURN":
		return true
	case "DNAT", "SNAT", "MASQUERADE", "REDIRECT", "NETMAP":
		return table == "nat"
	}
	return false
}

// Shadowed returns a warning for every iptables rule that earlier rules of
// its chain with terminating targets make unreachable.
func Shadowed(f *facts.Facts) []facts.Finding {
	var out []facts.Finding
	for _, r := range f.Routers {
		ifIndex := map[string]int{}
		for i, ifc := range r.Interfaces {
			ifIndex[ifc.Name] = i
		}
		for _, t := range r.Iptables {
			for _, c := range t.Chains {
				var earlier []rbox
				var idx []int
				for _, ir := range c.Rules {
					box, exact := ruleBox(ir, ifIndex)
					if !box.empty() && len(earlier) > 0 {
						budget := 20000
						used := map[int]bool{}
						if covered(box, earlier, 0, used, &budget) {
							// Name a small set of rules that cover it: drop
							// each one the others do without.
							keep := map[int]bool{}
							for k := range used {
								keep[k] = true
							}
							for k := range earlier {
								if !keep[k] {
									continue
								}
								delete(keep, k)
								var sub []rbox
								for j := range earlier {
									if keep[j] {
										sub = append(sub, earlier[j])
									}
								}
								b2 := 20000
								if !covered(box, sub, 0, map[int]bool{}, &b2) {
									keep[k] = true
								}
							}
							var by []string
							for k := range earlier {
								if keep[k] {
									by = append(by, "#"+strconv.Itoa(idx[k]))
								}
							}
							if len(by) > 4 {
								by = append(by[:4], "…")
							}
							out = append(out, facts.Finding{Pos: ir.Pos, Severity: facts.SevWarning, Router: r.Name,
								Message: fmt.Sprintf("%s/%s rule %d can never match: everything it matches is matched first by rule%s %s (shadowed): %s",
									t.Name, c.Name, ir.Index, plural(len(by)), strings.Join(by, ", "), ir.Text)})
						}
					}
					if exact && terminal(ir.Target, t.Name) {
						earlier = append(earlier, box)
						idx = append(idx, ir.Index)
					}
				}
			}
		}
	}
	return out
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
