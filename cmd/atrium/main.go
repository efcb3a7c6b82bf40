// Command atrium is the Atrium machine-learning platform: feature pipelines and
// stores, model training, experiment tracking and registry, serving and monitoring,
// in one binary. main only wires the CLI; each subcommand lives in its own file
// and is listed in commands (root.go).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
