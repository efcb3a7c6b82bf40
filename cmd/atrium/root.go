package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/data/catalog"
	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/platform/artifact"
	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/spec"
)

// Exit codes of the CLI contract.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// commandBuilders holds every subcommand; files add theirs from init with register.
var commandBuilders []func(e *env) *cobra.Command

// register adds a subcommand. Call it from an init function of the command's file.
func register(build func(e *env) *cobra.Command) {
	commandBuilders = append(commandBuilders, build)
}

// usageError marks a mistake in how the command was called (exit code 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// usagef returns a usage error.
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exactArgs is cobra.ExactArgs reporting a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// env is what every command shares: global flags, output streams, and the
// project's stores, opened lazily and closed once when the command ends.
type env struct {
	ctx            context.Context
	stdout, stderr io.Writer
	repo           string
	output         string // "text" or "json"
	logLevel       string
	log            *slog.Logger

	// The project's stores, each opened at most once per process (stores.go).
	project   *spec.Project
	meta      *meta.DB
	catalog   *catalog.Loaded
	offline   offline.Engine
	online    online.Store
	artifacts artifact.Store
	closers   []func() error
}

// onClose schedules fn to run when the command ends, in reverse order of registration.
func (e *env) onClose(fn func() error) { e.closers = append(e.closers, fn) }

func (e *env) close() error {
	var errs []error
	for i := len(e.closers) - 1; i >= 0; i-- {
		errs = append(errs, e.closers[i]())
	}
	e.closers = nil
	return errors.Join(errs...)
}

func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "atrium",
		Short: "Atrium: features, training, tracking, serving and monitoring in one binary",
		Long: `Atrium is a machine-learning platform in one binary: feature pipelines with an
offline (DuckDB/Parquet) and online (Pebble, Redis) store, a modeling library,
MLflow-compatible experiment tracking and model registry, model serving and monitoring.

Start with:  atrium demo`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(e.logLevel)); err != nil {
				return usagef("--log-level %q: want debug, info, warn or error", e.logLevel)
			}
			e.log = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
			if e.output != "text" && e.output != "json" {
				return usagef("--output %q: want text or json", e.output)
			}
			return nil
		},
	}
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&e.repo, "repo", ".", "project directory (holds atrium.yaml and features/)")
	pf.StringVarP(&e.output, "output", "o", "text", "output format for tabular results: text or json")
	pf.StringVar(&e.logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	for _, build := range commandBuilders {
		root.AddCommand(build(e))
	}
	return root
}

// run executes the CLI and returns the process exit code. Errors go to stderr,
// results to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{ctx: ctx, stdout: stdout, stderr: stderr, log: slog.New(slog.NewTextHandler(stderr, nil))}
	root := newRootCmd(e)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if cerr := e.close(); err == nil {
		err = cerr
	}
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "error: "+strings.TrimSpace(err.Error()))
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown flag") {
		fmt.Fprintln(stderr, "run 'atrium --help' for usage")
		return exitUsage
	}
	return exitFailure
}
