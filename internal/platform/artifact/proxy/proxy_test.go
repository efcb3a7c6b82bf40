package proxy

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/artifact"
	"github.com/atrium-ml/atrium/internal/platform/artifact/artifacttest"
	"github.com/atrium-ml/atrium/internal/platform/artifact/fs"
	"github.com/atrium-ml/atrium/internal/platform/server"
)

const base = "/api/2.0/mlflow-artifacts"

type fixture struct {
	t     *testing.T
	srv   *httptest.Server
	store *fs.Store
}

// newFixture serves a real fs store through the real server composition.
func newFixture(t *testing.T, opts Options, wrap func(artifact.Store) artifact.Store) *fixture {
	t.Helper()
	st, err := fs.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var store artifact.Store = st
	if wrap != nil {
		store = wrap(st)
	}
	srv := httptest.NewServer(server.New(server.Options{}, New(store, opts)).Handler())
	t.Cleanup(srv.Close)
	return &fixture{t: t, srv: srv, store: st}
}

// raw sends target verbatim on the request line (no client-side cleaning or
// escaping) and returns status, headers and body.
func (f *fixture) raw(method, target string, body []byte) (int, http.Header, string) {
	f.t.Helper()
	conn, err := net.Dial("tcp", f.srv.Listener.Addr().String())
	if err != nil {
		f.t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", method, target, f.srv.Listener.Addr(), len(body))
	conn.Write(body)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func (f *fixture) do(method, target string, body io.Reader) (int, http.Header, string) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+target, body)
	if err != nil {
		f.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func mlflowError(t *testing.T, body string) (code, msg string) {
	t.Helper()
	var e struct {
		ErrorCode string `json:"error_code"`
		Message   string `json:"message"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.ErrorCode == "" || e.Message == "" {
		t.Fatalf("error body %q is not MLflow's {error_code, message}: %v", body, err)
	}
	return e.ErrorCode, e.Message
}

func TestUploadDownloadListDelete(t *testing.T) {
	f := newFixture(t, Options{}, nil)
	files := map[string]string{
		"1/run1/artifacts/model/MLmodel":          "flavors: {}\n",
		"1/run1/artifacts/model/model.pkl":        strings.Repeat("\x00\x01pickle", 100000),
		"1/run1/artifacts/plots/roc curve.png":    "\x89PNG",
		"1/run1/artifacts/report.html":            "<script>alert(1)</script>",
		"1/run1/artifacts/données/é.txt":          "unicode",
		"1/run1/artifacts/empty":                  "",
		"1/run1/artifacts/dir/sub/deeper/x.json":  `{"a":1}`,
		"1/run1/artifacts/requirements.txt":       "scikit-learn\n",
		"1/run1/artifacts/model/conda.yaml":       "name: env\n",
		"1/run1/artifacts/model/python_env.yaml":  "python: 3.11\n",
		"1/run1/artifacts/model/input_example.js": "x",
	}
	for p, content := range files {
		code, _, body := f.do("PUT", base+"/artifacts/"+escapePath(p), strings.NewReader(content))
		if code != 200 || strings.TrimSpace(body) != "{}" {
			t.Fatalf("PUT %s = %d %s", p, code, body)
		}
	}
	for p, content := range files {
		code, h, body := f.do("GET", base+"/artifacts/"+escapePath(p), nil)
		if code != 200 || body != content {
			t.Errorf("GET %s = %d, %d bytes; want 200, %d bytes", p, code, len(body), len(content))
		}
		if !strings.HasPrefix(h.Get("Content-Disposition"), "attachment") || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s headers %v: want an attachment with nosniff", p, h)
		}
		if ct := h.Get("Content-Type"); strings.Contains(ct, "html") || strings.Contains(ct, "script") {
			t.Errorf("GET %s served as %q: scriptable types must not be served", p, ct)
		}
	}
	// Ranges work on seekable stores (resumed downloads).
	req, _ := http.NewRequest("GET", f.srv.URL+base+"/artifacts/1/run1/artifacts/model/MLmodel", nil)
	req.Header.Set("Range", "bytes=0-6")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || string(b) != "flavors" {
		t.Errorf("Range GET = %d %q, want 206 \"flavors\"", resp.StatusCode, b)
	}

	tests := []struct {
		query string
		want  string
	}{
		{"?path=1/run1/artifacts/model", `{"files":[{"path":"MLmodel","is_dir":false,"file_size":12},{"path":"conda.yaml","is_dir":false,"file_size":10},{"path":"input_example.js","is_dir":false,"file_size":1},{"path":"model.pkl","is_dir":false,"file_size":800000},{"path":"python_env.yaml","is_dir":false,"file_size":13}]}`},
		{"?path=1/run1/artifacts/dir", `{"files":[{"path":"sub","is_dir":true}]}`},
		{"?path=1/run1", `{"files":[{"path":"artifacts","is_dir":true}]}`},
		{"", `{"files":[{"path":"1","is_dir":true}]}`},
		{"?path=", `{"files":[{"path":"1","is_dir":true}]}`},
		{"?path=1/run1/artifacts/model/MLmodel", `{}`}, // a file lists as empty, as in MLflow
		{"?path=nope/nothing", `{}`},
	}
	for _, tt := range tests {
		code, _, body := f.do("GET", base+"/artifacts"+tt.query, nil)
		if code != 200 || strings.TrimSpace(body) != tt.want {
			t.Errorf("list %q = %d %s\nwant %s", tt.query, code, body, tt.want)
		}
	}
	// The UI's prefix serves the same API.
	if code, _, body := f.do("GET", "/ajax-api/2.0/mlflow-artifacts/artifacts?path=1/run1", nil); code != 200 || !strings.Contains(body, "artifacts") {
		t.Errorf("ajax-api list = %d %s", code, body)
	}

	for _, p := range []string{"1/run1/artifacts/model", "1/run1/artifacts/report.html", "1/never/existed"} {
		if code, _, body := f.do("DELETE", base+"/artifacts/"+p, nil); code != 200 || strings.TrimSpace(body) != "{}" {
			t.Errorf("DELETE %s = %d %s", p, code, body)
		}
	}
	if code, _, body := f.do("GET", base+"/artifacts?path=1/run1/artifacts/model", nil); code != 200 || strings.TrimSpace(body) != "{}" {
		t.Errorf("list after delete = %d %s, want {}", code, body)
	}
}

func TestErrors(t *testing.T) {
	f := newFixture(t, Options{MaxUploadBytes: 1000, MaxJSONBytes: 100}, nil)
	if code, _, _ := f.do("PUT", base+"/artifacts/a/file", strings.NewReader("x")); code != 200 {
		t.Fatal(code)
	}
	tests := []struct {
		method, target string
		body           io.Reader
		status         int
		code           string
	}{
		{"GET", base + "/artifacts/missing.txt", nil, 404, "RESOURCE_DOES_NOT_EXIST"},
		{"GET", base + "/artifacts/a", nil, 404, "RESOURCE_DOES_NOT_EXIST"}, // a directory
		{"GET", base + "/artifacts/", nil, 400, "INVALID_PARAMETER_VALUE"},
		{"PUT", base + "/artifacts/", strings.NewReader("x"), 400, "INVALID_PARAMETER_VALUE"},
		{"DELETE", base + "/artifacts/", nil, 400, "INVALID_PARAMETER_VALUE"},
		{"PUT", base + "/artifacts/a/file/under", strings.NewReader("x"), 400, "INVALID_PARAMETER_VALUE"},
		{"PUT", base + "/artifacts/a", strings.NewReader("x"), 400, "INVALID_PARAMETER_VALUE"},
		{"PUT", base + "/artifacts/big", strings.NewReader(strings.Repeat("x", 1001)), 413, "INVALID_PARAMETER_VALUE"},
		// Without Content-Length the limit trips mid-stream.
		{"PUT", base + "/artifacts/big-chunked", io.MultiReader(strings.NewReader(strings.Repeat("x", 1001))), 413, "INVALID_PARAMETER_VALUE"},
		{"POST", base + "/mpu/create/a", strings.NewReader(`{"path":"f","num_parts":1,"x":"` + strings.Repeat("y", 200) + `"}`), 413, "INVALID_PARAMETER_VALUE"},
		{"POST", base + "/mpu/create/a", strings.NewReader(`{not json`), 400, "BAD_REQUEST"},
		{"POST", base + "/mpu/create/a", strings.NewReader(`[1]`), 400, "BAD_REQUEST"},
		// Bad field values are INVALID_PARAMETER_VALUE, as MLflow's request-schema
		// checks answer them (docs/artifacts.md lists them so).
		{"POST", base + "/mpu/create/a", strings.NewReader(`{"path":"f","num_parts":0}`), 400, "INVALID_PARAMETER_VALUE"},
		{"POST", base + "/mpu/create/a", strings.NewReader(`{"path":"f","num_parts":10001}`), 400, "INVALID_PARAMETER_VALUE"},
		{"POST", base + "/mpu/create/a", strings.NewReader(`{"path":"f"}`), 400, "INVALID_PARAMETER_VALUE"},
		{"POST", base + "/mpu/create/a", strings.NewReader(`{"path":"","num_parts":1}`), 400, "INVALID_PARAMETER_VALUE"},
		{"POST", base + "/mpu/create/a", strings.NewReader(`{"num_parts":1}`), 400, "INVALID_PARAMETER_VALUE"},
		{"POST", base + "/mpu/create/a", strings.NewReader(`{"path":"/tmp/..","num_parts":1}`), 400, "INVALID_PARAMETER_VALUE"},
		{"POST", base + "/mpu/complete/a", strings.NewReader(`{"path":"f","upload_id":"nope","parts":[]}`), 404, "RESOURCE_DOES_NOT_EXIST"},
		{"PUT", base + "/mpu/parts/0123/1", strings.NewReader("x"), 404, "RESOURCE_DOES_NOT_EXIST"},
		{"PUT", base + "/mpu/parts/0123/one", strings.NewReader("x"), 400, "INVALID_PARAMETER_VALUE"},
		{"PUT", base + "/mpu/parts/0123/0", strings.NewReader("x"), 400, "INVALID_PARAMETER_VALUE"},
		{"PUT", base + "/mpu/parts/0123/10001", strings.NewReader("x"), 400, "INVALID_PARAMETER_VALUE"},
		{"PUT", base + "/mpu/parts/0123/-1", strings.NewReader("x"), 400, "INVALID_PARAMETER_VALUE"},
		{"GET", base + "/presigned/a/file", nil, 501, "NOT_IMPLEMENTED"},
		// A query string net/url cannot parse whole would lose its path and
		// list the root.
		{"GET", base + "/artifacts?path=a;x", nil, 400, "INVALID_PARAMETER_VALUE"},
		{"GET", base + "/artifacts?x=1;path=a", nil, 400, "INVALID_PARAMETER_VALUE"},
		{"GET", base + "/artifacts?path=%zza", nil, 400, "INVALID_PARAMETER_VALUE"},
	}
	for _, tt := range tests {
		code, _, body := f.do(tt.method, tt.target, tt.body)
		if code != tt.status {
			t.Errorf("%s %s = %d %s, want %d", tt.method, tt.target, code, body, tt.status)
			continue
		}
		if got, _ := mlflowError(t, body); got != tt.code {
			t.Errorf("%s %s error_code = %s, want %s", tt.method, tt.target, got, tt.code)
		}
	}
	// Nothing of the failed uploads is visible; the stored file is intact.
	if code, _, body := f.do("GET", base+"/artifacts", nil); strings.TrimSpace(body) != `{"files":[{"path":"a","is_dir":true}]}` {
		t.Errorf("root listing after failed uploads = %d %s", code, body)
	}
	if code, _, body := f.do("GET", base+"/artifacts/a/file", nil); code != 200 || body != "x" {
		t.Errorf("stored file after failed uploads = %d %q", code, body)
	}
}

// wireEscape writes a payload on the request line: bytes that cannot appear
// raw are percent-encoded, everything else (including '%' escapes the payload
// already carries, and '..') goes verbatim.
func wireEscape(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c <= ' ' || c >= 0x7f || c == '#' || c == '?' {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// TestTraversalPayloads sends every payload of MLflow's advisories to every
// route, raw on the request line and in the path query parameter. Each is
// refused with 400 INVALID_PARAMETER_VALUE (a request path with "." or ".."
// segments or "//" by internal/platform/server before routing, the rest by the
// API). Files next to the store are untouched.
func TestTraversalPayloads(t *testing.T) {
	f := newFixture(t, Options{}, nil)
	parent := filepath.Dir(f.store.Dir())
	secret := filepath.Join(parent, "secret")
	if err := os.WriteFile(secret, []byte("outside"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := f.do("PUT", base+"/artifacts/keep/me", strings.NewReader("kept")); code != 200 {
		t.Fatal(code)
	}
	routes := []struct{ method, prefix, body string }{
		{"PUT", base + "/artifacts/", "pwned"},
		{"GET", base + "/artifacts/", ""},
		{"DELETE", base + "/artifacts/", ""},
		{"POST", base + "/mpu/create/", `{"path":"f","num_parts":1}`},
		{"POST", base + "/mpu/complete/", `{"path":"f","upload_id":"0","parts":[]}`},
		{"POST", base + "/mpu/abort/", `{"path":"f","upload_id":"0"}`},
		{"PUT", "/ajax-api/2.0/mlflow-artifacts/artifacts/", "pwned"},
	}
	for _, p := range artifacttest.TraversalPayloads {
		for _, rt := range routes {
			target := rt.prefix + wireEscape(p)
			code, _, body := f.raw(rt.method, target, []byte(rt.body))
			if code != 400 {
				t.Errorf("%s %q = %d %s, want 400", rt.method, target, code, body)
			} else if c, _ := mlflowError(t, body); c != "INVALID_PARAMETER_VALUE" {
				t.Errorf("%s %q: error_code %s, want INVALID_PARAMETER_VALUE", rt.method, target, c)
			}
		}
		code, _, body := f.do("GET", base+"/artifacts?path="+url.QueryEscape(p), nil)
		if code != 400 {
			t.Errorf("list ?path=%q = %d %s, want 400", p, code, body)
		} else if c, _ := mlflowError(t, body); c != "INVALID_PARAMETER_VALUE" {
			t.Errorf("list ?path=%q error_code %s", p, c)
		}
	}
	if b, err := os.ReadFile(secret); err != nil || string(b) != "outside" {
		t.Fatalf("file beside the store changed: %q, %v", b, err)
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 2 {
		t.Fatalf("entries beside the store: %v, want the store and the secret only", entries)
	}
	if code, _, body := f.do("GET", base+"/artifacts", nil); strings.TrimSpace(body) != `{"files":[{"path":"keep","is_dir":true}]}` {
		t.Fatalf("store root after the payloads = %d %s", code, body)
	}
}

type createResp struct {
	UploadID    string `json:"upload_id"`
	Credentials []struct {
		URL        string            `json:"url"`
		PartNumber int               `json:"part_number"`
		Headers    map[string]string `json:"headers"`
	} `json:"credentials"`
}

func TestMultipartUpload(t *testing.T) {
	f := newFixture(t, Options{}, nil)
	code, _, body := f.do("POST", base+"/mpu/create/1/run/artifacts/model", strings.NewReader(`{"path":"/home/me/work/model.bin","num_parts":3}`))
	if code != 200 {
		t.Fatalf("create = %d %s", code, body)
	}
	var cr createResp
	if err := json.Unmarshal([]byte(body), &cr); err != nil || cr.UploadID == "" || len(cr.Credentials) != 3 {
		t.Fatalf("create response %s: %v", body, err)
	}
	parts := []string{strings.Repeat("A", 5000), strings.Repeat("B", 5000), "end"}
	type partJSON struct {
		PartNumber int    `json:"part_number"`
		ETag       string `json:"etag"`
		URL        string `json:"url"`
	}
	var done []partJSON
	for i := 2; i >= 0; i-- { // any order, through the URLs handed out
		c := cr.Credentials[i]
		if !strings.HasPrefix(c.URL, f.srv.URL+base+"/mpu/parts/") || c.PartNumber != i+1 {
			t.Fatalf("credential %d = %+v", i, c)
		}
		req, _ := http.NewRequest("PUT", c.URL, strings.NewReader(parts[i]))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("ETag") == "" {
			t.Fatalf("part %d = %d, ETag %q", i+1, resp.StatusCode, resp.Header.Get("ETag"))
		}
		done = append([]partJSON{{c.PartNumber, resp.Header.Get("ETag"), c.URL}}, done...)
	}
	if code, _, _ := f.do("GET", base+"/artifacts/1/run/artifacts/model/model.bin", nil); code != 404 {
		t.Fatalf("object visible before complete: %d", code)
	}
	complete, _ := json.Marshal(map[string]any{"path": "/home/me/work/model.bin", "upload_id": cr.UploadID, "parts": done})
	if code, _, body := f.do("POST", base+"/mpu/complete/1/run/artifacts/model", bytes.NewReader(complete)); code != 200 {
		t.Fatalf("complete = %d %s", code, body)
	}
	if code, _, body := f.do("GET", base+"/artifacts/1/run/artifacts/model/model.bin", nil); code != 200 || body != strings.Join(parts, "") {
		t.Fatalf("after complete: %d, %d bytes", code, len(body))
	}

	// Abort: nothing becomes visible.
	_, _, body = f.do("POST", base+"/mpu/create/x", strings.NewReader(`{"path":"C:\\Users\\me\\big.bin","num_parts":1}`))
	if err := json.Unmarshal([]byte(body), &cr); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := f.do("PUT", strings.TrimPrefix(cr.Credentials[0].URL, f.srv.URL), strings.NewReader("x")); code != 200 {
		t.Fatal(code)
	}
	abort := `{"path":"C:\\Users\\me\\big.bin","upload_id":"` + cr.UploadID + `"}`
	if code, _, body := f.do("POST", base+"/mpu/abort/x", strings.NewReader(abort)); code != 200 {
		t.Fatalf("abort = %d %s", code, body)
	}
	if code, _, _ := f.do("GET", base+"/artifacts/x/big.bin", nil); code != 404 {
		t.Fatalf("aborted object visible: %d", code)
	}
}

// basicStore hides the fs store's optional capabilities.
type basicStore struct{ artifact.Store }

func TestMultipartUnsupported(t *testing.T) {
	f := newFixture(t, Options{}, func(s artifact.Store) artifact.Store { return basicStore{s} })
	code, _, body := f.do("POST", base+"/mpu/create/a", strings.NewReader(`{"path":"f","num_parts":1}`))
	if code != 501 {
		t.Fatalf("create on a store without multipart = %d %s, want 501", code, body)
	}
	// The client falls back to a plain PUT when the message starts with this.
	if _, msg := mlflowError(t, body); !strings.Contains(msg, unsupportedMultipart) {
		t.Fatalf("message %q lacks MLflow's %q", msg, unsupportedMultipart)
	}
}

func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// TestMultipartPartURLs: part URLs point where the client is to PUT the
// model's bytes, so they come from Options.PublicURL when it is set, whatever
// the request's Host says, and otherwise from a Host that is a plain
// host[:port]; a Host that would redirect the parts elsewhere (a user part,
// a path, a second host) is refused before any upload is created.
func TestMultipartPartURLs(t *testing.T) {
	tests := []struct {
		name      string
		publicURL string
		host      string
		header    map[string]string
		prefix    string
		want      string // the URL of part 1; "" when refused
	}{
		{name: "host and port", host: "127.0.0.1:8080", want: "http://127.0.0.1:8080" + base},
		{name: "name", host: "atrium.internal", want: "http://atrium.internal" + base},
		{name: "ipv6", host: "[::1]:8080", want: "http://[::1]:8080" + base},
		{name: "forwarded proto", host: "atrium.internal", header: map[string]string{"X-Forwarded-Proto": "https"}, want: "https://atrium.internal" + base},
		{name: "forwarded proto garbage ignored", host: "atrium.internal", header: map[string]string{"X-Forwarded-Proto": "javascript"}, want: "http://atrium.internal" + base},
		{name: "web UI prefix", host: "localhost:5000", prefix: "/ajax-api/2.0/mlflow-artifacts", want: "http://localhost:5000/ajax-api/2.0/mlflow-artifacts"},
		{name: "public url wins over host", publicURL: "https://atrium.example.com", host: "evil.example", want: "https://atrium.example.com" + base},
		{name: "public url wins over forwarded proto", publicURL: "https://atrium.example.com/", host: "x", header: map[string]string{"X-Forwarded-Proto": "http"}, want: "https://atrium.example.com" + base},
		{name: "public url with a path", publicURL: "https://example.com/atrium", host: "localhost", want: "https://example.com/atrium" + base},
		{name: "user info in host", host: "evil.example@127.0.0.1:8080"},
		{name: "path in host", host: "evil.example/x?"},
		{name: "fragment in host", host: "evil.example#"},
		{name: "empty host", host: ""},
		{name: "bad port", host: "localhost:http"},
		{name: "port out of range", host: "localhost:70000"},
		{name: "zone in ipv6", host: "[fe80::1%25eth0]:80"},
		{name: "bad label", host: "-evil.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := fs.Open(context.Background(), t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			h := server.New(server.Options{}, New(st, Options{PublicURL: tt.publicURL})).Handler()
			prefix := cmp.Or(tt.prefix, base)
			r := httptest.NewRequest("POST", prefix+"/mpu/create/1/run", strings.NewReader(`{"path":"m.bin","num_parts":2}`))
			r.Host = tt.host
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if tt.want == "" {
				if code, msg := mlflowError(t, rec.Body.String()); rec.Code != 400 || code != "INVALID_PARAMETER_VALUE" || !strings.Contains(msg, "server.public_url") {
					t.Fatalf("Host %q: %d %s, want 400 naming server.public_url", tt.host, rec.Code, rec.Body)
				}
				// Refused before the upload was created: nothing is staged.
				entries, _ := os.ReadDir(filepath.Join(st.Dir(), fs.TempDir))
				if len(entries) != 0 {
					t.Fatalf("a refused create left %d staged entries", len(entries))
				}
				return
			}
			var cr createResp
			if err := json.Unmarshal(rec.Body.Bytes(), &cr); err != nil || rec.Code != 200 || len(cr.Credentials) != 2 {
				t.Fatalf("create = %d %s", rec.Code, rec.Body)
			}
			want := tt.want + "/mpu/parts/" + cr.UploadID + "/1"
			if cr.Credentials[0].URL != want {
				t.Fatalf("part 1 URL = %q, want %q", cr.Credentials[0].URL, want)
			}
		})
	}
}

// TestSlowUploadIsAnsweredAsFailed: an upload whose body stops arriving is
// cut at the server's body timeout and answered with an error (it was
// answered 200 with an empty body: the handler wrote nothing once the
// request had ended, and net/http answers that with 200), and nothing of it
// is stored.
func TestSlowUploadIsAnsweredAsFailed(t *testing.T) {
	st, err := fs.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := httptest.NewServer(server.New(server.Options{Limits: server.Limits{BodyTimeout: 100 * time.Millisecond}}, New(st, Options{})).Handler())
	t.Cleanup(srv.Close)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// One byte of the 100 announced, then nothing: the read deadline passes.
	fmt.Fprintf(conn, "PUT %s/artifacts/slow.txt HTTP/1.1\r\nHost: %s\r\nContent-Length: 100\r\n\r\nx", base, srv.Listener.Addr())
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute)) // bounds a hung test only
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("a cut upload was answered 200 %q", b)
		}
	} // else: the server closed the connection without an answer, which says "failed" too.
	if _, err := st.Get(context.Background(), "slow.txt"); !errors.Is(err, artifact.ErrNotFound) {
		t.Errorf("the cut upload is stored: Get = %v", err)
	}
}
