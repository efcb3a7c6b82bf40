package demo

import (
	"context"
	"database/sql"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

func TestRankingCSV(t *testing.T) {
	m := tinyMarket(t, nil)
	dir := t.TempDir()
	train, test := filepath.Join(dir, "train.csv"), filepath.Join(dir, "test.csv")
	var progressed atomic.Int64 // Progress is called from every worker
	sum, err := m.WriteRanking(context.Background(), train, RankingOptions{
		TestPath: test, TestDays: 1, Truth: true,
		Progress: func(n int64) { progressed.Add(n) },
	})
	if err != nil {
		t.Fatal(err)
	}
	_, data := generate(t, m)
	if sum.Rows+sum.TestRows != data.Impressions || sum.Sessions+sum.TestSessions != data.Sessions || sum.TestRows == 0 {
		t.Errorf("ranking summary %+v; the data has %d impressions in %d sessions", sum, data.Impressions, data.Sessions)
	}

	trainRows, testRows := readCSV(t, train), readCSV(t, test)
	if int64(len(trainRows)) != sum.Rows || int64(len(testRows)) != sum.TestRows {
		t.Fatalf("files have %d and %d rows, summary %+v", len(trainRows), len(testRows), sum)
	}
	all := append(trainRows, testRows...)
	// Sessions are contiguous and in increasing id order; the test file's come last.
	var prev int64
	seen := map[int64]bool{}
	var clicks, visits int64
	for i, r := range all {
		id, _ := strconv.ParseInt(r["session_id"], 10, 64)
		if id != prev {
			if seen[id] || id < prev {
				t.Fatalf("row %d: session %d not contiguous or out of order", i, id)
			}
			seen[id] = true
			prev = id
		}
		switch r["label"] {
		case "2":
			visits++
			clicks++
		case "1":
			clicks++
		case "0":
		default:
			t.Fatalf("row %d: label %q", i, r["label"])
		}
		if got := num(t, r["rent"]) / num(t, r["area_m2"]); math.Abs(got-num(t, r["price_per_m2"])) > 1e-9 {
			t.Errorf("row %d: price_per_m2 %s, want rent/area %v", i, r["price_per_m2"], got)
		}
		if got := num(t, r["rent"]) / num(t, r["budget"]); math.Abs(got-num(t, r["rent_to_budget"])) > 1e-9 {
			t.Errorf("row %d: rent_to_budget %s, want %v", i, r["rent_to_budget"], got)
		}
		if _, ok := r["position"]; ok {
			t.Fatal("the ranking set has a position column")
		}
	}
	// A session's rows are in RowOrder (told by their true utilities), not
	// in the shown order, which would carry the position left out.
	utilities := map[int64][]float64{}
	for _, r := range all {
		id, _ := strconv.ParseInt(r["session_id"], 10, 64)
		utilities[id] = append(utilities[id], num(t, r[TruthColumn]))
	}
	var shownOrder, sessions int
	for d := range m.Config.Days {
		m.Day(context.Background(), d, func(s *Session) error {
			sessions++
			got := utilities[s.ID]
			for row, i := range RowOrder(m.Config.Seed, s, nil) {
				if row >= len(got) || got[row] != s.Impressions[i].Utility {
					t.Fatalf("session %d: true utilities %v, want the impressions in RowOrder", s.ID, got)
				}
			}
			shown := true
			for i := range s.Impressions {
				shown = shown && got[i] == s.Impressions[i].Utility
			}
			if shown {
				shownOrder++
			}
			return nil
		})
	}
	if shownOrder > sessions/10 {
		t.Errorf("%d of %d sessions list their rows in the shown order: want a random order", shownOrder, sessions)
	}
	if clicks != data.Clicks || visits != data.Visits {
		t.Errorf("labels count %d clicks and %d visits; the events have %d and %d", clicks, visits, data.Clicks, data.Visits)
	}

	// The first row is the first session's impression listed first
	// (RowOrder), recomputed here.
	var first Impression
	var firstUser *User
	m.Day(context.Background(), 0, func(s *Session) error {
		if firstUser == nil {
			first, firstUser = s.Impressions[RowOrder(m.Config.Seed, s, nil)[0]], s.User
		}
		return nil
	})
	r := all[0]
	if num(t, r[TruthColumn]) != first.Utility || num(t, r["rent"]) != first.Rent || num(t, r["budget"]) != firstUser.Budget ||
		r["neighborhood"] != Neighborhoods[first.Listing.Neighborhood].Name {
		t.Errorf("first row %v; want utility %v, rent %v, budget %v", r, first.Utility, first.Rent, firstUser.Budget)
	}
	wantMatch := "0"
	if firstUser.Prefers(first.Listing.Neighborhood) {
		wantMatch = "1"
	}
	if r["neighborhood_match"] != wantMatch || r["bedrooms_diff"] != strconv.Itoa(first.Listing.Bedrooms-firstUser.PreferredBedrooms) {
		t.Errorf("first row match %s, bedrooms_diff %s", r["neighborhood_match"], r["bedrooms_diff"])
	}
	if progressed.Load() != data.Impressions {
		t.Errorf("progress counted %d rows, want %d", progressed.Load(), data.Impressions)
	}
}

func TestRankingParquet(t *testing.T) {
	m := tinyMarket(t, nil)
	path := filepath.Join(t.TempDir(), "ranking.parquet")
	sum, err := m.WriteRanking(context.Background(), path, RankingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows, sessions, ordered int64
	var labelType, hoodType string
	err = db.QueryRow(`SELECT count(*), count(DISTINCT session_id),
		count(*) FILTER (WHERE session_id >= prev), any_value(typeof(label)), any_value(typeof(neighborhood))
		FROM (SELECT *, coalesce(lag(session_id) OVER (), 0) AS prev FROM read_parquet(?))`, path).
		Scan(&rows, &sessions, &ordered, &labelType, &hoodType)
	if err != nil {
		t.Fatal(err)
	}
	if rows != sum.Rows || sessions != sum.Sessions || ordered != rows || labelType != "INTEGER" || hoodType != "VARCHAR" {
		t.Errorf("parquet: %d rows, %d sessions, %d in order, label %s, neighborhood %s; want %+v in order, INTEGER, VARCHAR",
			rows, sessions, ordered, labelType, hoodType, sum)
	}
	var cols int
	if err := db.QueryRow(`SELECT count(*) FROM (DESCRIBE SELECT * FROM read_parquet(?))`, path).Scan(&cols); err != nil || cols != len(rankingColumns) {
		t.Errorf("parquet has %d columns (%v), want %d without the truth", cols, err, len(rankingColumns))
	}
}

func TestRankingBadOptions(t *testing.T) {
	m := tinyMarket(t, nil)
	dir := t.TempDir()
	tests := []struct {
		path string
		opt  RankingOptions
		want string
	}{
		{filepath.Join(dir, "r.json"), RankingOptions{}, "want a .csv or .parquet"},
		{filepath.Join(dir, "r.csv"), RankingOptions{TestPath: filepath.Join(dir, "t.csv"), TestDays: 4}, "test days 4"},
		{filepath.Join(dir, "r.csv"), RankingOptions{TestDays: 1}, "go together"},
		{filepath.Join(dir, "r.csv"), RankingOptions{TestPath: filepath.Join(dir, "t.txt"), TestDays: 1}, "t.txt: unknown format"},
	}
	for _, tt := range tests {
		if _, err := m.WriteRanking(context.Background(), tt.path, tt.opt); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("WriteRanking(%s, %+v) = %v, want an error with %q", tt.path, tt.opt, err, tt.want)
		}
	}
}

// TestDuckDBReadsDataTypes checks that DuckDB's CSV sniffer, which the offline
// store reads sources with, infers the intended types from the generated files.
func TestDuckDBReadsDataTypes(t *testing.T) {
	dir, sum := generate(t, tinyMarket(t, nil))
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tests := []struct {
		glob  string
		rows  int64
		types map[string]string
	}{
		{"data/listings.csv", sum.ListingRows, map[string]string{"listing_id": "BIGINT", "neighborhood": "VARCHAR", "rent": "DOUBLE", "area_m2": "DOUBLE", "bedrooms": "BIGINT", "updated_at": "TIMESTAMP"}},
		{"data/users.csv", sum.Users, map[string]string{"user_id": "BIGINT", "budget": "DOUBLE", "preferred_neighborhoods": "VARCHAR", "preferred_bedrooms": "BIGINT", "created_at": "TIMESTAMP"}},
		{"data/events*.csv", sum.Events(), map[string]string{"ts": "TIMESTAMP", "event": "VARCHAR", "listing_id": "BIGINT", "user_id": "BIGINT", "session_id": "BIGINT", "position": "BIGINT"}},
	}
	for _, tt := range tests {
		path := filepath.Join(dir, tt.glob)
		rows, err := db.Query(`SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_csv(?))`, path)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for rows.Next() {
			var name, typ string
			rows.Scan(&name, &typ)
			got[name] = typ
		}
		rows.Close()
		if !maps.Equal(got, tt.types) {
			t.Errorf("%s: DuckDB reads %v, want %v", tt.glob, got, tt.types)
		}
		var n int64
		if err := db.QueryRow(`SELECT count(*) FROM read_csv(?)`, path).Scan(&n); err != nil || n != tt.rows {
			t.Errorf("%s: DuckDB counts %d rows (%v), want %d", tt.glob, n, err, tt.rows)
		}
	}
}

func TestWriteSpine(t *testing.T) {
	m := tinyMarket(t, nil)
	path := filepath.Join(t.TempDir(), "spine.csv")
	sum, err := m.WriteSpine(context.Background(), path, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	for d := 1; d < 3; d++ {
		m.Day(context.Background(), d, func(s *Session) error { want += int64(len(s.Impressions)); return nil })
	}
	rows := readCSV(t, path)
	if int64(len(rows)) != want || sum.Rows != want {
		t.Fatalf("spine has %d rows (summary %d), want the %d impressions of days 1 and 2", len(rows), sum.Rows, want)
	}
	from, to := m.Config.Start.AddDate(0, 0, 1), m.Config.Start.AddDate(0, 0, 3)
	for _, r := range rows {
		ts := parseTime(t, r[SpineTimeColumn])
		if ts.Before(from) || !ts.Before(to) || r["listing_id"] == "" || r["user_id"] == "" || r["position"] == "" {
			t.Fatalf("spine row %v outside days 1-2 or incomplete", r)
		}
	}
	// A session's rows are in RowOrder, not in the shown order: the positions
	// of each session are all there, and most sessions list them unsorted.
	positions := map[string][]int{}
	var sessions []string
	for _, r := range rows {
		p, err := strconv.Atoi(r["position"])
		if err != nil {
			t.Fatal(err)
		}
		if positions[r["session_id"]] == nil {
			sessions = append(sessions, r["session_id"])
		}
		positions[r["session_id"]] = append(positions[r["session_id"]], p)
	}
	unsorted := 0
	for _, id := range sessions {
		ps := positions[id]
		if !slices.IsSorted(ps) {
			unsorted++
		}
		sorted := slices.Sorted(slices.Values(ps))
		for i, p := range sorted {
			if p != i+1 {
				t.Fatalf("session %s lists positions %v, want 1 to %d once each", id, ps, len(ps))
			}
		}
	}
	if unsorted < len(sessions)*9/10 {
		t.Errorf("%d of %d sessions list their rows in the shown order: want a random order", len(sessions)-unsorted, len(sessions))
	}
	if _, err := m.WriteSpine(context.Background(), path, 2, 9); err == nil || !strings.Contains(err.Error(), "days [2, 9)") {
		t.Errorf("WriteSpine past the last day = %v", err)
	}
}
