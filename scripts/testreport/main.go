// Command testreport reads `go test -json` on stdin and prints what a person
// needs from a whole-suite run: one line per package, the output of every
// failed test, the names of skipped tests, and a closing line
// "N passed, N failed, N skipped". It exits 1 when a test failed, a package
// did not build, or — with -no-skips, as `make test` runs it — any test was
// skipped: the suite proves nothing by skipping.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

func main() {
	noSkips := flag.Bool("no-skips", false, "a skipped test fails the run")
	flag.Parse()
	os.Exit(report(os.Stdin, os.Stdout, *noSkips))
}

func report(in io.Reader, out io.Writer, noSkips bool) int {
	var passed, failed, skipped int
	var skips, fails []string
	badPkg := false
	output := map[string]*strings.Builder{} // package/test -> output
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			// Build errors and anything else not in JSON pass through.
			fmt.Fprintln(out, string(line))
			continue
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "output":
			b := output[key]
			if b == nil {
				b = &strings.Builder{}
				output[key] = b
			}
			b.WriteString(e.Output)
		case "pass", "fail", "skip":
			if e.Test == "" { // the package
				switch e.Action {
				case "fail":
					badPkg = true
					fmt.Fprintf(out, "FAIL\t%s\t%.1fs\n", e.Package, e.Elapsed)
					if b := output[key]; b != nil && !strings.Contains(b.String(), "--- FAIL") {
						fmt.Fprint(out, indent(b.String()))
					}
				case "pass":
					fmt.Fprintf(out, "ok\t%s\t%.1fs\n", e.Package, e.Elapsed)
				}
				delete(output, key)
				continue
			}
			switch e.Action {
			case "pass":
				passed++
			case "fail":
				failed++
				fails = append(fails, e.Package+" "+e.Test)
				if b := output[key]; b != nil {
					fmt.Fprintf(out, "--- FAIL: %s (%s)\n%s", e.Test, e.Package, indent(b.String()))
				}
			case "skip":
				skipped++
				why := ""
				if b := output[key]; b != nil {
					why = lastLine(b.String())
				}
				skips = append(skips, e.Package+" "+e.Test+": "+why)
			}
			delete(output, key)
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(out, "testreport:", err)
		return 1
	}
	sort.Strings(skips)
	for _, s := range skips {
		fmt.Fprintln(out, "SKIP", s)
	}
	for _, f := range fails {
		fmt.Fprintln(out, "FAILED", f)
	}
	fmt.Fprintf(out, "%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	switch {
	case failed > 0 || badPkg:
		return 1
	case noSkips && skipped > 0:
		fmt.Fprintln(out, "testreport: tests were skipped; the suite must run every test")
		return 1
	}
	return 0
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" {
			b.WriteString("    " + strings.TrimLeft(l, " "))
		}
	}
	return b.String()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l != "" && !strings.HasPrefix(l, "--- SKIP") && !strings.HasPrefix(l, "=== ") {
			return l
		}
	}
	return ""
}
