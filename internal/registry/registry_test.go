package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/registry"
	"github.com/atrium-ml/atrium/internal/tracking"
	"github.com/atrium-ml/atrium/internal/tracking/search"
	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

func stores(t *testing.T, db *meta.DB) (*tracking.Store, *registry.Store) {
	t.Helper()
	ts, err := tracking.New(context.Background(), db, tracking.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return ts, registry.New(ts)
}

// runAndModel creates a run and a registered model named model.
func runAndModel(t *testing.T, ts *tracking.Store, s *registry.Store, model string) *tracking.Run {
	t.Helper()
	run, err := ts.CreateRun(context.Background(), tracking.RunCreate{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateRegisteredModel(context.Background(), model, nil, ""); err != nil {
		t.Fatal(err)
	}
	return run
}

func wantErr(t *testing.T, err, sentinel error, contains string) {
	t.Helper()
	if err == nil || !errors.Is(err, sentinel) || !strings.Contains(err.Error(), contains) {
		t.Fatalf("error = %v, want %v containing %q", err, sentinel, contains)
	}
}

func TestRegisteredModels(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		_, s := stores(t, db)
		m, err := s.CreateRegisteredModel(ctx, "churn", []tracking.KV{{Key: "team", Value: "risk"}}, "desc")
		if err != nil || m.Name != "churn" || m.Description != "desc" || len(m.Tags) != 1 {
			t.Fatalf("create = %+v, %v", m, err)
		}
		_, err = s.CreateRegisteredModel(ctx, "churn", nil, "")
		wantErr(t, err, wire.ErrAlreadyExists, "Registered Model (name=churn) already exists.")
		_, err = s.CreateRegisteredModel(ctx, "a/b", nil, "")
		wantErr(t, err, wire.ErrInvalid, "Names cannot contain '/' or ':'")
		_, err = s.CreateRegisteredModel(ctx, "..", nil, "")
		wantErr(t, err, wire.ErrInvalid, "must not resolve to other names")
		_, err = s.GetRegisteredModel(ctx, "nope")
		wantErr(t, err, wire.ErrNotFound, "Registered Model with name=nope not found")
		if m, err = s.UpdateRegisteredModel(ctx, "churn", "new"); err != nil || m.Description != "new" {
			t.Fatalf("update = %+v, %v", m, err)
		}
		if err := s.SetRegisteredModelTag(ctx, "churn", tracking.KV{Key: "k", Value: "v"}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteRegisteredModelTag(ctx, "churn", "k"); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 5; i++ {
			if _, err := s.CreateRegisteredModel(ctx, fmt.Sprintf("model-%d", i), []tracking.KV{{Key: "group", Value: "g"}}, ""); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.CreateRegisteredModel(ctx, "a-prompt", []tracking.KV{{Key: "mlflow.prompt.is_prompt", Value: "true"}}, ""); err != nil {
			t.Fatal(err)
		}
		var all []string
		tok := ""
		for {
			ms, next, err := s.SearchRegisteredModels(ctx, registry.ModelQuery{Filter: "tags.group = 'g' AND tags.`mlflow.prompt.is_prompt` != 'true'", MaxResults: 2, OrderBy: []string{"name DESC"}, PageToken: tok})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				all = append(all, m.Name)
			}
			if tok = next; tok == "" {
				break
			}
		}
		if strings.Join(all, ",") != "model-4,model-3,model-2,model-1,model-0" {
			t.Fatalf("paged search = %v", all)
		}
		ms, _, _ := s.SearchRegisteredModels(ctx, registry.ModelQuery{})
		if len(ms) != 6 || ms[0].Name != "churn" {
			t.Fatalf("default search (prompts excluded, by name) = %d models", len(ms))
		}
		ms, _, _ = s.SearchRegisteredModels(ctx, registry.ModelQuery{Filter: "tags.`mlflow.prompt.is_prompt` = 'true'"})
		if len(ms) != 1 || ms[0].Name != "a-prompt" {
			t.Fatalf("prompt search = %v", ms)
		}
		ms, _, _ = s.SearchRegisteredModels(ctx, registry.ModelQuery{Filter: "name ILIKE 'MODEL-%' and name IN ('model-1', 'model-2')"})
		if len(ms) != 2 {
			t.Fatalf("ILIKE and IN = %v", ms)
		}
		// Searches take at most search.MaxRequestClauses conditions.
		most := strings.Repeat("tags.t != 'x' and ", search.MaxRequestClauses-1)
		if ms, _, err := s.SearchRegisteredModels(ctx, registry.ModelQuery{Filter: most + "name = 'churn'"}); err != nil || len(ms) != 0 {
			t.Fatalf("%d conditions on a missing tag = %v, %v", search.MaxRequestClauses, ms, err)
		}
		if vs, _, err := s.SearchModelVersions(ctx, registry.VersionQuery{Filter: most + "name = 'churn'"}); err != nil || len(vs) != 0 {
			t.Fatalf("%d conditions on a missing tag = %v, %v", search.MaxRequestClauses, vs, err)
		}
		tooMany := most + "tags.t != 'x' and tags.t != 'y'"
		_, _, err = s.SearchRegisteredModels(ctx, registry.ModelQuery{Filter: tooMany})
		wantErr(t, err, wire.ErrInvalid, "this one has more than 200")
		_, _, err = s.SearchModelVersions(ctx, registry.VersionQuery{Filter: tooMany})
		wantErr(t, err, wire.ErrInvalid, "this one has more than 200")
		_, _, err = s.SearchRegisteredModels(ctx, registry.ModelQuery{MaxResults: 1001})
		wantErr(t, err, wire.ErrInvalid, "It must be at most 1000")
		_, _, err = s.SearchRegisteredModels(ctx, registry.ModelQuery{OrderBy: []string{"description"}})
		wantErr(t, err, wire.ErrInvalid, "Invalid attribute key 'description'")
		if _, err := s.RenameRegisteredModel(ctx, "churn", "model-1"); !errors.Is(err, wire.ErrAlreadyExists) {
			t.Fatalf("rename onto an existing name = %v", err)
		}
		if err := s.DeleteRegisteredModel(ctx, "model-0"); err != nil {
			t.Fatal(err)
		}
		_, err = s.GetRegisteredModel(ctx, "model-0")
		wantErr(t, err, wire.ErrNotFound, "not found")
	}, tracking.Schema, registry.Schema)
}

func TestModelVersions(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		ts, s := stores(t, db)
		run := runAndModel(t, ts, s, "m")
		rid := run.Info.RunID
		v1, err := s.CreateModelVersion(ctx, registry.VersionCreate{Name: "m", Source: "runs:/" + rid + "/model", RunID: rid, Tags: []tracking.KV{{Key: "k", Value: "v"}}, RunLink: "http://x"})
		if err != nil || v1.Version != "1" || v1.Status != "READY" || v1.CurrentStage != "None" || v1.RunID != rid || len(v1.Tags) != 1 {
			t.Fatalf("v1 = %+v, %v", v1, err)
		}
		if uri, _ := s.DownloadURI(ctx, "m", "1"); uri != run.Info.ArtifactURI+"/model" {
			t.Fatalf("download URI = %q, want %q", uri, run.Info.ArtifactURI+"/model")
		}
		// An MLflow 3 logged model: source models:/<model_id>, files in the model's location.
		lm, err := ts.CreateLoggedModel(ctx, tracking.LoggedModelCreate{ExperimentID: "0", SourceRunID: rid})
		if err != nil {
			t.Fatal(err)
		}
		v2, err := s.CreateModelVersion(ctx, registry.VersionCreate{Name: "m", Source: "models:/" + lm.Info.ModelID, ModelID: lm.Info.ModelID})
		if err != nil || v2.Version != "2" || v2.ModelID != lm.Info.ModelID || v2.RunID != rid {
			t.Fatalf("v2 = %+v, %v", v2, err)
		}
		if uri, _ := s.DownloadURI(ctx, "m", "2"); uri != lm.Info.ArtifactURI {
			t.Fatalf("download URI of a logged model version = %q", uri)
		}
		if got, _ := ts.GetLoggedModel(ctx, lm.Info.ModelID, false); len(got.Info.Registrations) != 1 || got.Info.Registrations[0].Name != "m" {
			t.Fatalf("logged model registrations = %+v", got.Info.Registrations)
		}
		// mlflow-artifacts source inside the run's artifacts, and a copy of another version.
		v3, err := s.CreateModelVersion(ctx, registry.VersionCreate{Name: "m", Source: run.Info.ArtifactURI + "/model", RunID: rid})
		if err != nil || v3.Version != "3" {
			t.Fatalf("v3 = %+v, %v", v3, err)
		}
		if _, err := s.CreateRegisteredModel(ctx, "copy", nil, ""); err != nil {
			t.Fatal(err)
		}
		cp, err := s.CreateModelVersion(ctx, registry.VersionCreate{Name: "copy", Source: "models:/m/2"})
		if err != nil || cp.ModelID != lm.Info.ModelID || cp.Source != "models:/m/2" {
			t.Fatalf("copy = %+v, %v", cp, err)
		}
		// models:/<name>/latest is the newest version whatever its stage, as MLflow
		// resolves it (any case).
		for _, src := range []string{"models:/m/latest", "models:/m/Latest"} {
			lt, err := s.CreateModelVersion(ctx, registry.VersionCreate{Name: "copy", Source: src})
			if err != nil || lt.Source != "models:/m/3" || lt.RunID != rid {
				t.Fatalf("copy of %s = %+v, %v; want source models:/m/3", src, lt, err)
			}
		}
		// Lineage must match.
		other, _ := ts.CreateRun(ctx, tracking.RunCreate{})
		for _, bad := range []registry.VersionCreate{
			{Name: "m", Source: "runs:/" + rid + "/model"},                                            // run_id missing
			{Name: "m", Source: "runs:/" + rid + "/model", RunID: other.Info.RunID},                   // another run
			{Name: "m", Source: "models:/" + lm.Info.ModelID},                                         // model_id missing
			{Name: "m", Source: "models:/m-0123", ModelID: "m-0123"},                                  // no such model
			{Name: "m", Source: run.Info.ArtifactURI + "/model", RunID: other.Info.RunID},             // outside the run's artifacts
			{Name: "m", Source: "mlflow-artifacts:/0/" + other.Info.RunID + "/artifacts", RunID: rid}, // ditto
			{Name: "m", Source: "runs:/" + rid + "/model", RunID: rid, ModelID: lm.Info.ModelID},      // runs:/ with a model id
		} {
			_, err := s.CreateModelVersion(ctx, bad)
			wantErr(t, err, wire.ErrInvalid, "Invalid model version source")
		}
		_, err = s.CreateModelVersion(ctx, registry.VersionCreate{Name: "nope", Source: "runs:/" + rid + "/m", RunID: rid})
		wantErr(t, err, wire.ErrNotFound, "Registered Model with name=nope not found")

		// Stages: archive_existing_versions moves others out of the target stage.
		if _, err := s.TransitionStage(ctx, "m", "1", "production", false); err != nil {
			t.Fatal(err)
		}
		v2s, err := s.TransitionStage(ctx, "m", "2", "Production", true)
		if err != nil || v2s.CurrentStage != "Production" {
			t.Fatalf("transition = %+v, %v", v2s, err)
		}
		if v, _ := s.GetModelVersion(ctx, "m", "1"); v.CurrentStage != "Archived" {
			t.Fatalf("v1 stage = %q, want Archived", v.CurrentStage)
		}
		_, err = s.TransitionStage(ctx, "m", "1", "Archived", true)
		wantErr(t, err, wire.ErrInvalid, "is not an Active stage")
		_, err = s.TransitionStage(ctx, "m", "1", "Live", false)
		wantErr(t, err, wire.ErrInvalid, "Invalid Model Version stage: Live")
		latest, _ := s.GetLatestVersions(ctx, "m", []string{"Production"})
		if len(latest) != 1 || latest[0].Version != "2" {
			t.Fatalf("latest production = %+v", latest)
		}
		all, _ := s.GetLatestVersions(ctx, "m", nil)
		if len(all) != 3 { // Archived v1, Production v2, None v3
			t.Fatalf("latest of every stage = %+v", all)
		}

		// Aliases.
		if err := s.SetAlias(ctx, "m", "champion", "1"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetAlias(ctx, "m", "champion", "2"); err != nil { // moves
			t.Fatal(err)
		}
		v, err := s.GetVersionByAlias(ctx, "m", "champion")
		if err != nil || v.Version != "2" || len(v.Aliases) != 1 {
			t.Fatalf("by alias = %+v, %v", v, err)
		}
		if v, _ := s.GetVersionByAlias(ctx, "m", "Latest"); v.Version != "3" {
			t.Fatalf("@latest = %+v", v)
		}
		if err := s.SetAlias(ctx, "m", "challenger", "3"); err != nil {
			t.Fatal(err)
		}
		// What a model server polls: every alias of the named models at once.
		got, err := s.AliasVersions(ctx, []string{"m", "absent"})
		if err != nil || len(got) != 1 || got["m"]["champion"] != "2" || got["m"]["challenger"] != "3" || len(got["m"]) != 2 {
			t.Fatalf("AliasVersions = %v, %v", got, err)
		}
		if err := s.DeleteAlias(ctx, "m", "challenger"); err != nil {
			t.Fatal(err)
		}
		for alias, msg := range map[string]string{"latest": "'latest' alias name (case insensitive) is reserved.", "v3": "Version alias name 'v3' is reserved.",
			"a b": "Invalid alias name: 'a b'.", "": "Registered model alias name cannot be empty."} {
			wantErr(t, s.SetAlias(ctx, "m", alias, "1"), wire.ErrInvalid, msg)
		}
		wantErr(t, s.SetAlias(ctx, "m", "x", "9"), wire.ErrNotFound, "Model Version (name=m, version=9) not found")
		wantErr(t, s.SetAlias(ctx, "m", "x", "one"), wire.ErrInvalid, "Parameter 'version' must be an integer, got 'one'.")
		_, err = s.GetVersionByAlias(ctx, "m", "nope")
		wantErr(t, err, wire.ErrInvalid, "Registered model alias nope not found.")
		rm, _ := s.GetRegisteredModel(ctx, "m")
		if len(rm.Aliases) != 1 || rm.Aliases[0].Version != "2" {
			t.Fatalf("model aliases = %+v", rm.Aliases)
		}

		// Version tags and description.
		if err := s.SetModelVersionTag(ctx, "m", "3", tracking.KV{Key: "t", Value: "1"}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteModelVersionTag(ctx, "m", "3", "t"); err != nil {
			t.Fatal(err)
		}
		if v, err := s.UpdateModelVersion(ctx, "m", "3", "third"); err != nil || v.Description != "third" {
			t.Fatalf("update version = %+v, %v", v, err)
		}

		// Search versions.
		vs, _, err := s.SearchModelVersions(ctx, registry.VersionQuery{Filter: "name = 'm' and run_id = '" + rid + "'"})
		if err != nil || len(vs) != 3 || vs[0].Version != "3" {
			t.Fatalf("search versions = %v, %v", vs, err)
		}
		vs, _, _ = s.SearchModelVersions(ctx, registry.VersionQuery{Filter: "version_number >= 2 and name = 'm'", OrderBy: []string{"version_number ASC"}})
		if len(vs) != 2 || vs[0].Version != "2" {
			t.Fatalf("search by number = %v", vs)
		}
		vs, _, _ = s.SearchModelVersions(ctx, registry.VersionQuery{Filter: "source_path = 'models:/m/2'"})
		if len(vs) != 1 || vs[0].Name != "copy" {
			t.Fatalf("search by source = %v", vs)
		}

		// Deleting a version drops its aliases; numbers are never reused.
		if err := s.DeleteModelVersion(ctx, "m", "2"); err != nil {
			t.Fatal(err)
		}
		_, err = s.GetModelVersion(ctx, "m", "2")
		wantErr(t, err, wire.ErrNotFound, "Model Version (name=m, version=2) not found")
		_, err = s.GetVersionByAlias(ctx, "m", "champion")
		wantErr(t, err, wire.ErrInvalid, "alias champion not found")
		v4, _ := s.CreateModelVersion(ctx, registry.VersionCreate{Name: "m", Source: "runs:/" + rid + "/model", RunID: rid})
		if v4.Version != "4" {
			t.Fatalf("next version after a delete = %s, want 4", v4.Version)
		}

		// Rename carries versions, tags and aliases.
		if err := s.SetAlias(ctx, "m", "prod", "4"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RenameRegisteredModel(ctx, "m", "m2"); err != nil {
			t.Fatal(err)
		}
		if v, err := s.GetVersionByAlias(ctx, "m2", "prod"); err != nil || v.Name != "m2" || v.Version != "4" {
			t.Fatalf("alias after rename = %+v, %v", v, err)
		}
	}, tracking.Schema, registry.Schema)
}

// TestConcurrentVersionCreation: versions created at once get distinct numbers.
func TestConcurrentVersionCreation(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		ts, s := stores(t, db)
		run, _ := ts.CreateRun(ctx, tracking.RunCreate{})
		if _, err := s.CreateRegisteredModel(ctx, "c", nil, ""); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		seen := map[string]bool{}
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := s.CreateModelVersion(ctx, registry.VersionCreate{Name: "c", Source: "runs:/" + run.Info.RunID + "/m", RunID: run.Info.RunID})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[v.Version] = true
				mu.Unlock()
			}()
		}
		wg.Wait()
		if len(seen) != 8 {
			t.Fatalf("distinct versions = %v", seen)
		}
	}, tracking.Schema, registry.Schema)
}

