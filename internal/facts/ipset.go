package facts

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// ParseIpsetSave parses `ipset save` output: `create NAME TYPE opts…` and
// `add NAME VALUE [opts…]` lines. A member of a set not created before it is
// an error naming file:line.
func ParseIpsetSave(file string, lines []Line) ([]*Ipset, error) {
	var (
		out []*Ipset
		e   errs
	)
	byName := map[string]*Ipset{}
	for _, l := range lines {
		text := strings.TrimSpace(l.Text)
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		pos := Pos{File: file, Line: l.N}
		f, err := splitQuoted(text)
		if err != nil {
			e.addf(pos, "ipset %s: %v", quoteLine(text), err)
			continue
		}
		switch f[0] {
		case "create", "-N":
			if len(f) < 3 {
				e.addf(pos, "ipset %s: create needs a name and a type", quoteLine(text))
				continue
			}
			if byName[f[1]] != nil {
				e.addf(pos, "ipset %s: set %q created twice", quoteLine(text), f[1])
				continue
			}
			s := &Ipset{Name: f[1], Type: f[2], Members: []*Member{}, Text: text, Pos: pos}
			if len(f) > 3 {
				s.Options = f[3:]
			}
			byName[s.Name] = s
			out = append(out, s)
		case "add", "-A":
			if len(f) < 3 {
				e.addf(pos, "ipset %s: add needs a set name and a value", quoteLine(text))
				continue
			}
			s := byName[f[1]]
			if s == nil {
				e.addf(pos, "ipset %s: set %q is not created before this member", quoteLine(text), f[1])
				continue
			}
			m := &Member{Value: f[2], Text: text, Pos: pos}
			for _, o := range f[3:] {
				if o == "nomatch" {
					m.Nomatch = true
					continue
				}
				m.Options = append(m.Options, o)
			}
			s.Members = append(s.Members, m)
		default:
			e.addf(pos, "ipset %s: expected create or add", quoteLine(text))
		}
	}
	return out, e.err()
}

// splitQuoted splits on blanks, keeping "double quoted" words whole (with
// their quotes, as ipset save prints comments). The words are pieces of
// the line, not copies.
func splitQuoted(s string) ([]string, error) {
	if !utf8.ValidString(s) {
		// Words are read as runes, which turns each invalid byte into
		// U+FFFD: do that to the whole line first.
		var b strings.Builder
		for _, r := range s {
			b.WriteRune(r)
		}
		s = b.String()
	}
	var out []string
	start, inQ := -1, false // start: where the current word began, -1 between words
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case !inQ && (c == ' ' || c == '\t'):
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
		default:
			if c == '"' {
				inQ = !inQ
			}
			if start < 0 {
				start = i
			}
		}
	}
	if inQ {
		return nil, fmt.Errorf("unterminated quote")
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out, nil
}
