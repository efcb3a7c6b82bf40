package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/demo"
	"github.com/atrium-ml/atrium/internal/demo/steps"
	"github.com/atrium-ml/atrium/internal/platform/scheduler"
	"github.com/atrium-ml/atrium/internal/serving/predlog"
)

// readCSVFile reads a CSV file into rows of named fields.
func readCSVFile(t *testing.T, path string) []map[string]string {
	t.Helper()
	rows, err := steps.ReadCSV(path)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "proj")
	code, out, errOut := atrium(t, "init", dir)
	if code != exitOK {
		t.Fatalf("init = %d, %s", code, errOut)
	}
	for _, f := range []string{"atrium.yaml", "features/rentals.yaml", "features/users.yaml", "data/listings.csv", "data/users.csv"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("init did not write %s: %v", f, err)
		}
	}
	// The tiny sample's 4 days from the fixed default start, whatever today is.
	cfg, _ := demo.Preset("tiny")
	if events, _ := filepath.Glob(filepath.Join(dir, "data", "events-*.csv")); len(events) != 4 ||
		!strings.HasSuffix(events[0], "2026-09-01.csv") || !strings.HasSuffix(events[3], "2026-09-04.csv") {
		t.Errorf("init wrote events files %v, want the 4 days 2026-09-01 to 2026-09-04", events)
	}
	train, test := readCSVFile(t, filepath.Join(dir, "data", demo.TrainSpineFile)), readCSVFile(t, filepath.Join(dir, "data", demo.TestSpineFile))
	if len(train) == 0 || len(test) == 0 || train[0]["label"] == "" || test[0]["session_id"] == "" {
		t.Errorf("init's spines: %d train rows (first %v), %d test rows", len(train), train[0], len(test))
	}
	if !strings.Contains(out, "events in 6 files") {
		t.Errorf("init output does not describe the tiny sample:\n%s", out)
	}
	// It prints every step of the tour, through fit, predict and train.py.
	for _, line := range cfg.Tour() {
		if !strings.Contains(out, "\n  "+line+"\n") {
			t.Errorf("init output lacks the step %q:\n%s", line, out)
		}
	}
	for _, want := range []string{"atrium run listing_engagement --start 2026-09-02 --end 2026-09-05", "atrium fit --data train.parquet", "atrium predict --model ranker.txt", "python train.py"} {
		if !strings.Contains(out, want) {
			t.Errorf("init output lacks %q:\n%s", want, out)
		}
	}

	// A second init refuses, names the files, and changes nothing.
	custom := []byte("project: mine\n")
	os.WriteFile(filepath.Join(dir, "atrium.yaml"), custom, 0o644)
	code, _, errOut = atrium(t, "init", dir)
	if code != exitFailure || !strings.Contains(errOut, "atrium.yaml: already exists") || !strings.Contains(errOut, "listings.csv: already exists") {
		t.Errorf("second init = %d, %q; want a failure naming the files", code, errOut)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "atrium.yaml")); !bytes.Equal(got, custom) {
		t.Error("refused init changed atrium.yaml")
	}
	// --no-data still refuses over project files, but not over data.
	code, _, errOut = atrium(t, "init", "--no-data", dir)
	if code != exitFailure || strings.Contains(errOut, "listings.csv") {
		t.Errorf("init --no-data = %d, %q; want a failure naming project files only", code, errOut)
	}
	if code, _, errOut = atrium(t, "init", "--force", dir); code != exitOK {
		t.Errorf("init --force = %d, %s", code, errOut)
	}
	if code, _, errOut = atrium(t, "init", "a", "b"); code != exitUsage {
		t.Errorf("init a b = %d, %s; want a usage error", code, errOut)
	}
	if code, _, errOut = atrium(t, "init", "--size", "huge", t.TempDir()); code != exitUsage || !strings.Contains(errOut, "tiny") {
		t.Errorf("init --size huge = %d, %s; want a usage error listing sizes", code, errOut)
	}
}

