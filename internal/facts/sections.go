package facts

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Line is one line of a section body with its 1-based line number in the file.
type Line struct {
	N    int
	Text string
}

// Section is one `=== TSIM_SECTION_START:<name> ===` … `=== TSIM_SECTION_END:<name> ===`
// block of a raw facts file.
type Section struct {
	Name      string
	Title     string
	Command   string
	Timestamp string
	// ExitCode is the EXIT_CODE value; HasExit is false when the line was missing.
	ExitCode int
	HasExit  bool
	Body     []Line // the command output, trailing blank lines removed
	Pos      Pos    // the START marker
	// text is the body as one slice of the file when exact: no line of it
	// was changed on the way in, so BodyText need not copy.
	text  string
	exact bool
}

// BodyText returns the body joined with newlines.
func (s *Section) BodyText() string {
	if s.exact {
		return s.text
	}
	var b strings.Builder
	for i, l := range s.Body {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(l.Text)
	}
	return b.String()
}

// FirstLine is the line number of the first body line (the line after `---`
// when the body is empty).
func (s *Section) FirstLine() int {
	if len(s.Body) > 0 {
		return s.Body[0].N
	}
	return s.Pos.Line
}

// RawFile is a parsed raw facts file: its header comments, its sections in
// file order and the collection-complete trailer, if any.
type RawFile struct {
	File     string
	Header   map[string]string // "# Key: value" comment lines before the first section
	Sections []*Section
	Complete bool              // the TSIM_FACTS_COLLECTION_COMPLETE trailer was seen
	Trailer  map[string]string // its KEY: value lines
	Warnings []Finding         // problems that did not stop parsing
}

const (
	markStart    = "=== TSIM_SECTION_START:"
	markEnd      = "=== TSIM_SECTION_END:"
	markComplete = "=== TSIM_FACTS_COLLECTION_COMPLETE ==="
	markClose    = " ==="
)

// sectionName extracts NAME from "=== TSIM_SECTION_START:NAME ===" given the prefix.
func sectionName(line, prefix string) (string, bool) {
	if line == "" || line[0] != prefix[0] {
		return "", false // most lines: decided without a call
	}
	if !strings.HasPrefix(line, prefix) || !strings.HasSuffix(line, markClose) || len(line) < len(prefix)+len(markClose) {
		return "", false
	}
	name := line[len(prefix) : len(line)-len(markClose)]
	if name == "" {
		return "", false
	}
	for _, r := range name {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return "", false
		}
	}
	return name, true
}

