package main

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/platform/auth"
	"github.com/atrium-ml/atrium/internal/platform/server"
)

func basicAuth(user, password string) map[string]string {
	return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))}
}

// TestEveryMLflowRouteIsScoped: every MLflow route `atrium serve` mounts
// (tracking, registry, artifact proxy) either names the experiment or
// registered model it acts on, so grants apply to it, or is one of the few
// that act on none (creations, searches across everything): a new route is
// classified on purpose, not left to the role by accident.
func TestEveryMLflowRouteIsScoped(t *testing.T) {
	srv, _ := guardedServe(t, t.TempDir(), auth.GuardOptions{Required: true})
	e := &env{ctx: context.Background(), repo: t.TempDir()}
	t.Cleanup(func() { e.close() })
	res, err := mlflowResources(e)
	if err != nil {
		t.Fatal(err)
	}
	scoped := res.(interface{ Scoped(pattern string) bool })
	var unscoped []string
	for _, rt := range srv.Routes() {
		if rt.Permission == server.Public || !strings.Contains(rt.Pattern, "/mlflow") {
			continue
		}
		if !scoped.Scoped(rt.Pattern) {
			method, path, _ := strings.Cut(rt.Pattern, " ")
			for _, p := range []string{"/api/2.0/mlflow", "/ajax-api/2.0/mlflow"} {
				if rest, ok := strings.CutPrefix(path, p+"/"); ok {
					path = "/" + rest
				}
			}
			unscoped = append(unscoped, method+" "+path)
		}
	}
	slices.Sort(unscoped)
	unscoped = slices.Compact(unscoped)
	want := slices.Clone(auth.MLflowUnscopedRoutes)
	slices.Sort(want)
	if !slices.Equal(unscoped, want) {
		t.Errorf("MLflow routes that name no resource = %q, want auth.MLflowUnscopedRoutes %q", unscoped, want)
	}
}

