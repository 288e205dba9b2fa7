package cli

import (
	"context"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	ucli "github.com/urfave/cli/v3"
)

// TestHandleInterrupts: a command that creates things sees SIGINT as a
// cancelled context (and Main as exit 130, "interrupted"); one that
// createsNothing names is not wrapped at all.
func TestHandleInterrupts(t *testing.T) {
	// While this test runs, SIGINT must not kill the test binary.
	guard := make(chan os.Signal, 4)
	signal.Notify(guard, os.Interrupt)
	defer signal.Stop(guard)

	sawCancel := make(chan bool, 1)
	work := func(ctx context.Context, _ *ucli.Command) error {
		syscall.Kill(os.Getpid(), syscall.SIGINT)
		select {
		case <-ctx.Done():
			sawCancel <- true
			return ctx.Err()
		case <-time.After(5 * time.Second):
			sawCancel <- false
			return nil
		}
	}
	wait := func(ctx context.Context, _ *ucli.Command) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
			return nil
		}
	}
	root := &ucli.Command{Name: "tsim", Commands: []*ucli.Command{
		{Name: "run", Action: work},
		{Name: "trace", Action: wait},
	}}
	handleInterrupts(root, "tsim")
	root.ExitErrHandler = func(context.Context, *ucli.Command, error) {}

	err := root.Run(context.Background(), []string{"tsim", "run"})
	if !<-sawCancel || err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("run: SIGINT did not cancel its context (err %v)", err)
	}
	start := time.Now()
	go func() { time.Sleep(200 * time.Millisecond); syscall.Kill(os.Getpid(), syscall.SIGINT) }()
	if err := root.Run(context.Background(), []string{"tsim", "trace"}); err != nil || time.Since(start) < time.Second {
		t.Errorf("trace: its context was cancelled by SIGINT (err %v); it should not handle signals", err)
	}
}
