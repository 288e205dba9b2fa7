package facts

import (
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
