// Package security is the adversarial suite of issue 10: it builds the
// atrium binary, starts `atrium serve` on fresh `atrium init` projects the
// way a user deploys it, and replays the probes of testdata/probes.yaml
// against it as an attacker would, item by item of the OWASP API Security
// Top 10 (2023). docs/security.md ("Adversarial suite") maps each item to
// its probes.
package security

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/platform/proctest"
)

func TestMain(m *testing.M) { proctest.Main(m) }

// atriumBinary is cmd/atrium, built once per test run as a user installs it.
func atriumBinary(t *testing.T) string { return proctest.Atrium(t) }

// cli runs `atrium --repo repo args...` with stdin and fails the test unless
// it exits 0; it returns stdout.
func cli(t *testing.T, repo, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(atriumBinary(t), append([]string{"--repo", repo}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("atrium %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// initProject runs `atrium init` in a temporary directory, appends extra to
// its atrium.yaml and registers its feature sets (`atrium apply`).
func initProject(t *testing.T, extra string) string {
	t.Helper()
	repo := filepath.Join(t.TempDir(), "proj")
	out, err := exec.Command(atriumBinary(t), "init", repo).CombinedOutput()
	if err != nil {
		t.Fatalf("atrium init: %v\n%s", err, out)
	}
	f, err := os.OpenFile(filepath.Join(repo, "atrium.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(extra); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	cli(t, repo, "", "apply")
	return repo
}

// serverProc is a running `atrium serve` process.
type serverProc = proctest.Server

// startServe starts `atrium serve --repo repo args...` and waits until it
// says where it listens and /readyz answers. It is stopped when the test ends.
func startServe(t *testing.T, repo string, client *http.Client, args ...string) *serverProc {
	t.Helper()
	return proctest.StartServer(t, client, nil, atriumBinary(t), append([]string{"serve", "--repo", repo}, args...)...)
}
