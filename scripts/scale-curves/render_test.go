package main

import (
	"strings"
	"testing"
)

func TestSection(t *testing.T) {
	raw := "=== TSIM_SECTION_START:ipset_save ===\nTITLE: x\nCOMMAND: ipset save\nTIMESTAMP: t\n---\ncreate a hash:ip\nadd a 1.2.3.4\n\nEXIT_CODE: 0\n=== TSIM_SECTION_END:ipset_save ===\n"
	if got := section(raw, "ipset_save"); got != "create a hash:ip\nadd a 1.2.3.4\n" {
		t.Errorf("section = %q", got)
	}
	if got := section(raw, "iptables_save"); got != "" {
		t.Errorf("missing section = %q", got)
	}
}

// TestTable: a re-measured figure replaces the earlier one, stages and
// the floor ratio land in their columns, and each tsim version gets its
// own tables with its load range.
func TestTable(t *testing.T) {
	rs := []Record{
		{What: "run", Routers: 200, Flows: 1000, Ms: 197000, Load1: 17, Load1After: 18, Tsim: "old",
			Stages: map[string]float64{"hosts-up": 4000, "reach": 146000, "hosts-down": 1000}, Note: "1000 passed, 0 failed, 0 unknown; report x.pdf"},
		{What: "run", Routers: 200, Flows: 1000, Ms: 76500, Load1: 5, Load1After: 6, Tsim: "old", LabRouters: 61,
			Stages: map[string]float64{"hosts-up": 2000, "reach": 71000, "report": 2800, "hosts-down": 26}, Note: "1000 passed, 0 failed, 0 unknown; report y.pdf"},
		{What: "floor", Routers: 200, Flows: 1000, Ms: 2026, Tsim: "old"},
	}
	md := table(latest(rs))
	row := "| 200 | 1000 | 61 | 76.5 s | 2.00 s | 71.0 s | 71 ms | 2.80 s | 26 ms | 0 MB | 2.03 s | 1.0 | 5–6 | 1000 passed, 0 failed, 0 unknown | old |"
	if !strings.Contains(md, row) {
		t.Errorf("table lacks\n%s\nin\n%s", row, md)
	}
	if strings.Contains(md, "197") {
		t.Errorf("the replaced figure is still there:\n%s", md)
	}
}
