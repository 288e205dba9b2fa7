// Command tsim tells whether host A can reach service B through a network
// of Linux routers, by simulation and by emulation. All wiring lives in
// internal/cli; main only hands it the process's streams and exits.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/tsim-dev/tsim/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args, cli.Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}
