package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	ev := func(action, pkg, test, output string) string {
		return `{"Action":"` + action + `","Package":"` + pkg + `","Test":"` + test + `","Output":` + quote(output) + "}\n"
	}
	pass := ev("run", "p", "TestA", "") + ev("output", "p", "TestA", "=== RUN TestA\n") + ev("pass", "p", "TestA", "") + ev("pass", "p", "", "")
	skip := ev("output", "p", "TestB", "    x_test.go:3: needs root\n") + ev("output", "p", "TestB", "--- SKIP: TestB\n") + ev("skip", "p", "TestB", "")
	fail := ev("output", "q", "TestC", "    c_test.go:9: boom\n") + ev("fail", "q", "TestC", "") + ev("fail", "q", "", "")
	for _, c := range []struct {
		name, in string
		noSkips  bool
		code     int
		want     []string
	}{
		{"all pass", pass, true, 0, []string{"ok\tp", "1 passed, 0 failed, 0 skipped"}},
		{"a skip is allowed without -no-skips", pass + skip, false, 0, []string{"SKIP p TestB: x_test.go:3: needs root", "1 passed, 0 failed, 1 skipped"}},
		{"a skip fails with -no-skips", pass + skip, true, 1, []string{"SKIP p TestB", "tests were skipped"}},
		{"a failure shows its output", pass + fail, false, 1, []string{"--- FAIL: TestC (q)", "c_test.go:9: boom", "FAIL\tq", "1 passed, 1 failed, 0 skipped"}},
		{"build errors pass through and fail", "# q\nq/x.go:1: syntax error\n" + ev("fail", "q", "", ""), false, 1, []string{"q/x.go:1: syntax error", "FAIL\tq"}},
	} {
		var out bytes.Buffer
		code := report(strings.NewReader(c.in), &out, c.noSkips)
		if code != c.code {
			t.Errorf("%s: exit %d, want %d\n%s", c.name, code, c.code, out.String())
		}
		for _, w := range c.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: output lacks %q:\n%s", c.name, w, out.String())
			}
		}
	}
}

func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}
