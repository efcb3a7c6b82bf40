package mlflow_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/tests/interop/interoptest"
)

// TestArtifactsWithMLflowClient runs the mlflow client's artifact repository
// (uploads, trees, listings, downloads, deletes, multipart) against the proxy.
func TestArtifactsWithMLflowClient(t *testing.T) {
	interoptest.Python(t, "the real-mlflow-client test")
	srv := startAtrium(t, t.TempDir())
	runPython(t, srv, "artifacts_flow.py")
}

const artifactsAPI = "/api/2.0/mlflow-artifacts/artifacts/"

func httpDo(t *testing.T, method, url string, body io.Reader) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, b
}

// TestKilledMidUpload kills the server (SIGKILL) while it streams two uploads,
// one replacing a stored artifact and one new, and while a multipart upload is
// half done, then restarts it: the stored artifact is intact, the new one does
// not exist, listings show no partial or temporary file, the multipart upload
// completes on the restarted server, and the server works again.
func TestKilledMidUpload(t *testing.T) {
	interoptest.Python(t, "the real-mlflow-client test") // an interop test: runs where the interop suite runs
	repo := t.TempDir()
	srv := startAtrium(t, repo)
	v1 := make([]byte, 1<<20)
	rand.Read(v1)
	if code, body := httpDo(t, "PUT", srv.URL+artifactsAPI+"1/run/artifacts/model.bin", bytes.NewReader(v1)); code != 200 {
		t.Fatalf("upload v1: %d %s", code, body)
	}

	// A multipart upload with one of its two parts stored before the kill.
	var created struct {
		UploadID    string `json:"upload_id"`
		Credentials []struct {
			URL string `json:"url"`
		} `json:"credentials"`
	}
	mpuAPI := srv.URL + "/api/2.0/mlflow-artifacts/mpu/"
	code, body := httpDo(t, "POST", mpuAPI+"create/1/run/artifacts", strings.NewReader(`{"path":"/home/me/big.bin","num_parts":2}`))
	if code != 200 || json.Unmarshal(body, &created) != nil || len(created.Credentials) != 2 {
		t.Fatalf("multipart create: %d %s", code, body)
	}
	part1, part2 := bytes.Repeat([]byte("1"), 3<<20), []byte("the end")
	if code, body := httpDo(t, "PUT", created.Credentials[0].URL, bytes.NewReader(part1)); code != 200 {
		t.Fatalf("part 1: %d %s", code, body)
	}

	tmpDir := filepath.Join(repo, ".atrium", "artifacts", ".atrium-tmp")
	var writers []*io.PipeWriter
	for _, p := range []string{"1/run/artifacts/model.bin", "1/run/artifacts/new.bin"} {
		pr, pw := io.Pipe()
		writers = append(writers, pw)
		req, err := http.NewRequest("PUT", srv.URL+artifactsAPI+p, pr)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = 8 << 20 // announced, never all sent
		go func() {
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
		go func() { _, _ = pw.Write(bytes.Repeat([]byte("partial!"), 256<<10)) }() // 2 MiB of 8
	}
	// Kill only once both uploads are half on disk.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var onDisk int
		entries, _ := os.ReadDir(tmpDir)
		for _, e := range entries {
			if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
				onDisk++
			}
		}
		if onDisk == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("uploads never reached the disk: %v", entries)
		}
		time.Sleep(20 * time.Millisecond)
	}
	srv.Restart()
	for _, w := range writers {
		w.CloseWithError(io.ErrClosedPipe)
	}

	code, got := httpDo(t, "GET", srv.URL+artifactsAPI+"1/run/artifacts/model.bin", nil)
	if code != 200 || !bytes.Equal(got, v1) {
		t.Fatalf("after the kill, model.bin = %d, %d bytes; want v1 whole (%d bytes)", code, len(got), len(v1))
	}
	if code, body := httpDo(t, "GET", srv.URL+artifactsAPI+"1/run/artifacts/new.bin", nil); code != 404 {
		t.Fatalf("half-uploaded new.bin = %d %s, want 404", code, body)
	}
	code, list := httpDo(t, "GET", srv.URL+strings.TrimSuffix(artifactsAPI, "/")+"?path=1/run/artifacts", nil)
	if want := `{"files":[{"path":"model.bin","is_dir":false,"file_size":1048576}]}`; code != 200 || strings.TrimSpace(string(list)) != want {
		t.Fatalf("listing after the kill = %d %s, want %s", code, list, want)
	}
	code, list = httpDo(t, "GET", srv.URL+strings.TrimSuffix(artifactsAPI, "/"), nil)
	if want := `{"files":[{"path":"1","is_dir":true}]}`; code != 200 || strings.TrimSpace(string(list)) != want {
		t.Fatalf("root listing after the kill = %d %s, want %s", code, list, want)
	}
	// The multipart upload survived the kill: it is invisible until completed,
	// and completes on the restarted server (on its new port).
	if code, _ := httpDo(t, "GET", srv.URL+artifactsAPI+"1/run/artifacts/big.bin", nil); code != 404 {
		t.Fatalf("unfinished multipart upload visible after the kill: %d", code)
	}
	etag := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
	partURL := srv.URL + "/api/2.0/mlflow-artifacts/mpu/parts/" + created.UploadID + "/2"
	if code, body := httpDo(t, "PUT", partURL, bytes.NewReader(part2)); code != 200 {
		t.Fatalf("part 2 after restart: %d %s", code, body)
	}
	complete := fmt.Sprintf(`{"path":"/home/me/big.bin","upload_id":%q,"parts":[{"part_number":1,"etag":%q},{"part_number":2,"etag":%q}]}`,
		created.UploadID, etag(part1), etag(part2))
	if code, body := httpDo(t, "POST", srv.URL+"/api/2.0/mlflow-artifacts/mpu/complete/1/run/artifacts", strings.NewReader(complete)); code != 200 {
		t.Fatalf("multipart complete after restart: %d %s", code, body)
	}
	if code, got := httpDo(t, "GET", srv.URL+artifactsAPI+"1/run/artifacts/big.bin", nil); code != 200 || !bytes.Equal(got, append(part1, part2...)) {
		t.Fatalf("big.bin after completing across a restart = %d, %d bytes", code, len(got))
	}

	if code, body := httpDo(t, "PUT", srv.URL+artifactsAPI+"1/run/artifacts/new.bin", strings.NewReader("after restart")); code != 200 {
		t.Fatalf("upload after restart: %d %s", code, body)
	}
	if code, got := httpDo(t, "GET", srv.URL+artifactsAPI+"1/run/artifacts/new.bin", nil); code != 200 || string(got) != "after restart" {
		t.Fatalf("new.bin after restart = %d %q", code, got)
	}
}
