// Package trainjob schedules training specs: a spec with a schedule
// (training/*.yaml) is the scheduler job "train:NAME", whose kind runs the
// training orchestrator (train.Run, what `atrium train` runs) for the spec.
//
// Each period of the job waits until the scheduled feature sets the spec
// reads have succeeded up to the period's end (scheduler.Job.FreshUpTo on
// their run jobs): the training set is then built on features fresh up to
// the end of its data window. Sets without a schedule are not waited for:
// they are run by hand, and the scheduler knows nothing of their freshness.
package trainjob

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/atrium-ml/atrium/internal/data/jobs"
	"github.com/atrium-ml/atrium/internal/modeling/train"
	"github.com/atrium-ml/atrium/internal/platform/scheduler"
	"github.com/atrium-ml/atrium/internal/spec"
)

// Kind is the training job kind's name.
const Kind = "train"

// Jobs returns the job of each training spec with a schedule
// ("train:NAME"), waiting for the run jobs of the scheduled feature sets
// it reads. A spec whose features the catalog lacks is an error naming
// its file and line (atrium apply reports it first).
func Jobs(specs []*spec.Training, f *spec.Features) ([]scheduler.Job, error) {
	var out []scheduler.Job
	var ps spec.Problems
	for _, t := range specs {
		if t.Schedule == nil {
			continue
		}
		sets, more := ReadSets(t, f)
		if len(more) > 0 {
			ps = append(ps, more...)
			continue
		}
		j, err := jobs.ScheduledJob(Kind, t.Name, t.Schedule)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.File, err)
		}
		for _, s := range sets {
			if fs := f.Set(s); fs != nil && fs.Schedule != nil {
				j.FreshUpTo = append(j.FreshUpTo, scheduler.JobName(jobs.KindRun, s))
			}
		}
		out = append(out, j)
	}
	if err := ps.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// ReadSets returns the stored feature sets a spec's features read, sorted:
// the sets of its features, and the sources of its on-demand features.
func ReadSets(t *spec.Training, f *spec.Features) ([]string, spec.Problems) {
	res, ps := t.CheckFeatures(f)
	if len(ps) > 0 {
		return nil, ps
	}
	seen := map[string]bool{}
	for _, r := range res {
		if !r.OnDemand {
			seen[r.Set] = true
			continue
		}
		vars, err := f.OnDemandVars(r.Set)
		if err != nil {
			return nil, spec.Problems{t.Problem("features", "features: on-demand set %s: %v", r.Set, err)}
		}
		for _, v := range vars {
			if v.Feature != nil {
				seen[v.Feature.Set] = true
			}
		}
	}
	var out []string
	for s := range seen {
		out = append(out, s)
	}
	slices.Sort(out)
	return out, nil
}

// Kinds returns the training kind, to register in scheduler.Options.Kinds.
// base gives the orchestrator's options but the spec (Features, Engine,
// Tracker, DB, catalog versions, Dir, Logger); it is called when a job
// runs, not before (listing jobs opens no registry), and must be safe for
// concurrent use. specs are the training specs the jobs were made from.
func Kinds(base func() (train.Options, error), specs []*spec.Training) map[string]scheduler.Factory {
	return map[string]scheduler.Factory{
		Kind: func(j scheduler.Job) (scheduler.Kind, error) {
			i := slices.IndexFunc(specs, func(t *spec.Training) bool { return t.Name == j.Target })
			if i < 0 {
				return nil, fmt.Errorf("no training spec named %q in %s/", j.Target, spec.TrainingDir)
			}
			return kind{base: base, spec: specs[i]}, nil
		},
	}
}

type kind struct {
	base func() (train.Options, error)
	spec *spec.Training
}

// Run trains the spec as `atrium train` does. The period only says when
// (its end is what the features were waited for): the spine is read whole,
// as it is when the job runs. A rerun trains again and registers a new
// version; the promotion gate decides, as by hand.
func (k kind) Run(ctx context.Context, _ scheduler.Interval) (scheduler.Result, error) {
	o, err := k.base()
	if err != nil {
		return scheduler.Result{}, fmt.Errorf("train %s: %w", k.spec.Name, err)
	}
	// The orchestrator reads the spec file again (to log it with the run):
	// a repository-relative name is resolved against the project.
	t := *k.spec
	if !filepath.IsAbs(t.File) {
		t.File = filepath.Join(o.Dir, t.File)
	}
	o.Spec = &t
	r, err := train.Run(ctx, o)
	if err != nil {
		if errors.Is(err, train.ErrSpec) {
			// What the spec names changed since it was applied: retrying
			// will not help, but the next period may (after a fix).
			return scheduler.Result{}, fmt.Errorf("training spec %s: %w", k.spec.File, err)
		}
		return scheduler.Result{}, fmt.Errorf("train %s: %w", k.spec.Name, err)
	}
	return Summary(r), nil
}

// Summary is what the job history records of a training: the training
// set's rows, the metrics, the version and the promotion gate's decision
// (a check: passed when the alias moved or there is no gate, a warning
// otherwise).
func Summary(r *train.Result) scheduler.Result {
	var b strings.Builder
	fmt.Fprintf(&b, "%d trials (%d complete), valid %s %.6g, test %s %.6g", r.Trials, r.Complete, r.Metric, r.ValidMetric, r.Metric, r.TestMetric)
	if g := r.Registered; g != nil {
		fmt.Fprintf(&b, ", registered %s version %s", g.Name, g.Version)
	}
	res := scheduler.Result{Rows: r.Fingerprint.Rows, Detail: b.String()}
	if r.Decision.Alias != "" {
		res.Checks = []scheduler.Check{{Name: "promote " + r.Decision.Alias, Level: "warn", Passed: r.Decision.Promote, Detail: r.Decision.Reason}}
	}
	return res
}
