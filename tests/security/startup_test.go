package security

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/auth/authtest"
)

// TestServeRefusesUnsafeStarts (OWASP API8): `atrium serve` on an address
// beyond loopback, or with server.auth.required, and no credential refuses
// to start and says how to create one; it never serves open.
func TestServeRefusesUnsafeStarts(t *testing.T) {
	open := initProject(t, "")
	required := initProject(t, "server:\n  auth:\n    required: true\n")
	for _, tt := range []struct {
		name, repo, addr string
	}{
		{"all interfaces", open, "0.0.0.0:0"},
		{"all interfaces, no host", open, ":0"},
		{"IPv6 any", open, "[::]:0"},
		{"required on loopback", required, "127.0.0.1:0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(atriumBinary(t), "serve", "--repo", tt.repo, "--addr", tt.addr)
			done := make(chan error, 1)
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- cmd.Wait() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(time.Minute): // bounds a hung test: a refusal is immediate
				_ = cmd.Process.Kill()
				t.Fatalf("serve --addr %s without a credential kept running:\n%s", tt.addr, out.String())
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Errorf("serve --addr %s without a credential: %v, want exit code 1", tt.addr, err)
			}
			if !strings.Contains(out.String(), "atrium token create --name admin --role admin") || strings.Contains(out.String(), "atrium serving on") {
				t.Errorf("serve --addr %s without a credential said:\n%s\nwant a refusal naming `atrium token create`", tt.addr, out.String())
			}
		})
	}
}

// TestServeTLS (OWASP API8): with --tls-cert and --tls-key, `atrium serve`
// serves HTTPS only: plain HTTP on its port gets no answer from the API,
// TLS below 1.2 is refused, and authentication holds over TLS.
func TestServeTLS(t *testing.T) {
	repo := initProject(t, "")
	token := strings.TrimSpace(cli(t, repo, "", "token", "create", "--name", "tls", "--role", "reader", "--expires", "1d"))
	cert, key, pool := authtest.SelfSigned(t, t.TempDir())
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	srv := startServe(t, repo, client, "--addr", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key)
	if !strings.HasPrefix(srv.URL, "https://") {
		t.Fatalf("serve with --tls-cert listens on %s, want https", srv.URL)
	}
	get := func(c *http.Client, url, auth string) (int, error) {
		req, err := http.NewRequest("GET", url, nil)
		if err != nil {
			return 0, err
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	exp := srv.URL + mlflow + "/experiments/get?experiment_id=0"
	if code, err := get(client, exp, ""); err != nil || code != http.StatusUnauthorized {
		t.Errorf("anonymous over TLS = %d %v, want 401", code, err)
	}
	if code, err := get(client, exp, "Bearer "+token); err != nil || code != http.StatusOK {
		t.Errorf("token over TLS = %d %v, want 200", code, err)
	}
	plain := &http.Client{Timeout: time.Minute}
	if code, err := get(plain, "http://"+srv.Addr+mlflow+"/experiments/get?experiment_id=0", "Bearer "+token); err == nil && code == http.StatusOK {
		t.Errorf("plain HTTP on the TLS port = %d, want no answer from the API", code)
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Minute}, "tcp", srv.Addr, &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11})
	if err == nil {
		conn.Close()
		t.Errorf("a TLS 1.1 handshake succeeded, want it refused")
	}
}
