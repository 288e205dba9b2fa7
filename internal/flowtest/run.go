package flowtest

import (
	"context"
	"time"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/trace"
)

// TraceFile simulates every line of f in order and hands each judged case,
// with its traces, to each (which may stop the run by returning an error).
// Every flow is validated first, so a bad line fails the run before the
// first case is handed out. ctx is checked between lines.
func TraceFile(ctx context.Context, eng *trace.Engine, f *File, each func(*Case, []*doc.Trace) error) error {
	for _, l := range f.Lines {
		for _, fl := range l.Flows {
			if err := eng.Validate(fl); err != nil {
				return err
			}
		}
	}
	for i, l := range f.Lines {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		start := time.Now()
		ts := make([]*doc.Trace, len(l.Flows))
		rs := make([]*Result, len(l.Flows))
		for k, fl := range l.Flows {
			ts[k] = eng.Trace(ctx, fl)
			rs[k] = FromTrace(fl, ts[k])
		}
		if err := each(NewCase(f.Name, l, rs, time.Since(start)), ts); err != nil {
			return err
		}
	}
	return nil
}

// ReachCase judges one line's document after a live run (`run --flows`):
// one result per flow from the document's reach section.
func ReachCase(file string, l *Line, d *doc.Document, took time.Duration) *Case {
	byFlow := make(map[string]*doc.Reach, len(d.Reach))
	for _, r := range d.Reach {
		byFlow[r.Flow] = r
	}
	rs := make([]*Result, 0, len(d.Flows))
	for _, fl := range d.Flows {
		rs = append(rs, FromReach(d, fl, byFlow[fl.ID]))
	}
	return NewCase(file, l, rs, took)
}
