package main

import (
	"context"
	"encoding/base64"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/platform/auth"
	"github.com/atrium-ml/atrium/internal/platform/server"
)

// grantsServe builds every API of `atrium serve` on a fresh project, the
// resolver of MLflow requests' resources, and users of the given roles
// (password "pw-" + name).
func grantsServe(t *testing.T, users map[string]auth.Role) ([]server.API, *auth.Store, auth.Resources) {
	t.Helper()
	apis, store, e := serveEnvAPIs(t, t.TempDir())
	res, err := mlflowResources(e)
	if err != nil {
		t.Fatal(err)
	}
	for name, role := range users {
		if err := store.SetUser(context.Background(), name, role, "pw-"+name); err != nil {
			t.Fatal(err)
		}
	}
	return apis, store, res
}

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
		switch rt.Permission {
		case server.Read, server.Edit, server.Deploy, server.Manage:
		default:
			continue // admin, public: no grant applies
		}
		if !strings.Contains(rt.Pattern, "/mlflow") {
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
	apis, store, res := grantsServe(t, map[string]auth.Role{"ana": auth.Reader, "carl": auth.Editor, "root": auth.Admin})
	ctx := context.Background()
	editorToken, _, err := store.CreateToken(ctx, "ci", auth.Editor, 0)
	if err != nil {
		t.Fatal(err)
	}
	open := guardedCaching(t, apis, store, auth.GuardOptions{Required: true, Resources: res}).Handler()
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
			h := guardedCaching(t, apis, store, opts).Handler()
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
	h := guardedCaching(t, apis, store, auth.GuardOptions{Required: true, Resources: res}).Handler()
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

// TestUserGrantCLI: `atrium user grant`, `grants` and `revoke` keep a
// user's grants, with usage errors for a missing or doubled resource and an
// unknown permission.
func TestUserGrantCLI(t *testing.T) {
	dir := t.TempDir()
	e := &env{ctx: context.Background(), repo: dir}
	store, err := authStore(e)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SetUser(e.ctx, "ana", auth.Reader, "pw"); err != nil {
		t.Fatal(err)
	}
	e.close()
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"grant", "ana", "--experiment", "1", "--permission", "edit"}, exitOK, "user ana has EDIT on experiment 1"},
		{[]string{"grant", "ana", "--model", "ranker", "--permission", "NO_PERMISSIONS"}, exitOK, "NO_PERMISSIONS on registered_model ranker"},
		{[]string{"grant", "ana", "--permission", "READ"}, exitUsage, "--experiment ID or --model NAME"},
		{[]string{"grant", "ana", "--experiment", "1", "--model", "m", "--permission", "READ"}, exitUsage, "exactly one resource"},
		{[]string{"grant", "ana", "--experiment", "1", "--permission", "WRITE"}, exitUsage, "want READ, EDIT, MANAGE or NO_PERMISSIONS"},
		{[]string{"grant", "nobody", "--experiment", "1", "--permission", "READ"}, exitFailure, `user "nobody"`},
		{[]string{"grants", "a", "b"}, exitUsage, "at most one user"},
	} {
		code, _, errOut := atrium(t, append([]string{"--repo", dir, "user"}, tt.args...)...)
		if code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("user %s = %d %q, want %d and %q", strings.Join(tt.args, " "), code, errOut, tt.code, tt.want)
		}
	}
	code, out, _ := atrium(t, "--repo", dir, "user", "grants", "ana")
	if code != exitOK || !regexp.MustCompile(`ana\s+experiment\s+1\s+EDIT`).MatchString(out) || !regexp.MustCompile(`ana\s+registered_model\s+ranker\s+NO_PERMISSIONS`).MatchString(out) {
		t.Errorf("user grants ana = %d %q", code, out)
	}
	if code, _, errOut := atrium(t, "--repo", dir, "user", "revoke", "ana", "--experiment", "1"); code != exitOK {
		t.Fatalf("revoke: %s", errOut)
	}
	code, out, _ = atrium(t, "--repo", dir, "-o", "json", "user", "grants")
	if code != exitOK || strings.Contains(out, `"experiment"`) || !strings.Contains(out, `"resource":"ranker"`) {
		t.Errorf("grants after revoking = %d %q, want the model's only", code, out)
	}
	if code, _, errOut := atrium(t, "--repo", dir, "user", "revoke", "ana", "--experiment", "1"); code != exitFailure || !strings.Contains(errOut, "no grant") {
		t.Errorf("revoking twice = %d %q", code, errOut)
	}
}