// call sends a JSON request to the server and decodes the reply.
func call(t *testing.T, base, method, path string, body any) (int, map[string]any) {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, base+path, bytes.NewReader(raw))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: not JSON: %q", method, path, b)
	}
	return resp.StatusCode, out
}

// TestPathTraversalPayloads sends every path-traversal and scheme payload of
// MLflow's advisories as a model version source and as an experiment artifact
// location: each is refused with 400 INVALID_PARAMETER_VALUE and stores nothing.
func TestPathTraversalPayloads(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		ts, s := stores(t, db)
		srv := httptest.NewServer(server.New(server.Options{}, tracking.NewAPI(ts, nil, nil), registry.NewAPI(s, nil)).Handler())
		defer srv.Close()
		const api = "/api/2.0/mlflow"
		_, out := call(t, srv.URL, "POST", api+"/runs/create", map[string]any{"experiment_id": "0"})
		rid := out["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
		call(t, srv.URL, "POST", api+"/registered-models/create", map[string]any{"name": "sec"})
		payloads := []string{
			"../../../../etc/passwd",
			"/etc/passwd",
			"//etc/passwd",
			"file:///etc/passwd",
			"file://localhost/etc/passwd",
			"file:/etc/passwd",
			"FILE:///etc/passwd",
			`C:\Windows\system32`,
			"C:/Windows/system32",
			`..\..\windows`,
			"runs:/" + rid + "/../../../etc",
			"runs:/" + rid + "/model/%2e%2e/%2e%2e/%2e%2e",
			"runs:/" + rid + "/model/%252e%252e/%252e%252e",
			"runs:/" + rid + "/..%2f..%2f..%2fetc",
			"runs://evil.example/" + rid + "/model",
			"mlflow-artifacts:/0/" + rid + "/artifacts/../../../../etc",
			"mlflow-artifacts:/0/" + rid + "/artifacts/%2E%2E/%2E%2E",
			"mlflow-artifacts://evil.example:8080/0/" + rid + "/artifacts",
			"mlflow-artifacts:/0/" + rid + "/artifacts%00/x",
			"mlflow-artifacts:/0/" + rid + "/artifacts/x?y=../../z",
			"mlflow-artifacts:/0/" + rid + "/artifacts/x#../../z",
			"models://profile@databricks/m-0123",
			"models:/../../m-0123",
			"http://evil.example/api/2.0/mlflow-artifacts/artifacts/../../../etc",
			"https://169.254.169.254/latest/meta-data",
			"s3://bucket/../other-bucket/model",
			"s3://bucket/model",
			"gs://bucket/model",
			"hdfs://namenode/model",
			"ftp://host/model",
			"local:/etc/passwd",
			"javascript:alert(1)",
			"\x00",
			// The opaque form (no '/' after the scheme) hides a leading '..'
			// from a segment split on '/'.
			"mlflow-artifacts:..",
			"mlflow-artifacts:../../etc",
			"mlflow-artifacts:%2e%2e/etc",
			"mlflow-artifacts:..%2f..%2fetc",
			"runs:../" + rid + "/model",
			"models:..",
		}
		for _, p := range payloads {
			code, out := call(t, srv.URL, "POST", api+"/model-versions/create", map[string]any{"name": "sec", "source": p, "run_id": rid})
			if code != 400 || out["error_code"] != "INVALID_PARAMETER_VALUE" {
				t.Errorf("model version source %q = %d %v, want 400 INVALID_PARAMETER_VALUE", p, code, out)
			}
			code, out = call(t, srv.URL, "POST", api+"/experiments/create", map[string]any{"name": "sec " + p, "artifact_location": p})
			if code != 400 || out["error_code"] != "INVALID_PARAMETER_VALUE" {
				t.Errorf("artifact_location %q = %d %v, want 400 INVALID_PARAMETER_VALUE", p, code, out)
			}
		}
		_, out = call(t, srv.URL, "GET", api+"/model-versions/search?filter=name%3D%27sec%27", nil)
		if vs := out["model_versions"].([]any); len(vs) != 0 {
			t.Fatalf("refused payloads stored versions: %v", vs)
		}
		// The legitimate forms are accepted.
		for _, ok := range []string{"runs:/" + rid + "/model", "mlflow-artifacts:/0/" + rid + "/artifacts/model"} {
			if code, out := call(t, srv.URL, "POST", api+"/model-versions/create", map[string]any{"name": "sec", "source": ok, "run_id": rid}); code != 200 {
				t.Errorf("source %q = %d %v, want 200", ok, code, out)
			}
		}
		if code, out := call(t, srv.URL, "POST", api+"/experiments/create", map[string]any{"name": "ok", "artifact_location": "mlflow-artifacts:/custom/place"}); code != 200 {
			t.Errorf("proxied artifact location = %d %v", code, out)
		}
	}, tracking.Schema, registry.Schema)
}

