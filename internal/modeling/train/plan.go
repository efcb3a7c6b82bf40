package train

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/tune"
	"github.com/atrium-ml/atrium/internal/serving"
	"github.com/atrium-ml/atrium/internal/spec"
)

// Plan is what a run of the spec would do: a dry run's answer
// (Result.Plan), computed after the spec, the feature references, the
// spine's columns, the search space and the split were checked against the
// real data, and before anything is trained, tracked or registered.
type Plan struct {
	// Model is the learner and its objective ("gbdt lambdarank"); Params
	// the fixed parameters every trial starts from.
	Model  string            `json:"model"`
	Params map[string]string `json:"params,omitempty"`
	// Split is how the rows are cut ("by time: valid 7d, test 7d"); Folds
	// the cross-validation folds (kfold).
	Split string `json:"split"`
	Folds int    `json:"folds,omitempty"`
	// Trials is the spec's budget (1 without a tune block), Parallel how
	// many run at once. GridPoints is the grid's size with sampler grid: a
	// grid stops when every point ran, so the run does min(Trials,
	// GridPoints) trials.
	Trials     int    `json:"trials"`
	GridPoints int    `json:"grid_points,omitempty"`
	Parallel   int    `json:"parallel"`
	Sampler    string `json:"sampler,omitempty"`
	Pruner     string `json:"pruner,omitempty"`
	// Space is the searched parameters, one line each, in spec order.
	Space []string `json:"space,omitempty"`
	// Metric is optimized on the validation rows and reported (and gated
	// on) on the test rows; Maximize is its direction.
	Metric   string `json:"metric"`
	Maximize bool   `json:"maximize"`
	// Experiment is the tracking experiment the parent run and the trials'
	// child runs would go to.
	Experiment string `json:"experiment"`
	// Register is the registered model a version would be added to ("" when
	// not registered), Alias the alias it would get.
	Register string `json:"register,omitempty"`
	Alias    string `json:"alias,omitempty"`
	// Promote is the promotion alias and its margin; Champion the version
	// now at that alias ("" when there is none or no registry to ask).
	Promote    string  `json:"promote,omitempty"`
	IfBetterBy float64 `json:"if_better_by,omitempty"`
	Champion   string  `json:"champion,omitempty"`
	// ChampionTestMetric is the champion's metric on the test rows, the bar
	// the candidate must beat by IfBetterBy; nil when there is no champion
	// or it cannot be compared.
	ChampionTestMetric *float64 `json:"champion_test_metric,omitempty"`
	// ChampionKept says why the champion cannot be compared with the
	// candidate (a model of another task or label, or features missing
	// from the training set): the run will keep it whatever the candidate
	// scores, as the promotion gate does. "" when it can be compared.
	ChampionKept string `json:"champion_kept,omitempty"`
}

// plan describes the run of the spec on splits of ds. It checks what a run
// would check before its first trial (the search space, the sampler and
// the pruner) and reads the promotion alias's current version, writing
// nothing. That version is judged as the promotion gate will judge it
// (judgeChampion): scored on the test rows, or kept when it cannot be
// compared with the candidate, an outcome known before any training.
func plan(ctx context.Context, o *Options, ds *ml.Dataset, splits *Splits) (*Plan, error) {
	t := o.Spec
	sp, err := space(t)
	if err != nil {
		return nil, err
	}
	so, oo, err := studyOptions(t, sp)
	if err != nil {
		return nil, err
	}
	p := &Plan{Model: t.Model.Kind + " " + t.Model.Objective, Params: maps.Clone(t.Model.Params),
		Split: describeSplit(t.Split), Folds: len(splits.Folds), Trials: oo.Trials, Parallel: max(oo.Parallel, 1),
		Metric: t.Metric(), Maximize: t.Maximize(), Experiment: t.Name}
	if f, ok := so.Sampler.(tune.Finite); ok {
		p.GridPoints = f.Size()
	}
	if tu := t.Tune; tu != nil {
		p.Sampler, p.Pruner = tu.Sampler, tu.Pruner
		for _, sp := range tu.Space {
			p.Space = append(p.Space, describeParam(sp))
		}
	}
	r := t.Register
	if r == nil {
		return p, nil
	}
	p.Register, p.Alias = r.Model, r.Alias
	if r.Promote == nil {
		return p, nil
	}
	p.Promote, p.IfBetterBy = r.Promote.Alias, r.Promote.IfBetterBy
	if o.Tracker == nil {
		return p, nil
	}
	champ, err := o.Tracker.LoadVersion(ctx, r.Model, "@"+r.Promote.Alias)
	switch {
	case errors.Is(err, serving.ErrNotFound):
		return p, nil
	case err != nil:
		return nil, fmt.Errorf("dry run: read %s@%s: %w", r.Model, r.Promote.Alias, err)
	}
	p.Champion = champ.Version
	v, kept := judgeChampion(ctx, t, p.Metric, r.Promote.Alias, champ, ds.Subset(splits.Test))
	if kept != nil {
		p.ChampionKept = kept.why
	} else {
		p.ChampionTestMetric = &v
	}
	return p, nil
}

// describeSplit is the split as the spec says it.
func describeSplit(s spec.TrainingSplit) string {
	switch s.By {
	case spec.SplitByTime:
		return fmt.Sprintf("by time: valid the %s before test, test the last %s", s.ValidSpan, s.TestSpan)
	case spec.SplitByKFold:
		return fmt.Sprintf("%d folds of the rows not in test, test %g of the rows (seed %d)", s.KFold, s.Test, s.Seed)
	}
	return fmt.Sprintf("random: valid %g, test %g of the rows (seed %d)", s.Valid, s.Test, s.Seed)
}

// describeParam is a searched parameter as one line ("num_leaves int [4,
// 63] log").
func describeParam(p spec.TuneParam) string {
	var b strings.Builder
	b.WriteString(p.Name + " " + p.Type)
	if p.Type == "int" || p.Type == "float" {
		fmt.Fprintf(&b, " [%g, %g]", p.Low, p.High)
		if p.Log {
			b.WriteString(" log")
		}
		if p.Step > 0 {
			fmt.Fprintf(&b, " step %g", p.Step)
		}
		return b.String()
	}
	fmt.Fprintf(&b, " {%s}", strings.Join(p.Choices, ", "))
	return b.String()
}
