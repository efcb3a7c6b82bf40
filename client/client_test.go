package client_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/client"
	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/data/online/pebble"
	"github.com/atrium-ml/atrium/internal/data/retrieval"
	"github.com/atrium-ml/atrium/internal/platform/server"
)

var t0 = time.Date(2026, 11, 20, 11, 0, 0, 0, time.UTC)

// testServer runs the real feature server on a Pebble store with one set.
func testServer(t *testing.T) *client.Client {
	t.Helper()
	store, err := pebble.Open(filepath.Join(t.TempDir(), "online"), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	err = store.Write(context.Background(), "listing_profile", []string{"rent", "rooms", "city"}, []online.Row{
		{Key: online.MustKey(17), TS: t0, Values: []online.Value{online.Float64(1250.5), online.Int64(3), online.String("Lyon")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defs := retrieval.Definitions{Sets: []retrieval.SetDef{{
		Name: "listing_profile", JoinKeys: []retrieval.JoinKeyDef{{Name: "listing_id", Type: retrieval.KeyInt64}},
		Features: []retrieval.FeatureDef{{Name: "rent", Type: online.KindFloat64}, {Name: "rooms", Type: online.KindInt64}, {Name: "city", Type: online.KindString}},
	}}}
	o, err := retrieval.NewOnline(store, defs, retrieval.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(server.New(server.Options{}, retrieval.NewAPI(o, retrieval.APIOptions{})).Handler())
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGetOnlineFeatures(t *testing.T) {
	c := testServer(t)
	resp, err := c.GetOnlineFeatures(context.Background(), client.OnlineFeaturesRequest{
		Features: []string{"listing_profile:rent", "listing_profile:rooms", "listing_profile:city"},
		Entities: new(client.Columns).Int64("listing_id", 17, 18),
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Rows() != 2 || len(resp.Vectors) != 4 {
		t.Fatalf("%d rows, %d vectors", resp.Rows(), len(resp.Vectors))
	}
	rent, _ := resp.Column("rent")
	rooms, _ := resp.Column("rooms")
	city, _ := resp.Column("city")
	if rent.Values[0] != 1250.5 || rooms.Values[0] != int64(3) || city.Values[0] != "Lyon" {
		t.Errorf("values %v %v %v", rent.Values[0], rooms.Values[0], city.Values[0])
	}
	if rent.Statuses[0] != client.StatusPresent || rent.Statuses[1] != client.StatusNotFound || rent.Values[1] != nil {
		t.Errorf("statuses %v, values %v", rent.Statuses, rent.Values)
	}
	if !rent.EventTimestamps[0].Equal(t0) || rent.EventTimestamps[1].Unix() != 0 {
		t.Errorf("event times %v", rent.EventTimestamps)
	}
	if id, _ := resp.Column("listing_id"); id.Values[1] != int64(18) {
		t.Errorf("join key column %v", id.Values)
	}
}

func TestPushThenGet(t *testing.T) {
	c := testServer(t)
	ctx := context.Background()
	n, err := c.Push(ctx, client.PushRequest{
		FeatureSet: "listing_profile",
		Rows: new(client.Columns).Int64("listing_id", 18).Time("timestamp", t0.Add(time.Minute)).
			Float64("rent", 990).Values("rooms", nil).String("city", "Nice"),
	})
	if err != nil || n != 1 {
		t.Fatalf("Push: %d, %v", n, err)
	}
	resp, err := c.GetOnlineFeatures(ctx, client.OnlineFeaturesRequest{
		Features: []string{"listing_profile:city", "listing_profile:rooms"},
		Entities: new(client.Columns).Int64("listing_id", 18),
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Vectors[1].Values[0] != "Nice" || resp.Vectors[2].Statuses[0] != client.StatusNullValue {
		t.Errorf("after push: %+v", resp.Vectors)
	}
}

func TestDeleteOnline(t *testing.T) {
	c := testServer(t)
	ctx := context.Background()
	n, err := c.DeleteOnline(ctx, client.DeleteRequest{FeatureSet: "listing_profile", Keys: new(client.Columns).Int64("listing_id", 17), At: t0})
	if err != nil || n != 1 {
		t.Fatalf("DeleteOnline: %d, %v", n, err)
	}
	get := func() client.Status {
		t.Helper()
		resp, err := c.GetOnlineFeatures(ctx, client.OnlineFeaturesRequest{
			Features: []string{"listing_profile:city"},
			Entities: new(client.Columns).Int64("listing_id", 17),
		})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Vectors[1].Statuses[0]
	}
	if s := get(); s != client.StatusNotFound {
		t.Fatalf("after delete: %v, want NOT_FOUND", s)
	}
	// A push stamped at the delete's time does not bring the key back.
	if _, err := c.Push(ctx, client.PushRequest{FeatureSet: "listing_profile",
		Rows: new(client.Columns).Int64("listing_id", 17).Time("timestamp", t0).
			Float64("rent", 1).Values("rooms", nil).String("city", "Lyon")}); err != nil {
		t.Fatal(err)
	}
	if s := get(); s != client.StatusNotFound {
		t.Errorf("after an equal-time push: %v, want NOT_FOUND", s)
	}
	_, err = c.DeleteOnline(ctx, client.DeleteRequest{FeatureSet: "nope", Keys: new(client.Columns).Int64("listing_id", 17)})
	if !client.IsClientError(err) {
		t.Errorf("delete from an unknown set: %v", err)
	}
}

func TestErrors(t *testing.T) {
	c := testServer(t)
	ctx := context.Background()
	_, err := c.GetOnlineFeatures(ctx, client.OnlineFeaturesRequest{
		Features: []string{"listing_profile:area"},
		Entities: new(client.Columns).Int64("listing_id", 1),
	})
	var e *client.Error
	if !errors.As(err, &e) || e.StatusCode != 404 || !client.IsClientError(err) {
		t.Fatalf("unknown feature: %v", err)
	}
	if want := `features[0]: unknown feature: "listing_profile:area"`; !contains(e.Message, want) {
		t.Errorf("message %q lacks %q", e.Message, want)
	}
	_, err = c.Push(ctx, client.PushRequest{FeatureSet: "listing_profile", Rows: new(client.Columns).String("listing_id", "x")})
	if !client.IsClientError(err) {
		t.Errorf("bad push: %v", err)
	}
	_, err = c.MaterializeIncremental(ctx, client.MaterializeRequest{End: t0})
	if !errors.As(err, &e) || e.StatusCode != 501 || client.IsClientError(err) {
		t.Errorf("materialize on a server without an offline store: %v", err)
	}
	if _, err := client.New("localhost:8080"); err == nil {
		t.Error("New accepted a URL without a scheme")
	}
	down, _ := client.New("http://127.0.0.1:1")
	if _, err := down.Push(ctx, client.PushRequest{FeatureSet: "x"}); err == nil || client.IsClientError(err) {
		t.Errorf("server down: %v", err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// notReady is an API whose stores do not answer.
type notReady struct{}

func (notReady) Routes() []server.Route      { return nil }
func (notReady) Ready(context.Context) error { return errors.New("online store down") }

func TestReady(t *testing.T) {
	ctx := context.Background()
	if err := testServer(t).Ready(ctx); err != nil {
		t.Errorf("Ready of a serving server: %v", err)
	}
	srv := httptest.NewServer(server.New(server.Options{}, notReady{}).Handler())
	defer srv.Close()
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var e *client.Error
	if err := c.Ready(ctx); !errors.As(err, &e) || e.StatusCode != 503 || !strings.Contains(e.Message, "a backend is not ready") || client.IsClientError(err) {
		t.Errorf("Ready of a server whose store is down: %v", err)
	}
	down, _ := client.New("http://127.0.0.1:1")
	if err := down.Ready(ctx); err == nil || errors.As(err, &e) {
		t.Errorf("Ready with nothing listening: %v, want a transport error", err)
	}
}