func TestRegistryAPI(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		ts, s := stores(t, db)
		srv := httptest.NewServer(server.New(server.Options{}, tracking.NewAPI(ts, nil, nil), registry.NewAPI(s, nil)).Handler())
		defer srv.Close()
		const api = "/api/2.0/mlflow"
		_, out := call(t, srv.URL, "POST", api+"/runs/create", map[string]any{"experiment_id": "0"})
		rid := out["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
		steps := []struct {
			method, path string
			body         any
			status       int
			check        string // a fragment of the JSON reply
		}{
			{"POST", "/registered-models/create", map[string]any{"name": "api", "tags": []map[string]string{{"key": "a", "value": "b"}}}, 200, `"name":"api"`},
			{"POST", "/registered-models/create", map[string]any{"name": "api"}, 400, `RESOURCE_ALREADY_EXISTS`},
			{"POST", "/registered-models/create", map[string]any{}, 400, `Missing value for required parameter 'name'`},
			{"POST", "/model-versions/create", map[string]any{"name": "api", "source": "runs:/" + rid + "/model", "run_id": rid}, 200, `"version":"1"`},
			{"GET", "/model-versions/get?name=api&version=1", nil, 200, `"status":"READY"`},
			{"GET", "/model-versions/get?name=api&version=7", nil, 404, `RESOURCE_DOES_NOT_EXIST`},
			{"GET", "/model-versions/get-download-uri?name=api&version=1", nil, 200, `"artifact_uri":"mlflow-artifacts:/0/` + rid + `/artifacts/model"`},
			{"POST", "/registered-models/alias", map[string]any{"name": "api", "alias": "champion", "version": "1"}, 200, `{}`},
			{"GET", "/registered-models/alias?name=api&alias=champion", nil, 200, `"aliases":["champion"]`},
			{"POST", "/model-versions/transition-stage", map[string]any{"name": "api", "version": "1", "stage": "Staging", "archive_existing_versions": "true"}, 200, `"current_stage":"Staging"`},
			{"POST", "/registered-models/get-latest-versions", map[string]any{"name": "api", "stages": []string{"Staging"}}, 200, `"version":"1"`},
			{"GET", "/registered-models/get-latest-versions?name=api&stages=None", nil, 200, `"model_versions":[]`},
			{"PATCH", "/registered-models/update", map[string]any{"name": "api", "description": "d"}, 200, `"description":"d"`},
			{"PATCH", "/model-versions/update", map[string]any{"name": "api", "version": "1", "description": "v"}, 200, `"description":"v"`},
			{"POST", "/model-versions/set-tag", map[string]any{"name": "api", "version": "1", "key": "k", "value": "v"}, 200, `{}`},
			{"DELETE", "/model-versions/delete-tag", map[string]any{"name": "api", "version": "1", "key": "k"}, 200, `{}`},
			{"POST", "/registered-models/set-tag", map[string]any{"name": "api", "key": "k", "value": "v"}, 200, `{}`},
			{"DELETE", "/registered-models/delete-tag", map[string]any{"name": "api", "key": "k"}, 200, `{}`},
			{"GET", "/registered-models/search?filter=name%20LIKE%20%27ap%25%27&max_results=10", nil, 200, `"name":"api"`},
			{"GET", "/model-versions/search?filter=run_id%3D%27" + rid + "%27", nil, 200, `"version":"1"`},
			{"GET", "/registered-models/get?name=api", nil, 200, `"aliases":[{"alias":"champion","version":"1"}]`},
			{"DELETE", "/registered-models/alias", map[string]any{"name": "api", "alias": "champion"}, 200, `{}`},
			{"POST", "/registered-models/rename", map[string]any{"name": "api", "new_name": "api2"}, 200, `"name":"api2"`},
			{"DELETE", "/model-versions/delete", map[string]any{"name": "api2", "version": "1"}, 200, `{}`},
			{"DELETE", "/registered-models/delete", map[string]any{"name": "api2"}, 200, `{}`},
			{"GET", "/registered-models/get?name=api2", nil, 404, `Registered Model with name=api2 not found`},
		}
		for _, st := range steps {
			code, out := call(t, srv.URL, st.method, api+st.path, st.body)
			raw, _ := json.Marshal(out)
			if code != st.status || !strings.Contains(string(raw), st.check) {
				t.Fatalf("%s %s = %d %s; want %d containing %s", st.method, st.path, code, raw, st.status, st.check)
			}
		}
	}, tracking.Schema, registry.Schema)
}

