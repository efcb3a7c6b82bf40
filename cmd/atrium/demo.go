package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/demo"
	"github.com/atrium-ml/atrium/internal/demo/steps"
	"github.com/atrium-ml/atrium/internal/modeling/predict"
	"github.com/atrium-ml/atrium/internal/modeling/train"
	"github.com/atrium-ml/atrium/internal/platform/progress"
	"github.com/atrium-ml/atrium/internal/serving/batch"
)

// demoSize holds the flags that size and seed generated data (demo, demo
// generate, demo ranking, init).
type demoSize struct {
	name    string
	seed    uint64
	events  int
	workers int
	start   string
	// recent makes the default start recent: the sessions end at the last
	// midnight, so that served values are fresh (within their ttl) now.
	recent bool
}

func (s *demoSize) flags(cmd *cobra.Command, def string) {
	f := cmd.Flags()
	f.StringVar(&s.name, "size", def, "data size: "+strings.Join(demo.PresetNames(), ", "))
	startDefault := demo.DefaultStart.Format(time.DateOnly)
	if s.recent {
		startDefault = "the size's days before today"
	}
	f.StringVar(&s.start, "start", "", "first day of sessions, YYYY-MM-DD (default: "+startDefault+")")
	f.Uint64Var(&s.seed, "seed", 1, "random seed: the same seed and size give the same data")
	f.IntVar(&s.events, "events", 0, "scale the data to about this many events (overrides the size's count)")
	f.IntVar(&s.workers, "workers", 0, "goroutines generating days in parallel (default: one per core)")
}

func (s *demoSize) config() (demo.Config, error) {
	cfg, err := demo.Preset(s.name)
	if err != nil {
		return cfg, usagef("--size: %v", err)
	}
	if s.events < 0 || s.workers < 0 {
		return cfg, usagef("--events %d, --workers %d: want >= 0", s.events, s.workers)
	}
	cfg.Seed = s.seed
	if s.events > 0 {
		cfg = cfg.WithEvents(s.events)
	}
	switch {
	case s.start != "":
		t, err := time.Parse(time.DateOnly, s.start)
		if err != nil {
			return cfg, usagef("--start %q: want a date YYYY-MM-DD", s.start)
		}
		cfg.Start = t
	case s.recent:
		cfg.Start = recentStart(time.Now(), cfg.Days)
	}
	cfg.Workers = s.workers
	if err := cfg.Validate(); err != nil {
		return cfg, usagef("%v", err)
	}
	return cfg, nil
}

// recentStart is the start of days of sessions that end at the last midnight
// (UTC) before now.
func recentStart(now time.Time, days int) time.Time {
	return now.UTC().Truncate(24*time.Hour).AddDate(0, 0, -days)
}

// withForceHint adds how to overwrite to an error about an existing project.
func withForceHint(err error) error {
	if errors.Is(err, demo.ErrExists) {
		return fmt.Errorf("%w\n(use --force to overwrite)", err)
	}
	return err
}

