package serving

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/atrium-ml/atrium/internal/platform/artifact"
	"github.com/atrium-ml/atrium/internal/serving/oip"
	"github.com/atrium-ml/atrium/internal/tracking"
)

// twoModels registers two versions of name that predict differently on the
// golden rows (a binary and a regression LightGBM model with the same
// inputs) and returns their version numbers.
func twoModels(t *testing.T, w *world, name string) (v1, v2 string) {
	t.Helper()
	v1 = w.register(t, name, flavorDir("lightgbm", "model.lgb", fixture(t, "lightgbm_binary.txt"), ""))
	v2 = w.register(t, name, flavorDir("lightgbm", "model.lgb", fixture(t, "lightgbm_regression.txt"), ""))
	return v1, v2
}

func newService(t *testing.T, w *world, opts Options) *Service {
	t.Helper()
	if opts.PollInterval == 0 {
		opts.PollInterval = 10 * time.Millisecond
	}
	s := New(w.loader, opts)
	s.Start(context.Background())
	t.Cleanup(func() { s.Close() })
	return s
}

// eventually waits, up to 10 s, for cond; the watcher acts within a poll
// interval, the wait only bounds a broken build.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func servingVersion(s *Service, name string) string {
	d, err := s.Resolve(context.Background(), name, "", "")
	if err != nil {
		return "error: " + err.Error()
	}
	return d.Version
}

// Moving the alias (as another replica would, through the shared database)
// swaps the new version in; an explicit version number is served as asked.
func TestServiceFollowsAlias(t *testing.T) {
	w := newWorld(t)
	v1, v2 := twoModels(t, w, "ranker")
	w.alias(t, "ranker", "champion", v1)
	s := newService(t, w, Options{})
	ctx := context.Background()
	if got := servingVersion(s, "ranker"); got != v1 {
		t.Fatalf("serving %s, want %s", got, v1)
	}
	if d, err := s.Resolve(ctx, "ranker", v2, ""); err != nil || d.Version != v2 {
		t.Fatalf("Resolve(version %s) = %v, %v", v2, d, err)
	}
	w.alias(t, "ranker", "champion", v2)
	eventually(t, "the swap to "+v2, func() bool { return servingVersion(s, "ranker") == v2 })
	if n := testutil.ToFloat64(s.m.swaps.WithLabelValues("ranker", "champion")); n != 1 {
		t.Fatalf("swaps = %v, want 1", n)
	}
	if err := s.Ready(ctx, "ranker"); err != nil {
		t.Fatal(err)
	}
	// Rolling back is moving the alias back.
	w.alias(t, "ranker", "champion", v1)
	eventually(t, "the rollback to "+v1, func() bool { return servingVersion(s, "ranker") == v1 })
}

// A version that fails to load leaves the previous one serving; Ready, the
// status and a metric show it; moving the alias on to a good version heals.
func TestServiceKeepsServingWhenALoadFails(t *testing.T) {
	w := newWorld(t)
	good := fixture(t, "lightgbm_binary.txt")
	v1 := w.register(t, "m", flavorDir("lightgbm", "model.lgb", good, ""))
	bad := w.register(t, "m", flavorDir("lightgbm", "model.lgb", good[:len(good)/3], ""))
	v3 := w.register(t, "m", flavorDir("lightgbm", "model.lgb", fixture(t, "lightgbm_regression.txt"), ""))
	w.alias(t, "m", "champion", v1)
	s := newService(t, w, Options{})
	ctx := context.Background()
	if got := servingVersion(s, "m"); got != v1 {
		t.Fatalf("serving %s", got)
	}
	w.alias(t, "m", "champion", bad)
	eventually(t, "the failed load", func() bool {
		st, _ := s.Status("m")
		return st[0].Target == bad && st[0].Error != ""
	})
	if got := servingVersion(s, "m"); got != v1 {
		t.Fatalf("serving %s after a failed load, want %s", got, v1)
	}
	// Ready says so as the version asked for by number does: a version that
	// cannot be served, not a transient ErrNotReady (503 without
	// Retry-After, FAILED_PRECONDITION, ready false).
	err := s.Ready(ctx, "m")
	want := fmt.Sprintf(`alias "champion" points at version %s, which failed to load (version %s still serves)`, bad, v1)
	if !errors.Is(err, ErrModelFormat) || errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "model.lgb (lightgbm flavor)") {
		t.Fatalf("Ready = %v, want ErrModelFormat containing %q", err, want)
	}
	for _, version := range []string{"", bad} {
		if ok, err := NewBackend(s).ModelReady(ctx, "m", version); ok || !errors.Is(err, oip.ErrModelUnusable) || errors.Is(err, oip.ErrUnavailable) {
			t.Fatalf("ModelReady(m, %q) = %v, %v, want oip.ErrModelUnusable", version, ok, err)
		}
	}
	failures := testutil.ToFloat64(s.m.failures.WithLabelValues("m"))
	if failures < 1 {
		t.Fatalf("load failures = %v", failures)
	}
	// Requests naming the broken version are refused without reloading it.
	for range 3 {
		if _, err := s.Resolve(ctx, "m", bad, ""); !errors.Is(err, ErrModelFormat) {
			t.Fatalf("Resolve(version %s) = %v, want ErrModelFormat", bad, err)
		}
	}
	if n := testutil.ToFloat64(s.m.failures.WithLabelValues("m")); n != failures {
		t.Fatalf("load failures went from %v to %v: the broken version was loaded again", failures, n)
	}
	w.alias(t, "m", "champion", v3)
	eventually(t, "the swap to "+v3, func() bool { return servingVersion(s, "m") == v3 })
	if err := s.Ready(ctx, "m"); err != nil {
		t.Fatal(err)
	}
}

