package main

// Whole command lines as a user types them, with their stdout, stderr and
// exit status asserted: testscript scripts in testdata/script (txtar; see
// the testscript package documentation for the language). Added commands:
//
//	tsim ARGS...   run the built tsim; `! tsim` expects a non-zero exit
//	status N       the exit status of the last tsim
//	[tool:NAME]    a condition: NAME is on PATH (an error, not false,
//	               under TSIM_TEST_STRICT when it is missing)
//
// The scripts use the built-in example network and need no root.
// $JUNIT_XSD is the JUnit schema (internal/flowtest/testdata/junit.xsd).

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/tsim-dev/tsim/internal/testenv"
)

type lastStatus struct{ code int }

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Values["status"] = &lastStatus{code: -1}
			xsd, err := filepath.Abs(filepath.Join("..", "..", "internal", "flowtest", "testdata", "junit.xsd"))
			env.Setenv("JUNIT_XSD", xsd)
			// For commands the scripts run through another program (script).
			env.Setenv("PATH", filepath.Dir(tsimBin)+":"+env.Getenv("PATH"))
			return err
		},
		// [tool:NAME]: NAME is on PATH; missing, it is false on a laptop
		// and an error under TSIM_TEST_STRICT (make test), like testenv.
		Condition: func(cond string) (bool, error) {
			tool, ok := strings.CutPrefix(cond, "tool:")
			if !ok {
				return false, fmt.Errorf("unknown condition %q", cond)
			}
			if _, err := exec.LookPath(tool); err != nil {
				if testenv.Strict() {
					return false, fmt.Errorf("%s not installed (scripts/install-deps.sh installs it; %s is set)", tool, testenv.StrictEnv)
				}
				return false, nil
			}
			return true, nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"tsim": func(ts *testscript.TestScript, neg bool, args []string) {
				err := ts.Exec(tsimBin, args...)
				code := 0
				var ee *exec.ExitError
				switch {
				case errors.As(err, &ee):
					code = ee.ExitCode()
				case err != nil:
					ts.Fatalf("tsim: %v", err)
				}
				ts.Value("status").(*lastStatus).code = code
				if neg && code == 0 {
					ts.Fatalf("tsim exited 0, want a failure")
				}
				if !neg && code != 0 {
					ts.Fatalf("tsim exited %d, want 0", code)
				}
			},
			"status": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 1 || neg {
					ts.Fatalf("usage: status N")
				}
				want, err := strconv.Atoi(args[0])
				ts.Check(err)
				if got := ts.Value("status").(*lastStatus).code; got != want {
					ts.Fatalf("exit status %d, want %d", got, want)
				}
			},
		},
	})
}