func newDemoCmd(e *env) *cobra.Command {
	var dir string
	var force bool
	size := demoSize{recent: true}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the platform end to end on a generated rental marketplace",
		Long: `Generate a rental marketplace (listings, users, search sessions with clicks and
visit requests drawn from a known utility function) into a fresh project, then
run the platform on it step by step, printing what each step did: apply the
feature definitions, compute every feature set over the date range, materialize
the latest values online, build a point-in-time training set, read online feature
vectors from an in-process server, and train a ranking model and compare it with
the true-utility ranking and a random one. It ends with how to put an atrium
binary on your PATH to run the commands it showed by hand.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := size.config()
			if err != nil {
				return err
			}
			if dir == "" {
				if dir, err = os.MkdirTemp("", "atrium-demo-*"); err != nil {
					return fmt.Errorf("demo: %w", err)
				}
			}
			if dir, err = filepath.Abs(dir); err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			// The generated project's stores, opened once for every step.
			project := e.forRepo(dir)
			err = steps.Run(e.ctx, steps.Options{Dir: dir, Config: cfg, Size: size.name, Force: force,
				Out: e.stdout, Progress: e.stderr, Logger: e.log, Stores: project, Modeler: demoModeler{project}, Serving: project, Monitoring: project})
			return withForceHint(errors.Join(err, project.close()))
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "project directory to create (default: a new directory under the OS temp dir)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite the project files if --dir already holds a project")
	size.flags(cmd, "small")
	cmd.AddCommand(newDemoGenerateCmd(e), newDemoRankingCmd(e))
	return cmd
}

func newDemoGenerateCmd(e *env) *cobra.Command {
	var force bool
	var size demoSize
	cmd := &cobra.Command{
		Use:   "generate DIR",
		Short: "Write the demo project and generated data into DIR (no other step)",
		Long: `Write atrium.yaml, features/*.yaml and the generated data (data/listings.csv,
data/users.csv, data/events-YYYY-MM-DD.csv) into DIR. With --size large or
--events 10000000 it writes benchmark-sized data, streaming, on every core.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := size.config()
			if err != nil {
				return err
			}
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return fmt.Errorf("demo generate: %w", err)
			}
			start := time.Now()
			_, sum, err := steps.Generate(e.ctx, args[0], cfg, force, e.stderr)
			if err != nil {
				return fmt.Errorf("demo generate: %w", withForceHint(err))
			}
			fmt.Fprintf(e.stdout, "wrote %s to %s in %s\n", sum.Describe(), args[0], steps.Since(start))
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite the project files if DIR already holds a project")
	size.flags(cmd, "small")
	return cmd
}

func newDemoRankingCmd(e *env) *cobra.Command {
	var out, testOut string
	var testDays int
	var truth bool
	var size demoSize
	cmd := &cobra.Command{
		Use:   "ranking --out FILE",
		Short: "Write a learning-to-rank training set from generated sessions",
		Long: `Write one row per (session, listing impression): session_id (the query id),
label (0 shown, 1 clicked, 2 visit requested) and the features a ranker can see
at search time (listing, user and user-listing features; not the position).
CSV or Parquet by the file's extension. Train on it with
  atrium fit --data FILE --label label --group session_id --task lambdarank
--test-out and --test-days put the last days' sessions in a second file;
--truth adds the true utility as a last column (the answer: drop it to train).`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usagef("--out is required")
			}
			if (testOut == "") != (testDays == 0) {
				return usagef("--test-out and --test-days go together")
			}
			cfg, err := size.config()
			if err != nil {
				return err
			}
			m, err := demo.NewMarket(cfg)
			if err != nil {
				return err
			}
			start := time.Now()
			bar := progress.New(e.stderr, 0, "ranking set", "rows")
			sum, err := m.WriteRanking(e.ctx, out, demo.RankingOptions{TestPath: testOut, TestDays: testDays, Truth: truth, Progress: bar.Add})
			bar.Finish()
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "wrote %s rows of %s sessions to %s", demo.Count(sum.Rows), demo.Count(sum.Sessions), out)
			if testOut != "" {
				fmt.Fprintf(e.stdout, ", %s rows of %s sessions to %s", demo.Count(sum.TestRows), demo.Count(sum.TestSessions), testOut)
			}
			fmt.Fprintf(e.stdout, " in %s\n", steps.Since(start))
			if testOut == "" {
				return nil
			}
			ev, err := m.Evaluate(e.ctx, cfg.Days-testDays, cfg.Days, 10, demo.BaselineRankers(cfg.Seed))
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "reference NDCG@10 on the test sessions (observed labels / attentive labels):")
			for i, name := range ev.Rankers {
				fmt.Fprintf(e.stdout, " %s %.4f / %.4f;", name, ev.Observed[i], ev.Attentive[i])
			}
			fmt.Fprintln(e.stdout)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "output file, .csv or .parquet (required)")
	f.StringVar(&testOut, "test-out", "", "file for the sessions of the last --test-days days")
	f.IntVar(&testDays, "test-days", 0, "days of sessions, at the end of the range, for --test-out")
	f.BoolVar(&truth, "truth", false, "add the true_utility column")
	size.flags(cmd, "small")
	return cmd
}

// demoModeler trains and predicts for the demo's fit step with the code of
// `atrium train` and `atrium predict`, printing what they print. e is the
// demo project's env: a registered model goes to the project's registry.
type demoModeler struct{ e *env }

// sub is an env for one command whose results go to out, as text.
func (m demoModeler) sub(ctx context.Context, out io.Writer) *env {
	e := m.e.forRepo(m.e.repo)
	e.ctx, e.stdout, e.output = ctx, out, "text"
	return e
}

func (m demoModeler) Train(ctx context.Context, spec string, out io.Writer) (string, error) {
	e := m.sub(ctx, out)
	res, err := trainSpec(e, spec, train.Options{}, nil) // the project's stores
	if err == nil {
		err = writeTrainSummary(out, "text", res, "")
	}
	if err = errors.Join(err, e.close()); err != nil {
		return "", err
	}
	return res.RunID, nil
}

func (m demoModeler) Predict(ctx context.Context, req steps.PredictRequest, out io.Writer) error {
	e := m.sub(ctx, out)
	var err error
	if req.Spine != "" {
		err = runPredictRegistered(e, batch.Options{Model: req.Model, Spine: req.Spine, Passthrough: req.Passthrough, Out: req.Out}, "")
	} else {
		err = runPredict(e, predict.Options{Model: req.Model, Data: req.Data, Passthrough: req.Passthrough, Out: req.Out})
	}
	return errors.Join(err, e.close())
}