// TestPerResourceGrants: MLflow basic-auth's model on the real MLflow API
// of `atrium serve`. A user with READ on experiment A and no permission on
// B reads A, not B (its runs, metrics, artifacts and searches included), and
// cannot write A; a grant replaces the role on its resource (a reader with
// EDIT logs to it); the default permission caps users and tokens on what
// they have no grant on; admins bypass every grant; registered models the
// same by name.
func TestPerResourceGrants(t *testing.T) {
	dir := t.TempDir()
	apis, store, e := serveEnvAPIs(t, dir)
	res, err := mlflowResources(e)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, u := range []struct {
		name string
		role auth.Role
	}{{"ana", auth.Reader}, {"carl", auth.Editor}, {"root", auth.Admin}} {
		if err := store.SetUser(ctx, u.name, u.role, "pw-"+u.name); err != nil {
			t.Fatal(err)
		}
	}
	editorToken, _, err := store.CreateToken(ctx, "ci", auth.Editor, 0)
	if err != nil {
		t.Fatal(err)
	}
	open := guarded(t, apis, store, auth.GuardOptions{Required: true, Resources: res}).Handler()
	admin := basicAuth("root", "pw-root")
	// Two experiments with a run each, an artifact in each, two models.
	var expA, expB, runA, runB string
	for _, x := range []struct {
		name     string
		exp, run *string
	}{{"A", &expA, &runA}, {"B", &expB, &runB}} {
		out := mustCall(t, open, call{method: "POST", path: mlflow + "/experiments/create", body: `{"name": "` + x.name + `"}`, header: admin})
		*x.exp = out["experiment_id"].(string)
		out = mustCall(t, open, call{method: "POST", path: mlflow + "/runs/create", body: `{"experiment_id": "` + *x.exp + `"}`, header: admin})
		*x.run = out["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
		mustCall(t, open, call{method: "PUT", path: "/api/2.0/mlflow-artifacts/artifacts/" + *x.exp + "/" + *x.run + "/artifacts/notes.txt", body: "hi", header: admin})
	}
	for _, m := range []string{"M", "N"} {
		mustCall(t, open, call{method: "POST", path: mlflow + "/registered-models/create", body: `{"name": "` + m + `"}`, header: admin})
	}
	for _, g := range []struct {
		user  string
		res   auth.Resource
		level auth.Level
	}{
		{"ana", auth.Resource{Kind: auth.KindExperiment, ID: expA}, auth.LevelRead},
		{"ana", auth.Resource{Kind: auth.KindExperiment, ID: expB}, auth.NoPermissions},
		{"ana", auth.Resource{Kind: auth.KindModel, ID: "M"}, auth.NoPermissions},
		{"carl", auth.Resource{Kind: auth.KindExperiment, ID: expB}, auth.LevelRead},
		{"root", auth.Resource{Kind: auth.KindExperiment, ID: expB}, auth.NoPermissions},
	} {
		if err := store.SetGrant(ctx, g.user, g.res, g.level); err != nil {
			t.Fatal(err)
		}
	}
	ana, carl := basicAuth("ana", "pw-ana"), basicAuth("carl", "pw-carl")
	token := map[string]string{"Authorization": "Bearer " + editorToken}

	type probe struct {
		name   string
		who    map[string]string
		c      call
		status int // 200 or 403; other codes are a handler's answer, also not 403
	}
	getExp := func(id string) call {
		return call{method: "GET", path: mlflow + "/experiments/get?experiment_id=" + id}
	}
	getRun := func(id string) call { return call{method: "GET", path: mlflow + "/runs/get?run_id=" + id} }
	logMetric := func(run string) call {
		return call{method: "POST", path: mlflow + "/runs/log-metric", body: `{"run_id": "` + run + `", "key": "m", "value": 1, "timestamp": 1, "step": 0}`}
	}
	search := func(ids ...string) call {
		return call{method: "POST", path: mlflow + "/runs/search", body: `{"experiment_ids": ["` + strings.Join(ids, `", "`) + `"]}`}
	}
	artifact := func(exp, run string) call {
		return call{method: "GET", path: "/api/2.0/mlflow-artifacts/artifacts/" + exp + "/" + run + "/artifacts/notes.txt"}
	}
	getModel := func(name string) call {
		return call{method: "GET", path: mlflow + "/registered-models/get?name=" + name}
	}
	probes := func(defaultPerm string) []probe {
		ps := []probe{
			{"READ on A: get A", ana, getExp(expA), 200},
			{"READ on A: get its run", ana, getRun(runA), 200},
			{"READ on A: search A", ana, search(expA), 200},
			{"READ on A: its artifact", ana, artifact(expA, runA), 200},
			{"READ on A: get A by name", ana, call{method: "GET", path: mlflow + "/experiments/get-by-name?experiment_name=A"}, 200},
			{"READ on A: cannot log to A", ana, logMetric(runA), 403},
			{"READ on A: cannot delete A", ana, call{method: "POST", path: mlflow + "/experiments/delete", body: `{"experiment_id": "` + expA + `"}`}, 403},
			{"none on B: get B", ana, getExp(expB), 403},
			{"none on B: B's run", ana, getRun(runB), 403},
			{"none on B: B's metric history", ana, call{method: "GET", path: mlflow + "/metrics/get-history?run_id=" + runB + "&metric_key=m"}, 403},
			{"none on B: search A and B", ana, search(expA, expB), 403},
			{"none on B: B's artifact", ana, artifact(expB, runB), 403},
			{"none on B: list B's artifacts", ana, call{method: "GET", path: "/api/2.0/mlflow-artifacts/artifacts?path=" + expB + "/" + runB}, 403},
			{"none on model M", ana, getModel("M"), 403},
			{"none on model M: its alias", ana, call{method: "GET", path: mlflow + "/registered-models/alias?name=M&alias=champion"}, 403},
			{"an editor with READ on B cannot log to B", carl, logMetric(runB), 403},
			{"an editor with READ on B reads B", carl, getRun(runB), 200},
			{"an admin's grant does not bind it", admin, getExp(expB), 200},
			{"a search naming nothing: the role", ana, call{method: "POST", path: mlflow + "/experiments/search", body: `{"max_results": 10}`}, 200},
		}
		switch defaultPerm {
		case "":
			ps = append(ps,
				probe{"no default: the editor logs to A (role)", carl, logMetric(runA), 200},
				probe{"no default: the reader reads model N (role)", ana, getModel("N"), 200},
				probe{"no default: an editor token logs to A (role)", token, logMetric(runA), 200},
			)
		case "READ":
			ps = append(ps,
				probe{"default READ: the editor cannot log to A", carl, logMetric(runA), 403},
				probe{"default READ: the editor reads A", carl, getRun(runA), 200},
				probe{"default READ: a token cannot log to A", token, logMetric(runA), 403},
				probe{"default READ: an unknown run is refused a write", carl, logMetric("0123456789abcdef0123456789abcdef"), 403},
			)
		case "NO_PERMISSIONS":
			ps = append(ps,
				probe{"default NO_PERMISSIONS: the editor cannot read A", carl, getRun(runA), 403},
				probe{"default NO_PERMISSIONS: the reader cannot read model N", ana, getModel("N"), 403},
				probe{"default NO_PERMISSIONS: the grant still reads A", ana, getRun(runA), 200},
			)
		}
		return ps
	}
	for _, def := range []string{"", "READ", "NO_PERMISSIONS"} {
		t.Run("default "+def, func(t *testing.T) {
			opts := auth.GuardOptions{Required: true, Resources: res}
			if def != "" {
				opts.DefaultPermission, _ = auth.ParseLevel(def)
			}
			h := guarded(t, apis, store, opts).Handler()
			for _, p := range probes(def) {
				p.c.header = p.who
				code, body := p.c.do(t, h)
				if (p.status == 403) != (code == 403) || (p.status == 200 && code != 200) {
					t.Errorf("%s: %s %s = %d %s, want %d", p.name, p.c.method, p.c.path, code, body, p.status)
				}
			}
		})
	}

	// A reader granted EDIT on A logs to A (the grant replaces the role on
	// its resource), and nowhere else.
	if err := store.SetGrant(ctx, "ana", auth.Resource{Kind: auth.KindExperiment, ID: expA}, auth.LevelEdit); err != nil {
		t.Fatal(err)
	}
	h := guarded(t, apis, store, auth.GuardOptions{Required: true, Resources: res}).Handler()
	for _, p := range []struct {
		c    call
		want int
	}{{logMetric(runA), 200}, {logMetric(runB), 403}} {
		p.c.header = ana
		if code, body := p.c.do(t, h); code != p.want {
			t.Errorf("reader with EDIT on A: %s = %d %s, want %d", p.c.body, code, body, p.want)
		}
	}
	// Revoked: the role (reader) again.
	if err := store.DeleteGrant(ctx, "ana", auth.Resource{Kind: auth.KindExperiment, ID: expA}); err != nil {
		t.Fatal(err)
	}
	c := logMetric(runA)
	c.header = ana
	if code, body := c.do(t, h); code != 403 {
		t.Errorf("after revoking: log to A = %d %s, want 403", code, body)
	}
}