// A version an alias stays on that keeps failing the same way is tried
// every RetryAfter and counted each time, but logged as an error once.
func TestServiceBrokenAliasTargetLoggedOnce(t *testing.T) {
	w := newWorld(t)
	good := fixture(t, "lightgbm_binary.txt")
	v1 := w.register(t, "m", flavorDir("lightgbm", "model.lgb", good, ""))
	bad := w.register(t, "m", flavorDir("lightgbm", "model.lgb", good[:len(good)/3], ""))
	w.alias(t, "m", "champion", v1)
	logs := &lockedBuffer{}
	s := newService(t, w, Options{RetryAfter: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if got := servingVersion(s, "m"); got != v1 {
		t.Fatalf("serving %s", got)
	}
	w.alias(t, "m", "champion", bad)
	eventually(t, "four tries of the broken version", func() bool { return testutil.ToFloat64(s.m.failures.WithLabelValues("m")) >= 4 })
	for _, msg := range []string{`"serving: load failed"`, `"serving: the version an alias moved to failed to load; the previous version keeps serving"`} {
		var levels []string
		for line := range strings.Lines(logs.String()) {
			if strings.Contains(line, "msg="+msg) {
				levels = append(levels, strings.Fields(line)[1])
			}
		}
		if len(levels) < 3 || levels[0] != "level=ERROR" || slices.Contains(levels[1:], "level=ERROR") {
			t.Errorf("%s logged at %v, want ERROR once then DEBUG", msg, levels)
		}
	}
}

// A request's first load of an alias installs its version only into an
// empty slot: a version a poll installed meanwhile stays, and a canary slot
// a poll emptied because its alias was removed stays empty, until a poll
// sees the alias point at a version again.
func TestServiceFirstLoadDoesNotUndoPoll(t *testing.T) {
	w := newWorld(t)
	v1, v2 := twoModels(t, w, "m")
	w.alias(t, "m", "champion", v1)
	s := newService(t, w, Options{PollInterval: time.Hour, Models: []ModelConfig{{Name: "m", Canary: &Canary{Alias: "challenger", Weight: 0.5}}}})
	ctx := context.Background()
	if got := servingVersion(s, "m"); got != v1 {
		t.Fatalf("serving %s, want %s", got, v1)
	}
	d2, err := s.Resolve(ctx, "m", v2, "")
	if err != nil {
		t.Fatal(err)
	}
	m := s.lookup("m")
	if err := s.install(m, m.primary, d2); err != nil {
		t.Fatal(err)
	}
	if got := m.primary.cur.Load().Version; got != v1 {
		t.Errorf("a first load finishing late replaced the version a poll installed: serving %s, want %s", got, v1)
	}
	s.follow(m, m.canary, "") // a poll: the challenger alias is not set
	if err := s.install(m, m.canary, d2); err != nil {
		t.Fatal(err)
	}
	if d := m.canary.cur.Load(); d != nil {
		t.Errorf("a first load filled the canary slot of a removed alias with version %s", d.Version)
	}
	w.alias(t, "m", "challenger", v2)
	s.follow(m, m.canary, v2) // the next poll
	eventually(t, "the canary to serve "+v2, func() bool { d := m.canary.cur.Load(); return d != nil && d.Version == v2 })
}

// The record of each version's last load error stays bounded however many
// versions fail (requests may name any version while the registry fails),
// and a poll forgets the versions its models no longer have.
func TestServiceLastFailBounded(t *testing.T) {
	w := newWorld(t)
	v1 := w.register(t, "m", flavorDir("lightgbm", "model.lgb", fixture(t, "lightgbm_binary.txt"), ""))
	w.alias(t, "m", "champion", v1)
	s := newService(t, w, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if got := servingVersion(s, "m"); got != v1 {
		t.Fatalf("serving %s", got)
	}
	for i := range maxLastFail + 10 {
		s.loadFailed("m", fmt.Sprint(1000+i), errors.New("registry down"))
	}
	s.failMu.Lock()
	n := len(s.lastFail)
	s.failMu.Unlock()
	if n == 0 || n > maxLastFail {
		t.Errorf("%d versions' last errors kept after %d failures, want 1 to %d", n, maxLastFail+10, maxLastFail)
	}
	eventually(t, "a poll to forget versions m does not have", func() bool {
		s.failMu.Lock()
		defer s.failMu.Unlock()
		return len(s.lastFail) == 0
	})
}

// Requests scored while the alias moves back and forth are never failed,
// and each response's predictions are those of the version it names: the
// check goes through Backend.Infer, which resolves, scores and labels a
// request, so a response labelled with one version but scored by another
// is seen (the two versions predict differently on the same rows).
func TestServiceHotSwapUnderLoad(t *testing.T) {
	w := newWorld(t)
	v1, v2 := twoModels(t, w, "m")
	w.alias(t, "m", "champion", v1)
	s := newService(t, w, Options{PollInterval: 2 * time.Millisecond})
	b := NewBackend(s)
	ctx := context.Background()
	d, err := s.Resolve(ctx, "m", v1, "")
	if err != nil {
		t.Fatal(err)
	}
	rows := goldenRows(t, d)
	var matrix []float64
	for _, r := range rows {
		matrix = append(matrix, r...)
	}
	request := func(id string) *oip.InferRequest {
		return &oip.InferRequest{ID: id, Inputs: []oip.Tensor{{Name: "input-0", Datatype: oip.FP64,
			Shape: []int64{int64(len(rows)), int64(len(rows[0]))}, FP64: matrix}}}
	}
	want := map[string][]float64{}
	for _, v := range []string{v1, v2} {
		res, err := b.Infer(ctx, "m", v, request("pin"))
		if err != nil {
			t.Fatal(err)
		}
		want[v] = res.Outputs[0].FP64
	}
	if slices.Equal(want[v1], want[v2]) {
		t.Fatal("the two versions predict alike: the test could not see mixing")
	}
	var stop atomic.Bool
	var seen sync.Map
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				res, err := b.Infer(ctx, "m", "", request(fmt.Sprint(g, "-", i)))
				if err != nil {
					errs <- fmt.Errorf("request %d-%d: %w", g, i, err)
					return
				}
				got, ok := want[res.ModelVersion]
				if !ok || !slices.Equal(res.Outputs[0].FP64, got) {
					errs <- fmt.Errorf("request %d-%d: labelled version %q, predictions %v are not that version's", g, i, res.ModelVersion, res.Outputs[0].FP64)
					return
				}
				seen.Store(res.ModelVersion, true)
			}
		}()
	}
	for i := range 6 {
		v := []string{v2, v1}[i%2]
		w.alias(t, "m", "champion", v)
		eventually(t, "the swap to "+v, func() bool { return servingVersion(s, "m") == v })
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, v := range []string{v1, v2} {
		if _, ok := seen.Load(v); !ok {
			t.Errorf("version %s never served", v)
		}
	}
}

// A version asked as "@alias" is not a version number: it is refused (404)
// rather than cached as if it were one, which pinned the alias's first
// target for as long as the cache held it.
func TestServiceVersionMustBeANumber(t *testing.T) {
	w := newWorld(t)
	v1, _ := twoModels(t, w, "m")
	w.alias(t, "m", "champion", v1)
	s := newService(t, w, Options{})
	ctx := context.Background()
	for _, v := range []string{"@champion", "champion", "01", "1.0", "-1", " 1", "99999999999999999999"} {
		if _, err := s.Resolve(ctx, "m", v, ""); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "want a version number") {
			t.Errorf("version %q: error %v, want ErrNotFound naming a version number", v, err)
		}
	}
	if d, err := s.Resolve(ctx, "m", v1, ""); err != nil || d.Version != v1 {
		t.Fatalf("version %s: %v", v1, err)
	}
	// Through the protocol: 404, model not found.
	_, err := NewBackend(s).Infer(ctx, "m", "@champion", &oip.InferRequest{})
	if !errors.Is(err, oip.ErrModelNotFound) {
		t.Errorf("Infer version @champion: error %v, want oip.ErrModelNotFound", err)
	}
}

