package security

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	cert, key, pool := selfSigned(t, t.TempDir())
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

// selfSigned writes a certificate for 127.0.0.1 and its key, returning the
// file names and a pool that trusts the certificate.
func selfSigned(t *testing.T, dir string) (string, string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "atrium security suite"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return cert, keyFile, pool
}
