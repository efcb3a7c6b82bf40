package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/data/offline"
	_ "github.com/atrium-ml/atrium/internal/data/offline/duckdb" // duckdb:// offline engine
	"github.com/atrium-ml/atrium/internal/data/pipeline"
	"github.com/atrium-ml/atrium/internal/platform/progress"
	"github.com/atrium-ml/atrium/internal/spec"
)

func init() {
	register(func(e *env) *cobra.Command {
		var start, end string
		cmd := &cobra.Command{
			Use:   "run SET --start DATE --end DATE",
			Short: "Compute a feature set into the offline store for whole UTC days",
			Long: `run computes a feature set from its source for the UTC days start..end (both
included) and replaces exactly those date partitions of the offline store, each
atomically, after the set's data-quality checks pass. An aggregated set gets a row
at every slide step T of those days for every key whose largest window holds a
source row, window w covering T - w <= ts < T. The run is recorded (atrium runs).`,
			Args: exactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if start == "" || end == "" {
					return usagef("--start and --end are required (YYYY-MM-DD)")
				}
				s, err := offline.ParseDate(start)
				if err != nil {
					return usagef("--start: %v", err)
				}
				en, err := offline.ParseDate(end)
				if err != nil {
					return usagef("--end: %v", err)
				}
				if en.Before(s) {
					return usagef("--end %s is before --start %s", end, start)
				}
				l, err := loadCatalog(e)
				if err != nil {
					return err
				}
				if l.Features.Set(args[0]) == nil {
					return fmt.Errorf("%w %q in catalog version %d", offline.ErrUnknownSet, args[0], l.Version)
				}
				eng, err := openOfflineEngine(e, l.Features)
				if err != nil {
					return err
				}
				db, err := e.Meta()
				if err != nil {
					return err
				}
				bar := progress.New(e.stderr, int64(len(offline.RunStages)), "run "+args[0], "stages")
				req := offline.RunRequest{Set: args[0], Start: s, End: en, Progress: func(string) { bar.Add(1) }}
				r, runErr := pipeline.Execute(e.ctx, db, eng, req, l.Version)
				bar.Finish()
				if r == nil {
					return runErr
				}
				if e.output == "json" {
					if err := json.NewEncoder(e.stdout).Encode(r); err != nil {
						return err
					}
				} else if err := r.WriteText(e.stdout); err != nil {
					return err
				}
				if runErr != nil && errors.Is(runErr, offline.ErrChecksFailed) {
					return fmt.Errorf("run %s: %w; the previous partitions are unchanged", r.ID, offline.ErrChecksFailed)
				}
				return runErr
			},
		}
		cmd.Flags().StringVar(&start, "start", "", "first day (YYYY-MM-DD, UTC)")
		cmd.Flags().StringVar(&end, "end", "", "last day, included (YYYY-MM-DD, UTC)")
		return cmd
	})
}

// openOfflineEngine opens the project's offline store with the given catalog;
// it is closed when the command ends.
func openOfflineEngine(e *env, feats *spec.Features) (offline.Engine, error) {
	p, err := e.Project()
	if err != nil {
		return nil, err
	}
	eng, err := offline.Open(e.ctx, p.Stores.Offline, offline.Options{Features: feats, BaseDir: p.Dir, Logger: e.log})
	if err != nil {
		return nil, err
	}
	e.onClose(eng.Close)
	return eng, nil
}
