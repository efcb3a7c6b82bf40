package main

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/atrium-ml/atrium/internal/platform/auth"
	"github.com/atrium-ml/atrium/internal/platform/auth/authtest"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/serving/oip/oiptest"
	"github.com/atrium-ml/atrium/internal/serving/oip/pb"
	"github.com/atrium-ml/atrium/internal/spec"
)

// TestGRPCServe: the gRPC listener behind the real guard refuses a call
// without a credential and serves one with a token; a
// non-loopback address where anonymous callers would pass is refused
// unless insecure.
func TestGRPCServe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	guard, token := authtest.Guard(t, auth.Reader)
	// A guard that lets anonymous callers through (no credential configured).
	open := auth.NewGuard(auth.GuardOptions{Store: auth.NewStore(metatest.SQLite(t, auth.Schema))})
	defer open.Close()
	s := spec.Server{MaxBodyMiB: 64, RequestTimeout: 30 * time.Second}
	s.MaxConcurrent.Read = 16
	log := slog.New(slog.DiscardHandler)

	if _, err := newGRPCServe(ctx, "0.0.0.0:0", s, &oiptest.Backend{}, open, false, log, nil); err == nil ||
		!strings.Contains(err.Error(), "not a loopback address, without authentication") {
		t.Errorf("non-loopback without authentication: %v", err)
	}
	if g, err := newGRPCServe(ctx, "0.0.0.0:0", s, &oiptest.Backend{}, open, true, log, nil); err != nil {
		t.Errorf("non-loopback with --insecure: %v", err)
	} else {
		g.ln.Close()
	}

	g, err := newGRPCServe(ctx, "127.0.0.1:0", s, &oiptest.Backend{}, guard, false, log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- g.Run(runCtx) }()
	conn, err := grpc.NewClient(g.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := pb.NewGRPCInferenceServiceClient(conn)
	req := &pb.ModelMetadataRequest{Name: "sum"}
	if _, err := c.ModelMetadata(ctx, req); status.Code(err) != codes.Unauthenticated {
		t.Errorf("without a credential: %v, want UNAUTHENTICATED", err)
	}
	if r, err := c.ModelMetadata(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token), req); err != nil || r.Name != "sum" {
		t.Errorf("with a reader token: %v %v", r, err)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("Run after its context ended: %v", err)
	}
}

// TestServeModelsGRPC: with serving.grpc_addr set, `atrium serve` answers
// the OIP over gRPC with the same model service as REST (the same version,
// the same predictions, bit for bit), and /metrics counts the calls.
func TestServeModelsGRPC(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "atrium.yaml"), []byte("serving:\n  grpc_addr: 127.0.0.1:0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base, addr := startServerGRPC(t, dir)
	if addr == "" {
		t.Fatal("serve did not say where it serves gRPC")
	}
	v := logLightGBM(t, base, "ranker", "lightgbm_binary.txt")
	mlflowCall(t, base, "POST", "/api/2.0/mlflow/registered-models/alias", map[string]any{"name": "ranker", "alias": "champion", "version": v}, nil)
	rows := [][]float64{{0.1, -0.9, 0.3, 2}, {1.5, 0.2, math.NaN(), -1}}
	code, rest := infer(t, base, "ranker", rows[:1])
	if code != 200 {
		t.Fatalf("REST infer: %d %+v", code, rest)
	}

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var raw []byte
	for _, r := range rows {
		for _, x := range r {
			raw = binary.LittleEndian.AppendUint64(raw, math.Float64bits(x))
		}
	}
	resp, err := pb.NewGRPCInferenceServiceClient(conn).ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "ranker",
		Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP64", Shape: []int64{2, 4}}},
		RawInputContents: [][]byte{raw}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.ModelVersion != v || len(resp.RawOutputContents) != 1 || len(resp.RawOutputContents[0]) != 16 {
		t.Fatalf("gRPC answer %v", resp)
	}
	got := math.Float64frombits(binary.LittleEndian.Uint64(resp.RawOutputContents[0]))
	if got != rest.Outputs[0].Data[0] {
		t.Errorf("gRPC predicts %v, REST %v for the same row", got, rest.Outputs[0].Data[0])
	}
	m, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(m.Body)
	m.Body.Close()
	if want := `atrium_grpc_requests_total{code="OK",method="ModelInfer"} 1`; !strings.Contains(string(body), want) {
		t.Errorf("/metrics lacks %s", want)
	}
}
