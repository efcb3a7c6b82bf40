package triton_test

import (
	"context"
	"net"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/auth"
	"github.com/atrium-ml/atrium/internal/platform/auth/authtest"
	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/serving/oip"
	"github.com/atrium-ml/atrium/internal/serving/oip/oiptest"
	"github.com/atrium-ml/atrium/tests/interop/interoptest"
)

type routes []server.Route

func (r routes) Routes() []server.Route { return r }

// TestTritonClient runs tritonclient[http] (binary-data extension on and
// off, on both sides) and tritonclient[grpc] (raw contents), unchanged,
// against the Open Inference Protocol's REST and gRPC endpoints behind the
// server's guard with authentication required: predictions, every
// datatype round trip, NaN, errors and their statuses, and calls without
// the token refused (triton_flow.py).
func TestTritonClient(t *testing.T) {
	py := interoptest.Python(t, "the tritonclient test", "tritonclient.http", "tritonclient.grpc")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	guard, token := authtest.Guard(t, auth.Reader)

	b := &oiptest.Backend{}
	srv := httptest.NewServer(server.New(server.Options{Guard: guard}, routes(oip.Routes(b, oip.Options{}))).Handler())
	defer srv.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := oip.NewGRPCServer(b, oip.GRPCOptions{Authorize: guard.GRPCAuthorizer(server.Infer)})
	go func() { _ = g.Serve(ln) }()
	defer g.Stop()

	out, err := exec.CommandContext(ctx, py, "triton_flow.py", strings.TrimPrefix(srv.URL, "http://"), ln.Addr().String(), token).CombinedOutput()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "ok") {
		t.Fatalf("triton_flow.py: %v\n%s", err, out)
	}
}
