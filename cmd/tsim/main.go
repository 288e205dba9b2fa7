// Command tsim tells whether host A can reach service B through a network
// of Linux routers, by simulation and by emulation. All wiring lives in
// internal/cli, signal handling included; main only hands it the process's
// streams and exits.
package main

import (
	"context"
	"os"

	"github.com/tsim-dev/tsim/internal/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args, cli.Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}))
}
