package facts

import (
	"errors"
	"strings"
	"testing"
)

const goodRaw = `# Traceroute Simulator Facts Collection
# Hostname: r1
# Kernel: 6.1.0

=== TSIM_SECTION_START:kernel_version ===
TITLE: Kernel Version
COMMAND: uname -r
TIMESTAMP: 2025-06-21 14:30:15
---
6.1.0-test

EXIT_CODE: 0
=== TSIM_SECTION_END:kernel_version ===

# free comment between sections
=== TSIM_SECTION_START:policy_rules ===
TITLE: IP Policy Rules
COMMAND: /sbin/ip rule show
TIMESTAMP: 2025-06-21 14:30:15
---
0:	from all lookup local

32766:	from all lookup main

EXIT_CODE: 0

=== TSIM_SECTION_END:policy_rules ===
=== TSIM_FACTS_COLLECTION_COMPLETE ===
TIMESTAMP: 2025-06-21 14:30:15
HOSTNAME: r1
SECTIONS_COLLECTED: kernel_version,policy_rules
=== TSIM_SECTION_START:ipset_save ===
TITLE: Ipset Save Output
COMMAND: /sbin/ipset save
TIMESTAMP: 2025-07-02 10:00:00
---
EXIT_CODE: 0
=== TSIM_SECTION_END:ipset_save ===
`

func TestParseSectionsGood(t *testing.T) {
	rf, err := ParseSections("r1_facts.txt", []byte(goodRaw))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(rf.Sections); got != 3 {
		t.Fatalf("sections = %d, want 3", got)
	}
	if rf.Header["Kernel"] != "6.1.0" || rf.Header["Hostname"] != "r1" {
		t.Errorf("header = %v", rf.Header)
	}
	if !rf.Complete || rf.Trailer["HOSTNAME"] != "r1" {
		t.Errorf("trailer = %v complete=%v", rf.Trailer, rf.Complete)
	}
	k := rf.Section("kernel_version")
	if k.Title != "Kernel Version" || k.Command != "uname -r" || k.Timestamp != "2025-06-21 14:30:15" || !k.HasExit || k.ExitCode != 0 {
		t.Errorf("kernel_version header = %+v", k)
	}
	if len(k.Body) != 1 || k.Body[0] != (Line{N: 10, Text: "6.1.0-test"}) {
		t.Errorf("kernel body = %+v", k.Body)
	}
	p := rf.Section("policy_rules")
	want := []Line{{21, "0:\tfrom all lookup local"}, {22, ""}, {23, "32766:\tfrom all lookup main"}}
	if len(p.Body) != len(want) {
		t.Fatalf("policy body = %+v", p.Body)
	}
	for i := range want {
		if p.Body[i] != want[i] {
			t.Errorf("policy body[%d] = %+v, want %+v", i, p.Body[i], want[i])
		}
	}
	if p.Pos.Line != 16 || p.FirstLine() != 21 {
		t.Errorf("policy pos %v first %d", p.Pos, p.FirstLine())
	}
	if s := rf.Section("ipset_save"); s == nil || len(s.Body) != 0 || s.FirstLine() != s.Pos.Line {
		t.Errorf("section after trailer: %+v", s)
	}
	// CRLF files parse the same.
	rf2, err := ParseSections("r1_facts.txt", []byte(strings.ReplaceAll(goodRaw, "\n", "\r\n")))
	if err != nil || len(rf2.Sections) != 3 || rf2.Section("kernel_version").Body[0].Text != "6.1.0-test" {
		t.Errorf("CRLF: %v %+v", err, rf2)
	}
}

func TestParseSectionsErrors(t *testing.T) {
	sec := func(name, body string) string {
		return "=== TSIM_SECTION_START:" + name + " ===\nTITLE: x\n---\n" + body + "\nEXIT_CODE: 0\n=== TSIM_SECTION_END:" + name + " ===\n"
	}
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "f:1: not a tsim raw facts file: no"},
		{"comments only", "# hello\n# world\n", "f:2: not a tsim raw facts file: no"},
		{"garbage", "hello world\n", `f:1: not a tsim raw facts file: expected`},
		{"json", `{"routing": {}}`, `f:1: not a tsim raw facts file`},
		{"truncated", sec("a", "x") + "=== TSIM_SECTION_START:b ===\n---\nline\n", "f:7: section b is truncated"},
		{"no end before next", "=== TSIM_SECTION_START:a ===\n---\nx\n" + sec("b", "y"), "f:1: section a has no end marker (next section starts at line 4)"},
		{"mismatched end", "=== TSIM_SECTION_START:a ===\n---\nx\n=== TSIM_SECTION_END:b ===\n", "f:4: end marker for section b closes section a"},
		{"stray end", "=== TSIM_SECTION_END:b ===\n", "f:1: end marker without a matching section start"},
		{"no dashes", "=== TSIM_SECTION_START:a ===\nTITLE: t\nbody\n", `f:3: section a: expected TITLE:, COMMAND:, TIMESTAMP: or ---, got "body"`},
		{"end in header", "=== TSIM_SECTION_START:a ===\nTITLE: t\n=== TSIM_SECTION_END:a ===\n", "f:3: section a has no --- line"},
		{"bad exit", "=== TSIM_SECTION_START:a ===\n---\nEXIT_CODE: x\n=== TSIM_SECTION_END:a ===\n", `f:3: section a: bad EXIT_CODE`},
		{"text after exit", "=== TSIM_SECTION_START:a ===\n---\nEXIT_CODE: 0\noops\n=== TSIM_SECTION_END:a ===\n", `f:4: section a: text after EXIT_CODE: "oops"`},
		{"text between", sec("a", "x") + "stray\n", `f:7: text outside any section: "stray"`},
		{"bad name", "=== TSIM_SECTION_START:a b ===\n", `f:1: not a tsim raw facts file`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSections("f", []byte(tt.in))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Errorf("error %T is not a *ParseError", err)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %q, want prefix %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestParseSectionsMissingExit(t *testing.T) {
	rf, err := ParseSections("f", []byte("=== TSIM_SECTION_START:a ===\n---\nx\n=== TSIM_SECTION_END:a ===\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s := rf.Sections[0]; s.HasExit || len(s.Body) != 1 {
		t.Errorf("section = %+v", s)
	}
}

func TestParseSectionsInvalidUTF8(t *testing.T) {
	rf, err := ParseSections("f", []byte("=== TSIM_SECTION_START:a ===\n---\nl\x8a\n=== TSIM_SECTION_END:a ===\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := rf.Sections[0].Body[0].Text; got != "l\uFFFD" {
		t.Errorf("body = %q", got)
	}
	if len(rf.Warnings) != 1 || rf.Warnings[0].String() != "f:3: warning: invalid UTF-8 replaced by U+FFFD" {
		t.Errorf("warnings = %v", rf.Warnings)
	}
}

func TestBodyText(t *testing.T) {
	for _, in := range []string{goodRaw, strings.ReplaceAll(goodRaw, "\n", "\r\n"), strings.Replace(goodRaw, "6.1.0-test", "6.1\xff", 1),
		"=== TSIM_SECTION_START:a ===\n---\nx\r\ny\n=== TSIM_SECTION_END:a ===\n"} {
		rf, err := ParseSections("f", []byte(in))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range rf.Sections {
			var texts []string
			for _, l := range s.Body {
				texts = append(texts, l.Text)
			}
			if got, want := s.BodyText(), strings.Join(texts, "\n"); got != want {
				t.Errorf("section %s: BodyText = %q, want %q", s.Name, got, want)
			}
		}
	}
}
