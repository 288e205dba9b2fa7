package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	ucli "github.com/urfave/cli/v3"
)

// createsNothing tells the commands that create nothing (no lab, no file,
// no server) and so need no cleanup: SIGINT and SIGTERM keep their default
// action and end them at once (exit status 130 / 143 from the shell).
// Installing the handlers costs a process about 0.7 ms (a signal thread and
// a goroutine), 7 % of `tsim trace`'s 10 ms budget.
func createsNothing(path string) bool {
	switch path {
	case "tsim trace", "tsim version", "tsim facts show", "tsim facts check", "tsim facts script",
		"tsim hosts ls", "tsim users ls":
		return true
	}
	return false
}

// handleInterrupts makes every command's action, except those createsNothing
// names, run under a context that SIGINT or SIGTERM cancels,
// so whatever it created is removed and it exits 130 with "interrupted".
// Commands handle interrupts unless listed, so a new command is safe.
func handleInterrupts(c *ucli.Command, path string) {
	for _, sub := range c.Commands {
		handleInterrupts(sub, path+" "+sub.Name)
	}
	if c.Action == nil || createsNothing(path) {
		return
	}
	act := c.Action
	c.Action = func(ctx context.Context, cmd *ucli.Command) error {
		ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
		return asInterrupt(ctx, act(ctx, cmd))
	}
}

// asInterrupt makes an error that ends a cancelled ctx count as the
// interrupt (exit 130): one it caused (a killed child, a closed socket)
// need not wrap context.Canceled.
func asInterrupt(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: %w", context.Canceled, err)
	}
	return err
}
