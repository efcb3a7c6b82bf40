package serving

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"

	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/serving/oip"
	"github.com/atrium-ml/atrium/internal/serving/oip/pb"
	"github.com/atrium-ml/atrium/internal/serving/predlog"
)

// inferTransports serves the OIP of a service with a prediction log over
// the real HTTP server and over gRPC (in memory), as atrium serve does.
type inferTransports struct {
	svc    *Service
	rest   *httptest.Server
	grpc   pb.GRPCInferenceServiceClient
	log    *predlog.Writer
	logDir string
	v1, v2 string
}

// newInferTransports registers two versions of "m", champion v1 and
// challenger v2 at a canary weight of 0.5, and waits for the canary.
func newInferTransports(t *testing.T) *inferTransports {
	t.Helper()
	ctx := context.Background()
	w := newWorld(t)
	it := &inferTransports{logDir: t.TempDir()}
	it.v1, it.v2 = twoModels(t, w, "m")
	w.alias(t, "m", "champion", it.v1)
	w.alias(t, "m", "challenger", it.v2)
	lw, err := predlog.Open(ctx, predlog.Options{Dir: it.logDir, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lw.Close(context.Background()) })
	it.log = lw
	it.svc = newService(t, w, Options{PredictionLog: lw, Models: []ModelConfig{{Name: "m", Canary: &Canary{Alias: "challenger", Weight: 0.5}}}})
	if _, err := it.svc.Resolve(ctx, "m", "", "warm-up"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the canary load", func() bool {
		st, _ := it.svc.Status("m")
		return len(st) == 2 && st[1].Role == "canary" && st[1].Serving == it.v2
	})
	b := NewBackend(it.svc)
	quiet := slog.New(slog.DiscardHandler)
	it.rest = httptest.NewServer(server.New(server.Options{Logger: quiet}, oip.NewAPI(b, oip.Options{Logger: quiet})).Handler())
	t.Cleanup(it.rest.Close)
	ln := bufconn.Listen(1 << 20)
	gs := oip.NewGRPCServer(b, oip.GRPCOptions{Options: oip.Options{Logger: quiet}})
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	it.grpc = pb.NewGRPCInferenceServiceClient(conn)
	return it
}

// inferRow is one row of the models' four features (gRPC sends it typed).
var inferRow = []float64{0.5, 1.5, 2, 1}

// restInfer posts an infer request of one row with the body id bodyID and
// the header X-Request-Id header ("" leaves either out); it returns the
// answer's body id, version and X-Request-Id header.
func (it *inferTransports) restInfer(t *testing.T, bodyID, header string) (id, version, echoed string) {
	t.Helper()
	body := `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP64","data":[0.5,1.5,2,1]}]}`
	if bodyID != "" {
		body = `{"id":"` + bodyID + `",` + body[1:]
	}
	h := map[string]string{}
	if header != "" {
		h[server.RequestIDHeader] = header
	}
	var got struct {
		ID           string `json:"id"`
		ModelVersion string `json:"model_version"`
	}
	code, resp, raw := post(t, it.rest, "/v2/models/m/infer", body, h, &got)
	if code != 200 {
		t.Fatalf("infer: %d %s", code, raw)
	}
	return got.ID, got.ModelVersion, resp.Get(server.RequestIDHeader)
}

// grpcInfer is restInfer over gRPC (metadata x-request-id).
func (it *inferTransports) grpcInfer(t *testing.T, bodyID, header string) (id, version, echoed string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if header != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "x-request-id", header)
	}
	var md metadata.MD
	r, err := it.grpc.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "m", Id: bodyID,
		Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: oip.FP64, Shape: []int64{1, 4},
			Contents: &pb.InferTensorContents{Fp64Contents: inferRow}}}}, grpc.Header(&md))
	if err != nil {
		t.Fatalf("ModelInfer: %v", err)
	}
	if v := md.Get("x-request-id"); len(v) == 1 {
		echoed = v[0]
	}
	return r.Id, r.ModelVersion, echoed
}

// The prediction log's request id of an OIP infer request is the
// transport's (X-Request-Id, gRPC x-request-id: the client's when usable,
// else the server's, as echoed), never the body's id, which is only echoed
// in the answer: the log joins to the server's logs, and an id of any
// length in the body cannot reach the log.
func TestInferLogsTheTransportRequestID(t *testing.T) {
	it := newInferTransports(t)
	long := strings.Repeat("b", 5000)
	type call func(t *testing.T, bodyID, header string) (id, version, echoed string)
	for _, tc := range []struct {
		name, bodyID, header string
		infer                call
		// want is the logged id; "" wants the id the server made and echoed.
		want string
	}{
		{"rest header and body id", "body-456", "hdr-123", it.restInfer, "hdr-123"},
		{"rest header only", "", "hdr-124", it.restInfer, "hdr-124"},
		{"rest long body id", long, "", it.restInfer, ""},
		{"rest unusable header", "body-457", "has space", it.restInfer, ""},
		{"grpc header only", "", "grpc-hdr-1", it.grpcInfer, "grpc-hdr-1"},
		{"grpc header and body id", "grpc-body", "grpc-hdr-2", it.grpcInfer, "grpc-hdr-2"},
		{"grpc no header", "grpc-body-3", "", it.grpcInfer, ""},
		{"grpc long header", "", strings.Repeat("g", 300), it.grpcInfer, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, _, echoed := tc.infer(t, tc.bodyID, tc.header)
			if id != tc.bodyID {
				t.Errorf("answer's id %.40q, want the body's %.40q", id, tc.bodyID)
			}
			want := tc.want
			if want == "" {
				if echoed == "" || echoed == tc.header || echoed == tc.bodyID || len(echoed) > server.MaxRequestIDLen {
					t.Fatalf("echoed request id %.40q: want one the server made", echoed)
				}
				want = echoed
			} else if echoed != want {
				t.Errorf("echoed request id %q, want %q", echoed, want)
			}
			if err := it.log.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			rows, err := predlog.Read(context.Background(), it.logDir, "m", time.Time{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, r := range rows {
				if r.RequestID == want {
					found = true
				}
				if len(r.RequestID) > server.MaxRequestIDLen || r.RequestID == tc.bodyID {
					t.Errorf("logged request id %.40q (%d bytes): the body's id, or unbounded", r.RequestID, len(r.RequestID))
				}
			}
			if !found {
				t.Errorf("no logged row of request id %q", want)
			}
		})
	}
}

// The canary split of an infer request follows its routing key, else its
// request id (X-Request-Id), as /v1 predict's does: requests of one
// X-Request-Id go to one version, whatever their body ids.
func TestInferCanaryFollowsTheRequestID(t *testing.T) {
	it := newInferTransports(t)
	for _, header := range []string{"sticky-1", "sticky-2", "sticky-3"} {
		d, err := it.svc.Resolve(context.Background(), "m", "", header)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			if _, v, _ := it.restInfer(t, fmt.Sprintf("body-%s-%d", header, i), header); v != d.Version {
				t.Fatalf("X-Request-Id %s, body id %d: version %s, want %s (the split of the request id)", header, i, v, d.Version)
			}
			if _, v, _ := it.grpcInfer(t, fmt.Sprintf("gbody-%s-%d", header, i), header); v != d.Version {
				t.Fatalf("gRPC x-request-id %s, body id %d: version %s, want %s", header, i, v, d.Version)
			}
		}
	}
}
