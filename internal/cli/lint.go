package cli

import (
	"github.com/tsim-dev/tsim/internal/facts"
)

// lint runs every check `facts check` reports.
func (a *app) lint(f *facts.Facts) []facts.Finding {
	return facts.Lint(f, facts.LintOptions{IpsetTypes: facts.KernelIpsetTypes()})
}
