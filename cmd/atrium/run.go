package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/pipeline"
	"github.com/atrium-ml/atrium/internal/data/profile/profiledb"
	"github.com/atrium-ml/atrium/internal/platform/progress"
	"github.com/atrium-ml/atrium/internal/spec"
)

func newRunCmd(e *env) *cobra.Command {
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
				return usagef("--start and --end are required (days, e.g. --start 2026-12-01 --end 2026-12-04)")
			}
			// A run replaces whole UTC days: a time selects the day it falls on.
			now := time.Now()
			s, err := spec.ParseTime(start, now)
			if err != nil {
				return usagef("--start: %v", err)
			}
			en, err := spec.ParseTime(end, now)
			if err != nil {
				return usagef("--end: %v", err)
			}
			s, en = s.Truncate(pipeline.Day), en.Truncate(pipeline.Day)
			if en.Before(s) {
				return usagef("--end %s is before --start %s", end, start)
			}
			l, err := loadCatalog(e)
			if err != nil {
				return err
			}
			if l.Features.Set(args[0]) == nil {
				return fmt.Errorf("%w %q in catalog version %d: the catalog has %s", offline.ErrUnknownSet, args[0], l.Version, setNames(l.Features))
			}
			eng, err := e.Offline(l.Features)
			if err != nil {
				return err
			}
			db, err := e.Meta()
			if err != nil {
				return err
			}
			req := offline.RunRequest{Set: args[0], Start: s, End: en}
			if tail := pipeline.FarEnd(e.ctx, eng, l.Features, req, now); tail != nil {
				e.log.Warn(tail.String())
			}
			bar := progress.New(e.stderr, int64(len(offline.RunStages)), "run "+args[0], "stages")
			req.Progress = func(string) { bar.Add(1) }
			r, runErr := pipeline.Execute(e.ctx, db, eng, req, l.Version)
			bar.Finish()
			if r == nil {
				return runErr
			}
			if runErr == nil && r.Profiles != nil {
				// The partitions are published: a profile not saved is
				// reported, the data stays.
				runErr = profiledb.Save(e.ctx, db, r.Set, r.ID, r.Profiles, r.FinishedAt)
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
	cmd.Flags().StringVar(&start, "start", "", "first UTC day (2026-12-01; a time selects its day)")
	cmd.Flags().StringVar(&end, "end", "", "last UTC day, included (2026-12-04; a time selects its day)")
	return cmd
}

// setNames lists the catalog's feature sets for an error message.
func setNames(f *spec.Features) string {
	if len(f.FeatureSets) == 0 {
		return "no feature sets (define them in features/*.yaml and run atrium apply)"
	}
	names := make([]string, len(f.FeatureSets))
	for i, fs := range f.FeatureSets {
		names[i] = fs.Name
	}
	return strings.Join(names, ", ")
}
