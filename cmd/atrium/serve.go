package main

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/platform/artifact/proxy"
	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/spec"
	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

// serveAPIs builds the APIs `atrium serve` composes, one per layer (each in
// its serve_*.go file). A builder opens what its API needs through env
// (closed when serve returns) and must not start goroutines that outlive it.
var serveAPIs = []func(e *env) (server.API, error){
	featureAPI,  // online features: Feast's wire format
	mlflowAPI,   // MLflow tracking and model registry
	artifactAPI, // MLflow's artifact proxy
}

func newServeCmd(e *env) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve every API (online features, MLflow tracking and registry, inference) on one address",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := e.Project()
			if err != nil {
				return err
			}
			if addr != "" {
				p.Server.Addr = addr
			}
			apis := make([]server.API, 0, len(serveAPIs))
			for _, build := range serveAPIs {
				api, err := build(e)
				if err != nil {
					return err
				}
				apis = append(apis, api)
			}
			srv := server.New(serverOptions(p, e), apis...)
			return srv.Run(e.ctx, func(a net.Addr) {
				fmt.Fprintf(e.stderr, "atrium serving on http://%s\n", a)
			})
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "listen address (default: server.addr of atrium.yaml, or 127.0.0.1:8080)")
	return cmd
}

// serverOptions are the server's settings from atrium.yaml's server block.
func serverOptions(p *spec.Project, e *env) server.Options {
	s := p.Server
	return server.Options{
		Addr:         s.Addr,
		Logger:       e.log,
		StoreTimeout: s.StoreTimeout,
		Limits: server.Limits{
			MaxBodyBytes:       int64(s.MaxBodyMiB) << 20,
			InFlightBodyBytes:  int64(s.InFlightBodyMiB) << 20,
			Concurrency:        server.Concurrency(s.MaxConcurrent.Read, s.MaxConcurrent.Write, s.MaxConcurrent.Heavy, s.MaxConcurrent.Stream),
			RequestTimeout:     s.RequestTimeout,
			LongRequestTimeout: s.LongRequestTimeout,
			BodyTimeout:        s.BodyTimeout,
			ReadHeaderTimeout:  s.ReadHeaderTimeout,
			IdleTimeout:        s.IdleTimeout,
			Classes:            routeClasses(),
		},
	}
}

// routeClasses names the routes whose class is not the default (GET and HEAD
// read, the rest write): POSTs that only read, the heavy materialization, and
// the artifact transfers streamed to and from the store (exempt from the body
// size limit, which their API enforces itself, and with the long deadline).
// The server refuses to start if a pattern here is not registered.
func routeClasses() map[string]server.Class {
	c := map[string]server.Class{
		"POST /get-online-features":     server.ClassRead,
		"POST /materialize-incremental": server.ClassHeavy,
	}
	for _, p := range wire.Prefixes {
		for _, path := range []string{"/experiments/search", "/runs/search", "/experiments/search-datasets", "/logged-models/search"} {
			c["POST "+p+path] = server.ClassRead
		}
	}
	for _, p := range proxy.Prefixes {
		c["PUT "+p+"/artifacts/{path...}"] = server.ClassStream
		c["GET "+p+"/artifacts/{path...}"] = server.ClassStream
		c["PUT "+p+"/mpu/parts/{upload_id}/{part_number}"] = server.ClassStream
	}
	return c
}
