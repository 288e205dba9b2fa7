package progress

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestStagesMonotonicJSON(t *testing.T) {
	var buf bytes.Buffer
	s := NewStages(NewJSON(&buf), []string{"trace", "reach", "report"}, []float64{1, 3, 1})
	s.Report("trace", 1, "", "")
	s.Report("reach", 0.5, "f1", "probing")
	s.Report("reach", 1, "", "")
	s.Report("report", 0.5, "", "")
	s.Done("ok")
	want := []float64{20, 50, 80, 90, 100}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines", len(lines))
	}
	for i, l := range lines {
		var e Event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatal(err)
		}
		if e.Percent < want[i]-0.001 || e.Percent > want[i]+0.001 {
			t.Errorf("event %d: %v%%, want %v", i, e.Percent, want[i])
		}
	}
}

func TestBarDrawsAndClears(t *testing.T) {
	var buf bytes.Buffer
	b := NewBar(&buf)
	b.Emit(Event{Stage: "reach", Percent: 50, Step: "f1"})
	b.Emit(Event{Stage: "done", Percent: 100})
	out := buf.String()
	if !strings.Contains(out, " 50% reach: f1") || !strings.HasSuffix(out, "\r\033[K") {
		t.Errorf("bar output %q", out)
	}
}
