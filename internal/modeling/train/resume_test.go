package train

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/modeling/tune"
	"github.com/atrium-ml/atrium/internal/modeling/tune/tunedb"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/registry"
	"github.com/atrium-ml/atrium/internal/tracking"
)

// resumeProject is a project whose runs and studies are kept in one
// metadata database, as `atrium train` keeps them, so that a study can be
// resumed.
func resumeProject(t *testing.T) (*project, *tracking.Store, Options) {
	t.Helper()
	p := newProject(t)
	db := metatest.SQLite(t, tracking.Schema, registry.Schema, tunedb.Schema)
	ts, err := tracking.New(context.Background(), db, tracking.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p.stores.Tracking, p.stores.Registry = ts, registry.New(ts)
	return p, ts, Options{Dir: p.dir, Features: p.feats, Engine: p.eng, Tracker: p.stores, DB: db, Threads: 2}
}

// resumeSpec is the ranker of 4 trials, one at a time.
var resumeSpec = strings.NewReplacer("MARGIN", "0", "trials: 6", "trials: 4", "parallel: 2", "parallel: 1").Replace(rankerSpec)

// interrupt runs opts until a trial of its study is recorded, then cancels
// it, as a kill would stop it: its parent run stays RUNNING. It returns the
// parent run's id.
func interrupt(t *testing.T, ts *tracking.Store, opts Options) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	found := make(chan string, 1)
	go func() {
		defer cancel()
		for ctx.Err() == nil {
			runs, _, _ := ts.SearchRuns(ctx, tracking.RunQuery{ExperimentIDs: []string{"1"},
				Filter: "tags.`atrium.study` = 'ranker' and attributes.status = 'RUNNING'"})
			if len(runs) == 1 {
				kids, _, _ := ts.SearchRuns(ctx, tracking.RunQuery{ExperimentIDs: []string{"1"},
					Filter: "tags.`mlflow.parentRunId` = '" + runs[0].Info.RunID + "' and attributes.status != 'RUNNING'"})
				if len(kids) >= 1 {
					found <- runs[0].Info.RunID
					return
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	// The cancel may stop a storage call mid-transaction, whose error is
	// not always context.Canceled: any error of the cancelled run will do.
	if _, err := Run(ctx, opts); err == nil {
		t.Fatal("interrupted run: no error")
	}
	select {
	case id := <-found:
		return id
	default:
		t.Fatal("the run ended before a trial was recorded")
		return ""
	}
}

// runStatus is the status of a run.
func runStatus(t *testing.T, ts *tracking.Store, id string) string {
	t.Helper()
	r, err := ts.GetRun(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r.Info.Status
}

// TestRunResumeChangedSpec interrupts a study, then resumes it with specs
// that changed what makes its trials comparable: each is refused with an
// ErrResume error naming what changed, and leaves the study's parent run
// RUNNING, so that the unchanged spec then resumes it (and a spec that only
// changed the budget or the sampler would).
func TestRunResumeChangedSpec(t *testing.T) {
	p, ts, opts := resumeProject(t)
	opts.Spec = p.spec(t, "ranker.yaml", resumeSpec)
	parent := interrupt(t, ts, opts)
	for _, c := range []struct {
		name, from, to, want string
	}{
		{"split", "valid: 5d, test: 5d", "valid: 4d, test: 5d", `the spec's split changed since the study ranker started (split was {"by":"time","valid_span":"5d","test_span":"5d","seed":1}, now {"by":"time","valid_span":"4d","test_span":"5d","seed":1})`},
		{"fixed params", "num_iterations: 40", "num_iterations: 30", "the spec's model changed"},
		{"space", "num_leaves: {int: [4, 31], log: true}", "num_leaves: {int: [100, 200]}", "the spec's space changed"},
		{"metric", "metric: ndcg@5", "metric: ndcg@10", "the spec's metric changed since the study ranker started (metric was maximize ndcg@5, now maximize ndcg@10)"},
		{"direction", "metric: ndcg@5", "metric: ndcg@5\n  direction: minimize", "the spec's metric changed"},
		{"spine", "label: relevance", "label: relevance, weight: listing_id", "the spec's spine changed"},
		{"features", "features: {service: ranker}", "features: {service: ranker, exclude: [city]}", "the spec's features changed"},
		{"two parts", "valid: 5d, test: 5d}\nmodel: {kind: gbdt, objective: lambdarank, params: {num_iterations: 40",
			"valid: 4d, test: 5d}\nmodel: {kind: gbdt, objective: lambdarank, params: {num_iterations: 30", "the spec's split and model changed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(resumeSpec, c.from, c.to, 1)
			if src == resumeSpec {
				t.Fatalf("%q is not in the spec", c.from)
			}
			o := opts
			o.Spec, o.Resume = p.spec(t, "ranker.yaml", src), true
			_, err := Run(context.Background(), o)
			if !errors.Is(err, ErrResume) || !strings.Contains(err.Error(), c.want) || !strings.HasSuffix(err.Error(), "start a new study without --resume") {
				t.Errorf("error %v, want ErrResume containing %q", err, c.want)
			}
			if s := runStatus(t, ts, parent); s != "RUNNING" {
				t.Errorf("parent run %s after a refused resume, want RUNNING", s)
			}
		})
	}
	o := opts
	o.Spec = p.spec(t, "ranker.yaml", strings.Replace(strings.Replace(resumeSpec, "trials: 4", "trials: 5", 1), "pruner: median", "pruner: none", 1))
	o.Resume = true
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.RunID != parent || res.Trials != 5 {
		t.Errorf("resumed run %s with %d trials, want %s with 5", res.RunID, res.Trials, parent)
	}
}

// TestRunResumeRefusedKeepsStudy checks that a resume refused before any
// trial ran leaves the interrupted study resumable, for a study started
// before its parent run was tagged with the spec's parts (whose direction
// only the study storage checks), and that --resume with nothing to resume
// is an error rather than a new study.
func TestRunResumeRefusedKeepsStudy(t *testing.T) {
	p, ts, opts := resumeProject(t)
	ctx := context.Background()
	opts.Spec, opts.Resume = p.spec(t, "ranker.yaml", resumeSpec), true
	_, err := Run(ctx, opts)
	if want := "--resume: no interrupted study of ranker to resume (no experiment ranker); run without --resume"; !errors.Is(err, ErrResume) || err.Error() != want {
		t.Fatalf("resume of nothing: %v, want ErrResume %q", err, want)
	}
	if e, err := ts.GetExperimentByName(ctx, "ranker"); err == nil {
		t.Fatalf("resume of nothing created experiment %s", e.ExperimentID)
	}
	if runs, _, _ := ts.SearchRuns(ctx, tracking.RunQuery{ExperimentIDs: []string{"1"}}); len(runs) != 0 {
		t.Fatalf("resume of nothing made %d runs", len(runs))
	}

	opts.Resume = false
	parent := interrupt(t, ts, opts)
	// A study started before the tags were written.
	r, err := ts.GetRun(ctx, parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range r.Data.Tags {
		if strings.HasPrefix(kv.Key, TagStudyPrefix) {
			if err := ts.DeleteTag(ctx, parent, kv.Key); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []struct {
		name, from, to string
		want           error
	}{
		{"direction", "metric: ndcg@5", "metric: ndcg@5\n  direction: minimize", tune.ErrDirection},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := opts
			o.Spec, o.Resume = p.spec(t, "ranker.yaml", strings.Replace(resumeSpec, c.from, c.to, 1)), true
			if _, err := Run(ctx, o); !errors.Is(err, c.want) || !strings.HasPrefix(err.Error(), "--resume: ") {
				t.Errorf("error %v, want %v", err, c.want)
			}
			if s := runStatus(t, ts, parent); s != "RUNNING" {
				t.Errorf("parent run %s after a refused resume, want RUNNING", s)
			}
		})
	}
	opts.Spec, opts.Resume = p.spec(t, "ranker.yaml", resumeSpec), true
	res, err := Run(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.RunID != parent || res.Trials != 4 || runStatus(t, ts, parent) != "FINISHED" {
		t.Errorf("resumed run %s with %d trials, want %s with 4, FINISHED", res.RunID, res.Trials, parent)
	}
	_, err = Run(ctx, opts)
	if !errors.Is(err, ErrResume) {
		t.Errorf("resume of a finished study: %v, want ErrResume", err)
	}
}
