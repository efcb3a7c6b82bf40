package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/atrium-ml/atrium/internal/platform/auth"
	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/serving"
	"github.com/atrium-ml/atrium/internal/serving/oip"
	"github.com/atrium-ml/atrium/internal/spec"
)

// grpcShutdownTimeout is how long calls in flight get when serve stops,
// the HTTP server's default.
const grpcShutdownTimeout = 10 * time.Second

// grpcServe is the Open Inference Protocol's gRPC listener of `atrium serve`
// (serving.grpc_addr): the same Backend as the REST routes behind the same
// guard, with the server block's TLS certificate, body limit, request
// timeout and read concurrency.
type grpcServe struct {
	srv *grpc.Server
	ln  net.Listener
}

// newGRPCServe opens addr and builds the service over b. A gRPC address
// beyond loopback is refused when the guard lets anonymous callers score
// (no credential configured), unless insecure, as serve refuses such an
// HTTP address: the HTTP address's safe default cannot vouch for another.
func newGRPCServe(ctx context.Context, addr string, s spec.Server, b oip.Backend, guard *auth.Guard, insecure bool,
	log *slog.Logger, reg prometheus.Registerer) (*grpcServe, error) {
	_, err := guard.AuthorizeHeader(ctx, "", server.Infer)
	if anonymous := err == nil; anonymous && !insecure && !isLoopback(addr) {
		return nil, fmt.Errorf("refusing to serve gRPC on %s, which is not a loopback address, without authentication: anyone could call it. "+
			"Create a credential first with `atrium token create --name admin --role admin`, or pass --insecure", addr)
	}
	var extra []grpc.ServerOption
	if s.TLS.CertFile != "" {
		creds, err := credentials.NewServerTLSFromFile(s.TLS.CertFile, s.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("serving.grpc_addr: TLS certificate of server.tls: %w", err)
		}
		extra = append(extra, grpc.Creds(creds))
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on serving.grpc_addr %s: %w", addr, err)
	}
	srv := oip.NewGRPCServer(b, oip.GRPCOptions{
		Options:            oip.Options{MaxBodyBytes: int64(s.MaxBodyMiB) << 20, Logger: log},
		Authorize:          guard.GRPCAuthorizer(server.Infer),
		CallTimeout:        s.RequestTimeout,
		MaxConcurrentCalls: s.MaxConcurrent.Read,
		Registerer:         reg,
	}, extra...)
	return &grpcServe{srv: srv, ln: ln}, nil
}

// Addr is the bound address (port 0 resolved).
func (g *grpcServe) Addr() net.Addr { return g.ln.Addr() }

// Run serves until ctx ends, then stops gracefully (grpcShutdownTimeout).
func (g *grpcServe) Run(ctx context.Context) error {
	return oip.ServeGRPC(ctx, g.srv, g.ln, grpcShutdownTimeout)
}

// serveWithGRPC runs the HTTP server (run) and, when serving.grpc_addr is
// set, the Open Inference Protocol's gRPC listener beside it over the same
// model service and guard: both stop when e's context ends, and either
// failing stops the other. reg is the HTTP server's registry, so /metrics
// shows the gRPC calls too.
func serveWithGRPC(e *env, p *spec.Project, guard *auth.Guard, insecure bool, reg prometheus.Registerer, run func(context.Context) error) error {
	if p.Serving.GRPCAddr == "" {
		return run(e.ctx)
	}
	svc, err := e.Serving()
	if err != nil {
		return err
	}
	g, err := newGRPCServe(e.ctx, p.Serving.GRPCAddr, p.Server, serving.NewBackend(svc), guard, insecure, e.log, reg)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "atrium serving the Open Inference Protocol over gRPC on %s\n", g.Addr()) // grpcServingPrefix
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	grpcErr := make(chan error, 1)
	go func() {
		err := g.Run(ctx)
		if err != nil {
			cancel() // a failed gRPC listener stops the HTTP server too
		}
		grpcErr <- err
	}()
	err = run(ctx)
	cancel()
	return errors.Join(err, <-grpcErr)
}
