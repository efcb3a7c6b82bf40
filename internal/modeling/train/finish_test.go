package train

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/modeling/tune"
	"github.com/atrium-ml/atrium/internal/modeling/tune/tunedb"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/registry"
	"github.com/atrium-ml/atrium/internal/spec"
	"github.com/atrium-ml/atrium/internal/tracking"
)

// TestRunTwoProcessesFinishOnce runs one study in two processes, the
// second joining it with --resume while the first runs its trials: both
// run trials, and exactly one refits, registers and ends the parent run,
// the other saying which process finishes it.
func TestRunTwoProcessesFinishOnce(t *testing.T) {
	ctx := context.Background()
	p, ts, opts := resumeProject(t)
	opts.Spec = p.spec(t, "ranker.yaml", strings.Replace(resumeSpec, "trials: 4", "trials: 10", 1))
	type outcome struct {
		res *Result
		err error
	}
	first := make(chan outcome, 1)
	go func() {
		res, err := Run(ctx, opts)
		first <- outcome{res, err}
	}()
	// The second process joins once a trial of the first is done.
	for joined := false; !joined; time.Sleep(5 * time.Millisecond) {
		runs, _, _ := ts.SearchRuns(ctx, tracking.RunQuery{ExperimentIDs: []string{"1"}, Filter: "tags.`mlflow.parentRunId` != ''"})
		for _, r := range runs {
			if r.Info.Status != "RUNNING" {
				joined = true
			}
		}
	}
	second := opts
	second.Resume = true
	res2, err2 := Run(ctx, second)
	o1 := <-first
	if o1.err != nil || err2 != nil {
		t.Fatalf("first process: %v; second: %v", o1.err, err2)
	}
	res1 := o1.res
	if res1.RunID != res2.RunID || res1.Trials != 10 || res2.Trials != 10 || res1.BestTrial != res2.BestTrial {
		t.Errorf("runs %s and %s, %d and %d trials, best %d and %d: want one study of 10 trials", res1.RunID, res2.RunID,
			res1.Trials, res2.Trials, res1.BestTrial, res2.BestTrial)
	}
	finisher, other := res1, res2
	if res1.FinishedBy != "" {
		finisher, other = res2, res1
	}
	if finisher.Registered == nil || finisher.FinishedBy != "" || other.Registered != nil || !strings.HasPrefix(other.FinishedBy, "process ") ||
		other.TestMetric != 0 || other.Decision.Promote {
		t.Fatalf("finisher: registered %+v, finished by %q; other: registered %+v, finished by %q, test %v, decision %+v",
			finisher.Registered, finisher.FinishedBy, other.Registered, other.FinishedBy, other.TestMetric, other.Decision)
	}
	vs, _, err := p.stores.Registry.SearchModelVersions(ctx, registry.VersionQuery{Filter: "name = 'ranker'"})
	if err != nil || len(vs) != 1 {
		t.Errorf("%d versions of ranker (%v), want 1", len(vs), err)
	}
	if s := runStatus(t, ts, res1.RunID); s != "FINISHED" {
		t.Errorf("parent run %s, want FINISHED", s)
	}
}

// TestRunFinishClaim resumes interrupted studies whose finishing claim is
// in each state another process can leave it in: none, or one of a dead
// process (its heartbeat stale), is taken and the study finished; a live
// one is left to its process, which the result names, and the parent run
// is left RUNNING to it.
func TestRunFinishClaim(t *testing.T) {
	ctx := context.Background()
	p, ts, opts := resumeProject(t)
	opts.Spec = p.spec(t, "ranker.yaml", resumeSpec)
	st := tunedb.New(opts.DB)
	// The live claim is last: its parent run stays RUNNING, and interrupt
	// wants the study's only one.
	for i, c := range []struct {
		name   string
		beat   time.Duration // the claim's last heartbeat, ago; 0: no claim
		finish bool
	}{
		{"none", 0, true},
		{"dead process", time.Hour, true},
		{"live process", time.Second, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			parent := interrupt(t, ts, opts)
			if c.beat > 0 {
				id, err := st.CreateStudy(ctx, "ranker/"+parent+"/finish", tune.Minimize)
				if err != nil {
					t.Fatal(err)
				}
				ref, err := st.CreateTrial(ctx, id, 1, time.Now().Add(-c.beat))
				if err != nil {
					t.Fatal(err)
				}
				if err := st.SetAttr(ctx, ref.ID, tune.UserAttr, attrFinisher, "process 99 on elsewhere"); err != nil {
					t.Fatal(err)
				}
			}
			o := opts
			o.Resume = true
			res, err := Run(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			if res.RunID != parent || res.Trials != 4 {
				t.Errorf("resumed run %s with %d trials, want %s with 4", res.RunID, res.Trials, parent)
			}
			status := runStatus(t, ts, parent)
			if c.finish {
				if res.FinishedBy != "" || res.Registered == nil || res.Registered.Version != string(rune('1'+i)) || status != "FINISHED" {
					t.Errorf("finished by %q, registered %+v, parent run %s: want this process to finish it", res.FinishedBy, res.Registered, status)
				}
				return
			}
			if res.FinishedBy != "process 99 on elsewhere" || res.Registered != nil || status != "RUNNING" {
				t.Errorf("finished by %q, registered %+v, parent run %s: want it left to process 99, RUNNING", res.FinishedBy, res.Registered, status)
			}
		})
	}
}