// TestLongNames: names and keys past their limits are 400s on both engines
// (PostgreSQL would refuse the index entry with a 500 otherwise).
func TestLongNames(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		ts, s := stores(t, db)
		ctx := context.Background()
		_, err := s.CreateRegisteredModel(ctx, strings.Repeat("n", 10000), nil, "")
		wantErr(t, err, wire.ErrInvalid, "'name' exceeds the maximum length of 256 characters")
		lm, err := ts.CreateLoggedModel(ctx, tracking.LoggedModelCreate{ExperimentID: "0"})
		if err != nil {
			t.Fatal(err)
		}
		err = ts.SetLoggedModelTags(ctx, lm.Info.ModelID, []tracking.KV{{Key: strings.Repeat("k", 10000), Value: "v"}})
		wantErr(t, err, wire.ErrInvalid, "'key' exceeds the maximum length of 250 characters")
		run, _ := ts.CreateRun(ctx, tracking.RunCreate{})
		err = ts.LogBatch(ctx, run.Info.RunID, []tracking.Metric{{Key: "m", Timestamp: 1, ModelID: lm.Info.ModelID, DatasetName: strings.Repeat("d", 10000)}}, nil, nil)
		wantErr(t, err, wire.ErrInvalid, "'metrics[0].dataset_name' exceeds the maximum length of 500 characters")
	}, tracking.Schema, registry.Schema)
}

