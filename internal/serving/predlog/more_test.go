package predlog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func isErr(err, target error) bool { return errors.Is(err, target) }

// TestDropWhenFull fills the buffer while a flush is stuck: Log refuses the
// records that do not fit, whole, counts their rows, and never waits (were it
// to wait for the stuck flush, this test would deadlock and time out).
func TestDropWhenFull(t *testing.T) {
	w := openTest(t, Options{BufferRows: 10})
	w.sink.mu.Lock() // a flush that does not end
	flushed := make(chan error)
	go func() { flushed <- w.Flush(context.Background()) }()
	var kept []bool
	for i := range 5 {
		kept = append(kept, w.Log(rankRecord(fmt.Sprint(i), t0, "1", 4)))
	}
	if fmt.Sprint(kept) != "[true true false false false]" {
		t.Errorf("kept %v, want the first two records (8 rows of 10)", kept)
	}
	if !w.Log(rankRecord("small", t0, "1", 2)) {
		t.Error("a record that fits the rest of the buffer was dropped")
	}
	if n := testutil.ToFloat64(w.m.dropped.WithLabelValues("ranker", "buffer_full")); n != 12 {
		t.Errorf("dropped rows = %v, want 12", n)
	}
	if n := testutil.ToFloat64(w.m.buffered); n != 10 {
		t.Errorf("buffer gauge = %v, want 10", n)
	}
	w.sink.mu.Unlock()
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Written, the rows free the buffer.
	if !w.Log(rankRecord("after", t0, "1", 4)) {
		t.Error("buffer still full after the flush")
	}
	rows, err := Read(context.Background(), w.opts.Dir, "ranker", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 10 {
		t.Errorf("read %d rows, want the 10 kept", len(rows))
	}
}

// TestLogRefuses: malformed records and records after Close are refused and
// counted, not written.
func TestLogRefuses(t *testing.T) {
	w := openTest(t, Options{})
	short := rankRecord("short", t0, "1", 3)
	short.Scores = short.Scores[:2]
	noModel := rankRecord("nomodel", t0, "1", 3)
	noModel.Model = ""
	dupFeature := rankRecord("dup", t0, "1", 3)
	dupFeature.Categorical = []string{"rent"}
	dupCase := rankRecord("dupcase", t0, "1", 3)
	dupCase.Context = []Field{{"Listing_ID", "x"}} // DuckDB's struct fields ignore case
	// An empty name made DuckDB refuse the whole model-hour group: the good
	// records flushed with it were lost.
	emptyEntity := rankRecord("emptyentity", t0, "1", 3)
	emptyEntity.Entities[0].Name = ""
	emptyFeature := rankRecord("emptyfeature", t0, "1", 3)
	emptyFeature.Features[1] = ""
	emptyContext := rankRecord("emptycontext", t0, "1", 3)
	emptyContext.Context = []Field{{"", "x"}}
	tests := []struct {
		name string
		rec  Record
		log  bool
	}{
		{"scores shorter than rows", short, false},
		{"no model", noModel, false},
		{"a feature named twice", dupFeature, true}, // found at write time
		{"an entity key named twice, in two cases", dupCase, true},
		{"an entity key without a name", emptyEntity, false},
		{"a feature without a name", emptyFeature, false},
		{"a context field without a name", emptyContext, false},
		{"good", rankRecord("good", t0, "1", 3), true},
	}
	for _, tt := range tests {
		if got := w.Log(tt.rec); got != tt.log {
			t.Errorf("%s: Log = %v, want %v", tt.name, got, tt.log)
		}
	}
	if err := w.Flush(context.Background()); err == nil || !errors.Is(err, errRecord) {
		t.Errorf("flush of a record naming a feature twice: %v, want errRecord", err)
	}
	if n := testutil.ToFloat64(w.m.dropped.WithLabelValues("ranker", "invalid")); n != 18 {
		t.Errorf("invalid rows = %v, want 18 (short, dup, dupcase and the three without names)", n)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w.Log(rankRecord("late", t0, "1", 3)) {
		t.Error("Log after Close kept the record")
	}
	if err := w.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
	rows, err := Read(context.Background(), w.opts.Dir, "", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0].RequestID != "good" {
		t.Errorf("read %d rows (%v), want the good record's 3", len(rows), rows)
	}
}

// TestSampling: the kept share is the rate, and a request is logged whole or
// not at all, shadow rows included, exactly when Sampled says so.
func TestSampling(t *testing.T) {
	const n, rate = 4000, 0.25
	w := openTest(t, Options{SampleRate: rate})
	kept := 0
	for i := range n {
		id := fmt.Sprintf("req-%d", i)
		a, b := rankRecord(id, t0, "1", 3), rankRecord(id, t0, "2", 3)
		b.Route = RouteShadow
		asked := w.Sampled(id) // what serving asks before it copies the rows
		ka, kb := w.Log(a), w.Log(b)
		if ka != kb || ka != Sampled(id, rate) || asked != ka {
			t.Fatalf("%s: primary kept %v, shadow %v, Sampled %v, Writer.Sampled %v", id, ka, kb, Sampled(id, rate), asked)
		}
		if ka {
			kept++
		}
	}
	// Binomial(4000, 0.25): sd 27; 5 sd either side.
	if kept < 1000-137 || kept > 1000+137 {
		t.Errorf("kept %d of %d requests at rate %v", kept, n, rate)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := Read(context.Background(), w.opts.Dir, "ranker", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	perRequest := map[string]int{}
	for _, r := range rows {
		perRequest[r.RequestID]++
		if r.SampleRate != rate {
			t.Fatalf("sample_rate %v, want %v", r.SampleRate, rate)
		}
	}
	if len(perRequest) != kept {
		t.Errorf("%d requests in the log, want %d", len(perRequest), kept)
	}
	for id, c := range perRequest {
		if c != 6 {
			t.Errorf("%s: %d rows, want 6 (3 primary, 3 shadow)", id, c)
		}
	}
}

// TestOptions: every invalid field is reported at once.
func TestOptions(t *testing.T) {
	_, err := Open(context.Background(), Options{BufferRows: -1, SampleRate: 2, FlushInterval: -time.Second})
	want := "predlog: dir: required (the offline store's directory)\n" +
		"predlog: buffer_rows: -1, want a positive number of rows\n" +
		"predlog: sample_rate: 2, want a share in (0, 1]\n" +
		"predlog: flush_interval: -1s, want a positive duration"
	if err == nil || err.Error() != want {
		t.Errorf("Open: %v\nwant\n%s", err, want)
	}
}

// TestFlushOnInterval: the background flusher writes without Flush.
func TestFlushOnInterval(t *testing.T) {
	w := openTest(t, Options{FlushInterval: time.Millisecond})
	w.Log(rankRecord("x", t0, "1", 2))
	waitForFile(t, w.opts.Dir, "ranker")
}

// TestSinkOneThread: the flush's DuckDB uses one thread, as documented.
func TestSinkOneThread(t *testing.T) {
	w := openTest(t, Options{})
	threads, err := w.sink.conn.Count(context.Background(), `SELECT current_setting('threads')::BIGINT`)
	if err != nil {
		t.Fatal(err)
	}
	if threads != 1 {
		t.Errorf("threads = %d, want 1", threads)
	}
}

// TestDocQueries runs the SQL examples of docs/serving.md against a log, so
// that the documentation stays true.
func TestDocQueries(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "serving.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(doc), "## Prediction log")
	_, block, ok := strings.Cut(section, "```sql\n")
	block, _, _ = strings.Cut(block, "```")
	if !ok || block == "" {
		t.Fatal("no SQL example in docs/serving.md's Prediction log section")
	}
	w := openTest(t, Options{})
	now := time.Now().UTC()
	for i := range 5 {
		w.Log(rankRecord(fmt.Sprint("r", i), now.Add(-time.Duration(i)*10*time.Minute), "1", 3))
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	block = strings.ReplaceAll(block, ".atrium/offline", w.opts.Dir)
	n := 0
	for _, q := range strings.Split(block, ";\n") {
		if strings.TrimSpace(q) == "" {
			continue
		}
		n++
		var rows int
		res, err := db.Query(q)
		if err != nil {
			t.Fatalf("%s\n%v", q, err)
		}
		for res.Next() {
			rows++
		}
		if err := res.Err(); err != nil {
			t.Fatalf("%s\n%v", q, err)
		}
		res.Close()
		if rows == 0 {
			t.Errorf("no rows from\n%s", q)
		}
	}
	if n != 3 {
		t.Errorf("ran %d queries, want the doc's 3", n)
	}
}

// TestTail returns the newest rows, oldest first.
func TestTail(t *testing.T) {
	w := openTest(t, Options{})
	for i := range 5 {
		w.Log(rankRecord(fmt.Sprint("r", i), t0.Add(time.Duration(i)*time.Minute), "1", 3))
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := Tail(context.Background(), w.opts.Dir, "ranker", time.Time{}, time.Time{}, 4)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		got = append(got, fmt.Sprintf("%s/%d", r.RequestID, r.Row))
	}
	if want := "[r3/2 r4/0 r4/1 r4/2]"; fmt.Sprint(got) != want {
		t.Errorf("tail %v, want %s", got, want)
	}
}

// TestCaseFolding: feature names that differ only in case (two versions'
// spellings) are one column, spelled as first logged.
func TestCaseFolding(t *testing.T) {
	w := openTest(t, Options{})
	a, b := rankRecord("a", t0, "1", 2), rankRecord("b", t0, "2", 2)
	b.Features = []string{"RENT", "rent_over_budget", "photos"}
	w.Log(a)
	w.Log(b)
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := Read(context.Background(), w.opts.Dir, "ranker", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 {
		t.Fatalf("read %d rows, want 4", len(rows))
	}
	// Row 0 of b: RENT 0, photos 2/3; row 1's rent is missing.
	if v, ok := rows[2].Features["rent"]; !ok || v != 0 || rows[2].Features["photos"] != 2.0/3 {
		t.Errorf("b's first row: %v, want rent 0 (logged as RENT) and photos", rows[2].Features)
	}
	for _, r := range rows {
		if _, ok := r.Features["RENT"]; ok {
			t.Errorf("a column RENT besides rent: %v", r.Features)
		}
	}
}

// TestWriteError: a group that cannot be written drops its rows, counted with
// reason write_error, and the other groups of the flush are published.
func TestWriteError(t *testing.T) {
	w := openTest(t, Options{})
	// A file where the ranker's partition directory should be.
	if err := os.MkdirAll(filepath.Join(w.opts.Dir, "predictions"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.opts.Dir, "predictions", "model=ranker"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	w.Log(rankRecord("r", t0, "1", 3))
	w.Log(classRecord("c", t0))
	if err := w.Flush(context.Background()); err == nil || !strings.Contains(err.Error(), "model ranker: 3 rows write_error") {
		t.Errorf("flush: %v, want the ranker's write error", err)
	}
	if n := testutil.ToFloat64(w.m.dropped.WithLabelValues("ranker", "write_error")); n != 3 {
		t.Errorf("write_error rows = %v, want 3", n)
	}
	rows, err := Read(context.Background(), w.opts.Dir, "", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].RequestID != "c" {
		t.Errorf("read %+v, want the churn model's 2 rows", rows)
	}
	if n := testutil.ToFloat64(w.m.buffered); n != 0 {
		t.Errorf("buffer gauge = %v after the flush, want 0", n)
	}
}

// TestFlushWhenHalfFull: crossing half the buffer starts a flush before the
// interval, and a record without a time is logged at the time of Log.
func TestFlushWhenHalfFull(t *testing.T) {
	w := openTest(t, Options{BufferRows: 10, FlushInterval: time.Hour})
	before := time.Now().UTC().Truncate(time.Microsecond)
	r := rankRecord("x", time.Time{}, "1", 6)
	if !w.Log(r) {
		t.Fatal("dropped")
	}
	waitForFile(t, w.opts.Dir, "ranker")
	rows, err := Read(context.Background(), w.opts.Dir, "ranker", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 6 || rows[0].Time.Before(before) || rows[0].Time.After(time.Now()) {
		t.Errorf("rows %d, time %v (logged after %v)", len(rows), rows[0].Time, before)
	}
}

// waitForFile waits until the background flusher has published a file of
// model. The bound only keeps a broken flusher from hanging the test run; it
// is not a performance assertion.
func waitForFile(t *testing.T, dir, model string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		files, err := Files(dir, model, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if len(files) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the background flusher published nothing in a minute")
		}
		// Not a busy poll: the cores are the flusher's.
		time.Sleep(10 * time.Millisecond)
	}
}

// TestNilWriter: a nil Writer is a log that is off.
func TestNilWriter(t *testing.T) {
	var w *Writer
	if w.Log(rankRecord("x", t0, "1", 2)) {
		t.Error("a nil Writer kept a record")
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Error(err)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Error(err)
	}
}
