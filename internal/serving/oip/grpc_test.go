package oip_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/atrium-ml/atrium/internal/platform/auth"
	"github.com/atrium-ml/atrium/internal/platform/auth/authtest"
	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/serving/oip"
	"github.com/atrium-ml/atrium/internal/serving/oip/oiptest"
	"github.com/atrium-ml/atrium/internal/serving/oip/pb"
)

// newGRPCClient serves b's gRPC service on an in-memory listener and
// returns a real grpc-go client of it.
func newGRPCClient(t *testing.T, b oip.Backend, opts oip.GRPCOptions) pb.GRPCInferenceServiceClient {
	t.Helper()
	ln := bufconn.Listen(1 << 20)
	srv := oip.NewGRPCServer(b, opts)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pb.NewGRPCInferenceServiceClient(conn)
}

func fp32Raw(vals ...float32) []byte {
	var b []byte
	for _, v := range vals {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func TestGRPC(t *testing.T) {
	var logs bytes.Buffer
	c := newGRPCClient(t, &oiptest.Backend{}, oip.GRPCOptions{Options: oip.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), ServerVersion: "1.2.3"}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if r, err := c.ServerLive(ctx, &pb.ServerLiveRequest{}); err != nil || !r.Live {
		t.Errorf("ServerLive %v %v", r, err)
	}
	if r, err := c.ServerReady(ctx, &pb.ServerReadyRequest{}); err != nil || !r.Ready {
		t.Errorf("ServerReady %v %v", r, err)
	}
	if r, err := c.ServerMetadata(ctx, &pb.ServerMetadataRequest{}); err != nil || r.Name != "atrium" || r.Version != "1.2.3" || len(r.Extensions) != 1 {
		t.Errorf("ServerMetadata %v %v", r, err)
	}
	if r, err := c.ModelReady(ctx, &pb.ModelReadyRequest{Name: "sum", Version: "1"}); err != nil || !r.Ready {
		t.Errorf("ModelReady %v %v", r, err)
	}
	if r, err := c.ModelReady(ctx, &pb.ModelReadyRequest{Name: "loading"}); err != nil || r.Ready {
		t.Errorf("ModelReady(loading) %v %v", r, err)
	}
	// A model that exists but cannot be served is not ready, as Triton
	// answers (tritonclient's is_model_ready returns False, not raising);
	// an unknown one is NOT_FOUND.
	for _, v := range []string{"", "1"} {
		if r, err := c.ModelReady(ctx, &pb.ModelReadyRequest{Name: "corrupt", Version: v}); err != nil || r.Ready {
			t.Errorf("ModelReady(corrupt, %q) %v %v, want ready false", v, r, err)
		}
	}
	if _, err := c.ModelReady(ctx, &pb.ModelReadyRequest{Name: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("ModelReady(nope) %v, want NOT_FOUND", err)
	}
	if r, err := c.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "sum"}); err != nil || r.Platform != "atrium_gbdt" || r.Inputs[0].Shape[1] != 3 {
		t.Errorf("ModelMetadata %v %v", r, err)
	}

	t.Run("raw", func(t *testing.T) {
		r, err := c.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "sum", Id: "r1",
			Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: oip.FP32, Shape: []int64{2, 2}}},
			RawInputContents: [][]byte{fp32Raw(1, 2, float32(math.NaN()), 4)}})
		if err != nil {
			t.Fatal(err)
		}
		if r.ModelVersion != "2" || r.Id != "r1" || len(r.RawOutputContents) != 1 || len(r.Outputs) != 1 || r.Outputs[0].Contents != nil {
			t.Fatalf("answer %v", r)
		}
		raw := r.RawOutputContents[0]
		if got := []float64{math.Float64frombits(binary.LittleEndian.Uint64(raw)), math.Float64frombits(binary.LittleEndian.Uint64(raw[8:]))}; got[0] != 6 || got[1] != 8 {
			t.Errorf("predict %v, want [6 8]", got)
		}
	})
	t.Run("typed contents", func(t *testing.T) {
		r, err := c.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "sum", ModelVersion: "1",
			Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: oip.FP64, Shape: []int64{1, 3},
				Contents: &pb.InferTensorContents{Fp64Contents: []float64{1, 2, 3.5}}}}})
		if err != nil {
			t.Fatal(err)
		}
		if r.ModelVersion != "1" || len(r.RawOutputContents) != 0 || r.Outputs[0].Contents.Fp64Contents[0] != 6.5 {
			t.Errorf("answer %v", r)
		}
	})
	t.Run("echo every datatype raw", func(t *testing.T) {
		le32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
		in := []struct {
			name, datatype string
			shape          []int64
			raw            []byte
		}{
			{"b", oip.BOOL, []int64{2}, []byte{1, 0}},
			{"i", oip.INT32, []int64{1}, le32(uint32(0xfffffffb))},
			{"l", oip.INT64, []int64{1}, binary.LittleEndian.AppendUint64(nil, 1<<40)},
			{"s", oip.BYTES, []int64{2}, append(append(le32(5), "north"...), le32(0)...)},
		}
		req := &pb.ModelInferRequest{ModelName: "echo"}
		for _, x := range in {
			req.Inputs = append(req.Inputs, &pb.ModelInferRequest_InferInputTensor{Name: x.name, Datatype: x.datatype, Shape: x.shape})
			req.RawInputContents = append(req.RawInputContents, x.raw)
		}
		r, err := c.ModelInfer(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range in {
			if !bytes.Equal(r.RawOutputContents[i], x.raw) {
				t.Errorf("%s: %x, want %x", x.name, r.RawOutputContents[i], x.raw)
			}
		}
	})

	for _, tc := range []struct {
		name string
		req  *pb.ModelInferRequest
		code codes.Code
		msg  string
	}{
		{"unknown model", &pb.ModelInferRequest{ModelName: "nope", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: oip.FP32, Shape: []int64{1}}}, RawInputContents: [][]byte{fp32Raw(1)}},
			codes.NotFound, `no registered model "nope"`},
		{"not ready", &pb.ModelInferRequest{ModelName: "loading", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: oip.FP32, Shape: []int64{1}}}, RawInputContents: [][]byte{fp32Raw(1)}},
			codes.Unavailable, "loading is loading"},
		{"too many BYTES", &pb.ModelInferRequest{ModelName: "echo", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "s", Datatype: oip.BYTES, Shape: []int64{oip.MaxBytesElements + 1}}},
			RawInputContents: [][]byte{make([]byte, 4*(oip.MaxBytesElements+1))}},
			codes.InvalidArgument, "the BYTES inputs have more than 1048576 elements in all"},
		{"cannot load", &pb.ModelInferRequest{ModelName: "corrupt", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: oip.FP32, Shape: []int64{1}}}, RawInputContents: [][]byte{fp32Raw(1)}},
			codes.FailedPrecondition, "model cannot be served: corrupt version 1: model.lgb is truncated"},
		{"raw size mismatch", &pb.ModelInferRequest{ModelName: "sum", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "rent", Datatype: oip.FP32, Shape: []int64{2, 2}}}, RawInputContents: [][]byte{fp32Raw(1, 2, 3)}},
			codes.InvalidArgument, `inputs[0] "rent": shape [2,2] of FP32 has 4 elements (16 bytes), raw data has 12 bytes`},
		{"contents count", &pb.ModelInferRequest{ModelName: "sum", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: oip.FP64, Shape: []int64{2}, Contents: &pb.InferTensorContents{Fp64Contents: []float64{1}}}}},
			codes.InvalidArgument, `inputs[0] "x": shape [2] has 2 elements, contents has 1 FP64 values`},
		{"two contents fields", &pb.ModelInferRequest{ModelName: "sum", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: oip.FP64, Shape: []int64{2},
			Contents: &pb.InferTensorContents{Fp64Contents: []float64{1, 2}, Fp32Contents: []float32{3, 4}}}}},
			codes.InvalidArgument, `inputs[0] "x": contents.fp32_contents holds 2 values for a FP64 tensor, whose values go in contents.fp64_contents only`},
		{"fp16", &pb.ModelInferRequest{ModelName: "sum", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP16", Shape: []int64{1}}}, RawInputContents: [][]byte{{0, 0}}},
			codes.InvalidArgument, "datatype FP16 is not supported"},
		{"raw count", &pb.ModelInferRequest{ModelName: "sum", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: oip.FP32, Shape: []int64{1}}, {Name: "y", Datatype: oip.FP32, Shape: []int64{1}}}, RawInputContents: [][]byte{fp32Raw(1)}},
			codes.InvalidArgument, "raw_input_contents has 1 entries, want one per input (2)"},
		{"no inputs", &pb.ModelInferRequest{ModelName: "sum"}, codes.InvalidArgument, "want at least one input"},
		{"no model name", &pb.ModelInferRequest{Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: oip.FP32, Shape: []int64{1}}}, RawInputContents: [][]byte{fp32Raw(1)}},
			codes.InvalidArgument, "model_name missing"},
		{"routing key not a string", &pb.ModelInferRequest{ModelName: "sum", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: oip.FP32, Shape: []int64{1, 1}}}, RawInputContents: [][]byte{fp32Raw(1)},
			Parameters: map[string]*pb.InferParameter{"routing_key": {ParameterChoice: &pb.InferParameter_Int64Param{Int64Param: 7}}}},
			codes.InvalidArgument, "parameters.routing_key: want a string (string_param), got an int64_param"},
		{"routing key too long", &pb.ModelInferRequest{ModelName: "sum", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: oip.FP32, Shape: []int64{1, 1}}}, RawInputContents: [][]byte{fp32Raw(1)},
			Parameters: map[string]*pb.InferParameter{"routing_key": {ParameterChoice: &pb.InferParameter_StringParam{StringParam: strings.Repeat("u", 257)}}}},
			codes.InvalidArgument, "parameters.routing_key: want at most 256 bytes, got 257"},
		{"internal", &pb.ModelInferRequest{ModelName: "broken", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: oip.FP32, Shape: []int64{1}}}, RawInputContents: [][]byte{fp32Raw(1)}},
			codes.Internal, "internal error (request id "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.ModelInfer(ctx, tc.req)
			st := status.Convert(err)
			if st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) || strings.Contains(st.Message(), "secret") {
				t.Errorf("%s %q, want %s containing %q", st.Code(), st.Message(), tc.code, tc.msg)
			}
		})
	}
	if !strings.Contains(logs.String(), "secret") {
		t.Errorf("the internal error's cause is not logged:\n%s", logs.String())
	}
}

