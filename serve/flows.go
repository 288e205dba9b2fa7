package serve

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/flowtest"
	"github.com/tsim-dev/tsim/internal/fsx"
)

// junitFile is the JUnit XML of a batch job.
const junitFile = "junit.xml"

// readFlows parses an uploaded flows file in the `tsim run --flows`
// format (CSV src,dst,spec,expect as spreadsheets write it, or NDJSON);
// errors name the line ("flows.csv:3: …").
func readFlows(data []byte) (*flowtest.File, error) {
	return flowtest.Read(bytes.NewReader(data), flowsFile)
}

// groupsOf makes one group (one document, one PDF section, one test) per
// line of the file, in file order, as `tsim run --flows` does.
func groupsOf(f *flowtest.File) [][]*doc.Flow {
	out := make([][]*doc.Flow, 0, len(f.Lines))
	for _, l := range f.Lines {
		out = append(out, l.Flows)
	}
	return out
}

// pendingTests lists a flows file's lines before the job ran.
func pendingTests(f *flowtest.File) []lineResult {
	out := make([]lineResult, 0, len(f.Lines))
	for _, l := range f.Lines {
		out = append(out, lineResult{Line: l.N, Src: l.Flows[0].Src, Dst: l.Flows[0].Dst, Spec: specOf(l.Flows),
			Expect: l.Expect, Result: "PENDING"})
	}
	return out
}

func specOf(flows []*doc.Flow) string {
	var svcs []string
	for _, fl := range flows {
		if s := flowtest.Service(fl); len(svcs) == 0 || svcs[len(svcs)-1] != s {
			svcs = append(svcs, s)
		}
	}
	return strings.Join(svcs, ",")
}

// judgeBatch judges every line of a batch job from the documents the
// pipeline produced (one per line, in file order).
func judgeBatch(dir string, docs []*doc.Document) ([]*flowtest.Case, *flowtest.File, error) {
	data, err := os.ReadFile(filepath.Join(dir, flowsFile))
	if err != nil {
		return nil, nil, err
	}
	file, err := readFlows(data)
	if err != nil {
		return nil, nil, err
	}
	if len(docs) != len(file.Lines) {
		return nil, nil, fmt.Errorf("%d documents for %d lines", len(docs), len(file.Lines))
	}
	cases := make([]*flowtest.Case, 0, len(docs))
	for i, d := range docs {
		cases = append(cases, flowtest.ReachCase(flowsFile, file.Lines[i], d, 0))
	}
	return cases, file, nil
}

// testsOf is the page's view of judged cases.
func testsOf(cases []*flowtest.Case, file *flowtest.File) []lineResult {
	out := make([]lineResult, 0, len(cases))
	for i, c := range cases {
		l := file.Lines[i]
		out = append(out, lineResult{Line: c.Line, Src: l.Flows[0].Src, Dst: l.Flows[0].Dst, Spec: specOf(l.Flows),
			Expect: c.Expect, Got: c.Got(), Result: string(c.Status), Detail: c.Message()})
	}
	return out
}

// writeJUnit writes the batch job's JUnit XML.
func writeJUnit(dir, id string, cases []*flowtest.Case, f *doc.FactsRef, lab string, started, finished time.Time) error {
	s := flowtest.Suite{Name: "tsim serve job " + id, File: flowsFile, Timestamp: started, Time: finished.Sub(started), Cases: cases}
	if f != nil {
		s.Properties = append(s.Properties, [2]string{"facts", f.Source}, [2]string{"facts_digest", f.Digest})
	}
	if lab != "" {
		s.Properties = append(s.Properties, [2]string{"lab", lab})
	}
	var buf bytes.Buffer
	if err := flowtest.WriteJUnit(&buf, s); err != nil {
		return err
	}
	return fsx.WriteFileAtomic(filepath.Join(dir, junitFile), buf.Bytes(), 0o600)
}
