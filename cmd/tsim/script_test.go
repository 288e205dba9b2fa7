package main

// Whole command lines as a user types them, with their stdout, stderr and
// exit status asserted: testscript scripts in testdata/script (txtar; see
// the testscript package documentation for the language). Added commands:
//
//	tsim ARGS...   run the built tsim; `! tsim` expects a non-zero exit
//	status N       the exit status of the last tsim
//
// The scripts use the built-in example network and need no root.
// $JUNIT_XSD is the JUnit schema (internal/flowtest/testdata/junit.xsd).

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

type lastStatus struct{ code int }

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Values["status"] = &lastStatus{code: -1}
			xsd, err := filepath.Abs(filepath.Join("..", "..", "internal", "flowtest", "testdata", "junit.xsd"))
			env.Setenv("JUNIT_XSD", xsd)
			return err
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
