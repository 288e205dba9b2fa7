package cli

import (
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/sweep"
	"github.com/tsim-dev/tsim/trace"
)

// lint runs every check `facts check` reports: the facts package's own
// (load problems, gateways, devices, duplicate addresses) plus the iptables matches and targets the simulator does
// not understand (facts cannot import trace, so they meet here), and the
// iptables rules earlier rules of their chain shadow (sweep.Shadowed).
func (a *app) lint(f *facts.Facts) []facts.Finding {
	out := facts.Lint(f)
	for _, r := range f.Routers {
		out = append(out, trace.CompileFirewall(r).Unknowns()...)
	}
	out = append(out, sweep.Shadowed(f)...)
	facts.SortFindings(out)
	return out
}
