package spec

import (
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

// Every problem of the serving block is reported at once, each with the
// line of the field at fault.
func TestServingInvalid(t *testing.T) {
	_, err := loadYAML(t, `serving:
  poll_interval: -1s
  grpc_addr: nowhere
  models:
    - name: ranker
      canary:
        alias: champion
        weight: 1.5
      shadow: {}
    - name: ranker
    - alias: "bad alias"
  rankers:
    - name: r
      models: []
    - name: r
      models: [{alias: y}]
      score: a
  prediction_log:
    sample_rate: 2
    buffer_rows: -1
`)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`atrium.yaml:2: serving.poll_interval: -1s, expected a positive duration`,
		`atrium.yaml:3: serving.grpc_addr: "nowhere", expected host:port`,
		`atrium.yaml:7: serving.models[0].canary.alias: "champion" is the model's own alias`,
		`atrium.yaml:8: serving.models[0].canary.weight: 1.5, expected a share of traffic above 0 and at most 1`,
		`atrium.yaml:9: serving.models[0].shadow: alias is required`,
		`atrium.yaml:10: serving.models[1].name: model "ranker" is listed twice`,
		`atrium.yaml:11: serving.models[2]: name is required`,
		`atrium.yaml:11: serving.models[2].alias: "bad alias" is not an alias name`,
		`serving.rankers[0]: models is required`,
		`serving.rankers[0]: score is required`,
		`atrium.yaml:15: serving.rankers[1].name: ranker "r" is listed twice`,
		`serving.rankers[1].models[0]: name is required`,
		`atrium.yaml:19: serving.prediction_log.sample_rate: 2, expected a share from 0 to 1`,
		`atrium.yaml:20: serving.prediction_log.buffer_rows: -1, expected a positive number of rows`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