// lockedBuffer is a bytes.Buffer safe for a logger and a test to share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// gatedStore holds every Get while armed until released (whatever its
// context), says when a Get arrives, and counts the Gets in progress: a
// load can be caught in flight without timing.
type gatedStore struct {
	artifact.Store
	armed    atomic.Bool
	arrived  chan struct{}
	release  chan struct{}
	inFlight atomic.Int32
}

func newGatedStore(s artifact.Store) *gatedStore {
	return &gatedStore{Store: s, arrived: make(chan struct{}, 1), release: make(chan struct{})}
}

func (g *gatedStore) Get(ctx context.Context, p string) (io.ReadCloser, error) {
	g.inFlight.Add(1)
	defer g.inFlight.Add(-1)
	if g.armed.Load() {
		select {
		case g.arrived <- struct{}{}:
		default:
		}
		<-g.release
	}
	return g.Store.Get(ctx, p)
}

// gatedService serves model m (versions v1 and v2, the alias champion on
// v1) from an artifact store that holds loads once armed, logging to logs.
func gatedService(t *testing.T, models []ModelConfig) (s *Service, w *world, gate *gatedStore, logs *lockedBuffer, v1, v2 string) {
	t.Helper()
	w = newWorld(t)
	v1, v2 = twoModels(t, w, "m")
	w.alias(t, "m", "champion", v1)
	gate = newGatedStore(w.arts)
	w.loader = &Loader{Registry: w.registry, Artifacts: gate}
	logs = &lockedBuffer{}
	s = newService(t, w, Options{Models: models, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if got := servingVersion(s, "m"); got != v1 {
		t.Fatalf("serving %s, want %s", got, v1)
	}
	return s, w, gate, logs, v1, v2
}

// An alias rolled back while the version it had moved to was loading keeps
// the version it was rolled back to: the finished load is discarded, not
// swapped in.
func TestServiceRollbackDuringLoad(t *testing.T) {
	s, w, gate, logs, v1, v2 := gatedService(t, nil)
	gate.armed.Store(true)
	w.alias(t, "m", "champion", v2)
	<-gate.arrived // v2 is loading, held at the artifact store
	w.alias(t, "m", "champion", v1)
	eventually(t, "the watcher to read the rollback", func() bool {
		st, _ := s.Status("m")
		return len(st) > 0 && st[0].Target == v1
	})
	gate.armed.Store(false)
	close(gate.release)
	// The finished load of v2 is either swapped in or discarded, and says
	// which in the log.
	swapped := "swapped in\" model=m alias=champion from=" + v1 + " to=" + v2
	eventually(t, "the load of v2 to finish", func() bool {
		l := logs.String()
		return strings.Contains(l, "not swapping it in") || strings.Contains(l, swapped)
	})
	if strings.Contains(logs.String(), swapped) {
		t.Fatalf("after the rollback to %s, %s was swapped in:\n%s", v1, v2, logs)
	}
	if got := servingVersion(s, "m"); got != v1 {
		t.Fatalf("after the rollback to %s the alias serves %s", v1, got)
	}
	st, _ := s.Status("m")
	if st[0].Serving != v1 || st[0].Target != v1 {
		t.Fatalf("status %+v, want serving and target %s", st[0], v1)
	}
}

// The canary takes its weight's share of route keys, within binomial
// tolerance, and the same key always goes to the same version.
func TestServiceCanarySplit(t *testing.T) {
	w := newWorld(t)
	v1, v2 := twoModels(t, w, "m")
	w.alias(t, "m", "champion", v1)
	w.alias(t, "m", "challenger", v2)
	s := newService(t, w, Options{Models: []ModelConfig{{Name: "m", Canary: &Canary{Alias: "challenger", Weight: 0.1}}}})
	ctx := context.Background()
	if _, err := s.Resolve(ctx, "m", "", "u0"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the canary load", func() bool {
		st, _ := s.Status("m")
		return len(st) == 2 && st[1].Role == "canary" && st[1].Serving == v2
	})
	const n = 20000
	canary := 0
	for i := range n {
		key := fmt.Sprintf("user-%d", i)
		d, err := s.Resolve(ctx, "m", "", key)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := s.Resolve(ctx, "m", "", key)
		if again.Version != d.Version {
			t.Fatalf("key %s went to version %s, then %s", key, d.Version, again.Version)
		}
		if d.Version == v2 {
			canary++
		}
	}
	p := float64(canary) / n
	if tol := 4 * math.Sqrt(0.1*0.9/n); math.Abs(p-0.1) > tol {
		t.Fatalf("canary share %.4f, want 0.1 ± %.4f", p, tol)
	}
}

// Removing the canary's or the shadow's alias stops them, as on a server
// started after the removal: no request goes to the canary, even at weight
// 1, and nothing is scored in shadow. The model's own alias removed keeps
// its version serving.
func TestServiceCanaryAndShadowStopWithTheirAlias(t *testing.T) {
	w := newWorld(t)
	v1, v2 := twoModels(t, w, "m")
	w.alias(t, "m", "champion", v1)
	w.alias(t, "m", "challenger", v2)
	w.alias(t, "m", "shadow", v2)
	s := newService(t, w, Options{Models: []ModelConfig{{Name: "m", Canary: &Canary{Alias: "challenger", Weight: 1}, ShadowAlias: "shadow"}}})
	ctx := context.Background()
	if _, err := s.Resolve(ctx, "m", "", "u0"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the canary and shadow loads", func() bool {
		d, err := s.Resolve(ctx, "m", "", "u1")
		return err == nil && d.Version == v2 && s.ShadowOf(&Deployed{Name: "m", Version: v1}) != nil
	})
	for _, a := range []string{"challenger", "shadow", "champion"} {
		if err := w.registry.DeleteAlias(ctx, "m", a); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the canary and the shadow to stop", func() bool {
		return s.ShadowOf(&Deployed{Name: "m", Version: v1}) == nil && servingVersion(s, "m") == v1
	})
	for i := range 100 {
		if d, err := s.Resolve(ctx, "m", "", fmt.Sprint("u", i)); err != nil || d.Version != v1 {
			t.Fatalf("request of u%d after the canary alias was removed: %v, %v; want version %s", i, d, err, v1)
		}
	}
}

