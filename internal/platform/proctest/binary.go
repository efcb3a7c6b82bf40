//go:build unix

package proctest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	buildDir  string
	binPath   string
	buildErr  error
)

// Main runs the package's tests (call it from TestMain) and then removes
// the binary Atrium built, if it did.
func Main(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// Atrium builds cmd/atrium once per test process, as a user installs it
// (without the race detector: such tests drive the product as a process,
// the test is not what they check), and returns the binary's path. The
// package's TestMain must call Main, which removes it.
func Atrium(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "atrium-bin-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "atrium")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/atrium-ml/atrium/cmd/atrium").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/atrium: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}
