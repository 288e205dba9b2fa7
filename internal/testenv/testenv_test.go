package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeTB records how a requirement ended a test without ending this one.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper()                   {}
func (f *fakeTB) Skip(args ...any)          { f.skipped = strings.TrimSpace(sprint(args)); panic(stop{}) }
func (f *fakeTB) Fatalf(s string, a ...any) { f.failed = fmt.Sprintf(s, a...); panic(stop{}) }

type stop struct{}

func sprint(args []any) string {
	var b strings.Builder
	for _, a := range args {
		b.WriteString(a.(string))
	}
	return b.String()
}

func run(f func(tb *fakeTB)) (tb *fakeTB) {
	tb = &fakeTB{}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(stop); !ok {
				panic(r)
			}
		}
	}()
	f(tb)
	return tb
}

func TestMissingToolSkipsOrFails(t *testing.T) {
	for _, c := range []struct {
		strict         string
		skip, fail     bool
		messageHasTool bool
	}{
		{strict: "", skip: true},
		{strict: "0", skip: true},
		{strict: "1", fail: true},
	} {
		t.Setenv(StrictEnv, c.strict)
		tb := run(func(tb *fakeTB) { NeedTools(tb, "sh", "tsim-no-such-tool") })
		if (tb.skipped != "") != c.skip || (tb.failed != "") != c.fail {
			t.Errorf("%s=%q: skipped %q, failed %q", StrictEnv, c.strict, tb.skipped, tb.failed)
		}
		if msg := tb.skipped + tb.failed; !strings.Contains(msg, "tsim-no-such-tool") || strings.Contains(msg, "sh,") {
			t.Errorf("message %q does not name exactly the missing tool", msg)
		}
	}
	t.Setenv(StrictEnv, "1")
	if tb := run(func(tb *fakeTB) { NeedTools(tb, "sh") }); tb.skipped != "" || tb.failed != "" {
		t.Errorf("a present tool ended the test: %+v", tb)
	}
}

func TestCorpusIsInTheRepository(t *testing.T) {
	p := Corpus(t, "raw_facts", "hq-gw_facts.txt")
	if filepath.IsAbs(p) {
		t.Errorf("Corpus gave an absolute path %s; goldens need the same path in every checkout", p)
	}
	if want := filepath.Join("..", "..", "testdata", "corpus", "original-tsim", "raw_facts", "hq-gw_facts.txt"); p != want {
		t.Errorf("Corpus = %s, want %s", p, want)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(filepath.Dir(p)), "LICENSE")); err != nil {
		t.Errorf("the corpus must carry its licence: %v", err)
	}
	tb := run(func(tb *fakeTB) { Corpus(tb, "no-such-file") })
	if tb.failed == "" {
		t.Error("a missing corpus file did not fail the test")
	}
}
