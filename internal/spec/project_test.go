package spec

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadProjectDefaults(t *testing.T) {
	dir := t.TempDir()
	p, err := LoadProject(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"offline":   "duckdb://" + filepath.Join(dir, ".atrium", "offline"),
		"online":    "pebble://" + filepath.Join(dir, ".atrium", "online"),
		"meta":      "sqlite://" + filepath.Join(dir, ".atrium", "atrium.db"),
		"artifacts": "file://" + filepath.Join(dir, ".atrium", "artifacts"),
	}
	got := map[string]string{"offline": p.Stores.Offline, "online": p.Stores.Online, "meta": p.Stores.Meta, "artifacts": p.Stores.Artifacts}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("stores.%s = %q, want %q", k, got[k], v)
		}
	}
	if p.Name != filepath.Base(dir) || p.Server.Addr != "127.0.0.1:8080" {
		t.Errorf("name=%q addr=%q", p.Name, p.Server.Addr)
	}
}

func TestLoadProjectFileAndEnv(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		env     map[string]string
		check   func(t *testing.T, p *Project)
		wantErr string
	}{
		{
			name: "file values, relative paths resolved",
			yaml: "project: rentals\ndata_dir: state\nstores:\n  online: redis://127.0.0.1:6379/0\n  meta: sqlite://meta/a.db\n",
			check: func(t *testing.T, p *Project) {
				if p.Name != "rentals" || p.Stores.Online != "redis://127.0.0.1:6379/0" {
					t.Errorf("got %+v", p)
				}
				if !strings.HasSuffix(p.Stores.Meta, "/meta/a.db") || !filepath.IsAbs(strings.TrimPrefix(p.Stores.Meta, "sqlite://")) {
					t.Errorf("meta = %q, want an absolute path ending in meta/a.db", p.Stores.Meta)
				}
				if !strings.HasSuffix(p.Stores.Offline, "/state/offline") {
					t.Errorf("offline = %q, want under data_dir state/", p.Stores.Offline)
				}
			},
		},
		{
			name: "env overrides file",
			yaml: "stores:\n  meta: sqlite://a.db\n",
			env:  map[string]string{"ATRIUM_META": "postgres://u@h/db", "ATRIUM_ADDR": "0.0.0.0:9000"},
			check: func(t *testing.T, p *Project) {
				if p.Stores.Meta != "postgres://u@h/db" || p.Server.Addr != "0.0.0.0:9000" {
					t.Errorf("got meta=%q addr=%q", p.Stores.Meta, p.Server.Addr)
				}
			},
		},
		{name: "empty file", yaml: "", check: func(t *testing.T, p *Project) {}},
		{name: "unknown field names its line", yaml: "project: x\nstorez:\n  meta: a\n", wantErr: "atrium.yaml:2:"},
		{name: "bad url", yaml: "stores:\n  online: localhost:6379\n", wantErr: "stores.online: \"localhost:6379\" is not a URL"},
		{name: "malformed yaml", yaml: "project: [\n", wantErr: "atrium.yaml:"},
		{name: "run cache size", yaml: "server:\n  run_cache_mib: 0\n", check: func(t *testing.T, p *Project) {
			if p.Server.RunCacheMiB == nil || *p.Server.RunCacheMiB != 0 {
				t.Errorf("run_cache_mib = %v, want 0 (set, off)", p.Server.RunCacheMiB)
			}
		}},
		{name: "negative run cache size", yaml: "server:\n  run_cache_mib: -1\n", wantErr: "server.run_cache_mib: -1, expected a size in MiB from 0"},
		{name: "push skew", yaml: "server:\n  push_max_skew: 1h\n", check: func(t *testing.T, p *Project) {
			if p.Server.PushMaxSkew != "1h" {
				t.Errorf("push_max_skew = %q, want 1h", p.Server.PushMaxSkew)
			}
		}},
		{name: "bad push skew", yaml: "server:\n  push_max_skew: soon\n", wantErr: `server.push_max_skew: duration "soon": expected a whole number and a unit`},
		{name: "monitoring rows default", yaml: "", check: func(t *testing.T, p *Project) {
			if p.Monitoring.MaxRows != DefaultMaxRows {
				t.Errorf("monitoring.max_rows = %d, want the default %d", p.Monitoring.MaxRows, DefaultMaxRows)
			}
		}},
		{name: "monitoring rows", yaml: "monitoring:\n  max_rows: 500000\n", check: func(t *testing.T, p *Project) {
			if p.Monitoring.MaxRows != 500000 {
				t.Errorf("monitoring.max_rows = %d, want 500000", p.Monitoring.MaxRows)
			}
		}},
		{name: "too few monitoring rows", yaml: "monitoring:\n  max_rows: 10\n", wantErr: "atrium.yaml:2: monitoring.max_rows: 10, expected at least 1000 rows"},
		{name: "bad compute names its line", yaml: "project: x\nstores:\n  compute: spark://h:7077\n", wantErr: "atrium.yaml:3: stores.compute: \"spark://h:7077\""},
		{name: "auth and tls", yaml: "server:\n  auth:\n    required: true\n    allowed_hosts: [atrium.internal]\n    allowed_origins: ['https://ui.example.com']\n  tls:\n    cert_file: tls/cert.pem\n    key_file: /etc/atrium/key.pem\n",
			check: func(t *testing.T, p *Project) {
				a := p.Server.Auth
				if !a.Required || len(a.AllowedHosts) != 1 || a.AllowedHosts[0] != "atrium.internal" || len(a.AllowedOrigins) != 1 || a.AllowedOrigins[0] != "https://ui.example.com" {
					t.Errorf("server.auth = %+v", a)
				}
				if p.Server.TLS.CertFile != filepath.Join(p.Dir, "tls", "cert.pem") || p.Server.TLS.KeyFile != "/etc/atrium/key.pem" {
					t.Errorf("server.tls = %+v, want the relative path resolved against %s", p.Server.TLS, p.Dir)
				}
			}},
		{name: "tls cert without key", yaml: "server:\n  tls:\n    cert_file: cert.pem\n", wantErr: "server.tls: cert_file and key_file go together"},
		{name: "public url", yaml: "server:\n  public_url: https://example.com/atrium/\n", check: func(t *testing.T, p *Project) {
			if p.Server.PublicURL != "https://example.com/atrium/" {
				t.Errorf("public_url = %q", p.Server.PublicURL)
			}
		}},
		{name: "public url without scheme", yaml: "server:\n  public_url: atrium.example.com\n", wantErr: `server.public_url: "atrium.example.com": the scheme is not http or https`},
		{name: "public url with a user", yaml: "server:\n  public_url: https://me@evil.example@atrium.example.com\n", wantErr: "it holds a user name"},
		{name: "public url with a query", yaml: "server:\n  public_url: https://atrium.example.com/?x=1\n", wantErr: "it holds a query or fragment"},
		{name: "public url without host", yaml: "server:\n  public_url: 'https:///x'\n", wantErr: "no host"},
		{name: "audit retention default", yaml: "", check: func(t *testing.T, p *Project) {
			if d, err := p.Server.AuditRetentionDuration(); err != nil || d != 90*24*time.Hour {
				t.Errorf("audit retention = %s, %v; want 90 days", d, err)
			}
		}},
		{name: "audit retention never", yaml: "server:\n  audit_retention: never\n", check: func(t *testing.T, p *Project) {
			if d, err := p.Server.AuditRetentionDuration(); err != nil || d != 0 {
				t.Errorf("audit retention = %s, %v; want 0 (for ever)", d, err)
			}
		}},
		{name: "audit retention weeks", yaml: "server:\n  audit_retention: 52w\n", check: func(t *testing.T, p *Project) {
			if d, err := p.Server.AuditRetentionDuration(); err != nil || d != 52*7*24*time.Hour {
				t.Errorf("audit retention = %s, %v", d, err)
			}
		}},
		{name: "audit retention zero", yaml: "server:\n  audit_retention: \"0\"\n", wantErr: `server.audit_retention: "0", expected a positive duration such as 90d or 52w, or never`},
		{name: "audit retention garbage", yaml: "server:\n  audit_retention: forever\n", wantErr: `server.audit_retention: "forever", expected a positive duration`},
		{name: "default permission", yaml: "server:\n  auth:\n    default_permission: NO_PERMISSIONS\n", check: func(t *testing.T, p *Project) {
			if p.Server.Auth.DefaultPermission != "NO_PERMISSIONS" {
				t.Errorf("default_permission = %q", p.Server.Auth.DefaultPermission)
			}
		}},
		{name: "bad default permission", yaml: "server:\n  auth:\n    default_permission: write\n", wantErr: `server.auth.default_permission: "write", expected READ, EDIT, MANAGE or NO_PERMISSIONS`},
		{name: "oidc", yaml: "server:\n  auth:\n    oidc: {issuer: 'https://idp.example.com/realms/x', audience: atrium, role_claim: groups}\n", check: func(t *testing.T, p *Project) {
			if o := p.Server.Auth.OIDC; o == nil || o.Issuer != "https://idp.example.com/realms/x" || o.Audience != "atrium" || o.RoleClaim != "groups" {
				t.Errorf("oidc = %+v", o)
			}
		}},
		{name: "oidc without audience", yaml: "server:\n  auth:\n    oidc: {issuer: 'https://idp.example.com'}\n", wantErr: "server.auth.oidc.audience: missing"},
		{name: "oidc bad issuer", yaml: "server:\n  auth:\n    oidc: {issuer: idp, audience: a}\n", wantErr: `server.auth.oidc.issuer: "idp"`},
		{name: "unknown auth setting", yaml: "server:\n  auth:\n    enabled: true\n", wantErr: "enabled"},
		{name: "server limits default", yaml: "", check: func(t *testing.T, p *Project) {
			s := p.Server
			if s.StoreTimeout != 500*time.Millisecond || s.RequestTimeout != 30*time.Second || s.MaxBodyMiB != 64 ||
				s.InFlightBodyMiB != 256 || s.MaxConcurrent != (Concurrency{Read: 1024, Write: 256, Heavy: 2, Stream: 32}) {
				t.Errorf("server defaults: %+v", s)
			}
		}},
		{name: "server limits set", yaml: "server:\n  store_timeout: 250ms\n  body_timeout: 5s\n  inflight_body_mib: 512\n  max_concurrent:\n    heavy: 1\n",
			check: func(t *testing.T, p *Project) {
				s := p.Server
				if s.StoreTimeout != 250*time.Millisecond || s.BodyTimeout != 5*time.Second || s.InFlightBodyMiB != 512 ||
					s.MaxConcurrent.Heavy != 1 || s.MaxConcurrent.Read != 1024 {
					t.Errorf("server settings: %+v", s)
				}
			}},
		{name: "server limits invalid, every problem", yaml: "server:\n  store_timeout: 1m\n  request_timeout: 10s\n  max_body_mib: 512\n  max_concurrent:\n    write: -1\n  idle_timeout: -1s\n",
			wantErr: "server.store_timeout: 1m0s is longer than server.request_timeout (10s)"},
		{name: "server limits invalid, budget", yaml: "server:\n  max_body_mib: 512\n  max_concurrent:\n    write: -1\n",
			wantErr: "server.inflight_body_mib: 256, expected a size in MiB from server.max_body_mib (512)"},
		{name: "server limits invalid, concurrency", yaml: "server:\n  max_body_mib: 512\n  max_concurrent:\n    write: -1\n",
			wantErr: "server.max_concurrent.write: -1, expected a positive number"},
		{name: "server limits, bad duration", yaml: "server:\n  store_timeout: soon\n", wantErr: "atrium.yaml"},
		{name: "server limits, unknown field", yaml: "server:\n  store_timout: 1s\n", wantErr: "atrium.yaml:2:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, ProjectFile), []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			p, err := LoadProject(dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, p)
		})
	}
}