// A canary load still in flight when the canary's alias is removed is not
// installed when it finishes: the canary stays stopped, even at weight 1.
func TestServiceCanaryAliasRemovedDuringLoad(t *testing.T) {
	s, w, gate, logs, v1, v2 := gatedService(t, []ModelConfig{{Name: "m", Canary: &Canary{Alias: "challenger", Weight: 1}}})
	ctx := context.Background()
	release := sync.OnceFunc(func() {
		gate.armed.Store(false)
		close(gate.release)
	})
	t.Cleanup(release) // before Close, which waits for the load, on a failure
	gate.armed.Store(true)
	w.alias(t, "m", "challenger", v2)
	<-gate.arrived // the canary's v2 is loading, held at the artifact store
	if err := w.registry.DeleteAlias(ctx, "m", "challenger"); err != nil {
		t.Fatal(err)
	}
	canaryTarget := func() string {
		st, _ := s.Status("m")
		for _, a := range st {
			if a.Role == "canary" {
				return a.Target
			}
		}
		return "no canary slot"
	}
	eventually(t, "the watcher to read the removal", func() bool { return canaryTarget() == "" })
	release()
	eventually(t, "the canary's load to finish", func() bool { return strings.Contains(logs.String(), "not swapping it in") })
	for i := range 100 {
		if d, err := s.Resolve(ctx, "m", "", fmt.Sprint("u", i)); err != nil || d.Version != v1 {
			t.Fatalf("request of u%d after the canary alias was removed mid-load: %v, %v; want version %s", i, d, err, v1)
		}
	}
}