// TestRunLink checks that a model version's run_link is an http(s) URL: web
// UIs render it as a link, so a javascript: URL would be stored script.
func TestRunLink(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		ts, s := stores(t, db)
		run := runAndModel(t, ts, s, "links")
		for _, tt := range []struct {
			link string
			ok   bool
		}{
			{"", true},
			{"https://databricks.example/#/experiments/1/runs/abc", true},
			{"HTTP://host:5000/x", true},
			{"javascript:alert(document.cookie)", false},
			{"JavaScript:alert(1)", false},
			{" javascript:alert(1)", false},
			{"data:text/html,<script>alert(1)</script>", false},
			{"vbscript:msgbox(1)", false},
			{"//evil.example/x", false},
			{"/relative/path", false},
			{"http://", false},
		} {
			v, err := s.CreateModelVersion(ctx, registry.VersionCreate{Name: "links", Source: "runs:/" + run.Info.RunID + "/m", RunID: run.Info.RunID, RunLink: tt.link})
			switch {
			case tt.ok && (err != nil || v.RunLink != tt.link):
				t.Errorf("run_link %q: %+v, %v", tt.link, v, err)
			case !tt.ok:
				wantErr(t, err, wire.ErrInvalid, "parameter 'run_link'")
			}
		}
	}, tracking.Schema, registry.Schema)
}