// TestGrantsAPI: MLflow 3's users/permissions endpoints on `atrium serve`
// grant, answer and revoke a user's permission, and take effect on the
// next request (no cache delay for changes made through the server);
// only admins may call them.
func TestGrantsAPI(t *testing.T) {
	apis, store, res := grantsServe(t, map[string]auth.Role{"ana": auth.Reader, "root": auth.Admin})
	// The credential and grant caches on, as in serve.
	h := guardedCaching(t, apis, store, auth.GuardOptions{Required: true, Resources: res}).Handler()
	root, ana := basicAuth("root", "pw-root"), basicAuth("ana", "pw-ana")
	const perms = "/api/3.0/mlflow/users/permissions/"
	exp := mustCall(t, h, call{method: "POST", path: mlflow + "/experiments/create", body: `{"name": "A"}`, header: root})["experiment_id"].(string)
	getA := call{method: "GET", path: mlflow + "/experiments/get?experiment_id=" + exp, header: ana}
	if code, body := getA.do(t, h); code != 200 {
		t.Fatalf("reader before any grant: %d %s", code, body)
	}
	grant := `{"username": "ana", "resource_type": "experiment", "resource_id": "` + exp + `", "permission": "NO_PERMISSIONS"}`
	for _, tt := range []struct {
		c    call
		code int
		want string
	}{
		{call{method: "POST", path: perms + "grant", body: grant, header: ana}, 403, "PERMISSION_DENIED"},
		{call{method: "POST", path: perms + "grant", body: grant, header: root}, 200, "{}"},
		{call{method: "GET", path: perms + "get?username=ana&resource_type=experiment&resource_id=" + exp, header: root}, 200, `{"allowed":false,"permission":"NO_PERMISSIONS"}`},
		{getA, 403, "has NO_PERMISSIONS on experiment " + exp},
		{call{method: "GET", path: perms + "get?username=ana&resource_type=registered_model&resource_id=m", header: root}, 200, `{"allowed":true,"permission":"READ"}`},
		{call{method: "POST", path: perms + "grant", body: `{"username": "ana", "resource_type": "prompt", "resource_id": "p", "permission": "READ"}`, header: root}, 400, "INVALID_PARAMETER_VALUE"},
		{call{method: "POST", path: perms + "grant", body: `{"username": "bob", "resource_type": "experiment", "resource_id": "1", "permission": "READ"}`, header: root}, 404, "RESOURCE_DOES_NOT_EXIST"},
		{call{method: "POST", path: perms + "grant", body: `{"username": "ana", "resource_type": "experiment", "resource_id": "1", "permission": "ALL"}`, header: root}, 400, "want READ, EDIT, MANAGE or NO_PERMISSIONS"},
		{call{method: "POST", path: perms + "revoke", body: grant, header: root}, 200, "{}"},
		{getA, 200, `"name":"A"`},
		{call{method: "POST", path: perms + "revoke", body: grant, header: root}, 404, "no grant"},
	} {
		code, body := tt.c.do(t, h)
		if code != tt.code || !strings.Contains(body, tt.want) {
			t.Errorf("%s %s %s = %d %s, want %d with %s", tt.c.method, tt.c.path, tt.c.body, code, body, tt.code, tt.want)
		}
	}
}

// TestCreatorManages: as in MLflow, a user who creates an experiment or a
// registered model gets MANAGE on it, so that a restrictive default does not
// lock them out of what they made; others still see nothing of it.
func TestCreatorManages(t *testing.T) {
	apis, store, res := grantsServe(t, map[string]auth.Role{"ana": auth.Reader, "carl": auth.Editor})
	h := guardedCaching(t, apis, store, auth.GuardOptions{Required: true, Resources: res, DefaultPermission: auth.NoPermissions}).Handler()
	carl, ana := basicAuth("carl", "pw-carl"), basicAuth("ana", "pw-ana")
	exp := mustCall(t, h, call{method: "POST", path: mlflow + "/experiments/create", body: `{"name": "mine"}`, header: carl})["experiment_id"].(string)
	mustCall(t, h, call{method: "POST", path: mlflow + "/registered-models/create", body: `{"name": "my-model"}`, header: carl})
	gs, err := store.Grants(context.Background(), "carl")
	if err != nil || len(gs) != 2 || gs[0].Resource != exp || gs[0].Permission != "MANAGE" || gs[1].Resource != "my-model" || gs[1].Permission != "MANAGE" {
		t.Fatalf("carl's grants after creating = %+v, %v; want MANAGE on both", gs, err)
	}
	for _, tt := range []struct {
		name string
		c    call
		code int
	}{
		{"the creator reads it", call{method: "GET", path: mlflow + "/experiments/get?experiment_id=" + exp, header: carl}, 200},
		{"the creator runs in it", call{method: "POST", path: mlflow + "/runs/create", body: `{"experiment_id": "` + exp + `"}`, header: carl}, 200},
		{"the creator deletes its model (MANAGE, beyond the editor role)", call{method: "DELETE", path: mlflow + "/registered-models/delete", body: `{"name": "my-model"}`, header: carl}, 200},
		{"another user sees nothing of it", call{method: "GET", path: mlflow + "/experiments/get?experiment_id=" + exp, header: ana}, 403},
		{"nor of the Default experiment", call{method: "POST", path: mlflow + "/runs/create", body: `{}`, header: carl}, 403},
	} {
		if code, body := tt.c.do(t, h); code != tt.code {
			t.Errorf("%s: %d %s, want %d", tt.name, code, body, tt.code)
		}
	}
}