func TestDemoRankingCommand(t *testing.T) {
	dir := t.TempDir()
	train, test := filepath.Join(dir, "train.csv"), filepath.Join(dir, "test.csv")
	code, out, errOut := atrium(t, "demo", "ranking", "--size", "tiny", "--out", train, "--test-out", test, "--test-days", "1")
	if code != exitOK {
		t.Fatalf("demo ranking = %d, %s", code, errOut)
	}
	trainRows, testRows := readCSVFile(t, train), readCSVFile(t, test)
	// The tiny preset shows 256 listings in 32 sessions over 4 days.
	if len(trainRows)+len(testRows) != 256 || len(testRows) == 0 {
		t.Errorf("ranking files have %d + %d rows, want 256 in all", len(trainRows), len(testRows))
	}
	if !strings.Contains(out, "rows of") || !strings.Contains(out, "reference NDCG@10") || trainRows[0]["session_id"] != "1" {
		t.Errorf("output %q, first row %v", out, trainRows[0])
	}
	if code, _, errOut = atrium(t, "demo", "ranking", "--size", "tiny"); code != exitUsage || !strings.Contains(errOut, "--out") {
		t.Errorf("demo ranking without --out = %d, %s", code, errOut)
	}
	if code, _, errOut = atrium(t, "demo", "ranking", "--out", filepath.Join(dir, "x.txt"), "--size", "tiny"); code != exitFailure || !strings.Contains(errOut, "want a .csv or .parquet") {
		t.Errorf("demo ranking --out x.txt = %d, %s", code, errOut)
	}
}

func TestDemoGenerateCommand(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := atrium(t, "demo", "generate", "--size", "tiny", "--events", "600", dir)
	if code != exitOK {
		t.Fatalf("demo generate = %d, %s", code, errOut)
	}
	events, _ := filepath.Glob(filepath.Join(dir, "data", "events*.csv"))
	n := 0
	for _, f := range events {
		n += len(readCSVFile(t, f))
	}
	if n < 450 || n > 750 || !strings.Contains(out, demo.Count(int64(n))+" events") {
		t.Errorf("--events 600 wrote %d events; output %q", n, out)
	}
}

