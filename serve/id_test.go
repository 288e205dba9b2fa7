package serve

import (
	"regexp"
	"strings"
	"testing"
)

// TestValidIDIsTheDocumentedPattern checks the hand-written check against
// the pattern it replaces.
func TestValidIDIsTheDocumentedPattern(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{32}$`)
	ids := []string{"", strings.Repeat("a", 31), strings.Repeat("a", 33), "../" + strings.Repeat("a", 29)}
	for _, c := range []string{"0", "9", "a", "f", "g", "A", "F", "/", ".", " ", "\x00", "é"} {
		ids = append(ids, strings.Repeat("0", 31)+c, c+strings.Repeat("f", 31), strings.Repeat(c, 32))
	}
	for _, id := range ids {
		if got, want := validID(id), re.MatchString(id); got != want {
			t.Errorf("validID(%q) = %v, pattern says %v", id, got, want)
		}
	}
}
