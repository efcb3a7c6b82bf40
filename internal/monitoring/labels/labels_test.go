package labels

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
)

func intp(i int) *int { return &i }

func TestStore(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		s := NewStore(db)
		t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
		clock := t0
		s.now = func() time.Time { return clock }
		res, err := s.Put(ctx, []Label{
			{Model: "ranker", RequestID: "q1", Row: intp(2), Value: 1},
			{Model: "ranker", RequestID: "q1", Entities: map[string]string{"listing_id": "L,1"}, Value: 3},
			{Model: "ranker", RequestID: "q2", Value: 0},
			{Model: "rent", Entities: map[string]string{"listing_id": "L1"}, Time: t0, Horizon: 2 * time.Hour, Value: 1450},
			{Model: "rent", RequestID: "q1", Value: 9}, // another model's label of the same request
		})
		if err != nil || res != (PutResult{Accepted: 5}) {
			t.Fatalf("put = %+v, %v", res, err)
		}
		// Duplicates: the same keys again, later, with new values.
		clock = t0.Add(time.Hour)
		res, err = s.Put(ctx, []Label{{Model: "ranker", RequestID: "q1", Row: intp(2), Value: 0}, {Model: "ranker", RequestID: "q3", Value: 1}})
		if err != nil || res != (PutResult{Accepted: 2, Duplicates: 1}) {
			t.Fatalf("second put = %+v, %v", res, err)
		}
		got, err := s.ByRequest(ctx, "ranker", []string{"q1", "q9"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("q1 labels = %+v", got)
		}
		for _, l := range got {
			switch {
			case l.Row != nil:
				if *l.Row != 2 || l.Value != 0 || l.Writes != 2 || !l.ReceivedAt.Equal(clock) {
					t.Errorf("row label after a duplicate = %+v", l)
				}
			case l.Entities["listing_id"] != "L,1" || l.Value != 3 || l.Writes != 1:
				t.Errorf("entity label = %+v", l)
			}
		}
		ents, err := s.ByEntity(ctx, "rent", t0, t0.Add(time.Minute))
		if err != nil || len(ents) != 1 || ents[0].Horizon != 2*time.Hour || !ents[0].Time.Equal(t0) || ents[0].Value != 1450 {
			t.Errorf("by entity = %+v, %v", ents, err)
		}
		recv, err := s.Received(ctx, "ranker", t0.Add(30*time.Minute), t0.Add(2*time.Hour))
		if err != nil || len(recv) != 2 {
			t.Errorf("received in the second half hour = %+v, %v", recv, err)
		}
		// Many ids are read in chunks.
		ids := make([]string, 1200)
		for i := range ids {
			ids[i] = "x"
		}
		ids[1100] = "q2"
		if got, err := s.ByRequest(ctx, "ranker", ids); err != nil || len(got) != 1 {
			t.Errorf("chunked read = %+v, %v", got, err)
		}
	}, Schema)
}

func TestCheck(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		l    Label
		want string
	}{
		{Label{RequestID: "q", Value: 1}, "model: missing"},
		{Label{Model: "m", Value: 1}, "expected request_id"},
		{Label{Model: "m", Entities: map[string]string{"k": "v"}, Value: 1}, "time: missing"},
		{Label{Model: "m", RequestID: "q", Row: intp(1), Entities: map[string]string{"k": "v"}, Value: 1}, "row and entities"},
		{Label{Model: "m", RequestID: "q", Row: intp(-1), Value: 1}, "row: expected a row index"},
		{Label{Model: "m", Entities: map[string]string{"k": ""}, Time: t0, Value: 1}, "non-empty"},
		{Label{Model: "m", Entities: map[string]string{"k": "v"}, Time: t0, Horizon: 30 * 24 * time.Hour, Value: 1}, "up to 7d"},
		{Label{Model: "m", RequestID: "q"}, ""},
	} {
		err := c.l.Check()
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: %v, want %q", c.l, err, c.want)
		}
	}
	if k := EntityKey(map[string]string{"b": "x=1", "a": "2,3"}); k != "a=2%2C3,b=x%3D1" {
		t.Errorf("entity key = %s", k)
	}
}
