package facts

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// corpusSeeds adds every corpus raw file (or one section of each) as a seed.
func corpusSeeds(f *testing.F, section string, add func(string)) {
	files, _ := filepath.Glob(filepath.Join(corpus(f, "raw_facts"), "*_facts.txt"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if section == "" {
			add(string(b))
			continue
		}
		rf, err := ParseSections(p, b)
		if err != nil {
			f.Fatal(err)
		}
		for _, s := range rf.Sections {
			if strings.HasPrefix(s.Name, section) {
				add(s.BodyText())
			}
		}
	}
}

func FuzzSections(f *testing.F) {
	f.Add([]byte(goodRaw))
	f.Add([]byte("=== TSIM_SECTION_START:a ===\n---\n"))
	corpusSeeds(f, "", func(s string) { f.Add([]byte(s)) })
	f.Fuzz(func(t *testing.T, data []byte) {
		rf, err := ParseSections("f", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f:") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error without file:line or not one line: %q", err)
			}
			return
		}
		nlines := bytes.Count(data, []byte("\n")) + 1
		last := 0
		for _, s := range rf.Sections {
			if s.Pos.Line <= last {
				t.Fatalf("section %s at line %d after line %d", s.Name, s.Pos.Line, last)
			}
			last = s.Pos.Line
			var texts []string
			for _, l := range s.Body {
				texts = append(texts, l.Text)
			}
			if got, want := s.BodyText(), strings.Join(texts, "\n"); got != want {
				t.Fatalf("BodyText = %q, want the lines joined: %q", got, want)
			}
			for _, l := range s.Body {
				if l.N <= last || l.N > nlines {
					t.Fatalf("body line %d out of order (after %d, file has %d)", l.N, last, nlines)
				}
				last = l.N
			}
		}
	})
}

func FuzzIPRule(f *testing.F) {
	for _, s := range []string{"0:\tfrom all lookup local", "5:\tnot from 10.0.0.0/8 fwmark 0x1/0xff iif eth0 [detached] lookup 100",
		"6:\tfrom all ipproto tcp sport 1-2 dport 3 goto 7", "7:\tfrom all lookup main suppress_prefixlength 0", "8:\tto 1.2.3.4 blackhole"} {
		f.Add(s)
	}
	corpusSeeds(f, "policy_rules", func(s string) { f.Add(s) })
	f.Fuzz(func(t *testing.T, text string) {
		names := reservedTables()
		names["priority_table"] = 100
		rules, err := ParseIPRule("f", lines(1, text), names)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f:") {
				t.Fatalf("error without file:line: %q", err)
			}
			return
		}
		for _, r := range rules {
			if r.Action == "" {
				t.Fatalf("rule without action: %+v", r)
			}
			if r.From.IsValid() && r.From != r.From.Masked() || r.To.IsValid() && r.To != r.To.Masked() {
				t.Fatalf("unmasked selector: %+v", r)
			}
			if r.SPort.Lo > r.SPort.Hi || r.DPort.Lo > r.DPort.Hi {
				t.Fatalf("inverted port range: %+v", r)
			}
		}
	})
}

func FuzzIPRoute(f *testing.F) {
	for _, s := range []string{"default via 10.0.0.1 dev eth0", "local 10.0.0.1 dev eth0 table local proto kernel scope host src 10.0.0.1",
		"default proto static \\\tnexthop via 10.0.0.1 dev eth0 weight 1 \\\tnexthop dev eth1 weight 2",
		"10.0.0.0/8 via inet 10.0.0.1 dev eth0 mtu lock 1400 frob x onlink\n\tnexthop via 1.1.1.1"} {
		f.Add(s)
	}
	corpusSeeds(f, "routing_table", func(s string) { f.Add(s) })
	f.Fuzz(func(t *testing.T, text string) {
		routes, warn, err := ParseIPRoute("f", lines(1, text), reservedTables())
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f:") {
				t.Fatalf("error without file:line: %q", err)
			}
			return
		}
		for _, w := range warn {
			if w.Severity != SevWarning || w.Pos.Line < 1 {
				t.Fatalf("bad warning %+v", w)
			}
		}
		for _, r := range routes {
			if !r.Route.Dst.IsValid() || r.Route.Dst != r.Route.Dst.Masked() || r.Route.Type == "" {
				t.Fatalf("bad route %+v", r.Route)
			}
		}
	})
}

func FuzzIPAddr(f *testing.F) {
	f.Add(ipAddrSample)
	corpusSeeds(f, "interfaces", func(s string) { f.Add(s) })
	f.Fuzz(func(t *testing.T, text string) {
		ifs, err := ParseIPAddr("f", lines(1, text))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f:") {
				t.Fatalf("error without file:line: %q", err)
			}
			return
		}
		for _, i := range ifs {
			if i.Name == "" || i.Index <= 0 {
				t.Fatalf("bad interface %+v", i)
			}
			for _, a := range i.Addrs {
				if !a.Prefix.IsValid() {
					t.Fatalf("invalid address on %s", i.Name)
				}
			}
		}
	})
}

func FuzzIpset(f *testing.F) {
	f.Add("create a hash:ip family inet\nadd a 10.0.0.1 timeout 5 comment \"x y\"\nadd a 10.0.0.2 nomatch")
	corpusSeeds(f, "ipset_save", func(s string) { f.Add(s) })
	f.Fuzz(func(t *testing.T, text string) {
		sets, err := ParseIpsetSave("f", lines(1, text))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f:") {
				t.Fatalf("error without file:line: %q", err)
			}
			return
		}
		for _, s := range sets {
			if s.Name == "" || s.Type == "" || s.Members == nil {
				t.Fatalf("bad set %+v", s)
			}
		}
	})
}

func FuzzRaw(f *testing.F) {
	f.Add([]byte(goodRaw))
	corpusSeeds(f, "", func(s string) { f.Add([]byte(s)) })
	f.Fuzz(func(t *testing.T, data []byte) {
		r, _, err := ParseRaw("r_facts.txt", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "r_facts.txt:") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error without file:line or not one line: %q", err)
			}
			return
		}
		c := Counts(r)
		if c.Name != "r" || c.Tables != len(r.Tables) {
			t.Fatalf("counts %+v", c)
		}
		// Whatever loads must survive the normalized round trip.
		in := &Facts{Source: "x", Format: "raw", Routers: []*Router{r}}
		var buf bytes.Buffer
		if err := WriteNormalized(&buf, in); err != nil {
			t.Fatal(err)
		}
		out, err := ReadNormalized(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("normalized round trip differs")
		}
	})
}

func FuzzLegacyJSON(f *testing.F) {
	f.Add([]byte(processedJSON))
	files, _ := filepath.Glob(filepath.Join(corpus(f, "tsim_facts"), "*.json"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, _, err := ParseLegacyJSON("r.json", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "r.json") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error without file or not one line: %q", err)
			}
			return
		}
		for _, tb := range r.Tables {
			for _, rt := range tb.Routes {
				if !rt.Dst.IsValid() || rt.Dst != rt.Dst.Masked() {
					t.Fatalf("bad route %+v", rt)
				}
			}
		}
		_ = Counts(r)
	})
}
