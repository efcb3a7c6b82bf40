package tracking_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/platform/artifact"
	_ "github.com/atrium-ml/atrium/internal/platform/artifact/fs" // file:// stores
	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/tracking"
)

// TestAPIListArtifacts lists a run's and a logged model's artifacts through
// the real filesystem artifact store, and refuses paths that leave the root.
func TestAPIListArtifacts(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		arts, err := artifact.Open(ctx, "file://"+t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer arts.Close()
		store, err := tracking.New(ctx, db, tracking.Options{})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(server.New(server.Options{}, tracking.NewAPI(store, arts, nil)).Handler())
		defer srv.Close()
		c := &client{t: t, url: srv.URL}
		run := c.ok("POST", api+"/runs/create", map[string]any{"experiment_id": "0"})["run"].(map[string]any)["info"].(map[string]any)
		id := run["run_id"].(string)
		base := "0/" + id + "/artifacts/"
		for p, body := range map[string]string{"notes.md": "hi", "data/a.csv": "1,2\n", "data/deep/b.json": "{}"} {
			if err := arts.Put(ctx, base+p, strings.NewReader(body)); err != nil {
				t.Fatal(err)
			}
		}
		got := c.ok("GET", api+"/artifacts/list?run_id="+id, nil)
		if got["root_uri"] != run["artifact_uri"] || len(got["files"].([]any)) != 2 {
			t.Fatalf("root listing = %v", got)
		}
		got = c.ok("GET", api+"/artifacts/list?run_id="+id+"&path=data", nil)
		files := got["files"].([]any)
		first, second := files[0].(map[string]any), files[1].(map[string]any)
		if len(files) != 2 || first["path"] != "data/a.csv" || first["file_size"] != float64(4) || second["path"] != "data/deep" || second["is_dir"] != true {
			t.Fatalf("data listing = %v", got)
		}
		for _, bad := range []string{"../../..", "data/../../x", "%2e%2e/%2e%2e", "/etc", "file:///etc"} {
			c.fails("GET", api+"/artifacts/list?run_id="+id+"&path="+bad, nil, 400, "INVALID_PARAMETER_VALUE", "Invalid value")
		}
		m := c.ok("POST", api+"/logged-models", map[string]any{"experiment_id": "0"})["model"].(map[string]any)["info"].(map[string]any)
		mid := m["model_id"].(string)
		if err := arts.Put(ctx, "0/models/"+mid+"/artifacts/MLmodel", strings.NewReader("flavors: {}\n")); err != nil {
			t.Fatal(err)
		}
		got = c.ok("GET", api+"/logged-models/"+mid+"/artifacts/directories", nil)
		if fs := got["files"].([]any); len(fs) != 1 || fs[0].(map[string]any)["path"] != "MLmodel" {
			t.Fatalf("logged model listing = %v", got)
		}
		// The store takes multipart uploads, so MLflow 3 clients are told so.
		if info := c.ok("GET", "/api/3.0/mlflow/server-info", nil); info["multipart_uploads_enabled"] != true {
			t.Fatalf("server-info = %v", info)
		}
	}, tracking.Schema)
}
