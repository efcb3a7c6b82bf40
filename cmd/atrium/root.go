package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/data/catalog"
	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/data/retrieval"
	"github.com/atrium-ml/atrium/internal/monitoring/alert"
	"github.com/atrium-ml/atrium/internal/platform/artifact"
	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/platform/scheduler"
	"github.com/atrium-ml/atrium/internal/serving"
	"github.com/atrium-ml/atrium/internal/serving/predlog"
	"github.com/atrium-ml/atrium/internal/spec"
)

// Exit codes of the CLI contract.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// commands builds every subcommand, each in a file of its own (--help lists
// them sorted by name).
var commands = []func(e *env) *cobra.Command{
	newDemoCmd, newInitCmd,
	newApplyCmd, newRunCmd, newRunsCmd, newMaterializeCmd, newHistoricalCmd,
	newFitCmd, newTrainCmd, newPredictCmd, newPredictionsCmd, newSkewCmd, newMonitorCmd,
	newServeCmd, newVersionCmd,
	newSchedulerCmd, newJobsCmd, newTriggerCmd, newBackfillCmd,
	newTokenCmd, newUserCmd, newAuditCmd,
}

// usageError marks a mistake in how the command was called (exit code 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// usagef returns a usage error.
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exactArgs accepts exactly n positional arguments, reporting a usage error
// that says how many the command takes and what it got.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) == n:
			return nil
		case n == 0:
			return usagef("%s takes no arguments, got %s", cmd.Name(), quoteArgs(args))
		case len(args) < n:
			return usagef("%s takes %d argument(s), got %d", cmd.Name(), n, len(args))
		}
		return usagef("%s takes %d argument(s), got %d: %s", cmd.Name(), n, len(args), quoteArgs(args))
	}
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = strconv.Quote(a)
	}
	return strings.Join(q, " ")
}

// rejectUnknownCommands makes an unknown subcommand a usage error of root
// (cobra reports it as a plain error, told apart only by its text): root
// takes no arguments of its own, and without any it prints its help.
func rejectUnknownCommands(root *cobra.Command) {
	if root.SuggestionsMinimumDistance <= 0 {
		root.SuggestionsMinimumDistance = 2 // cobra's own default, which SuggestionsFor does not apply
	}
	root.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		return usageError{errors.New(msg)}
	}
	root.RunE = func(cmd *cobra.Command, args []string) error { return cmd.Help() }
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
	serving   *serving.Service
	retrieval *retrieval.Online
	// predlogMetrics are the prediction log's, when serve opened one.
	predlogMetrics *predlog.Metrics
	// predlog is the prediction log serve opened, nil without one.
	predlog *predlog.Writer
	// schedMetrics are the scheduler's metrics, made once per process.
	schedMetrics *scheduler.Metrics
	// alerts evaluates monitors/*.yaml, built once per process (Alerts).
	alerts  *alert.Evaluator
	closers []func() error
}

// forRepo returns an env like e (context, streams, output, logger) for the
// project in dir, with stores of its own: the caller closes it.
func (e *env) forRepo(dir string) *env {
	return &env{ctx: e.ctx, stdout: e.stdout, stderr: e.stderr, repo: dir, output: e.output, logLevel: e.logLevel, log: e.log}
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
	for _, build := range commands {
		root.AddCommand(build(e))
	}
	return root
}

// run executes the CLI and returns the process exit code. Errors go to stderr,
// results to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{ctx: ctx, stdout: stdout, stderr: stderr, log: slog.New(slog.NewTextHandler(stderr, nil))}
	root := newRootCmd(e)
	rejectUnknownCommands(root)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if cerr := e.close(); err == nil {
		err = cerr
	}
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "error: "+strings.TrimSpace(err.Error()))
	var ue usageError
	if !errors.As(err, &ue) {
		return exitFailure
	}
	// Point to the help of the command that was misused, not the whole CLI's.
	if cmd == nil {
		cmd = root
	}
	if cmd != root && cmd.Runnable() {
		fmt.Fprintln(stderr, "usage: "+cmd.UseLine())
	}
	fmt.Fprintf(stderr, "run '%s --help' for details\n", cmd.CommandPath())
	return exitUsage
}