// A model deleted and registered again under the same name serves its new
// version 1, not the deleted model's (versions were known by number only),
// by alias and by number; a version deleted from the registry is no longer
// served, by alias or by number.
func TestServiceDropsDeletedVersions(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	v1, v2 := twoModels(t, w, "m") // binary, regression
	w.alias(t, "m", "champion", v1)
	s := newService(t, w, Options{})
	if d, err := s.Resolve(ctx, "m", "", ""); err != nil || d.Task != "binary" {
		t.Fatalf("Resolve = %v, %v; want the binary version %s", d, err, v1)
	}
	if _, err := s.Resolve(ctx, "m", v2, ""); err != nil {
		t.Fatal(err)
	}
	if err := w.registry.DeleteRegisteredModel(ctx, "m"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deleted model dropped", func() bool {
		_, err1 := s.Resolve(ctx, "m", "", "")
		_, err2 := s.Resolve(ctx, "m", v2, "")
		return errors.Is(err1, ErrNotFound) && errors.Is(err2, ErrNotFound)
	})
	// Registered again: version 1 is now the regression model.
	again := w.register(t, "m", flavorDir("lightgbm", "model.lgb", fixture(t, "lightgbm_regression.txt"), ""))
	if again != v1 {
		t.Fatalf("the model registered again has version %s, want %s", again, v1)
	}
	w.alias(t, "m", "champion", again)
	eventually(t, "the new version "+again+" served", func() bool {
		d, err := s.Resolve(ctx, "m", "", "")
		return err == nil && d.Task == "regression"
	})
	if d, err := s.Resolve(ctx, "m", again, ""); err != nil || d.Task != "regression" {
		t.Fatalf("version %s by number: %v, %v; want the regression model registered last", again, d, err)
	}

	// A version deleted: by number and by the alias that pointed at it.
	w.alias(t, "m", "champion", again)
	if err := w.registry.DeleteModelVersion(ctx, "m", again); err != nil {
		t.Fatal(err)
	}
	eventually(t, "version "+again+" dropped", func() bool {
		_, err1 := s.Resolve(ctx, "m", again, "")
		_, err2 := s.Resolve(ctx, "m", "", "")
		return errors.Is(err1, ErrNotFound) && errors.Is(err2, ErrNotFound)
	})
}