// TestDemoEndToEnd runs `atrium demo` on the tiny preset and checks what each
// step that is part of this build really did, against values computed here by
// hand from the generated files. A step whose commands are not in the build
// must say so.
func TestDemoEndToEnd(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	// The demo's default: sessions up to the last midnight, so that values
	// served online are within their ttl now.
	cfg, _ := demo.Preset("tiny")
	cfg.Start = recentStart(time.Now(), cfg.Days)
	code, out, errOut := atrium(t, "demo", "--dir", dir, "--size", "tiny", "--start", cfg.Start.Format(time.DateOnly))
	if code != exitOK {
		t.Fatalf("demo = %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	t.Log(out)
	ev := readEvents(t, dir)
	if !strings.Contains(out, "[1/") || !strings.Contains(out, demo.Count(int64(len(ev)))+" events in 6 files") {
		t.Errorf("demo output does not report the %d generated events:\n%s", len(ev), out)
	}
	if _, err := os.Stat(filepath.Join(dir, "features", "rentals.yaml")); err != nil {
		t.Error(err)
	}
	// A second demo into the same directory refuses to overwrite the project.
	if code, _, errOut := atrium(t, "demo", "--dir", dir, "--size", "tiny"); code != exitFailure || !strings.Contains(errOut, "already exists") {
		t.Errorf("demo into an existing project = %d, %s", code, errOut)
	}
	// Every step runs in this build, and the demo ends with how to get a binary.
	for _, step := range []string{"generate", "apply", "run", "materialize", "historical", "online", "fit", "serve", "monitor", "schedule"} {
		if p := stepOutput(out, step); p == "" || strings.Contains(p, "not available yet") || !strings.Contains(p, "done in") {
			t.Errorf("step %s did not run:\n%s", step, p)
		}
	}
	if !strings.Contains(out, "go install ./cmd/atrium") || !strings.Contains(out, "go build -o") {
		t.Errorf("the demo does not end with how to get an atrium binary on the PATH:\n%s", out)
	}
	checkRunOutcomes(t, dir, cfg, ev)
	checkHistoricalOutcomes(t, dir, cfg, ev, out)
	checkCrossFeatures(t, dir)
	checkOnlineOutcomes(t, dir, cfg)
	checkFitOutcomes(t, dir, cfg, stepOutput(out, "fit"))
	checkServeOutcomes(t, dir, stepOutput(out, "serve"))
	checkMonitorOutcomes(t, stepOutput(out, "monitor"))
	checkReferenceProfiles(t, dir)
	checkTrainDryRun(t, dir, stepOutput(out, "fit"))
	checkSkew(t, dir)
	checkOfflineTwinErrors(t, dir)
	checkScheduleOutcomes(t, dir, cfg, stepOutput(out, "schedule"))
}

// scheduledDays is how many days the demo's schedule step runs (the day
// that closed when the simulated clock starts, and each day after).
const scheduledDays = 4

// checkScheduleOutcomes checks the schedule step: every set ran once per
// simulated day and was materialized after, each aggregated set after its
// profile, all recorded in the scheduler's history.
func checkScheduleOutcomes(t *testing.T, dir string, cfg demo.Config, out string) {
	var runs []scheduler.Run
	code, js, errOut := atrium(t, "--repo", dir, "-o", "json", "runs", "--kind", "all", "--limit", "1000")
	if code != exitOK || json.Unmarshal([]byte(js), &runs) != nil {
		t.Fatalf("runs --kind all = %d %q %q", code, js, errOut)
	}
	if len(runs) != 8*scheduledDays {
		t.Errorf("%d job runs, want 8 jobs x %d days:\n%s", len(runs), scheduledDays, out)
	}
	pos := map[string]int{}
	for i, r := range runs { // newest first
		pos[r.Job+" "+r.Interval().String()] = i
		if r.State != scheduler.StateSucceeded || r.Trigger != scheduler.TriggerSchedule || r.Attempt != 1 {
			t.Errorf("run %+v", r)
		}
	}
	for d := range scheduledDays {
		day := cfg.End().AddDate(0, 0, d-scheduledDays).Format(time.DateOnly)
		for _, pair := range [][2]string{{"run:listing_profile", "run:listing_engagement"}, {"run:user_profile", "run:user_activity"},
			{"run:listing_engagement", "materialize:listing_engagement"}} {
			a, okA := pos[pair[0]+" "+day]
			b, okB := pos[pair[1]+" "+day]
			if !okA || !okB || a <= b {
				t.Errorf("day %s: %s (at %d, %v) did not run before %s (at %d, %v)", day, pair[0], a, okA, pair[1], b, okB)
			}
		}
	}
	if !strings.Contains(out, "listing_engagement: schedule: {cron: daily, depends_on: [listing_profile]}  materialize: after_run") {
		t.Errorf("schedule step output:\n%s", out)
	}
}

// checkMonitorOutcomes checks that the monitor step found exactly the price
// shock it injected: against the slice before it, rent and price_per_m2
// drift, and no input but those computed from rent (rent_to_budget may);
// per neighbourhood, only the shocked one.
func checkMonitorOutcomes(t *testing.T, out string) {
	hood := regexp.MustCompile(`raised the rent of the \d+ listings in (.+) x1\.8 in the online store`).FindStringSubmatch(out)
	moved := regexp.MustCompile(`against the window before the shock, \d+ of \d+ inputs drift: (.*)\n`).FindStringSubmatch(out)
	if hood == nil || moved == nil {
		t.Fatalf("monitor step output does not show the shock and the drift:\n%s", out)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(\w+) \(wasserstein [0-9.e-]+\)`).FindAllStringSubmatch(moved[1], -1) {
		names = append(names, m[1])
	}
	// The report lists inputs in the reference profile's order (the
	// model's input order, as atrium train records it): compared as a set.
	slices.Sort(names)
	got := strings.Join(names, " ")
	if got != "price_per_m2 rent" && got != "price_per_m2 rent rent_to_budget" {
		t.Errorf("drifted inputs %q, want price_per_m2 and rent (and rent_to_budget, computed from rent), nothing else:\n%s", got, out)
	}
	segs := regexp.MustCompile(`rent per neighbourhood, late slice against the one before: drifted in (.*)\n`).FindStringSubmatch(out)
	if segs == nil || !strings.HasPrefix(segs[1], hood[1]+" (") || strings.Contains(segs[1], "), ") {
		t.Errorf("per neighbourhood, want only %s drifting:\n%s", hood[1], out)
	}
}

// checkServeOutcomes checks the serve step: the rank answer ranked listings
// by decreasing score with the registered version, the prediction log holds
// the request's rows with those scores, and the skew check of them was
// clean.
func checkServeOutcomes(t *testing.T, dir, out string) {
	for _, want := range []string{"ranker version 1, request ", "1. listing ", "no skew: the online path served exactly what training would have seen",
		"curl -s localhost:8080/v1/models/ranker/rank", "$ atrium skew --model ranker"} {
		if !strings.Contains(out, want) {
			t.Errorf("serve step output lacks %q:\n%s", want, out)
		}
	}
	var scores []float64
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 5 && f[1] == "listing" && f[3] == "score" {
			s, err := strconv.ParseFloat(f[4], 64)
			if err != nil {
				t.Fatal(err)
			}
			scores = append(scores, s)
		}
	}
	if len(scores) == 0 {
		t.Fatalf("no ranked listing in the serve step's output:\n%s", out)
	}
	for i := 1; i < len(scores); i++ {
		if scores[i] > scores[i-1] {
			t.Errorf("ranked scores %v are not in decreasing order", scores)
		}
	}
	rows, err := predlog.Read(context.Background(), filepath.Join(dir, ".atrium", "offline"), steps.ModelName, time.Now().Add(-time.Hour), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 || rows[0].Route != predlog.RouteRank || rows[0].Version != "1" || rows[0].Entities["user_id"] == "" {
		t.Fatalf("prediction log rows of the rank request: %+v", rows)
	}
	// The serve step's request is the first; the monitor step's traffic follows.
	served := 0
	for _, r := range rows {
		if r.RequestID == rows[0].RequestID {
			served++
		}
	}
	if served != rows[0].NRows || len(rows[0].Features)+len(rows[0].Categorical) != 10 {
		t.Errorf("the log holds %d rows of a request of %d, with %d features", served, rows[0].NRows, len(rows[0].Features)+len(rows[0].Categorical))
	}
}

// checkCrossFeatures checks the on-demand features of the demo's training
// and test sets (CEL, computed by historical) against the SQL the demo
// computed them with before they were on-demand features: every value equal,
// nulls included, so the model trains on what it trained on before.
func checkCrossFeatures(t *testing.T, dir string) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, f := range []string{"train.parquet", "test.parquet"} {
		var rows, differ, nulls, matches int
		err := db.QueryRow(`SELECT count(*),
				count(*) FILTER (WHERE rent_to_budget IS DISTINCT FROM rent / NULLIF(budget, 0)
					OR neighborhood_match IS DISTINCT FROM CAST(list_contains(string_split(preferred_neighborhoods, '|'), neighborhood) AS INTEGER)),
				count(*) FILTER (WHERE rent_to_budget IS NULL OR neighborhood_match IS NULL),
				count(*) FILTER (WHERE neighborhood_match = 1)
			FROM read_parquet(?)`, filepath.Join(dir, "training", f)).Scan(&rows, &differ, &nulls, &matches)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d rows, %d with a null cross feature, %d neighborhood matches", f, rows, nulls, matches)
		if rows == 0 || differ != 0 || matches == 0 {
			t.Errorf("%s: %d of %d rows differ from the SQL cross features (%d matches)", f, differ, rows, matches)
		}
	}
}

// checkFitOutcomes checks that the tuned model scored every test impression,
// that its registered version (features retrieved by itself) scores as the
// LightGBM copy of the model in its parent run does on the historical
// step's test set, that the tuned version took the champion alias, and that
// the printed NDCG@10 of each ranking is what Evaluate computes again from
// the written scores.
func checkFitOutcomes(t *testing.T, dir string, cfg demo.Config, out string) {
	spine := readCSVFile(t, filepath.Join(dir, "training", "test-spine.csv"))
	scores, err := steps.ReadScores(filepath.Join(dir, "training", "test-scores.csv"))
	if err != nil {
		t.Fatal(err)
	}
	baseline, err := steps.ReadScores(filepath.Join(dir, "training", "baseline-scores.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if len(scores) != len(spine) || len(baseline) != len(spine) || len(spine) == 0 {
		t.Fatalf("the models scored %d and %d impressions, the test spine has %d", len(scores), len(baseline), len(spine))
	}
	run := regexp.MustCompile(`registered  ranker version 1 \(run ([0-9a-f]+)\)`).FindStringSubmatch(out)
	if run == nil || !strings.Contains(out, "decision    promote (champion)") || !strings.Contains(out, "registered  ranker_baseline version 1") {
		t.Fatalf("the fit step does not report both registrations and the promotion:\n%s", out)
	}
	lgb := demoModelFile(t, dir)
	if !strings.Contains(lgb, run[1]) {
		t.Fatalf("the model file %s is not in the run %s the fit step reported", lgb, run[1])
	}
	fileScores := filepath.Join(t.TempDir(), "file-scores.csv")
	mustAtrium(t, dir, "predict", "--model", lgb, "--data", filepath.Join(dir, "training", "test.parquet"),
		"--passthrough", "session_id,listing_id", "--out", fileScores)
	want, err := steps.ReadScores(fileScores)
	if err != nil {
		t.Fatal(err)
	}
	distinct := map[float64]bool{}
	for k, w := range want {
		distinct[w] = true
		if g, ok := scores[k]; !ok || math.Abs(g-w) > 1e-12*math.Max(1, math.Abs(w)) {
			t.Errorf("session %d listing %d: registered version scored %v (present: %v), the model file %v", k[0], k[1], g, ok, w)
		}
	}
	if len(distinct) < 2 {
		t.Errorf("the model gives every test impression the same score: the comparison proves nothing")
	}
	m, err := demo.NewMarket(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rankers := append([]demo.NamedRanker{{Name: "tuned model", Ranker: demo.ScoreRanker(scores)}, {Name: "untuned model", Ranker: demo.ScoreRanker(baseline)}},
		demo.BaselineRankers(cfg.Seed)...)
	ev, err := m.Evaluate(context.Background(), cfg.Days-1, cfg.Days, 10, rankers)
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range ev.Rankers {
		want := fmt.Sprintf("%8.4f  %9.4f", ev.Observed[i], ev.Attentive[i])
		line := ""
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), name+" ") {
				line = l
			}
		}
		if !strings.HasSuffix(line, want) {
			t.Errorf("NDCG line of %q is %q, want it to end with %q", name, line, want)
		}
	}
}

// demoModelFile is the LightGBM text copy of the demo's tuned ranker that
// atrium train logged in the ranker study's parent run (the run holding
// the spec training/ranker.yaml).
func demoModelFile(t *testing.T, dir string) string {
	t.Helper()
	specs, _ := filepath.Glob(filepath.Join(dir, ".atrium", "artifacts", "*", "*", "artifacts", "spec", "ranker.yaml"))
	if len(specs) != 1 {
		t.Fatalf("want one run of training/ranker.yaml, found %v", specs)
	}
	return filepath.Join(filepath.Dir(filepath.Dir(specs[0])), "model", "model.lgb")
}

// stepOutput returns the lines the demo printed for the named step.
func stepOutput(out, name string) string {
	i := strings.Index(out, "] "+name+": ")
	if i < 0 {
		return ""
	}
	rest := out[i:]
	if j := strings.Index(rest, "\n\n"); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// event is one row of the generated events files.
type event struct {
	ts      time.Time
	name    string
	listing int64
}

func readEvents(t *testing.T, dir string) []event {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "data", "events*.csv"))
	var evs []event
	for _, f := range files {
		for _, r := range readCSVFile(t, f) {
			ts, err := time.Parse(demo.TimeLayout, r["ts"])
			if err != nil {
				t.Fatal(err)
			}
			id, _ := strconv.ParseInt(r["listing_id"], 10, 64)
			evs = append(evs, event{ts, r["event"], id})
		}
	}
	return evs
}

// countEvents counts the events of listing (any listing when 0) named name (any
// when "") in [from, to).
func countEvents(evs []event, listing int64, name string, from, to time.Time) int {
	n := 0
	for _, e := range evs {
		if (listing == 0 || e.listing == listing) && (name == "" || e.name == name) && !e.ts.Before(from) && e.ts.Before(to) {
			n++
		}
	}
	return n
}

// checkRunOutcomes checks the rows of listing_engagement against the issue's
// window semantics: a row per listing at each midnight T of the run whose 7-day
// window [T-7d, T) holds an event.
func checkRunOutcomes(t *testing.T, dir string, cfg demo.Config, evs []event) {
	var r demo.SetRange
	for _, s := range cfg.FeatureSetRanges() {
		if s.Set == "listing_engagement" {
			r = s
		}
	}
	want := 0
	for T := r.Start; !T.After(r.End); T = T.AddDate(0, 0, 1) {
		seen := map[int64]bool{}
		for _, e := range evs {
			if !e.ts.Before(T.AddDate(0, 0, -7)) && e.ts.Before(T) {
				seen[e.listing] = true
			}
		}
		want += len(seen)
	}
	code, out, errOut := atrium(t, "--repo", dir, "-o", "json", "runs", "listing_engagement")
	var runs []struct {
		Status  string
		RowsOut int64 `json:"rows_out"`
	}
	// The run step's run is the oldest: the schedule step's daily runs
	// come after it.
	if code != exitOK || json.Unmarshal([]byte(out), &runs) != nil || len(runs) != 1+scheduledDays {
		t.Fatalf("runs listing_engagement = %d, %q, %q", code, out, errOut)
	}
	if r := runs[len(runs)-1]; r.Status != "succeeded" || r.RowsOut != int64(want) {
		t.Errorf("listing_engagement run: %s, %d rows out; by hand %d rows", r.Status, r.RowsOut, want)
	}
}

// checkHistoricalOutcomes joins engagement features of the busiest listing at a
// midnight T and one second before it, and compares them with counts made here
// from the events: the row at T covers [T-1d, T); one second earlier the join
// must fall back to the row of T-1d and never see day T-1d's events.
func checkHistoricalOutcomes(t *testing.T, dir string, cfg demo.Config, evs []event, demoOut string) {
	T := cfg.Start.AddDate(0, 0, 3)
	imps := map[int64]int{}
	for _, e := range evs {
		if e.name == demo.EventImpression && e.ts.Before(T) {
			imps[e.listing]++
		}
	}
	var busiest int64
	for l, n := range imps {
		if n > imps[busiest] || (n == imps[busiest] && l < busiest) {
			busiest = l
		}
	}
	spine := filepath.Join(dir, "e2e-spine.csv")
	before := T.Add(-time.Second)
	content := fmt.Sprintf("listing_id,ts\n%d,%s\n%d,%s\n%d,%s\n", busiest, T.Format(demo.TimeLayout), busiest, before.Format(demo.TimeLayout), 999999, T.Format(demo.TimeLayout))
	if err := os.WriteFile(spine, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	outPath := filepath.Join(dir, "e2e.csv")
	code, out, errOut := atrium(t, "--repo", dir, "historical", "--spine", spine, "--features",
		"listing_engagement:clicks_sum_1d,listing_engagement:impressions_sum_1d,listing_engagement:ctr_7d", "--out", outPath)
	if code != exitOK {
		t.Fatalf("historical = %d, %q, %q", code, out, errOut)
	}
	rows := readCSVFile(t, outPath)
	if len(rows) != 3 {
		t.Fatalf("historical wrote %d rows, want 3", len(rows))
	}
	day := 24 * time.Hour
	for i, at := range []time.Time{T, T.Add(-day)} { // the row stamped at (T, then T-1d)
		clicks := countEvents(evs, busiest, demo.EventClick, at.Add(-day), at)
		impressions := countEvents(evs, busiest, demo.EventImpression, at.Add(-day), at)
		ctr := float64(countEvents(evs, busiest, demo.EventClick, at.Add(-7*day), at)) / float64(countEvents(evs, busiest, demo.EventImpression, at.Add(-7*day), at))
		r := rows[i]
		if num(t, r["clicks_sum_1d"]) != float64(clicks) || num(t, r["impressions_sum_1d"]) != float64(impressions) || math.Abs(num(t, r["ctr_7d"])-ctr) > 1e-12 {
			t.Errorf("listing %d at %s: historical %v; by hand clicks_sum_1d %d, impressions_sum_1d %d, ctr_7d %v", busiest, r["ts"], r, clicks, impressions, ctr)
		}
	}
	if r := rows[2]; r["clicks_sum_1d"] != "" || r["ctr_7d"] != "" {
		t.Errorf("an unknown listing got features %v, want nulls", r)
	}
	// The demo's own probe: null before the listing existed, then its rents.
	if p := stepOutput(demoOut, "historical"); strings.Contains(p, "point-in-time probe: listing") &&
		(strings.Count(p, ") ok") != 3 || !strings.Contains(p, "rent null   (truth null  ) ok")) {
		t.Errorf("point-in-time probe did not check out:\n%s", p)
	}
	checkFutureIsNull(t, dir, cfg)
}

// checkFutureIsNull joins a listing's rent one second before it was published
// (its first row is in the future: null) and at publication (its first rent),
// whatever the probe found.
func checkFutureIsNull(t *testing.T, dir string, cfg demo.Config) {
	m, err := demo.NewMarket(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var l *demo.Listing
	for i := range m.Listings {
		// Within the days listing_profile was computed for.
		if m.Listings[i].CreatedAt().After(cfg.Start.AddDate(0, 0, -89)) {
			l = &m.Listings[i]
			break
		}
	}
	if l == nil {
		t.Fatal("no listing published in the 89 days before the sessions")
	}
	at := l.CreatedAt()
	spine := filepath.Join(dir, "future-spine.csv")
	content := fmt.Sprintf("listing_id,ts\n%d,%s\n%d,%s\n", l.ID, at.Add(-time.Second).Format(demo.TimeLayout), l.ID, at.Format(demo.TimeLayout))
	if err := os.WriteFile(spine, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "future.csv")
	if code, stdout, errOut := atrium(t, "--repo", dir, "historical", "--spine", spine, "--features", "listing_profile:rent", "--out", out); code != exitOK {
		t.Fatalf("historical = %d, %s %s", code, stdout, errOut)
	}
	rows := readCSVFile(t, out)
	if len(rows) != 2 || rows[0]["rent"] != "" || rows[1]["rent"] == "" || num(t, rows[1]["rent"]) != l.Prices[0].Rent {
		t.Errorf("listing %d published %s at %v: joined rents %v, want null then %v", l.ID, at, l.Prices[0].Rent, rows, l.Prices[0].Rent)
	}
}

func num(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("%q is not a number", s)
	}
	return v
}
