package facts

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

var fieldsCases = []string{
	"", " ", "a", " a ", "a b", "a\tb\v\fc\r\nd", "  two  spaces  ", "x\u00a0y", "\u2003lead", "bad\xffbyte z",
	"default via 10.0.0.1 dev eth0 proto static", `10.0.0.0/8 \ nexthop via 1.1.1.1 dev a\`,
}

// appendFields must split exactly as strings.Fields, into whatever dst holds.
func TestAppendFields(t *testing.T) {
	for _, s := range fieldsCases {
		got := appendFields([]string{"keep"}, s)
		want := append([]string{"keep"}, strings.Fields(s)...)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("appendFields(%q) = %q, want %q", s, got, want)
		}
	}
}

// joinFields must give what strings.Join gives, whether or not it can
// reuse the text.
func TestJoinFields(t *testing.T) {
	for _, s := range fieldsCases {
		f := strings.Fields(s)
		if got, want := joinFields(s, f), strings.Join(f, " "); got != want {
			t.Errorf("joinFields(%q) = %q, want %q", s, got, want)
		}
		if len(f) > 1 {
			f[1] = "changed"
			if got, want := joinFields(s, f), strings.Join(f, " "); got != want {
				t.Errorf("joinFields(%q, changed) = %q, want %q", s, got, want)
			}
		}
	}
}

func FuzzTextHelpers(f *testing.F) {
	for _, s := range fieldsCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := strings.Fields(s)
		got := appendFields(nil, s)
		if len(got) != len(want) || len(want) > 0 && !reflect.DeepEqual(got, want) {
			t.Fatalf("appendFields(%q) = %q, want %q", s, got, want)
		}
		if got, want := joinFields(s, want), strings.Join(want, " "); got != want {
			t.Fatalf("joinFields(%q) = %q, want %q", s, got, want)
		}
		if got, want := trimRightBlanks(s), strings.TrimRight(s, " \t\r"); got != want {
			t.Fatalf("trimRightBlanks(%q) = %q, want %q", s, got, want)
		}
	})
}

// tokenizeReference is TokenizeIptables as first written, byte by byte into
// a buffer: the fast path that takes words as substrings must agree with it.
func tokenizeReference(line string) ([]string, error) {
	var out []string
	var buf []byte
	quote, escaped, inWord := false, false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		if quote {
			switch {
			case escaped:
				buf = append(buf, c)
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				quote = false
				out = append(out, string(buf))
				buf, inWord = buf[:0], false
			default:
				buf = append(buf, c)
			}
			continue
		}
		switch c {
		case '"':
			quote, inWord = true, true
		case ' ', '\t', '\n', '\r':
			if inWord {
				out = append(out, string(buf))
				buf, inWord = buf[:0], false
			}
		default:
			buf = append(buf, c)
			inWord = true
		}
	}
	if quote {
		return nil, fmt.Errorf("unterminated quote")
	}
	if inWord {
		out = append(out, string(buf))
	}
	return out, nil
}

// splitQuotedReference is splitQuoted as first written, rune by rune.
func splitQuotedReference(s string) ([]string, error) {
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

var wordCases = []string{
	"", "  ", `-A INPUT -s 10.0.0.1 -j ACCEPT`, `--comment "two words"`, `ab"cd"ef`, `"ab"cd`, `""`, `" "`,
	`"a\"b"`, `"a\\"`, `x"y`, `"unterminated`, "tab\tsep\r\n", `a\b "c\d"`, `"q"x"r"`, "bad\xff\"\xfe\"",
	`add s 10.0.0.1 comment "a b"`,
}

func TestWordSplittersMatchReference(t *testing.T) {
	for _, s := range wordCases {
		checkWordSplitters(t, s)
	}
}

func FuzzWordSplitters(f *testing.F) {
	for _, s := range wordCases {
		f.Add(s)
	}
	f.Fuzz(checkWordSplitters)
}

func checkWordSplitters(t *testing.T, s string) {
	got, err := TokenizeIptables(s)
	want, werr := tokenizeReference(s)
	if fmt.Sprint(err) != fmt.Sprint(werr) || !reflect.DeepEqual(got, want) {
		t.Fatalf("TokenizeIptables(%q) = %q, %v; want %q, %v", s, got, err, want, werr)
	}
	got, err = splitQuoted(s)
	want, werr = splitQuotedReference(s)
	if fmt.Sprint(err) != fmt.Sprint(werr) || !reflect.DeepEqual(got, want) {
		t.Fatalf("splitQuoted(%q) = %q, %v; want %q, %v", s, got, err, want, werr)
	}
}
