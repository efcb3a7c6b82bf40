package security

import (
	"cmp"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

const mlflow = "/api/2.0/mlflow"

// vars are what the script's templates may name.
type vars struct {
	Exp, Run, Model  string            // alice's experiment, run and registered model (version 1, alias prod)
	Artifact         string            // alice's artifact, a path under /api/2.0/mlflow-artifacts/artifacts/
	MalloryExp       string            // mallory's own experiment
	OpenExp, OpenRun string            // an experiment and run on the open server
	Cred             map[string]string // Authorization header values by name (as:)
	Secret           map[string]string // tokens' secrets by name
	Hash             map[string]string // what the server stores of each token (SHA-256, hex)
	JWT              map[string]string // identity-provider tokens, genuine and forged
	Now              string            // RFC 3339, for pushes
	Canary           string            // a URL the server must never fetch (SSRF)
}

// fixture is the suite's world: the main server (authentication on, OIDC,
// users with grants, default_permission NO_PERMISSIONS so that nobody but
// admins sees what they were not granted) and an open server (loopback,
// no credential: the DNS-rebinding and cross-site defences alone; its
// online store does not answer).
type fixture struct {
	main, open         *serverProc
	mainRepo, openRepo string
	vars               vars
	// secrets must never appear in any answer: tokens, passwords, and the
	// hashes the metadata database holds of them.
	secrets map[string]string
	// canaryHits counts requests to vars.Canary: none may ever arrive.
	canaryHits atomic.Int64
}

// passwords of the suite's users.
var passwords = map[string]string{
	"alice":   "alice correct horse",
	"bob":     "bob battery staple",
	"carol":   "carol tr0ub4dor",
	"mallory": "mallory hunter2",
}

func newFixture(t *testing.T, client *http.Client) *fixture {
	t.Helper()
	f := &fixture{secrets: map[string]string{}}
	v := &f.vars
	v.Cred, v.Secret, v.Hash, v.JWT = map[string]string{}, map[string]string{}, map[string]string{}, map[string]string{}

	idp := newIdentityProvider(t)
	canary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.canaryHits.Add(1)
		_, _ = io.WriteString(w, "canary")
	}))
	t.Cleanup(canary.Close)
	v.Canary = canary.URL
	// body_timeout 1s so that a trickled body is cut quickly; max_body_mib
	// 1 so that an oversize streamed body costs little to send.
	repo := initProject(t, fmt.Sprintf(`server:
  body_timeout: 1s
  max_body_mib: 1
  auth:
    default_permission: NO_PERMISSIONS
    oidc: {issuer: %q, audience: atrium, role_claim: groups}
`, idp.srv.URL))

	token := func(name, role, expires string) {
		s := strings.TrimSpace(cli(t, repo, "", "token", "create", "--name", name, "--role", role, "--expires", expires))
		v.Secret[name] = s
		sum := sha256.Sum256([]byte(s))
		v.Hash[name] = hex.EncodeToString(sum[:])
		v.Cred[name] = "Bearer " + s
		f.secrets["token "+name] = s
		f.secrets["hash of token "+name] = v.Hash[name]
	}
	// The expired token first, so that it is past its time when the server
	// starts: an admin's, to show expiry is not a matter of role. Its
	// expiry was set before the command returned, so it is before expiresAt.
	token("expired", "admin", "1s")
	expiresAt := time.Now().Add(time.Second)
	token("admin", "admin", "1d")
	token("editor", "editor", "1d")
	token("reader", "reader", "1d")
	token("revoked", "admin", "1d")
	cli(t, repo, "", "token", "revoke", "revoked")
	for _, u := range []struct{ name, role string }{{"alice", "editor"}, {"bob", "reader"}, {"carol", "editor"}, {"mallory", "editor"}} {
		cli(t, repo, passwords[u.name]+"\n", "user", "add", u.name, "--role", u.role, "--password-stdin")
		v.Cred[u.name] = basic(u.name, passwords[u.name])
		f.secrets["password of "+u.name] = passwords[u.name]
	}
	f.storedHashes(t, repo)

	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	v.JWT["admin"] = idp.signed(t, idp.key, map[string]any{"groups": []string{"admin"}})
	v.JWT["reader"] = idp.signed(t, idp.key, map[string]any{"groups": "reader"})
	v.JWT["none"] = idp.unsigned(t, map[string]any{"groups": "admin"})
	v.JWT["other_key"] = idp.signed(t, other, map[string]any{"groups": "admin"})
	v.JWT["hmac_public_key"] = idp.hmacWithPublicKey(t, map[string]any{"groups": "admin"})
	v.JWT["expired"] = idp.signed(t, idp.key, map[string]any{"groups": "admin", "exp": time.Now().Add(-time.Minute).Unix()})
	v.JWT["wrong_audience"] = idp.signed(t, idp.key, map[string]any{"groups": "admin", "aud": "another-api"})
	v.JWT["wrong_issuer"] = idp.signed(t, idp.key, map[string]any{"groups": "admin", "iss": "https://evil.example"})
	v.JWT["no_role"] = idp.signed(t, idp.key, map[string]any{"groups": nil})
	v.Cred["oidc-admin"] = "Bearer " + v.JWT["admin"]
	v.Cred["oidc-reader"] = "Bearer " + v.JWT["reader"]

	time.Sleep(time.Until(expiresAt))
	f.main, f.mainRepo = startServe(t, repo, client, "--addr", "127.0.0.1:0"), repo

	// What the probes aim at: alice's experiment, run (with a parameter),
	// registered model (version 1 behind alias prod) and artifact. Alice
	// made them, so she alone holds MANAGE on them.
	call := func(srv *serverProc, as, method, path, body string) map[string]any {
		return mustCall(t, client, srv, v.Cred[as], method, path, body)
	}
	v.Exp = call(f.main, "alice", "POST", mlflow+"/experiments/create", `{"name": "alice-exp"}`)["experiment_id"].(string)
	v.Run = call(f.main, "alice", "POST", mlflow+"/runs/create", `{"experiment_id": "`+v.Exp+`", "run_name": "alice-run"}`)["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
	call(f.main, "alice", "POST", mlflow+"/runs/log-parameter", `{"run_id": "`+v.Run+`", "key": "secret_param", "value": "alice-private-value"}`)
	v.Model = "alice-model"
	call(f.main, "alice", "POST", mlflow+"/registered-models/create", `{"name": "alice-model", "description": "alice-private-description"}`)
	call(f.main, "alice", "POST", mlflow+"/model-versions/create", `{"name": "alice-model", "source": "runs:/`+v.Run+`/model", "run_id": "`+v.Run+`"}`)
	call(f.main, "alice", "POST", mlflow+"/registered-models/alias", `{"name": "alice-model", "alias": "prod", "version": "1"}`)
	v.Artifact = v.Exp + "/" + v.Run + "/artifacts/model.txt"
	call(f.main, "alice", "PUT", "/api/2.0/mlflow-artifacts/artifacts/"+v.Artifact, "alice-artifact-bytes")
	v.MalloryExp = call(f.main, "mallory", "POST", mlflow+"/experiments/create", `{"name": "mallory-exp"}`)["experiment_id"].(string)
	// bob may read alice's experiment and model, carol may edit them;
	// mallory has no grant.
	for _, g := range []struct{ user, typ, id, perm string }{
		{"bob", "experiment", v.Exp, "READ"}, {"bob", "registered_model", v.Model, "READ"},
		{"carol", "experiment", v.Exp, "EDIT"}, {"carol", "registered_model", v.Model, "EDIT"},
	} {
		call(f.main, "admin", "POST", "/api/3.0/mlflow/users/permissions/grant",
			fmt.Sprintf(`{"username": %q, "resource_type": %q, "resource_id": %q, "permission": %q}`, g.user, g.typ, g.id, g.perm))
	}

	// The open server's online store is a fake Redis that stops answering
	// once the server is set up: its feature answers are then 503s.
	redis := newFakeRedis(t)
	f.openRepo = initProject(t, "stores:\n  online: "+redis.URL()+"\n")
	f.open = startServe(t, f.openRepo, client, "--addr", "127.0.0.1:0")
	v.OpenExp = call(f.open, "", "POST", mlflow+"/experiments/create", `{"name": "open-exp"}`)["experiment_id"].(string)
	v.OpenRun = call(f.open, "", "POST", mlflow+"/runs/create", `{"experiment_id": "`+v.OpenExp+`"}`)["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
	redis.Silence()
	v.Now = time.Now().UTC().Format(time.RFC3339)
	return f
}

// storedHashes reads what the metadata database holds of each password and
// token, to prove no answer ever shows it.
func (f *fixture) storedHashes(t *testing.T, repo string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(repo, ".atrium", "atrium.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT 'password hash of ' || name, password_hash FROM auth_users UNION ALL SELECT 'stored hash of token ' || name, hash FROM auth_tokens`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var what, hash string
		if err := rows.Scan(&what, &hash); err != nil {
			t.Fatal(err)
		}
		f.secrets[what], n = hash, n+1
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 9 {
		t.Fatalf("the metadata database holds %d credentials, want 9 (4 users, 5 tokens)", n)
	}
}

// mustCall makes a setup call and fails the test unless it answers 200.
func mustCall(t *testing.T, client *http.Client, srv *serverProc, auth, method, path, body string) map[string]any {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("setup %s %s = %d %s", method, path, resp.StatusCode, b)
	}
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

// basic is an Authorization header of HTTP basic auth.
func basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// TestAdversarialProbes replays testdata/probes.yaml against real `atrium
// serve` processes: each probe's answer must have the expected status, show
// what it must and nothing it must not (no secret, ever), and the objects
// it aimed at must survive it.
func TestAdversarialProbes(t *testing.T) {
	s := loadScript(t, filepath.Join("testdata", "probes.yaml"))
	client := &http.Client{
		Timeout:       2 * time.Minute, // bounds a hung test, not an expectation
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	f := newFixture(t, client)
	r := &runner{f: f, client: client, funcs: template.FuncMap{"repeat": strings.Repeat, "basic": basic}}
	audited := map[string]map[string]string{"main": {}, "open": {}} // target -> request id -> probe
	for _, p := range s.Probes {
		t.Run(p.Name, func(t *testing.T) {
			a, bad := r.check(t, p.Request)
			if p.Audited {
				if id := a.header.Get("X-Request-Id"); id != "" {
					audited[cmp.Or(p.Target, "main")][id] = p.Name
				} else {
					bad = append(bad, "no X-Request-Id to find the call by in the audit log")
				}
			}
			for _, name := range p.Survives {
				if _, why := r.check(t, s.Survivors[name]); len(why) > 0 {
					bad = append(bad, fmt.Sprintf("survivor %s: %s", name, strings.Join(why, "; ")))
				}
			}
			if len(bad) > 0 {
				t.Errorf("%s %s:\n  %s\nanswer: %d %s", p.Method, cut(r.expand(t, p.Path)), strings.Join(bad, "\n  "), a.status, cut(a.body))
			}
		})
	}
	// The audit logs, once the servers have stopped (they flush their
	// queues on the way): every call a probe marks audited is in its
	// server's.
	for target, srv := range map[string]*serverProc{"main": f.main, "open": f.open} {
		srv.Stop()
		repo := map[string]string{"main": f.mainRepo, "open": f.openRepo}[target]
		var entries []struct {
			RequestID string `json:"request_id"`
		}
		if out := cli(t, repo, "", "-o", "json", "audit", "--since", "24h", "--limit", "100000"); json.Unmarshal([]byte(out), &entries) != nil {
			t.Errorf("atrium audit -o json (%s server): %q", target, cut(out))
		}
		for _, e := range entries {
			delete(audited[target], e.RequestID)
		}
		for id, name := range audited[target] {
			t.Errorf("probe %q (request %s) is not in the %s server's audit log", name, id, target)
		}
	}
	if t.Failed() {
		t.Logf("main server log:\n%s", f.main.Logs())
	}
}