// A model deleted and registered again between two polls: the version of
// the same number is told from the deleted one by its stamp.
func TestServiceTellsARegisteredAgainVersion(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	v1, _ := twoModels(t, w, "m") // binary, regression
	w.alias(t, "m", "champion", v1)
	var logs bytes.Buffer
	s := newService(t, w, Options{PollInterval: time.Hour, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	}()
	if d, err := s.Resolve(ctx, "m", "", ""); err != nil || d.Task != "binary" {
		t.Fatalf("Resolve = %v, %v; want the binary version %s", d, err, v1)
	}
	if err := w.registry.DeleteRegisteredModel(ctx, "m"); err != nil {
		t.Fatal(err)
	}
	again := w.register(t, "m", flavorDir("lightgbm", "model.lgb", fixture(t, "lightgbm_regression.txt"), ""))
	w.alias(t, "m", "champion", again)
	s.poll()
	var last string
	defer func() {
		if t.Failed() {
			st, _ := s.Status("m")
			t.Logf("last Resolve: %s; status %+v", last, st)
		}
	}()
	eventually(t, "the version registered again served", func() bool {
		d, err := s.Resolve(ctx, "m", "", "")
		if err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("version %s task %s stamp %+v", d.Version, d.Task, d.Stamp)
		return d.Version == again && d.Task == "regression"
	})
}

// The shadow scores the same rows off the response path: Shadow returns at
// once even when the hook is stuck, overflow is dropped and counted, and
// the hook gets the shadow version's own predictions.
func TestServiceShadow(t *testing.T) {
	w := newWorld(t)
	v1, v2 := twoModels(t, w, "m")
	w.alias(t, "m", "champion", v1)
	w.alias(t, "m", "challenger", v2)
	release := make(chan struct{})
	results := make(chan ShadowResult, 1000)
	s := newService(t, w, Options{ShadowQueue: 4, Models: []ModelConfig{{Name: "m", ShadowAlias: "challenger"}},
		OnShadow: func(r ShadowResult) {
			<-release
			results <- r
		}})
	ctx := context.Background()
	d, err := s.Resolve(ctx, "m", "", "")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the shadow load", func() bool {
		st, _ := s.Status("m")
		return len(st) == 2 && st[1].Role == "shadow" && st[1].Serving == v2
	})
	rows := golden(t, d)
	preds, err := d.Predict(ctx, rows)
	if err != nil {
		t.Fatal(err)
	}
	sh := s.ShadowOf(d)
	if sh == nil || sh.Version != v2 {
		t.Fatalf("ShadowOf = %v", sh)
	}
	for i := range 20 { // the worker holds one, the queue 4: the rest drop
		s.Shadow(d, preds, sh, golden(t, sh), fmt.Sprint("req-", i))
	}
	if n := testutil.ToFloat64(s.m.shadow.WithLabelValues("m", "dropped")); n < 15 {
		t.Fatalf("dropped = %v, want at least 15", n)
	}
	close(release)
	r := <-results
	if r.Err != nil || r.Primary.Version != v1 || r.Shadow.Version != v2 || !slices.Equal(r.PrimaryPred, preds) {
		t.Fatalf("shadow result %+v", r)
	}
	want, _ := sh.Predict(ctx, golden(t, sh))
	if !slices.Equal(r.ShadowPred, want) {
		t.Fatal("the shadow's predictions are not the challenger's")
	}
}

