// Package progress owns the typed progress events of long operations
// (stage, step, percent, message) and their sinks: a bar on a terminal,
// NDJSON lines (--progress=json), nothing when quiet, or a function (serve
// turns events into SSE). Producers never know which sink listens.
package progress

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Event is one progress report.
type Event struct {
	Time    time.Time `json:"time"`
	Stage   string    `json:"stage"`             // trace, hosts-up, reach, report, hosts-down, done
	Step    string    `json:"step,omitempty"`    // e.g. "router hq-gw", "f2 443/tcp"
	Percent float64   `json:"percent"`           // overall, 0–100
	Message string    `json:"message,omitempty"` // one human line
}

// Sink receives events. Implementations must be safe for concurrent use.
type Sink interface{ Emit(Event) }

// Nop discards events.
type Nop struct{}

// Emit discards e.
func (Nop) Emit(Event) {}

// Func adapts a function to a Sink.
type Func func(Event)

// Emit calls f.
func (f Func) Emit(e Event) { f(e) }

// JSON writes one event per line.
type JSON struct {
	mu sync.Mutex
	w  io.Writer
}

// NewJSON returns an NDJSON sink on w.
func NewJSON(w io.Writer) *JSON { return &JSON{w: w} }

// Emit writes e as one JSON line.
func (j *JSON) Emit(e Event) {
	b, _ := json.Marshal(e)
	j.mu.Lock()
	defer j.mu.Unlock()
	j.w.Write(append(b, '\n'))
}

// Bar draws a one-line bar on a terminal, redrawn in place.
type Bar struct {
	mu    sync.Mutex
	w     io.Writer
	width int
	last  string
}

// NewBar returns a terminal bar on w.
func NewBar(w io.Writer) *Bar { return &Bar{w: w, width: 24} }

// Emit redraws the bar.
func (b *Bar) Emit(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	pct := e.Percent
	if pct < 0 {
		pct = 0
	} else if pct > 100 {
		pct = 100
	}
	fill := int(pct / 100 * float64(b.width))
	msg := e.Stage
	if e.Step != "" {
		msg += ": " + e.Step
	}
	if e.Message != "" {
		msg += " — " + e.Message
	}
	if len(msg) > 60 {
		msg = msg[:57] + "..."
	}
	line := fmt.Sprintf("\r[%s%s] %3.0f%% %-60s", strings.Repeat("█", fill), strings.Repeat("░", b.width-fill), pct, msg)
	if line == b.last {
		return
	}
	b.last = line
	io.WriteString(b.w, line)
	if e.Stage == "done" {
		io.WriteString(b.w, "\r\033[K")
	}
}

// Stages maps a stage's own 0–1 progress to the overall percentage, by
// fixed weights summing to 100.
type Stages struct {
	Sink  Sink
	start map[string]float64
	span  map[string]float64
	now   func() time.Time
}

// NewStages declares the stages in order with their weights.
func NewStages(sink Sink, names []string, weights []float64) *Stages {
	if sink == nil {
		sink = Nop{}
	}
	s := &Stages{Sink: sink, start: map[string]float64{}, span: map[string]float64{}, now: time.Now}
	total := 0.0
	for _, w := range weights {
		total += w
	}
	acc := 0.0
	for i, n := range names {
		s.start[n] = acc / total * 100
		s.span[n] = weights[i] / total * 100
		acc += weights[i]
	}
	return s
}

// Report emits stage progress frac (0–1) with a step and message.
func (s *Stages) Report(stage string, frac float64, step, msg string) {
	if frac < 0 {
		frac = 0
	} else if frac > 1 {
		frac = 1
	}
	s.Sink.Emit(Event{Time: s.now().UTC(), Stage: stage, Step: step, Percent: s.start[stage] + frac*s.span[stage], Message: msg})
}

// Done emits the final 100% event.
func (s *Stages) Done(msg string) {
	s.Sink.Emit(Event{Time: s.now().UTC(), Stage: "done", Percent: 100, Message: msg})
}
