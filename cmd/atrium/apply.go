package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/data/catalog"
	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/modeling/trainjob"
	"github.com/atrium-ml/atrium/internal/spec"
)

func newApplyCmd(e *env) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Validate features/*.yaml, show the diff against the registry and store a new catalog version",
		Long: `apply reads every features/*.yaml file of the repository, validates it (structure,
references, types, and every SQL expression bound by DuckDB against the sources'
schemas), checks training/*.yaml and monitors/*.yaml (what atrium train and the
monitors would refuse: fields, schedules, the features and feature sets they
name), and reports every problem at once as file:line. When all is valid it
prints what is added, changed and removed compared with the registered definitions
and stores them as a new catalog version in the metadata database.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			feats, err := validateFeatures(e)
			// Training specs and monitors are checked too (their own
			// problems even when the features have some): nothing is
			// applied unless every file is valid.
			if jerr := validateJobFiles(e, feats); jerr != nil {
				return errors.Join(err, jerr)
			}
			if err != nil {
				return err
			}
			db, err := e.Meta()
			if err != nil {
				return err
			}
			var diff *catalog.Diff
			if dryRun {
				diff, err = catalog.Plan(e.ctx, db, feats)
			} else {
				diff, err = catalog.Apply(e.ctx, db, feats)
			}
			if err != nil {
				return err
			}
			if e.output == "json" {
				if diff.Changes == nil {
					diff.Changes = []catalog.Change{} // [] when nothing changed, not null
				}
				return json.NewEncoder(e.stdout).Encode(diff)
			}
			return diff.WriteText(e.stdout, dryRun)
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "validate and show the diff without storing anything")
	return cmd
}

// validateFeatures loads and fully validates the repository's feature files,
// returning every problem (structural and SQL) in one error.
func validateFeatures(e *env) (*spec.Features, error) {
	p, err := e.Project()
	if err != nil {
		return nil, err
	}
	feats, problems, err := spec.LoadFeaturesWithProblems(p.Dir)
	if err != nil {
		return nil, err
	}
	if len(feats.Entities)+len(feats.Sources)+len(feats.FeatureSets)+len(feats.Services)+len(feats.OnDemandSets) == 0 && len(problems) == 0 {
		return nil, fmt.Errorf("no definitions in %s/*.yaml: expected entities, sources, feature_sets or feature_services", spec.FeaturesDir)
	}
	eng, err := e.Offline(feats)
	if err != nil {
		return nil, err
	}
	if v, ok := eng.(offline.Validator); ok {
		sqlProblems, notes := v.ValidateSQL(e.ctx, feats)
		problems = append(problems, sqlProblems...)
		for _, n := range notes {
			fmt.Fprintln(e.stderr, "note: "+n)
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%d problem(s) in the feature definitions:\n%w", len(problems), problems)
	}
	return feats, nil
}

// validateJobFiles checks training/*.yaml and monitors/*.yaml as `atrium
// train` and the monitors' evaluation would, at apply time: each file's
// fields and schedule, and, when feats is not nil, the features a spec
// names and the feature sets monitors watch. Every problem in one error.
func validateJobFiles(e *env, feats *spec.Features) error {
	p, err := e.Project()
	if err != nil {
		return err
	}
	var ps spec.Problems
	collect := func(err error) error {
		var more spec.Problems
		if errors.As(err, &more) {
			ps = append(ps, more...)
			return nil
		}
		return err
	}
	specs, err := spec.LoadTrainings(p.Dir)
	if err := collect(err); err != nil {
		return err
	}
	ms, err := spec.LoadMonitors(p.Dir)
	if err := collect(err); err != nil {
		return err
	}
	if feats != nil {
		for _, t := range specs {
			_, more := trainjob.ReadSets(t, feats)
			ps = append(ps, more...)
		}
		for _, m := range monitorsOf(ms) {
			if m.FeatureSet != "" && feats.Set(m.FeatureSet) == nil {
				ps.Add(m.File, m.At("feature_set"), "monitor %q: feature set %q is not defined in %s/*.yaml", m.Name, m.FeatureSet, spec.FeaturesDir)
			}
		}
	}
	if len(ps) > 0 {
		return fmt.Errorf("%d problem(s) in %s/ and %s/:\n%w", len(ps), spec.TrainingDir, spec.MonitorsDir, ps)
	}
	return nil
}

// monitorsOf is ms's monitors (none when ms is nil: the files had problems).
func monitorsOf(ms *spec.Monitors) []*spec.Monitor {
	if ms == nil {
		return nil
	}
	return ms.Monitors
}
