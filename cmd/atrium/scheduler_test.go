package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/platform/scheduler"
	"github.com/atrium-ml/atrium/internal/platform/server"
)

// scheduledRepo is the example with daily schedules: engagement
// waits for the profile's day and is materialized after each run.
func scheduledRepo(t *testing.T) string {
	t.Helper()
	dir := exampleRepo(t)
	path := filepath.Join(dir, "features", "example.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "    ttl: 90d\n", "    ttl: 90d\n    schedule: daily\n", 1)
	s = strings.Replace(s, "    slide: 1d\n", "    slide: 1d\n    schedule: {cron: daily, delay: 1h, depends_on: [listing_profile], retries: 0}\n    materialize: after_run\n", 1)
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestBackfillTriggerRunsAndJobs(t *testing.T) {
	dir := scheduledRepo(t)
	mustAtrium(t, dir, "apply")
	out := mustAtrium(t, dir, "backfill", "listing_engagement", "--start", "2024-01-01", "--end", "2024-01-04", "--parallel", "2")
	for _, day := range []string{"2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"} {
		if !strings.Contains(out, "run:listing_engagement  "+day+"  backfill  1        succeeded") {
			t.Errorf("backfill output lacks %s:\n%s", day, out)
		}
	}
	// The pipeline runs it made are recorded as before.
	if out := mustAtrium(t, dir, "runs", "listing_engagement"); strings.Count(out, "succeeded") != 4 {
		t.Errorf("atrium runs listing_engagement:\n%s", out)
	}
	// Backfilled again: each day runs once more, nothing twice at once.
	mustAtrium(t, dir, "backfill", "listing_engagement", "--start", "2024-01-02", "--end", "2024-01-02")
	var runs []scheduler.Run
	if err := json.Unmarshal([]byte(mustAtrium(t, dir, "-o", "json", "runs", "--kind", "all", "--limit", "100")), &runs); err != nil {
		t.Fatal(err)
	}
	if len(runs) != 5 || runs[0].Interval().String() != "2024-01-02" || runs[0].Rows == 0 || len(runs[0].Checks) != 1 {
		t.Errorf("job runs: %+v", runs)
	}
	out = mustAtrium(t, dir, "trigger", "listing_profile", "--start", "2024-01-03", "--end", "2024-01-03")
	if !strings.Contains(out, "run:listing_profile  2024-01-03  manual") {
		t.Errorf("trigger: %s", out)
	}
	if out := mustAtrium(t, dir, "runs", "--trigger", "manual"); strings.Count(out, "run:listing_profile") != 1 {
		t.Errorf("runs --trigger manual:\n%s", out)
	}
	mustAtrium(t, dir, "jobs", "pause", "listing_engagement")
	out = mustAtrium(t, dir, "jobs")
	for _, want := range []string{"run:listing_engagement", "daily +1h", "paused", "materialize:listing_engagement", "daily +1h (after run)", "run:listing_profile"} {
		if !strings.Contains(out, want) {
			t.Errorf("jobs lacks %q:\n%s", want, out)
		}
	}

	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"backfill", "listing_engagement", "--start", "2030-01-01", "--end", "2030-01-03"}, exitFailure, "source events (data/events*.csv) holds no row with ts in [2029-12-25T00:00:00Z, 2030-01-04T00:00:00Z)"},
		{[]string{"backfill", "listing_engagement", "--start", "2024-01-01"}, exitUsage, "--start and --end are required"},
		{[]string{"backfill", "listing_engagement", "--start", "2024-01-03", "--end", "2024-01-01"}, exitUsage, "before --start"},
		{[]string{"backfill", "nope", "--start", "2024-01-01", "--end", "2024-01-02"}, exitUsage, `unknown job "nope": the jobs are materialize:listing_engagement, run:listing_engagement, run:listing_profile`},
		{[]string{"backfill", "materialize:listing_engagement", "--start", "2024-01-01", "--end", "2024-01-02"}, exitUsage, "backfill runs feature sets"},
		{[]string{"jobs", "resume", "nope"}, exitUsage, `unknown job "nope"`},
	} {
		code, _, errOut := atrium(t, append([]string{"--repo", dir}, tt.args...)...)
		if code != tt.code || !strings.Contains(errOut, tt.msg) {
			t.Errorf("atrium %v = %d, %q; want %d with %q", tt.args, code, errOut, tt.code, tt.msg)
		}
	}
	// The refused backfill started nothing.
	if out := mustAtrium(t, dir, "runs", "--kind", "all", "--limit", "100"); strings.Contains(out, "2030-") {
		t.Errorf("a refused backfill ran:\n%s", out)
	}
}

