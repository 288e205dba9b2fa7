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

// TestTableScopeAll: figures of labs of every router get their own table
// (hosts up/down against the floor of the same routers, and the run), are
// kept apart from the same sizes' labs of the flows' routers, and a failed
// hosts up says so.
func TestTableScopeAll(t *testing.T) {
	rs := []Record{
		{What: "run", Routers: 500, Flows: 100, Ms: 19400, LabRouters: 60, Load1: 6, Load1After: 6, Tsim: "v",
			Stages: map[string]float64{"hosts-up": 1920, "reach": 15700}, Note: "100 passed, 0 failed, 0 unknown; report x.pdf"},
		{What: "lab", Scope: "all", Routers: 500, Flows: 100, Ms: 12000, LabRouters: 500, Hosts: 110, FDs: 77, RSSMB: 150,
			Stages: map[string]float64{"up": 11800, "down": 200}, Load1: 5, Load1After: 7, Tsim: "v"},
		{What: "floor", Scope: "all", Routers: 500, Flows: 100, Ms: 6000, LabRouters: 500,
			Stages: map[string]float64{"up": 5500, "down": 500}, Tsim: "v"},
		{What: "run", Scope: "all", Routers: 500, Flows: 100, Ms: 40000, LabRouters: 500, RSSMB: 300, Load1: 7, Load1After: 8, Tsim: "v",
			Stages: map[string]float64{"hosts-up": 12000, "reach": 25000}, Note: "100 passed, 0 failed, 0 unknown; report y.pdf"},
		{What: "lab", Scope: "all", Routers: 200, Flows: 100, Ms: 900, Exit: 3, Load1: 4, Load1After: 4, Tsim: "v"},
	}
	md := table(latest(rs))
	for _, row := range []string{
		"| 500 | 100 | 60 | 19.4 s | 1.92 s | 15.7 s | 157 ms |",
		"| 500 | 100 | 500 | 110 | 11.8 s | 200 ms | 150 MB | 77 | 5.50 s | 500 ms | 2.0 | 5–7 | 40.0 s | 12.0 s | 250 ms | 300 MB | 7–8 | 100 passed, 0 failed, 0 unknown | v |",
		"| 200 | 100 | 0 | 0 | failed (exit 3) after 900 ms | – |",
	} {
		if !strings.Contains(md, row) {
			t.Errorf("table lacks\n%s\nin\n%s", row, md)
		}
	}
	if strings.Count(md, "| 500 | 100 |") != 2 {
		t.Errorf("the scope-all run is in the path table too:\n%s", md)
	}
	if strings.Contains(md, "Facts load and trace") {
		t.Errorf("an empty trace table is drawn:\n%s", md)
	}
}
