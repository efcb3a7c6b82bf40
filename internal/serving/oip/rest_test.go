package oip_test

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/serving/oip"
	"github.com/atrium-ml/atrium/internal/serving/oip/oiptest"
)

// newTestServer serves a testBackend's REST endpoints through the real
// server (request ids, limits, routing), logging into logs.
func newTestServer(t *testing.T, b *oiptest.Backend, logs *bytes.Buffer) *httptest.Server {
	t.Helper()
	log := slog.New(slog.NewTextHandler(logs, nil))
	srv := server.New(server.Options{Logger: log}, apiFunc(oip.Routes(b, oip.Options{Logger: log, ServerVersion: "1.2.3"})))
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts
}

type apiFunc []server.Route

func (a apiFunc) Routes() []server.Route { return a }

func do(t *testing.T, ts *httptest.Server, method, path string, body []byte, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, out
}

// TestRESTEndpoints: health, metadata, readiness and errors, each answer's
// status and body.
func TestRESTEndpoints(t *testing.T) {
	var logs bytes.Buffer
	b := &oiptest.Backend{}
	ts := newTestServer(t, b, &logs)
	for _, tc := range []struct {
		method, path, body string
		code               int
		want               string // the JSON answer, compact
	}{
		{"GET", "/v2/health/live", "", 200, `{"live":true}`},
		{"GET", "/v2/health/ready", "", 200, `{"ready":true}`},
		{"GET", "/v2", "", 200, `{"extensions":["binary_tensor_data"],"name":"atrium","version":"1.2.3"}`},
		{"GET", "/v2/models/sum", "", 200, `{"name":"sum","versions":["1","2"],"platform":"atrium_gbdt","inputs":[{"name":"input","datatype":"FP32","shape":[-1,3]}],"outputs":[{"name":"predict","datatype":"FP64","shape":[-1]}]}`},
		{"GET", "/v2/models/sum/versions/1", "", 200, `{"name":"sum","versions":["1","2"],"platform":"atrium_gbdt","inputs":[{"name":"input","datatype":"FP32","shape":[-1,3]}],"outputs":[{"name":"predict","datatype":"FP64","shape":[-1]}]}`},
		{"GET", "/v2/models/sum/versions/9", "", 404, `{"error":"model not found: sum version 9"}`},
		{"GET", "/v2/models/nope", "", 404, `{"error":"model not found: no registered model \"nope\""}`},
		{"GET", "/v2/models/sum/ready", "", 200, `{"name":"sum","ready":true}`},
		{"GET", "/v2/models/sum/versions/1/ready", "", 200, `{"name":"sum","ready":true}`},
		{"GET", "/v2/models/loading/ready", "", 503, `{"name":"loading","ready":false}`},
		{"GET", "/v2/models/nope/ready", "", 404, `{"error":"model not found: no registered model \"nope\""}`},
		// A version that cannot load is not ready: the answer says so, and why.
		{"GET", "/v2/models/corrupt/ready", "", 503, `{"name":"corrupt","ready":false,"error":"model cannot be served: corrupt version 1: model.lgb is truncated"}`},
		{"GET", "/v2/models/corrupt/versions/1/ready", "", 503, `{"name":"corrupt","ready":false,"error":"model cannot be served: corrupt version 1: model.lgb is truncated"}`},
		{"POST", "/v2/models/sum/infer", `{"id":"a","inputs":[{"name":"x","shape":[2,2],"datatype":"FP64","data":[[1,2],[3,NaN]]}]}`, 200,
			`{"model_name":"sum","model_version":"2","id":"a","outputs":[{"name":"predict","datatype":"FP64","shape":[2],"data":[6,6]}]}`},
		{"POST", "/v2/models/sum/versions/1/infer", `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1.5,2]}]}`, 200,
			`{"model_name":"sum","model_version":"1","outputs":[{"name":"predict","datatype":"FP64","shape":[1],"data":[3.5]}]}`},
		{"POST", "/v2/models/sum/infer", `{"inputs":[{"name":"x","shape":[1,2],"datatype":"INT64","data":[1,2]}]}`, 400,
			`{"error":"invalid inference request: inputs[0] \"x\": datatype INT64, want FP32 or FP64"}`},
		{"POST", "/v2/models/sum/infer", `{"inputs":[{"name":"rent","shape":[200,2],"datatype":"FP32","data":[1]}]}`, 400,
			`{"error":"invalid inference request: inputs[0] \"rent\": shape [200,2] has 400 elements, data has fewer"}`},
		{"POST", "/v2/models/nope/infer", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, 404,
			`{"error":"model not found: no registered model \"nope\""}`},
		{"POST", "/v2/models/loading/infer", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, 503,
			`{"error":"model not ready: loading is loading"}`},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp, body := do(t, ts, tc.method, tc.path, []byte(tc.body), nil)
			var got, want any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("answer %s: %v", body, err)
			}
			if err := json.Unmarshal([]byte(tc.want), &want); err != nil {
				t.Fatal(err)
			}
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			if resp.StatusCode != tc.code || string(g) != string(w) {
				t.Errorf("%d %s\nwant %d %s", resp.StatusCode, body, tc.code, tc.want)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}

	t.Run("internal error", func(t *testing.T) {
		resp, body := do(t, ts, "POST", "/v2/models/broken/infer", []byte(`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`), nil)
		id := resp.Header.Get(server.RequestIDHeader)
		if resp.StatusCode != 500 || strings.Contains(string(body), "secret") || !strings.Contains(string(body), id) {
			t.Errorf("%d %s (request id %s)", resp.StatusCode, body, id)
		}
		if !strings.Contains(logs.String(), "secret") || !strings.Contains(logs.String(), id) {
			t.Errorf("the log lacks the cause or the request id:\n%s", logs.String())
		}
	})
	// A model loading is worth retrying (Retry-After), one that can never
	// load is not: clients honouring Retry-After would retry it forever.
	t.Run("retry after", func(t *testing.T) {
		for _, tc := range []struct {
			model, retry, want string
		}{
			{"loading", "1", `{"error":"model not ready: loading is loading"}`},
			{"corrupt", "", `{"error":"model cannot be served: corrupt version 1: model.lgb is truncated"}`},
		} {
			resp, body := do(t, ts, "POST", "/v2/models/"+tc.model+"/infer", []byte(`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`), nil)
			if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != tc.retry || strings.TrimSpace(string(body)) != tc.want {
				t.Errorf("%s: %d Retry-After %q %s, want 503 Retry-After %q %s", tc.model, resp.StatusCode, resp.Header.Get("Retry-After"), body, tc.retry, tc.want)
			}
		}
	})
	t.Run("server not ready", func(t *testing.T) {
		b.NotReady.Store(true)
		defer b.NotReady.Store(false)
		resp, body := do(t, ts, "GET", "/v2/health/ready", nil, nil)
		if resp.StatusCode != 503 || string(body) != "{\"ready\":false}\n" {
			t.Errorf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("bad header length", func(t *testing.T) {
		resp, body := do(t, ts, "POST", "/v2/models/sum/infer", []byte(`{}`), map[string]string{oip.HeaderContentLength: "-3"})
		if resp.StatusCode != 400 || !strings.Contains(string(body), `header Inference-Header-Content-Length: want the JSON header's length in bytes, got \"-3\"`) {
			t.Errorf("%d %s", resp.StatusCode, body)
		}
	})
}

// TestRESTBinary: a binary request (as tritonclient sends it) and a binary
// answer, read back the way tritonclient reads one.
func TestRESTBinary(t *testing.T) {
	var logs bytes.Buffer
	ts := newTestServer(t, &oiptest.Backend{}, &logs)
	x := []float32{1, 2, 3, float32(math.NaN()), 5, 6}
	var raw []byte
	for _, v := range x {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
	}
	for _, tc := range []struct {
		name       string
		params     string
		wantBinary bool
	}{
		{"binary_data_output", `"parameters":{"binary_data_output":true}`, true},
		{"per output binary", `"outputs":[{"name":"predict","parameters":{"binary_data":true}}]`, true},
		{"json output", `"outputs":[{"name":"predict","parameters":{"binary_data":false}}]`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := `{"id":"r1","inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","parameters":{"binary_data_size":24}}],` + tc.params + `}`
			resp, body := do(t, ts, "POST", "/v2/models/sum/infer", append([]byte(doc), raw...),
				map[string]string{oip.HeaderContentLength: strconv.Itoa(len(doc)), "Content-Type": "application/octet-stream"})
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			hl := resp.Header.Get(oip.HeaderContentLength)
			if (hl != "") != tc.wantBinary {
				t.Fatalf("%s %q, want binary %v: %s", oip.HeaderContentLength, hl, tc.wantBinary, body)
			}
			var pred []float64
			if tc.wantBinary {
				if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
					t.Errorf("Content-Type %q", ct)
				}
				n, _ := strconv.Atoi(hl)
				var head struct {
					ID      string `json:"id"`
					Outputs []struct {
						Parameters struct {
							Size int `json:"binary_data_size"`
						} `json:"parameters"`
					} `json:"outputs"`
				}
				if err := json.Unmarshal(body[:n], &head); err != nil {
					t.Fatal(err)
				}
				if head.ID != "r1" || head.Outputs[0].Parameters.Size != 16 || len(body) != n+16 {
					t.Fatalf("head %+v, %d bytes after %d", head, len(body)-n, n)
				}
				for i := range 2 {
					pred = append(pred, math.Float64frombits(binary.LittleEndian.Uint64(body[n+8*i:])))
				}
			} else {
				var out struct{ Outputs []struct{ Data []float64 } }
				if err := json.Unmarshal(body, &out); err != nil {
					t.Fatal(err)
				}
				pred = out.Outputs[0].Data
			}
			if len(pred) != 2 || pred[0] != 12 || pred[1] != 22 {
				t.Errorf("predict %v, want [12 22] (version 2: twice the sums, NaN missing)", pred)
			}
		})
	}
}

// TestRESTCompressedBody: gzip and deflate bodies (tritonclient's
// request_compression_algorithm) are decompressed, the header length
// counting the decompressed JSON; other encodings and broken data are 400.
func TestRESTCompressedBody(t *testing.T) {
	var logs bytes.Buffer
	ts := newTestServer(t, &oiptest.Backend{}, &logs)
	doc := `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","parameters":{"binary_data_size":8}}],"outputs":[{"name":"predict","parameters":{"binary_data":false}}]}`
	body := append([]byte(doc), fp32Raw(1.5, 2)...)
	var gz, zl bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(body)
	gw.Close()
	zw := zlib.NewWriter(&zl)
	zw.Write(body)
	zw.Close()
	for _, tc := range []struct {
		name, encoding string
		body           []byte
		code           int
		want           string
	}{
		{"gzip", "gzip", gz.Bytes(), 200, `"data":[7]`},
		{"deflate", "deflate", zl.Bytes(), 200, `"data":[7]`},
		{"not gzip", "gzip", body, 400, "Content-Encoding gzip: the body is not gzip data"},
		{"cut gzip", "gzip", gz.Bytes()[:gz.Len()/2], 400, "Content-Encoding gzip: the compressed body is cut or corrupt: unexpected EOF"},
		{"brotli", "br", body, 400, `Content-Encoding \"br\": want gzip, deflate or none`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, out := do(t, ts, "POST", "/v2/models/sum/infer", tc.body,
				map[string]string{oip.HeaderContentLength: strconv.Itoa(len(doc)), "Content-Encoding": tc.encoding})
			if resp.StatusCode != tc.code || !strings.Contains(string(out), tc.want) {
				t.Errorf("%d %s, want %d containing %s", resp.StatusCode, out, tc.code, tc.want)
			}
		})
	}
}
