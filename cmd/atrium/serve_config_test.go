package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeConfigChecks: what atrium.yaml's serving block names that only
// serve can check (the applied feature definitions, the --addr flag) is
// refused at start, at its line, rather than answered 503 on every request
// or found when a listener fails.
func TestServeConfigChecks(t *testing.T) {
	for _, c := range []struct {
		name  string
		apply bool
		yaml  string
		args  []string
		want  string
	}{
		{"unknown feature service", true, "serving:\n  models:\n    - name: ranker\n      feature_service: no_such_service\n", nil,
			`atrium.yaml:4: serving.models[0].feature_service: "no_such_service" is not a feature service of the applied definitions, expected one of pricing`},
		{"feature service, nothing applied", false, "serving:\n  models:\n    - name: ranker\n      feature_service: pricing\n", nil,
			`atrium.yaml:4: serving.models[0].feature_service: "pricing": no feature definitions are applied`},
		{"gRPC on the --addr address", false, "serving:\n  grpc_addr: 127.0.0.1:18931\n", []string{"--addr", "127.0.0.1:18931"},
			`atrium.yaml:2: serving.grpc_addr: "127.0.0.1:18931" collides with the HTTP address "127.0.0.1:18931" (--addr)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := errorsRepo(t)
			if c.apply {
				mustAtrium(t, dir, "apply")
			}
			if err := os.WriteFile(filepath.Join(dir, "atrium.yaml"), []byte(c.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			args := c.args
			if args == nil {
				args = []string{"--addr", "127.0.0.1:0"}
			}
			// A serve that starts runs until the context ends: bounded, so
			// that a check missing fails the test rather than hanging it.
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			code := run(ctx, append([]string{"--repo", dir, "serve"}, args...), &stdout, &stderr)
			if code == exitOK || !strings.Contains(stderr.String(), c.want) {
				t.Fatalf("exit %d, stderr lacks %q:\n%s", code, c.want, stderr.String())
			}
		})
	}
}

// TestServeWarnsUnregistered: a ranker's model, or a canary's or shadow's
// alias, the registry does not hold is not an error (it may be registered
// while the server runs), but each is named at start, at its line: a typo
// would otherwise pass silently (the canary off, the ranker 404).
func TestServeWarnsUnregistered(t *testing.T) {
	dir := t.TempDir()
	yaml := `serving:
  models:
    - name: ranker
      canary: {alias: challanger, weight: 0.1}
      shadow: {alias: shadow}
  rankers:
    - name: search
      models: [{name: nope}]
      score: nope
`
	if err := os.WriteFile(filepath.Join(dir, "atrium.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "--repo", dir, "serve", "--addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	var log []string
	for lines := bufio.NewScanner(stderr); lines.Scan(); {
		if strings.HasPrefix(lines.Text(), "atrium serving on ") {
			break
		}
		log = append(log, lines.Text())
	}
	all := strings.Join(log, "\n")
	for _, want := range []string{
		`atrium.yaml:4: serving.models[0].canary.alias: model not found: model \"ranker\"`,
		`atrium.yaml:5: serving.models[0].shadow.alias: model not found: model \"ranker\"`,
		`atrium.yaml:8: serving.rankers[0].models[0]: model not found: model \"nope\"`,
		`/v1/rankers/search/rank answers 404 until it is registered`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("start-up log lacks %s:\n%s", want, all)
		}
	}
	if n := strings.Count(all, "atrium.yaml:"); n != 3 {
		t.Errorf("%d warnings at atrium.yaml's lines, want 3 (one per reference):\n%s", n, all)
	}
}
