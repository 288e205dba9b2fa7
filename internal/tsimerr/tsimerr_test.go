package tsimerr

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

type coded int

func (c coded) Error() string { return "coded" }
func (c coded) ExitCode() int { return int(c) }

// TestExitCode is the one mapping from errors to exit codes (DESIGN §3.3).
func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, ExitOK},
		{"negative answer", ErrNegative, ExitNegative},
		{"input", Inputf("bad --format %q", "x"), ExitInput},
		{"input wrapped", fmt.Errorf("loading: %w", Inputf("facts: line 3")), ExitInput},
		{"environment", Envf("not root"), ExitEnv},
		{"interrupted", context.Canceled, ExitInterrupted},
		{"interrupted wrapped", fmt.Errorf("probe: %w", context.Canceled), ExitInterrupted},
		{"timeout", fmt.Errorf("run: %w", context.DeadlineExceeded), ExitEnv},
		{"own exit code", fmt.Errorf("legacy: %w", coded(10)), 10},
		{"unclassified is not usage", errors.New("write /dev/full: no space left on device"), ExitEnv},
		{"unclassified os error", &fs.PathError{Op: "open", Path: "/x", Err: fs.ErrPermission}, ExitEnv},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExitCode(tt.err); got != tt.want {
				t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
	if !Silent(ErrNegative) || Silent(Inputf("x")) || Silent(errors.New("x")) {
		t.Error("only a negative answer is silent")
	}
}