// A schedule that does not parse, a cycle or an unknown dependency stops
// apply with every problem and its line; nothing is applied.
func TestApplyRefusesBadSchedules(t *testing.T) {
	dir := exampleRepo(t)
	path := filepath.Join(dir, "features", "example.yaml")
	b, _ := os.ReadFile(path)
	s := strings.Replace(string(b), "    ttl: 90d\n", "    ttl: 90d\n    schedule: {cron: \"0 3 * *\", depends_on: [listing_engagement]}\n", 1)
	s = strings.Replace(s, "    slide: 1d\n", "    slide: 1d\n    schedule: {cron: daily, timezone: Europe/Berln, depends_on: [listing_profile, nope]}\n", 1)
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := atrium(t, "--repo", dir, "apply")
	for _, want := range []string{
		`features/example.yaml:12: feature set "listing_profile" schedule: bad schedule: "0 3 * *": expected exactly 5 fields`,
		`features/example.yaml:12: feature set "listing_profile" schedule depends_on: cycle listing_profile -> listing_engagement -> listing_profile`,
		`features/example.yaml:23: feature set "listing_engagement" schedule: bad schedule: time zone "Europe/Berln"`,
		`features/example.yaml:23: feature set "listing_engagement" schedule depends_on: unknown feature set "nope"`,
	} {
		if code != exitFailure || !strings.Contains(errOut, want) {
			t.Errorf("apply = %d, stderr lacks %q:\n%s", code, want, errOut)
		}
	}
	if code, _, errOut := atrium(t, "--repo", dir, "jobs"); code != exitFailure || !strings.Contains(errOut, "no feature definitions applied") {
		t.Errorf("jobs after a refused apply = %d %q", code, errOut)
	}
}

