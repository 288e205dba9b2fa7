package pdf

import (
	"strings"
	"testing"
)

func TestDiagram(t *testing.T) {
	tests := []struct {
		fixture, flow, format string
		want                  []string
		not                   []string
	}{
		{"three", "f1", "dot", []string{
			`digraph "f1 ssh (22/tcp)"`, `label="src-host\n10.1.10.5"`,
			`label="hq-gw\n10.1.10.1\nALLOWED · FORWARD #4"`, `n0 -> n1 [taillabel="eth0", headlabel="eth1"]`,
			`n3 -> n4 [taillabel="eth1", headlabel="eth0"]`, `fillcolor="#d4edda"`}, []string{"style=dashed"}},
		{"three", "f2", "dot", []string{`BLOCKED · FORWARD #7`, `"Destination host\n10.3.20.10\nnot reached"`, "style=dashed"}, nil},
		{"three", "f3", "dot", []string{`BLOCKED · FORWARD policy\nsimulation predicted ALLOWED`, `color="#bf360c"`,
			`n2 -> n3 [taillabel="eth2", headlabel="eth0", style=dashed]`, `UNKNOWN · FORWARD policy (sim)`},
			[]string{`n1 -> n2 [taillabel="wg0", headlabel="wg0", style=dashed]`}},
		{"three", "f2", "mermaid", []string{"flowchart LR", `s0n1["hq-gw<br/>10.1.10.1<br/>ALLOWED · FORWARD #35;4"]`,
			`s0n0 -->|"eth0 → eth1"| s0n1`, `-.->`, "style s0n3 fill:#f8d7da,stroke:#b02028"}, []string{"subgraph"}},
		{"three", "", "mermaid", []string{"subgraph s0[", "subgraph s2[", "s2n2"}, nil},
		{"long", "f1", "dot", []string{"core-router-13.datacenter-dublin.example.net", `ALLOWED (simulation) · FORWARD #24`, `headlabel="bond0.1212"`}, nil},
		{"unicode", "u1", "mermaid", []string{`["路由器<br/>10.99.0.2`, `"东京0 → uplink"`, `"wan0 → wan0"`}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.fixture+"/"+tc.flow+"/"+tc.format, func(t *testing.T) {
			got, err := Diagram(loadFixture(t, tc.fixture), tc.flow, tc.format)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %s\n%s", w, got)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(got, w) {
					t.Errorf("output has %s\n%s", w, got)
				}
			}
		})
	}
}

func TestDiagramErrors(t *testing.T) {
	d := loadFixture(t, "three")
	if _, err := Diagram(d, "nope", "dot"); err == nil || !strings.Contains(err.Error(), `no flow "nope"`) || !strings.Contains(err.Error(), "f1, f2, f3") {
		t.Errorf("unknown flow: %v", err)
	}
	if _, err := Diagram(d, "f1", "svg"); err == nil || !strings.Contains(err.Error(), `unknown diagram format "svg"`) {
		t.Errorf("unknown format: %v", err)
	}
	d.Trace = nil
	if _, err := Diagram(d, "f1", "dot"); err == nil || !strings.Contains(err.Error(), "tsim trace") {
		t.Errorf("no trace: %v", err)
	}
}
