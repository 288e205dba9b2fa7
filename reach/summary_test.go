package reach

import (
	"fmt"
	"strings"

	"github.com/tsim-dev/tsim/internal/doc"
)

// summary renders reach results one line per verdict, for test logs.
func summary(rs []*doc.Reach) string {
	var b strings.Builder
	for _, r := range rs {
		e := r.E2E
		fmt.Fprintf(&b, "%s e2e %s (pred %s) %s %s\n", r.Flow, e.Verdict, e.Predicted, refText(e.BlockedBy), e.Reason)
		for _, v := range e.Routers {
			fmt.Fprintf(&b, "   e2e@%s %s%s pred %s agrees=%v %s\n", v.Router, v.Verdict, liveText(v.Rule), v.Predicted, v.Agrees, v.Reason)
		}
		for _, v := range r.Routers {
			fmt.Fprintf(&b, "   router %s %s%s pred %s agrees=%v %s\n      %s\n", v.Router, v.Verdict, liveText(v.Rule), v.Predicted, v.Agrees, v.Reason, countersText(v))
		}
		for _, s := range r.Disagreements {
			fmt.Fprintf(&b, "   ! %s\n", s)
		}
	}
	return b.String()
}

func countersText(v *doc.RouterReach) string {
	var b strings.Builder
	for _, c := range v.Counters {
		fmt.Fprintf(&b, " [%s %s #%d %s +%d]", c.Table, c.Chain, c.Index, c.Target, c.Packets)
	}
	return b.String()
}
