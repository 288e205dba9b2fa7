// Package tsimerr owns tsim's error kinds and their exit codes (DESIGN §3.3):
// domain packages wrap errors with a kind, cmd/tsim maps them to an exit
// code in one place. It imports nothing of tsim.
package tsimerr

import (
	"context"
	"errors"
	"fmt"
)

// Exit codes, as documented in the README and the man page.
const (
	ExitOK          = 0   // worked, answer positive
	ExitNegative    = 1   // worked, answer negative
	ExitInput       = 2   // usage or input error
	ExitEnv         = 3   // environment error, and any error no one classified
	ExitInterrupted = 130 // interrupted, cleaned up
)

// Kind classifies an error for the exit code.
type Kind int

const (
	KindInput Kind = iota + 1
	KindEnv
	KindNegative
)

// Error carries a kind.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Input wraps err as a usage/input error (exit 2).
func Input(err error) error { return &Error{Kind: KindInput, Err: err} }

// Inputf formats an input error (exit 2).
func Inputf(format string, a ...any) error { return Input(fmt.Errorf(format, a...)) }

// Env wraps err as an environment error (exit 3).
func Env(err error) error { return &Error{Kind: KindEnv, Err: err} }

// Envf formats an environment error (exit 3).
func Envf(format string, a ...any) error { return Env(fmt.Errorf(format, a...)) }

// ErrNegative is returned by a command that worked and whose answer is
// negative (exit 1); it prints nothing more.
var ErrNegative = &Error{Kind: KindNegative, Err: errors.New("negative answer")}

// ExitCode maps any error (an error with an ExitCode() int method, such as
// the legacy trace's own codes, keeps its code) to the process exit code.
// An error no one classified is not a usage error: it is an environment
// or internal failure (a write that failed, a kernel call, a bug), exit 3.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	if errors.Is(err, context.Canceled) {
		return ExitInterrupted
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ExitEnv
	}
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	var e *Error
	if errors.As(err, &e) {
		switch e.Kind {
		case KindInput:
			return ExitInput
		case KindEnv:
			return ExitEnv
		case KindNegative:
			return ExitNegative
		}
	}
	return ExitEnv
}

// Silent reports whether err needs no message (a negative answer).
func Silent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == KindNegative
}
