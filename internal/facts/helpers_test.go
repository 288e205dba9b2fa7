package facts

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// corpus is a path inside the predecessor's corpus in testdata/.
func corpus(t testing.TB, sub string) string {
	t.Helper()
	return testenv.Corpus(t, sub)
}

// lines turns text into body lines numbered from first.
func lines(first int, text string) []Line {
	var out []Line
	for i, s := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		out = append(out, Line{N: first + i, Text: s})
	}
	return out
}

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs from the output (run go test -update after checking the change):\n%s", p, firstDiff(string(want), string(got)))
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + x + "\n  got:  " + y
		}
	}
	return ""
}
