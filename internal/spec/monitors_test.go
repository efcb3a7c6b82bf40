package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadMonitors(t *testing.T) {
	ms, err := LoadMonitors(filepath.Join("testdata", "monitors"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms.Monitors) != 5 || len(ms.Notifiers) != 2 {
		t.Fatalf("got %d monitors, %d notifiers", len(ms.Monitors), len(ms.Notifiers))
	}
	drift := ms.Monitor("ranker_drift")
	if drift.Window.D() != 24*time.Hour || drift.For.D() != 30*time.Minute || drift.Severity != SeverityCritical ||
		drift.Labels["team"] != "search" || drift.Notify[0] != "oncall" || drift.Line != 10 {
		t.Errorf("ranker_drift = %+v", drift)
	}
	// Defaults: window 24h, comparison >, severity warning, no_data keep.
	rent := ms.Monitor("ranker_rent_drift")
	if rent.Window != DefaultMonitorWindow || rent.Comparison != ">" || rent.Severity != SeverityWarning || rent.NoData != NoDataKeep {
		t.Errorf("ranker_rent_drift defaults = %+v", rent)
	}
	if ms.Notifier("audit").Format != NotifyJSON || ms.Notifier("oncall").Format != NotifySlack {
		t.Errorf("notifier formats: %+v %+v", ms.Notifier("audit"), ms.Notifier("oncall"))
	}
	if !ms.Monitor("listings_checks").Measure.IsFeatureSet() || !rent.Measure.IsModel() {
		t.Error("measure kinds")
	}
}

func TestBreached(t *testing.T) {
	for _, c := range []struct {
		cmp   string
		value float64
		want  bool
	}{{">", 0.5, false}, {">", 0.6, true}, {">=", 0.5, true}, {"<", 0.5, false}, {"<", 0.4, true}, {"<=", 0.5, true}, {"<=", 0.6, false}} {
		m := &Monitor{Comparison: c.cmp, Threshold: 0.5}
		if got := m.Breached(c.value); got != c.want {
			t.Errorf("%g %s 0.5 = %v, want %v", c.value, c.cmp, got, c.want)
		}
	}
}

func TestMonitorProblems(t *testing.T) {
	_, err := LoadMonitors(filepath.Join("testdata", "monitors_invalid"))
	if err == nil {
		t.Fatal("invalid monitors accepted")
	}
	got := err.Error()
	golden := filepath.Join("testdata", "monitors_invalid", "problems.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got+"\n" != string(want) {
		t.Errorf("problems:\n%s\nwant:\n%s", got, want)
	}
	// Every problem names its file and line.
	for _, l := range strings.Split(got, "\n") {
		if !strings.HasPrefix(l, filepath.Join("monitors", "bad.yaml")+":") || strings.HasPrefix(l, filepath.Join("monitors", "bad.yaml")+": ") {
			t.Errorf("problem without a line: %s", l)
		}
	}
}

func TestParseRealizedMetric(t *testing.T) {
	for _, c := range []struct {
		in   string
		name string
		k    int
		err  string
	}{
		{"auc", "auc", 0, ""}, {"NDCG@10", "ndcg", 10, ""}, {"map@5", "map", 5, ""}, {"rmse", "rmse", 0, ""},
		{"ndcg", "", 0, "needs a cutoff"}, {"auc@3", "", 0, "takes no cutoff"}, {"ndcg@0", "", 0, "positive"},
		{"ndcg@x", "", 0, "positive"}, {"ndcg@05", "", 0, "positive"}, {"f1", "", 0, "unknown metric"},
	} {
		name, k, err := ParseRealizedMetric(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || name != c.name || k != c.k {
			t.Errorf("%s = %s, %d, %v", c.in, name, k, err)
		}
	}
}

func TestNotifierEndpoint(t *testing.T) {
	n := &Notifier{Name: "oncall", URLEnv: "ATRIUM_TEST_HOOK_URL"}
	t.Setenv("ATRIUM_TEST_HOOK_URL", "")
	if _, err := n.Endpoint(); err == nil || !strings.Contains(err.Error(), "ATRIUM_TEST_HOOK_URL is not set") {
		t.Errorf("unset env: %v", err)
	}
	t.Setenv("ATRIUM_TEST_HOOK_URL", "file:///etc/passwd")
	if _, err := n.Endpoint(); err == nil {
		t.Error("file URL accepted")
	}
	t.Setenv("ATRIUM_TEST_HOOK_URL", "https://hooks.example.com/x")
	if u, err := n.Endpoint(); err != nil || u != "https://hooks.example.com/x" {
		t.Errorf("endpoint = %s, %v", u, err)
	}
}
