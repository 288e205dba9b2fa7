package serve

import (
	"bytes"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/trace"
)

// readFlows parses an uploaded flows file in the `tsim run --flows`
// format (CSV src,dst,spec[,expect] or NDJSON lines).
func readFlows(data []byte) ([]*doc.Flow, error) {
	return trace.ReadFlowsFile(bytes.NewReader(data))
}

// groupByLine makes one group (one document, one PDF section, one test)
// per line of the file, in file order, as `tsim run --flows` does.
func groupByLine(flows []*doc.Flow) [][]*doc.Flow {
	var out [][]*doc.Flow
	for i, fl := range flows {
		if i == 0 || fl.Line != flows[i-1].Line {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], fl)
	}
	return out
}