// The scheduler's HTTP API as `atrium serve` mounts it: declared
// permissions, listing, trigger, backfill refused outside the data.
func TestSchedulerAPI(t *testing.T) {
	dir := scheduledRepo(t)
	mustAtrium(t, dir, "apply")
	var stderr bytes.Buffer
	e := &env{ctx: context.Background(), stdout: io.Discard, stderr: &stderr, repo: dir, log: slog.New(slog.NewTextHandler(&stderr, nil))}
	defer e.close()
	p, err := e.Project()
	if err != nil {
		t.Fatal(err)
	}
	s, api, run, err := serveScheduler(e, p)
	if err != nil {
		t.Fatal(err)
	}
	if !run {
		t.Error("serve would not run the scheduler although sets are scheduled")
	}
	perms := map[string]server.Permission{}
	for _, rt := range api.Routes() {
		perms[rt.Pattern] = rt.Permission
	}
	if perms["GET /v1/jobs"] != server.Read || perms["POST /v1/jobs/{job}/backfill"] != server.Materialize || perms["POST /v1/jobs/{job}/pause"] != server.Materialize {
		t.Errorf("permissions: %v", perms)
	}
	srv := httptest.NewServer(server.New(server.Options{Logger: e.log}, api).Handler())
	defer srv.Close()
	post := func(path, body string) (int, string) {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post("/v1/jobs/run:listing_engagement/backfill", `{"start": "2024-01-01T00:00:00Z", "end": "2024-01-03T00:00:00Z", "parallel": 2}`); code != http.StatusAccepted || !strings.Contains(body, `"queued":2`) {
		t.Errorf("backfill = %d %s", code, body)
	}
	if code, body := post("/v1/jobs/run:listing_engagement/backfill", `{"start": "2031-01-01T00:00:00Z", "end": "2031-01-03T00:00:00Z"}`); code != http.StatusBadRequest || !strings.Contains(body, "holds no row") {
		t.Errorf("backfill outside the data = %d %s", code, body)
	}
	if code, body := post("/v1/jobs/nope/trigger", `{}`); code != http.StatusNotFound {
		t.Errorf("trigger of an unknown job = %d %s", code, body)
	}
	if code, body := post("/v1/jobs/run:listing_profile/trigger", `{"start": 3}`); code != http.StatusBadRequest {
		t.Errorf("trigger with a bad body = %d %s", code, body)
	}
	// The queued days run when the scheduler ticks.
	for range 10 {
		if _, err := s.Tick(e.ctx); err != nil {
			t.Fatal(err)
		}
		s.Wait()
	}
	resp, err := http.Get(srv.URL + "/v1/jobs/run:listing_engagement/runs?trigger=backfill")
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Runs []scheduler.Run }
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(got.Runs) != 2 || got.Runs[0].State != scheduler.StateSucceeded || got.Runs[0].Trigger != scheduler.TriggerBackfill {
		t.Errorf("runs = %+v", got.Runs)
	}
	resp, err = http.Get(srv.URL + "/v1/jobs")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"name":"materialize:listing_engagement"`) {
		t.Errorf("jobs: %s", b)
	}
}

// A failed error-level check raises an alert through the monitoring layer's
// webhook (scheduler.alert_webhook), critical, naming the job and the day;
// the run is not retried.
func TestFailedCheckAlerts(t *testing.T) {
	dir := scheduledRepo(t)
	hook, got := webhookRecorder(t)
	if err := os.WriteFile(filepath.Join(dir, "atrium.yaml"), []byte("scheduler:\n  alert_webhook: "+hook.URL+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Day 2024-01-02's listing 2 costs 9: below the between [100, 100000] check.
	path := filepath.Join(dir, "data", "listings.csv")
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), "2,2024-01-02 00:00:00,900.5", "2,2024-01-02 00:00:00,9", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	mustAtrium(t, dir, "apply")
	code, out, errOut := atrium(t, "--repo", dir, "trigger", "listing_profile", "--start", "2024-01-02", "--end", "2024-01-02")
	if code != exitFailure || !strings.Contains(errOut, "run:listing_profile: 1 interval(s) failed: 2024-01-02") ||
		!strings.Contains(out, "run:listing_profile  2024-01-02  manual   1        checks_failed") {
		t.Fatalf("trigger = %d\n%s\n%s", code, out, errOut)
	}
	n := <-got
	labels, _ := n["labels"].(map[string]any)
	if n["rule"] != "job run:listing_profile" || n["severity"] != "critical" || n["state"] != "firing" || labels["interval"] != "2024-01-02" ||
		!strings.Contains(n["summary"].(string), "nothing downstream of it runs") {
		t.Errorf("notification = %v", n)
	}
	if out := mustAtrium(t, dir, "runs", "--job", "run:listing_profile"); strings.Count(out, "checks_failed") != 1 {
		t.Errorf("the failed check was retried:\n%s", out)
	}
}

// webhookRecorder is a webhook receiver that passes each notification it
// gets, decoded, to got; closed when the test ends.
func webhookRecorder(t *testing.T) (hook *httptest.Server, got chan map[string]any) {
	t.Helper()
	got = make(chan map[string]any, 4)
	hook = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n map[string]any
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
			t.Error(err)
		}
		got <- n
	}))
	t.Cleanup(hook.Close)
	return hook, got
}
