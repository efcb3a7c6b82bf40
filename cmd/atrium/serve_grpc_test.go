package main

import (
	"context"
	"log/slog"
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
	"github.com/atrium-ml/atrium/internal/serving/oip/oiptest"
	"github.com/atrium-ml/atrium/internal/serving/oip/pb"
	"github.com/atrium-ml/atrium/internal/spec"
)

// TestGRPCServe: the gRPC listener behind the real guard refuses a call
// without a credential and serves one with a token; a non-loopback address
// without required authentication is refused unless insecure.
func TestGRPCServe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	guard, token := authtest.Guard(t, auth.Reader)
	s := spec.Server{MaxBodyMiB: 64, RequestTimeout: 30 * time.Second}
	s.MaxConcurrent.Read = 16
	log := slog.New(slog.DiscardHandler)

	if _, err := newGRPCServe("0.0.0.0:0", s, &oiptest.Backend{}, guard, false, false, log, nil); err == nil ||
		!strings.Contains(err.Error(), "not a loopback address, without authentication") {
		t.Errorf("non-loopback without authentication: %v", err)
	}
	if g, err := newGRPCServe("0.0.0.0:0", s, &oiptest.Backend{}, guard, false, true, log, nil); err != nil {
		t.Errorf("non-loopback with --insecure: %v", err)
	} else {
		g.ln.Close()
	}

	g, err := newGRPCServe("127.0.0.1:0", s, &oiptest.Backend{}, guard, true, false, log, prometheus.NewRegistry())
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