// Concurrent first requests of a model load it once.
func TestServiceLoadsOnce(t *testing.T) {
	w := newWorld(t)
	v1, _ := twoModels(t, w, "m")
	w.alias(t, "m", "champion", v1)
	s := newService(t, w, Options{})
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Resolve(context.Background(), "m", "", ""); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := testutil.ToFloat64(s.m.loads.WithLabelValues("m")); n != 1 {
		t.Fatalf("loads = %v, want 1", n)
	}
	// Unknown models leave nothing behind.
	if _, err := s.Resolve(context.Background(), "nope", "", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown model: %v", err)
	}
	if got := s.Models(); !slices.Equal(got, []string{"m"}) {
		t.Fatalf("models in use %v", got)
	}
}

// The route hash is FNV-1a's (stable across processes and releases: a
// replica must send a user where the others do), and Close ends the service.
func TestRouteFractionAndClose(t *testing.T) {
	var spread atomic.Uint64
	h := fnv.New64a()
	h.Write([]byte("user-1"))
	want := h.Sum64()
	x := want
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	if got := routeFraction("user-1", &spread); got != float64(x>>11)/(1<<53) {
		t.Fatalf("routeFraction(user-1) = %v", got)
	}
	if a, b := routeFraction("", &spread), routeFraction("", &spread); a == b {
		t.Fatalf("keyless requests drew the same fraction %v twice", a)
	}
	w := newWorld(t)
	v1, _ := twoModels(t, w, "m")
	w.alias(t, "m", "champion", v1)
	s := newService(t, w, Options{})
	if _, err := s.Resolve(context.Background(), "m", "", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Resolve(context.Background(), "m", "", ""); !errors.Is(err, ErrNotReady) {
		t.Fatalf("Resolve after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// A model listed with load_at_start is loaded by Start, before any request,
// and its configured feature service overrides the version's tag.
func TestServiceLoadAtStartAndFeatureService(t *testing.T) {
	w := newWorld(t)
	v := w.register(t, "m", flavorDir("lightgbm", "model.lgb", fixture(t, "lightgbm_binary.txt"), ""),
		tracking.KV{Key: FeatureServiceTag, Value: "from_tag"})
	w.alias(t, "m", "prod", v)
	s := newService(t, w, Options{DefaultAlias: "prod", Models: []ModelConfig{{Name: "m", LoadAtStart: true, FeatureService: "from_config"}}})
	if got := s.Models(); !slices.Equal(got, []string{"m"}) {
		t.Fatalf("models after Start %v, want [m] loaded at start", got)
	}
	if n := testutil.ToFloat64(s.m.loads.WithLabelValues("m")); n != 1 {
		t.Fatalf("loads = %v", n)
	}
	d, err := s.Resolve(context.Background(), "m", "", "")
	if err != nil || d.FeatureService != "from_config" || d.Tags[FeatureServiceTag] != "from_tag" {
		t.Fatalf("Resolve = %+v, %v", d, err)
	}
}

// A server is not ready before the models listed with load_at_start serve,
// and it keeps trying them without a request: here the alias is set only
// after the server started. Models loaded on first use do not hold it.
func TestServiceLoadAtStartHoldsReadiness(t *testing.T) {
	w := newWorld(t)
	v := w.register(t, "m", flavorDir("lightgbm", "model.lgb", fixture(t, "lightgbm_binary.txt"), ""))
	s := newService(t, w, Options{Models: []ModelConfig{{Name: "m", LoadAtStart: true}, {Name: "lazy"}}})
	b := NewBackend(s)
	err := s.StartupError()
	if err == nil || !strings.Contains(err.Error(), "load_at_start") || !strings.Contains(err.Error(), `m (`) || !strings.Contains(err.Error(), "champion") {
		t.Fatalf("StartupError before the alias is set = %v, want one naming m and its missing alias", err)
	}
	if b.ServerReady(context.Background()) {
		t.Fatal("server ready before its load_at_start model serves")
	}
	w.alias(t, "m", "champion", v)
	eventually(t, "the load_at_start model to load without a request", func() bool { return s.StartupError() == nil })
	if !b.ServerReady(context.Background()) {
		t.Fatal("server not ready once its load_at_start model serves")
	}
}

// Close waits for a load a request started (a singleflight load, which
// outlives its request): the caller closes the registry and the artifact
// store after Close, and a load still running would use them closed.
func TestServiceCloseWaitsForRequestLoads(t *testing.T) {
	w := newWorld(t)
	v1, _ := twoModels(t, w, "m")
	w.alias(t, "m", "champion", v1)
	hold := newGatedStore(w.arts)
	hold.armed.Store(true)
	w.loader = &Loader{Registry: w.registry, Artifacts: hold}
	s := New(w.loader, Options{PollInterval: time.Hour})
	s.Start(context.Background())
	resolved := make(chan error, 1)
	go func() {
		_, err := s.Resolve(context.Background(), "m", "", "")
		resolved <- err
	}()
	<-hold.arrived // the first request's load is in flight
	closed := make(chan int32)
	go func() {
		_ = s.Close()
		closed <- hold.inFlight.Load()
	}()
	<-s.base.Done() // Close has begun; the load is still held
	close(hold.release)
	if n := <-closed; n != 0 {
		t.Fatalf("Close returned with %d artifact reads of a load still in progress", n)
	}
	<-resolved
	if _, err := s.Resolve(context.Background(), "m", v1, ""); !errors.Is(err, ErrNotReady) {
		t.Errorf("Resolve after Close: %v, want ErrNotReady", err)
	}
}

// A request already cancelled when it arrives starts no load (before, the
// alias was read with the detached load context and the version loaded
// anyway).
func TestServiceFirstAliasLookupUsesRequestContext(t *testing.T) {
	w := newWorld(t)
	v1, _ := twoModels(t, w, "m")
	w.alias(t, "m", "champion", v1)
	w.alias(t, "m", "other", v1)
	s := New(w.loader, Options{PollInterval: time.Hour})
	s.Start(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Resolve(ctx, "m", "", ""); !errors.Is(err, context.Canceled) {
		t.Errorf("Resolve with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := s.ResolveAlias(ctx, "m", "other", ""); !errors.Is(err, context.Canceled) {
		t.Errorf("ResolveAlias with a cancelled context: %v, want context.Canceled", err)
	}
	_ = s.Close() // waits for the loads the requests started
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.versions) != 0 {
		t.Errorf("%d versions loaded for requests cancelled before the alias was read", len(s.versions))
	}
}

// Concurrent first requests share one load, which the first caller giving
// up does not fail: it returns at once with its own error, and the other
// gets the version when the load ends. Through Resolve and through
// ResolveAlias (which waited for the whole load before, whatever its
// caller's context).
func TestServiceFirstCallerCancelledOthersServed(t *testing.T) {
	for _, alias := range []string{"", "other"} {
		t.Run("alias="+alias, func(t *testing.T) {
			w := newWorld(t)
			v1, _ := twoModels(t, w, "m")
			w.alias(t, "m", "champion", v1)
			w.alias(t, "m", "other", v1)
			hold := newGatedStore(w.arts)
			hold.armed.Store(true)
			w.loader = &Loader{Registry: w.registry, Artifacts: hold}
			s := New(w.loader, Options{PollInterval: time.Hour})
			s.Start(context.Background())
			t.Cleanup(func() { _ = s.Close() })
			type result struct {
				d   *Deployed
				err error
			}
			resolve := func(ctx context.Context, out chan<- result) {
				d, err := s.ResolveAlias(ctx, "m", alias, "")
				out <- result{d, err}
			}
			ctx, cancel := context.WithCancel(context.Background())
			first, second := make(chan result, 1), make(chan result, 1)
			go resolve(ctx, first)
			<-hold.arrived // the shared load is reading the artifacts
			go resolve(context.Background(), second)
			cancel()
			if r := <-first; !errors.Is(r.err, context.Canceled) {
				t.Fatalf("cancelled first caller: %v, want context.Canceled", r.err)
			}
			close(hold.release)
			r := <-second
			if r.err != nil || r.d.Version != v1 {
				t.Fatalf("second caller: %+v, %v; want version %s", r.d, r.err, v1)
			}
		})
	}
}