// ParseSections splits a raw facts file into its sections. It fails with a
// file:line error on a truncated section, mismatched markers, text outside
// any section, or a file with no section at all.
//
// It walks the text in place rather than splitting it into lines, and keeps
// the sections and all body lines in two slices: a file is parsed with a
// handful of allocations, not some per line.
func ParseSections(file string, data []byte) (*RawFile, error) {
	rf := &RawFile{File: file, Header: map[string]string{}}
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	// A valid file has valid lines: check once, not line by line.
	valid := utf8.ValidString(text)
	// The sections as values, pointed to only when all are read. Only a
	// START line appends, and then cur is nil: no pointer sees them move.
	secs := make([]Section, 0, 16)
	closed := 0 // how many of secs are complete
	// Every body line, in file order; each section's Body is a piece of it.
	// Its capacity is the line count, so it never moves.
	bodies := make([]Line, 0, strings.Count(text, "\n")+1)
	const (
		outside = iota
		header
		body
		afterExit
		trailer
	)
	state := outside
	var cur *Section
	n := 0         // the current line's number
	bodyStart := 0 // where cur's lines start in bodies
	bodyOff := 0   // the byte offset of cur's first body line in text
	dirty := false // a body line of cur differs from the file text
	// The lines are text split at "\n", without the empty one after a
	// final newline.
	for off := 0; off < len(text); {
		raw := text[off:]
		lineOff := off
		if i := strings.IndexByte(raw, '\n'); i >= 0 {
			raw = raw[:i]
		}
		off += len(raw) + 1
		n++
		pos := Pos{File: file, Line: n}
		if !valid && !utf8.ValidString(raw) {
			dirty = true
			// JSON (the normalized facts, the document) cannot carry
			// invalid UTF-8, so replace it now and say so.
			raw = strings.ToValidUTF8(raw, "\uFFFD")
			rf.Warnings = append(rf.Warnings, warnf(pos, "invalid UTF-8 replaced by U+FFFD"))
		}
		line := trimRightBlanks(raw)
		if name, ok := sectionName(line, markStart); ok {
			if cur != nil {
				return nil, posErrorf(cur.Pos, "section %s has no end marker (next section starts at line %d)", cur.Name, n)
			}
			secs = append(secs, Section{Name: name, Pos: pos})
			cur = &secs[len(secs)-1]
			bodyStart = len(bodies)
			dirty = false
			state = header
			continue
		}
		switch state {
		case outside, trailer:
			switch {
			case line == markComplete:
				rf.Complete = true
				rf.Trailer = map[string]string{}
				state = trailer
			case strings.TrimSpace(line) == "":
			case strings.HasPrefix(line, "#"):
				if closed == 0 {
					if k, v, ok := strings.Cut(strings.TrimSpace(line[1:]), ":"); ok {
						rf.Header[strings.TrimSpace(k)] = strings.TrimSpace(v)
					}
				}
			case state == trailer && isTrailerLine(line):
				k, v, _ := strings.Cut(line, ":")
				rf.Trailer[k] = strings.TrimSpace(v)
			case strings.HasPrefix(line, markEnd):
				return nil, posErrorf(pos, "end marker without a matching section start")
			default:
				if closed == 0 {
					return nil, posErrorf(pos, "not a tsim raw facts file: expected %q or a # comment, got %s", markStart+"<name> ===", quoteLine(line))
				}
				return nil, posErrorf(pos, "text outside any section: %s", quoteLine(line))
			}
		case header:
			switch {
			case line == "---":
				state = body
			case strings.TrimSpace(line) == "":
			case strings.HasPrefix(line, markEnd):
				return nil, posErrorf(pos, "section %s has no --- line before its end", cur.Name)
			case strings.HasPrefix(line, "TITLE:"):
				cur.Title = strings.TrimSpace(line[len("TITLE:"):])
			case strings.HasPrefix(line, "COMMAND:"):
				cur.Command = strings.TrimSpace(line[len("COMMAND:"):])
			case strings.HasPrefix(line, "TIMESTAMP:"):
				cur.Timestamp = strings.TrimSpace(line[len("TIMESTAMP:"):])
			default:
				return nil, posErrorf(pos, "section %s: expected TITLE:, COMMAND:, TIMESTAMP: or ---, got %s", cur.Name, quoteLine(line))
			}
		case body, afterExit:
			if name, ok := sectionName(line, markEnd); ok {
				if name != cur.Name {
					return nil, posErrorf(pos, "end marker for section %s closes section %s (started at line %d)", name, cur.Name, cur.Pos.Line)
				}
				if len(bodies) > bodyStart {
					// A Body that had lines stays non-nil when they
					// were all blank, as it always has.
					cur.Body = trimBlank(bodies[bodyStart:])
					cur.Body = cur.Body[:len(cur.Body):len(cur.Body)]
					bodies = bodies[:bodyStart+len(cur.Body)]
				}
				if len(cur.Body) > 0 && !dirty {
					// The body lines are consecutive and unchanged,
					// so the body is one piece of text.
					end := bodyOff - 1
					for _, l := range cur.Body {
						end += len(l.Text) + 1
					}
					cur.text, cur.exact = text[bodyOff:end], true
				}
				closed++
				cur = nil
				state = outside
				continue
			}
			if state == afterExit {
				if strings.TrimSpace(line) != "" {
					return nil, posErrorf(pos, "section %s: text after EXIT_CODE: %s", cur.Name, quoteLine(line))
				}
				continue
			}
			if rest, ok := strings.CutPrefix(line, "EXIT_CODE:"); ok {
				code, err := strconv.Atoi(strings.TrimSpace(rest))
				if err != nil {
					return nil, posErrorf(pos, "section %s: bad EXIT_CODE %s", cur.Name, quoteLine(rest))
				}
				cur.ExitCode, cur.HasExit = code, true
				state = afterExit
				continue
			}
			body := strings.TrimRight(raw, "\r")
			dirty = dirty || len(body) != len(raw)
			if len(bodies) == bodyStart {
				bodyOff = lineOff
			}
			bodies = append(bodies, Line{N: n, Text: body})
		}
	}
	if cur != nil {
		return nil, posErrorf(cur.Pos, "section %s is truncated: no %s%s ===", cur.Name, markEnd, cur.Name)
	}
	if closed == 0 {
		return nil, posErrorf(Pos{File: file, Line: max(1, n)}, "not a tsim raw facts file: no %q section found", markStart+"<name> ===")
	}
	rf.Sections = make([]*Section, len(secs))
	for i := range secs {
		rf.Sections[i] = &secs[i]
	}
	return rf, nil
}

// isTrailerLine reports a "KEY: value" line of the collection-complete block.
func isTrailerLine(line string) bool {
	k, _, ok := strings.Cut(line, ":")
	if !ok || k == "" {
		return false
	}
	for _, r := range k {
		if !(r == '_' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// trimBlank drops the blank lines the collector writes before EXIT_CODE.
func trimBlank(body []Line) []Line {
	for len(body) > 0 && strings.TrimSpace(body[len(body)-1].Text) == "" {
		body = body[:len(body)-1]
	}
	return body
}

// Section returns the first section with the name, or nil.
func (rf *RawFile) Section(name string) *Section {
	for _, s := range rf.Sections {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func (s *Section) String() string {
	return fmt.Sprintf("%s (%s)", s.Name, s.Pos)
}
