package facts

import (
	"fmt"
	"strings"
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
// their quotes, as ipset save prints comments).
func splitQuoted(s string) ([]string, error) {
	var (
		out []string
		cur strings.Builder
		inQ bool
		has bool
	)
	for _, r := range s {
		switch {
		case r == '"':
			inQ = !inQ
			cur.WriteRune(r)
			has = true
		case !inQ && (r == ' ' || r == '\t'):
			if has {
				out = append(out, cur.String())
				cur.Reset()
				has = false
			}
		default:
			cur.WriteRune(r)
			has = true
		}
	}
	if inQ {
		return nil, fmt.Errorf("unterminated quote")
	}
	if has {
		out = append(out, cur.String())
	}
	return out, nil
}