// TestGRPCAuth: with the real guard requiring authentication, a call
// without credentials is refused, one with a reader's token is served, and
// the health RPCs stay open.
// TestGRPCMetrics: calls are counted by method and status code.
func TestGRPCMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := newGRPCClient(t, &oiptest.Backend{}, oip.GRPCOptions{Registerer: reg})
	ctx := context.Background()
	req := &pb.ModelInferRequest{ModelName: "sum", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: oip.FP32, Shape: []int64{1, 1}}},
		RawInputContents: [][]byte{fp32Raw(1)}}
	for range 2 {
		if _, err := c.ModelInfer(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	req.ModelName = "nope"
	if _, err := c.ModelInfer(ctx, req); status.Code(err) != codes.NotFound {
		t.Fatal(err)
	}
	want := `
# HELP atrium_grpc_requests_total Open Inference Protocol gRPC calls by method and status code.
# TYPE atrium_grpc_requests_total counter
atrium_grpc_requests_total{code="NotFound",method="ModelInfer"} 1
atrium_grpc_requests_total{code="OK",method="ModelInfer"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "atrium_grpc_requests_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, "atrium_grpc_request_duration_seconds"); n != 1 {
		t.Errorf("%d latency series, want 1 (ModelInfer)", n)
	}
}

func TestGRPCAuth(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	guard, token := authtest.Guard(t, auth.Reader)
	c := newGRPCClient(t, &oiptest.Backend{}, oip.GRPCOptions{Authorize: guard.GRPCAuthorizer(server.Infer)})
	req := &pb.ModelInferRequest{ModelName: "sum", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: oip.FP32, Shape: []int64{1, 1}}},
		RawInputContents: [][]byte{fp32Raw(1)}}

	if _, err := c.ModelInfer(ctx, req); status.Code(err) != codes.Unauthenticated {
		t.Errorf("no credential: %v, want UNAUTHENTICATED", err)
	}
	bad := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer atr_forged")
	if _, err := c.ModelInfer(bad, req); status.Code(err) != codes.Unauthenticated {
		t.Errorf("forged token: %v, want UNAUTHENTICATED", err)
	}
	if _, err := c.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "sum"}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("metadata without credential: %v, want UNAUTHENTICATED", err)
	}
	good := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	if r, err := c.ModelInfer(good, req); err != nil || r.ModelVersion != "2" {
		t.Errorf("reader token: %v %v", r, err)
	}
	if r, err := c.ServerLive(ctx, &pb.ServerLiveRequest{}); err != nil || !r.Live {
		t.Errorf("ServerLive without credential: %v %v", r, err)
	}
}

// TestServeGRPC: ServeGRPC serves until its context ends, then returns nil
// and the port is closed.
func TestServeGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- oip.ServeGRPC(ctx, oip.NewGRPCServer(&oiptest.Backend{}, oip.GRPCOptions{}), ln, 5*time.Second)
	}()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	callCtx, callCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer callCancel()
	if r, err := pb.NewGRPCInferenceServiceClient(conn).ServerLive(callCtx, &pb.ServerLiveRequest{}); err != nil || !r.Live {
		t.Fatalf("ServerLive %v %v", r, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("ServeGRPC returned %v after its context ended", err)
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Error("the listener is still open")
	}
}

// TestGRPCLimits: a call gets the server's deadline when the client sets
// none, and past MaxConcurrentCalls a call is refused at once while the
// health calls still answer.
func TestGRPCLimits(t *testing.T) {
	b := &oiptest.Backend{Waiting: make(chan struct{}, 1)}
	c := newGRPCClient(t, b, oip.GRPCOptions{CallTimeout: 100 * time.Millisecond, MaxConcurrentCalls: 1})
	req := &pb.ModelInferRequest{ModelName: "wait", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: oip.FP32, Shape: []int64{1}}},
		RawInputContents: [][]byte{fp32Raw(1)}}

	// No client deadline: the server's ends the call, answered UNAVAILABLE.
	_, err := c.ModelInfer(context.Background(), req)
	if st := status.Convert(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "did not answer before the call's deadline") {
		t.Errorf("call past the server's deadline: %v", err)
	}
	<-b.Waiting

	// One call in flight (waiting until its client cancels it) fills the
	// limit of 1.
	c2 := newGRPCClient(t, b, oip.GRPCOptions{CallTimeout: time.Hour, MaxConcurrentCalls: 1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := c2.ModelInfer(ctx, req); done <- err }()
	<-b.Waiting
	_, err = c2.ModelInfer(context.Background(), req)
	if st := status.Convert(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "limit of 1 concurrent calls") {
		t.Errorf("call past the limit: %v", err)
	}
	if r, err := c2.ServerLive(context.Background(), &pb.ServerLiveRequest{}); err != nil || !r.Live {
		t.Errorf("ServerLive at the limit: %v %v", r, err)
	}
	cancel()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Errorf("cancelled call: %v", err)
	}
}

// panicking is a backend whose ModelReady panics for model "panic".
type panicking struct{ oiptest.Backend }

func (p *panicking) ModelReady(ctx context.Context, name, version string) (bool, error) {
	if name == "panic" {
		panic("index out of range in a backend")
	}
	return p.Backend.ModelReady(ctx, name, version)
}

// A panic in a handler answers INTERNAL with the request id, logs the
// panic and its stack under that id, and the server goes on serving.
func TestGRPCRecoversPanics(t *testing.T) {
	var logs bytes.Buffer
	c := newGRPCClient(t, &panicking{}, oip.GRPCOptions{Options: oip.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "x-request-id", "req-panic-1")
	_, err := c.ModelReady(ctx, &pb.ModelReadyRequest{Name: "panic"})
	if st, _ := status.FromError(err); st.Code() != codes.Internal || !strings.Contains(st.Message(), "request id req-panic-1") ||
		strings.Contains(st.Message(), "index out of range") {
		t.Errorf("ModelReady(panic): %v, want INTERNAL naming the request id and not the panic", err)
	}
	if l := logs.String(); !strings.Contains(l, "request_id=req-panic-1") || !strings.Contains(l, "index out of range in a backend") || !strings.Contains(l, "stack=") {
		t.Errorf("log lacks the panic, its stack or the request id:\n%s", l)
	}
	if r, err := c.ModelReady(ctx, &pb.ModelReadyRequest{Name: "sum"}); err != nil || !r.Ready {
		t.Errorf("after the panic, ModelReady(sum) %v %v", r, err)
	}
}

// idRecorder is a backend that keeps the request id its calls' contexts
// carry (server.RequestID, what the serving backend logs predictions under).
type idRecorder struct {
	oiptest.Backend
	seen string
}

func (r *idRecorder) ModelReady(ctx context.Context, name, version string) (bool, error) {
	r.seen = server.RequestID(ctx)
	return r.Backend.ModelReady(ctx, name, version)
}

// A call's request id (the caller's x-request-id when usable, else one the
// server makes) is the one the backend reads with server.RequestID, and the
// one echoed; a replaced id is logged at DEBUG, as the HTTP server does.
func TestGRPCRequestIDReachesTheBackend(t *testing.T) {
	for _, tc := range []struct {
		name, sent string
		kept       bool
	}{
		{"usable", "grpc-hdr-1", true},
		{"none", "", false},
		{"too long", strings.Repeat("g", 300), false},
		{"space", "has space", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			b := &idRecorder{}
			c := newGRPCClient(t, b, oip.GRPCOptions{Options: oip.Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if tc.sent != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "x-request-id", tc.sent)
			}
			var md metadata.MD
			if _, err := c.ModelReady(ctx, &pb.ModelReadyRequest{Name: "sum"}, grpc.Header(&md)); err != nil {
				t.Fatal(err)
			}
			echoed := md.Get("x-request-id")
			if len(echoed) != 1 || b.seen != echoed[0] {
				t.Fatalf("the backend read request id %q, the call echoed %q", b.seen, echoed)
			}
			if tc.kept != (b.seen == tc.sent) || b.seen == "" || len(b.seen) > server.MaxRequestIDLen {
				t.Fatalf("sent %.40q, the backend read %.40q", tc.sent, b.seen)
			}
			replaced := strings.Contains(logs.String(), "request id replaced")
			if want := tc.sent != "" && !tc.kept; replaced != want || want && !strings.Contains(logs.String(), "transport=grpc") {
				t.Fatalf("sent %.40q: log %q", tc.sent, logs.String())
			}
		})
	}
}