// TestStoreURLsEscapePaths checks that the store URLs of a repository whose path
// holds URL syntax ('%', '#', '?', spaces) name that repository's data
// directory once decoded the way the stores' openers decode them (host and path
// of url.Parse), for the defaults and for relative paths in atrium.yaml.
func TestStoreURLsEscapePaths(t *testing.T) {
	for _, name := range []string{"q%41", "a#b", "c?d=1", "e f", "g[1]*", "h%2e%2e"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			yaml := "stores:\n  online: pebble://on%20line?cache_mb=8\n  artifacts: file://localhost/srv/a%23rt\n"
			if err := os.WriteFile(filepath.Join(dir, ProjectFile), []byte(yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			p, err := LoadProject(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, tt := range []struct{ url, path, query string }{
				{p.Stores.Offline, filepath.Join(dir, ".atrium", "offline"), ""},
				{p.Stores.Meta, filepath.Join(dir, ".atrium", "atrium.db"), ""},
				{p.Stores.Online, filepath.Join(dir, "on line"), "cache_mb=8"},
				{p.Stores.Artifacts, "/srv/a#rt", ""},
			} {
				u, err := url.Parse(tt.url)
				if err != nil {
					t.Errorf("%s: %v", tt.url, err)
					continue
				}
				host := u.Host
				if host == "localhost" {
					host = ""
				}
				if got := host + u.Path; got != tt.path || u.RawQuery != tt.query || u.Fragment != "" {
					t.Errorf("%s names %q ?%s #%s, want %q ?%s", tt.url, got, u.RawQuery, u.Fragment, tt.path, tt.query)
				}
			}
		})
	}
}
