package feast_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/data/online/pebble"
	"github.com/atrium-ml/atrium/internal/data/retrieval"
	"github.com/atrium-ml/atrium/internal/platform/auth"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/tests/interop/interoptest"
)

// TestFeastSDKAgainstFeatureServer runs Feast's Python SDK, with Feast's
// remote online store pointed at Atrium's feature server: Feast writes rows
// through POST /write-to-online-store and reads them with
// POST /get-online-features, decoding our responses with its own code.
func TestFeastSDKAgainstFeatureServer(t *testing.T) {
	py := interoptest.Python(t, "the Feast client test", "feast")
	// Open (loopback, nothing configured), and behind `atrium serve`'s guard
	// with Feast's client sending a token.
	for _, withAuth := range []bool{false, true} {
		name := "open"
		if withAuth {
			name = "token"
		}
		t.Run(name, func(t *testing.T) { feastAgainstServer(t, py, withAuth) })
	}
}

func feastAgainstServer(t *testing.T, py string, withAuth bool) {
	dir := t.TempDir()
	store, err := pebble.Open(filepath.Join(dir, "online"), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	defs := retrieval.Definitions{Sets: []retrieval.SetDef{{
		Name:     "driver_stats",
		JoinKeys: []retrieval.JoinKeyDef{{Name: "driver_id", Type: retrieval.KeyInt64}},
		Features: []retrieval.FeatureDef{
			{Name: "conv_rate", Type: online.KindFloat64},
			{Name: "trips", Type: online.KindInt64},
			{Name: "city", Type: online.KindString},
		},
	}}}
	o, err := retrieval.NewOnline(store, defs, retrieval.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts := server.Options{}
	args := []string{"feast_online.py", "", filepath.Join(dir, "feast")}
	if withAuth {
		creds := auth.NewStore(metatest.SQLite(t, auth.Schema))
		token, _, err := creds.CreateToken(context.Background(), "feast", auth.Editor, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		g := auth.NewGuard(auth.GuardOptions{Store: creds, Required: true})
		defer g.Close()
		opts.Guard = g
		args = append(args, token)
	}
	srv := httptest.NewServer(server.New(opts, retrieval.NewAPI(o, retrieval.APIOptions{})).Handler())
	defer srv.Close()
	args[1] = srv.URL

	if withAuth {
		// Without the token, Feast's client is refused.
		anon := exec.CommandContext(context.Background(), py, args[:3]...)
		if out, err := anon.CombinedOutput(); err == nil || !strings.Contains(string(out), "401") {
			t.Errorf("feast_online.py without a token against a guarded server: %v\n%s", err, out)
		}
	}
	cmd := exec.CommandContext(context.Background(), py, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("feast_online.py: %v", err)
	}
	var got map[string][]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("feast_online.py printed %q: %v", out, err)
	}
	want := map[string][]any{
		"driver_id": {1001.0, 1002.0, 9.0},
		"conv_rate": {0.25, 1e6, nil},
		"trips":     {12.0, 7.0, nil},
		"city":      {"Lyon", "Nice <&> \u2028 ü", nil},
		// Python types: the whole double decodes as a float.
		"conv_rate_types": {"float", "float", "NoneType"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Feast's get_online_features through Atrium:\n got %v\nwant %v", got, want)
	}

	// What Feast wrote is in Atrium's store, typed.
	res := make([]online.Result, 1)
	q := online.Query{Set: "driver_stats", Features: []string{"trips", "city"}, Keys: []online.Key{online.MustKey(int64(1002))}}
	if err := store.Read(context.Background(), []online.Query{q}, res); err != nil {
		t.Fatal(err)
	}
	if v := res[0].Row(0); !res[0].Found[0] || v[0] != online.Int64(7) || v[1] != online.String("Nice <&> \u2028 ü") {
		t.Errorf("row Feast wrote: found %v, %v", res[0].Found[0], v)
	}
}
