package main

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/platform/server"
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
			srv := server.New(server.Options{Addr: p.Server.Addr, Logger: e.log}, apis...)
			return srv.Run(e.ctx, func(a net.Addr) {
				fmt.Fprintf(e.stderr, "atrium serving on http://%s\n", a)
			})
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "listen address (default: server.addr of atrium.yaml, or 127.0.0.1:8080)")
	return cmd
}
