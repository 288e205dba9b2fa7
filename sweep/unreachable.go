package sweep

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/tsim-dev/tsim/internal/facts"
)

// Undecided sweeps every flow the simulation can trace (every source and
// destination, every TCP and UDP port, ICMP echo) and returns a warning
// for every filter-table ACCEPT, DROP or REJECT rule that decides none of
// them: a rule no traced path reaches, or reaches only after earlier rules
// decided. Sources are every address, starting where they are inside the
// network, then entering at each uplink (Engine.Uplinks: spoofed inside
// addresses included). Rules for packets tsim does not trace (replies:
// ESTABLISHED, RELATED, INVALID; ICMP errors; loopback) are left out, and
// so are rules already reported as shadowed (skip).
func Undecided(ctx context.Context, f *facts.Facts, skip []facts.Finding) ([]facts.Finding, Stats, error) {
	all := Range{0, ^uint32(0)}
	protos, _ := ParseSpec("tcp,udp,icmp")
	m := NewModel(f)
	decided := map[string]bool{}
	var total Stats
	// From inside the network, then entering at every uplink.
	for _, in := range append([]string{""}, m.Engine.Uplinks()...) {
		cs, st, err := Run(ctx, Space{Src: all, Dst: all, Protos: protos, Ingress: in}, m)
		if err != nil {
			return nil, total, err
		}
		total.Classes += st.Classes
		total.Traces += st.Traces
		total.Flows += st.Flows
		for _, c := range cs {
			a := c.Answers[0]
			if fs := strings.Fields(a.Decider); len(fs) == 4 {
				decided[strings.Join(fs, " ")] = true
			}
			for _, acc := range a.Accepted {
				if fs := strings.Fields(acc); len(fs) == 3 {
					decided[fs[0]+" filter "+fs[1]+" "+fs[2]] = true
				}
			}
		}
	}
	skipped := map[facts.Pos]bool{}
	for _, s := range skip {
		skipped[s.Pos] = true
	}
	var out []facts.Finding
	for _, r := range f.Routers {
		t := r.IPTable("filter")
		if t == nil {
			continue
		}
		for _, c := range t.Chains {
			for _, ir := range c.Rules {
				if ir.Target == nil || skipped[ir.Pos] || !tracedKind(ir) {
					continue
				}
				switch ir.Target.Name {
				case "ACCEPT", "DROP", "REJECT":
				default:
					continue
				}
				if decided[r.Name+" filter "+c.Name+" #"+strconv.Itoa(ir.Index)] {
					continue
				}
				out = append(out, facts.Finding{Pos: ir.Pos, Severity: facts.SevWarning, Router: r.Name,
					Message: fmt.Sprintf("filter/%s rule %d decides no traced flow (new TCP/UDP connections and ICMP echo from any address, inside the network or entering at an uplink): %s",
						c.Name, ir.Index, ir.Text)})
			}
		}
	}
	return out, total, nil
}

// tracedKind reports whether a rule can match the packets tsim traces:
// the first packet of a connection (state NEW), ICMP echo requests.
func tracedKind(ir *facts.IptRule) bool {
	for _, m := range ir.Matches {
		for _, o := range m.Options {
			switch m.Module + "/" + o.Name {
			case "conntrack/ctstate", "state/state":
				has := false
				for _, s := range strings.Split(strings.Join(o.Args, ","), ",") {
					has = has || s == "NEW"
				}
				if has == o.Neg {
					return false
				}
			case "/in-interface", "/out-interface":
				if len(o.Args) > 0 && o.Args[0] == "lo" && !o.Neg {
					return false // a host talking to itself: not traced
				}
			case "icmp/icmp-type":
				if len(o.Args) > 0 && (o.Args[0] == "8") == o.Neg && o.Args[0] != "any" {
					return false
				}
			}
		}
	}
	return true
}