// TestFinishClaimEnd checks how a finishing claim ends: a finisher that
// completes or fails keeps it (the others are told it finished, or failed,
// and the parent run is not finished twice); one interrupted frees it for
// the process resuming the study.
func TestFinishClaimEnd(t *testing.T) {
	for _, c := range []struct {
		name      string
		cancelled bool
		cause     error
		want      string // the next claimant's view: "" when it gets the claim
	}{
		{"complete", false, nil, "finished"},
		{"failed", false, errors.New("evaluate on test: boom"), "failed: evaluate on test: boom"},
		{"interrupted", true, context.Canceled, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := metatest.SQLite(t, tunedb.Schema)
			k := &tracker{o: &Options{DB: db, Spec: &spec.Training{Name: "s"}, Logger: slog.New(slog.DiscardHandler)}, runID: "r1"}
			ctx := context.Background()
			claim, err := k.claimFinish(ctx)
			if err != nil || claim.other != "" {
				t.Fatalf("first claim: %+v %v", claim, err)
			}
			if held, err := k.claimFinish(ctx); err != nil || held.other != thisProcess() || held.otherState != "finishing" {
				t.Fatalf("claim while held: %+v %v, want held by %s, finishing", held, err, thisProcess())
			}
			ectx, cancel := context.WithCancel(ctx)
			if c.cancelled {
				cancel()
			}
			claim.end(ectx, c.cause)
			cancel()
			next, err := k.claimFinish(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if next.otherState != c.want && !(c.want == "" && next.other == "") {
				t.Errorf("next claim: %+v, want %q", next, c.want)
			}
			if next.st != nil {
				next.end(ctx, nil)
			}
		})
	}
}

// TestNoteJoin checks the note of a --resume that joins a study whose
// trials another process is running: a trial with a fresh heartbeat is a
// live process's, and the resume joins it (said in the log, not refused);
// one whose heartbeat is stale is of a dead process, failed as the study
// would fail it, and nothing is said.
func TestNoteJoin(t *testing.T) {
	for _, c := range []struct {
		name string
		beat time.Duration // ago
		want bool
	}{
		{"live", time.Second, true},
		{"dead", time.Hour, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			db := metatest.SQLite(t, tunedb.Schema)
			var log bytes.Buffer
			k := &tracker{o: &Options{DB: db, Spec: &spec.Training{Name: "s"}, Logger: slog.New(slog.NewTextHandler(&log, nil))}, runID: "r1"}
			st := tunedb.New(db)
			id, err := st.CreateStudy(ctx, "s/r1", tune.Minimize)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.CreateTrial(ctx, id, 0, time.Now().Add(-c.beat)); err != nil {
				t.Fatal(err)
			}
			k.noteJoin(ctx)
			if got := strings.Contains(log.String(), "--resume joins a live study") && strings.Contains(log.String(), "running=1"); got != c.want {
				t.Errorf("joined a live study: %v, want %v; log:\n%s", got, c.want, log.String())
			}
			refs, err := st.TrialRefs(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]tune.State{true: tune.Running, false: tune.Failed}[c.want]; len(refs) != 1 || refs[0].State != want {
				t.Errorf("trials %+v, want one %s", refs, want)
			}
		})
	}
}
