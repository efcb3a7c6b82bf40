package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/demo"
)

func newInitCmd(e *env) *cobra.Command {
	var force, noData bool
	// A fixed start by default: the commands init prints, and the tour of
	// the README, hold the data's dates and are true on any day.
	var size demoSize
	cmd := &cobra.Command{
		Use:   "init [DIR]",
		Short: "Create a project: atrium.yaml, features/*.yaml and a small data sample",
		Long: `Create a project directory (default: --repo) with atrium.yaml, the rental
marketplace's feature definitions in features/, train.py (records a model in
MLflow tracking), and a small generated data sample in data/ that they read,
with spines of labelled impressions for training and testing. The sample's
sessions start on --start (default ` + demo.DefaultStart.Format(time.DateOnly) + `), so the commands init prints
(the README's tour) hold the same dates on any day. Existing files are never
overwritten unless --force is given.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("init takes at most one directory, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := e.repo
			if len(args) == 1 {
				dir = args[0]
			}
			cfg, err := size.config()
			if err != nil {
				return err
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("init: %w", err)
			}
			if !force {
				if err := checkInitConflicts(dir, !noData); err != nil {
					return err
				}
			}
			files, err := demo.WriteProject(dir, true)
			if err != nil {
				return fmt.Errorf("init: %w", err)
			}
			fmt.Fprintf(e.stdout, "created project in %s\n", dir)
			for _, f := range files {
				fmt.Fprintf(e.stdout, "  %s\n", f)
			}
			if noData {
				fmt.Fprintf(e.stdout, "next: put your data where features/*.yaml's sources point, then atrium apply (docs/quickstart.md)\n")
				return nil
			}
			m, err := demo.NewMarket(cfg)
			if err != nil {
				return err
			}
			sum, err := m.WriteData(e.ctx, dir, nil)
			if err != nil {
				return fmt.Errorf("init: %w", err)
			}
			fmt.Fprintf(e.stdout, "  data/: %s\n", sum.Describe())
			train, test, err := m.WriteSpines(e.ctx, dir)
			if err != nil {
				return fmt.Errorf("init: %w", err)
			}
			fmt.Fprintf(e.stdout, "  data/%s, data/%s: %s and %s labelled impressions to train and test on\n",
				demo.TrainSpineFile, demo.TestSpineFile, demo.Count(train.Rows), demo.Count(test.Rows))
			fmt.Fprintf(e.stdout, "next, inside %s, every step through fit, predict and MLflow tracking (docs/quickstart.md explains each):\n", dir)
			for _, line := range cfg.Tour() {
				fmt.Fprintf(e.stdout, "  %s\n", line)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite existing project and data files")
	cmd.Flags().BoolVar(&noData, "no-data", false, "write only atrium.yaml and features/, no data sample")
	size.flags(cmd, "tiny")
	return cmd
}

// checkInitConflicts names every project file, and every data file when withData,
// that init would overwrite.
func checkInitConflicts(dir string, withData bool) error {
	paths := demo.ProjectFiles()
	if withData {
		paths = append(paths, filepath.Join("data", demo.ListingsFile), filepath.Join("data", demo.UsersFile),
			filepath.Join("data", demo.TrainSpineFile), filepath.Join("data", demo.TestSpineFile))
		events, _ := filepath.Glob(filepath.Join(dir, "data", "events*.csv"))
		for _, f := range events {
			paths = append(paths, filepath.Join("data", filepath.Base(f)))
		}
	}
	var errs []error
	for _, p := range paths {
		if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
			errs = append(errs, fmt.Errorf("%s: %w", filepath.Join(dir, p), demo.ErrExists))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	hint := "use --force to overwrite"
	if withData {
		hint += ", or --no-data to keep your data"
	}
	return fmt.Errorf("init: %w\n(%s)", errors.Join(errs...), hint)
}
