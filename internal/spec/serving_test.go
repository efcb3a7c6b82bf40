package spec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func loadYAML(t *testing.T, yaml string) (*Project, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ProjectFile), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return LoadProject(dir)
}

func TestServingDefaults(t *testing.T) {
	p, err := loadYAML(t, "project: x\n")
	if err != nil {
		t.Fatal(err)
	}
	s := p.Serving
	if s.DefaultAlias != "champion" || s.PollInterval != 2*time.Second || s.GRPCAddr != "" || s.MaxCandidates != 1000 ||
		!*s.PredictionLog.Enabled || *s.PredictionLog.SampleRate != 1 || s.PredictionLog.FlushInterval != 10*time.Second ||
		s.PredictionLog.BufferRows != 100_000 {
		t.Fatalf("defaults %+v", s)
	}
}

func TestServingFile(t *testing.T) {
	p, err := loadYAML(t, `serving:
  default_alias: prod
  poll_interval: 500ms
  grpc_addr: 127.0.0.1:8081
  max_candidates: 500
  models:
    - name: ranker
      feature_service: ranker_v2
      load_at_start: true
      canary: {alias: challenger, weight: 0.1}
      shadow: {alias: shadow}
    - name: click
      alias: champion
  rankers:
    - name: search
      models: [{name: click}, {name: visit, alias: challenger}]
      score: click * 0.3 + visit
  prediction_log:
    enabled: false
    sample_rate: 0
    flush_interval: 1m
    buffer_rows: 10
`)
	if err != nil {
		t.Fatal(err)
	}
	s := p.Serving
	m := s.Models[0]
	if s.DefaultAlias != "prod" || s.PollInterval != 500*time.Millisecond || s.GRPCAddr != "127.0.0.1:8081" || s.MaxCandidates != 500 ||
		m.Name != "ranker" || m.FeatureService != "ranker_v2" || !m.LoadAtStart || m.Canary.Alias != "challenger" || m.Canary.Weight != 0.1 ||
		m.Shadow.Alias != "shadow" || s.Models[1].Alias != "champion" {
		t.Fatalf("serving %+v, model %+v", s, m)
	}
	r := s.Rankers[0]
	if r.Name != "search" || len(r.Models) != 2 || r.Models[1].Alias != "challenger" || r.Score != "click * 0.3 + visit" {
		t.Fatalf("ranker %+v", r)
	}
	l := s.PredictionLog
	if *l.Enabled || *l.SampleRate != 0 || l.FlushInterval != time.Minute || l.BufferRows != 10 {
		t.Fatalf("prediction log %+v", l)
	}
}

// TestProjectFiles loads each testdata/project/*.yaml as a project's
// atrium.yaml and compares its problems (or "ok") with <name>.golden (go
// test -update rewrites them): every problem of a file at once, each at the
// line of the field at fault, or of the field a required one belongs in.
func TestProjectFiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "project", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no project files: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, ProjectFile), data, 0o644); err != nil {
				t.Fatal(err)
			}
			got := "ok\n"
			if _, err := LoadProject(dir); err != nil {
				var ps Problems
				if !errors.As(err, &ps) {
					t.Fatalf("error is not Problems: %v", err)
				}
				got = strings.ReplaceAll(ps.Error(), filepath.Join(dir, ProjectFile), ProjectFile) + "\n"
			}
			checkGolden(t, strings.TrimSuffix(f, ".yaml")+".golden", got)
		})
	}
}

// Two listeners collide on the same port of the same host, or of all
// interfaces; port 0 is chosen by the system and never collides.
func TestListenersCollide(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"127.0.0.1:8080", "127.0.0.1:8080", true},
		{"localhost:8080", "127.0.0.1:8080", true},
		{":8080", "127.0.0.1:8080", true},
		{"0.0.0.0:8080", "[::1]:8080", true},
		{"[::]:8080", "10.0.0.1:8080", true},
		{"127.0.0.1:8080", "127.0.0.1:8081", false},
		{"127.0.0.1:8080", "10.0.0.1:8080", false},
		{"127.0.0.1:0", "127.0.0.1:0", false},
		{"nowhere", "127.0.0.1:8080", false},
	} {
		if got := ListenersCollide(c.a, c.b); got != c.want {
			t.Errorf("ListenersCollide(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}
