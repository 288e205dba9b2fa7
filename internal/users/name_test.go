package users

import (
	"regexp"
	"strings"
	"testing"
)

// TestNameOKIsTheDocumentedPattern checks the hand-written check against
// the pattern it replaces on every string of up to 3 characters from an
// alphabet covering each class, and at the length limits.
func TestNameOKIsTheDocumentedPattern(t *testing.T) {
	re := regexp.MustCompile(`^[a-z_][a-z0-9_.-]{0,31}$`)
	alpha := []string{"a", "z", "_", "0", "9", ".", "-", "A", " ", "/", "é"}
	names := []string{"", strings.Repeat("a", 32), strings.Repeat("a", 33), "a" + strings.Repeat("9", 31)}
	var grow func(prefix string, n int)
	grow = func(prefix string, n int) {
		names = append(names, prefix)
		if n == 0 {
			return
		}
		for _, c := range alpha {
			grow(prefix+c, n-1)
		}
	}
	grow("", 3)
	for _, n := range names {
		if got, want := nameOK(n), re.MatchString(n); got != want {
			t.Errorf("nameOK(%q) = %v, pattern says %v", n, got, want)
		}
	}
}
