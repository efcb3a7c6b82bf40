package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/demo/steps"
	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
	"github.com/atrium-ml/atrium/internal/serving/predlog"
	"github.com/atrium-ml/atrium/internal/serving/skew"
	"github.com/atrium-ml/atrium/internal/spec"
)

// checkSkew runs atrium skew on the demo project in dir over prediction logs
// of the test impressions written here, as the serving path logs them: once
// with the features the offline store holds at each impression's time (what
// a consistent online store serves) and the scores of those features, which
// must report no skew; then with the rent of one listing changed, as a value
// pushed to the online store and never to the offline store would be served,
// and the scores the model gives those rows, which must report exactly that
// listing's rows as mismatches of rent, and their predictions as different.
func checkSkew(t *testing.T, dir string) {
	ctx := context.Background()
	m, err := modelfile.Load(demoModelFile(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	test := filepath.Join(dir, "training", "test.parquet")
	logDir := filepath.Join(dir, ".atrium", "offline")
	p, err := spec.LoadProject(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := predictionLogDir(p); err != nil || d != logDir {
		t.Fatalf("prediction log in %q (%v), want %s", d, err, logDir)
	}
	clean := logTestImpressions(t, ctx, m, test, logDir, -1)
	since, until := clean.first.Add(-time.Second).Format(time.RFC3339), clean.last.Add(time.Second).Format(time.RFC3339)
	out := mustAtrium(t, dir, "skew", "--model", steps.ModelName, "--since", since, "--until", until, "--fail")
	if !strings.Contains(out, "no skew") || !strings.Contains(out, "version 1 (features: personalized_ranker), "+strconv.Itoa(clean.rows)+" rows") {
		t.Errorf("skew of a consistent log:\n%s", out)
	}
	t.Log(out)
	if err := os.RemoveAll(filepath.Join(logDir, "predictions")); err != nil {
		t.Fatal(err)
	}

	skewed := logTestImpressions(t, ctx, m, test, logDir, clean.listing)
	code, stdout, errOut := atrium(t, "--repo", dir, "--output", "json", "skew", "--model", steps.ModelName, "--since", since, "--until", until, "--fail")
	if code != exitFailure || !strings.Contains(errOut, "skew found") {
		t.Errorf("skew --fail of a skewed log = %d, stderr %q", code, errOut)
	}
	var rep skew.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("skew --output json: %v\n%s", err, stdout)
	}
	if len(rep.Versions) != 1 || rep.Rows != skewed.rows {
		t.Fatalf("report of %d rows, %d versions; logged %d rows of version 1", rep.Rows, len(rep.Versions), skewed.rows)
	}
	v := rep.Versions[0]
	for _, f := range v.Features {
		want := 0
		if f.Name == "rent" {
			want = skewed.changed
		}
		if f.Rows != skewed.rows || f.Mismatches != want {
			t.Errorf("feature %s: %d mismatches in %d rows, want %d in %d", f.Name, f.Mismatches, f.Rows, want, skewed.rows)
		}
		if f.Name == "rent" && (f.Example == nil || f.Example.Entities["listing_id"] != strconv.FormatInt(clean.listing, 10)) {
			t.Errorf("rent's example %+v is not of listing %d", f.Example, clean.listing)
		}
	}
	// The predictions differ where rent changed, if the model reads rent:
	// the tuned ranker of a tiny demo may not split on it at all.
	if pr := v.Predictions; splitsOn(m, "rent") && (pr.Mismatches == 0 || pr.Mismatches > skewed.changed || pr.MaxAbsDiff == 0) {
		t.Errorf("predictions: %+v; want mismatches among the %d changed rows", pr, skewed.changed)
	} else if !splitsOn(m, "rent") && pr.Mismatches != 0 {
		t.Errorf("predictions: %+v; want none: the model does not read rent", pr)
	}
}

// splitsOn reports whether a tree model splits on the named feature.
func splitsOn(m *modelfile.Model, feature string) bool {
	gm, ok := m.Body.(*gbdt.Model)
	if !ok {
		return true
	}
	for _, tr := range gm.Trees {
		for _, f := range tr.SplitFeature[:max(0, tr.NumLeaves-1)] {
			if m.Features[f].Name == feature {
				return true
			}
		}
	}
	return false
}

// logged describes a prediction log logTestImpressions wrote.
type logged struct {
	rows, changed int
	first, last   time.Time
	// listing is the listing whose rent a skewed log changes: the one with
	// the most test impressions.
	listing int64
}

// logTestImpressions writes one prediction log record per test impression:
// its time, user and listing, the model's features from the test set (with
// the rent of listing changed by +500 unless listing is -1) and the model's
// score of those features.
func logTestImpressions(t *testing.T, ctx context.Context, m *modelfile.Model, test, logDir string, listing int64) logged {
	t.Helper()
	data := test
	if listing >= 0 {
		data = filepath.Join(t.TempDir(), "served.parquet")
		db, err := sql.Open("duckdb", "")
		if err != nil {
			t.Fatal(err)
		}
		_, err = db.Exec(`COPY (SELECT * REPLACE (CASE WHEN listing_id = ? THEN rent + 500 ELSE rent END AS rent) FROM read_parquet(?)) TO '`+data+`' (FORMAT parquet)`, listing, test)
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	opts := m.LoadOptions()
	opts.Passthrough = []string{"session_id", "listing_id", "user_id", "ts"}
	tab, err := ml.LoadTable(ctx, data, opts)
	if err != nil {
		t.Fatal(err)
	}
	scores, err := m.Predict(tab.Dataset)
	if err != nil {
		t.Fatal(err)
	}
	w, err := predlog.Open(ctx, predlog.Options{Dir: logDir})
	if err != nil {
		t.Fatal(err)
	}
	var res logged
	perListing := map[int64]int{}
	for r := range tab.NumRows() {
		ts, err := time.Parse("2006-01-02 15:04:05", tab.Passthrough[3].Value[r])
		if err != nil {
			t.Fatalf("ts %q: %v", tab.Passthrough[3].Value[r], err)
		}
		id, _ := strconv.ParseInt(tab.Passthrough[1].Value[r], 10, 64)
		perListing[id]++
		if id == listing {
			res.changed++
		}
		rec := predlog.Record{RequestID: "req-" + tab.Passthrough[0].Value[r] + "-" + strconv.Itoa(r), Time: ts, Model: steps.ModelName, Version: "1",
			Route: predlog.RouteRank, Rows: 1, Outputs: 1, Scores: []float64{scores[r]},
			Context:  []predlog.Field{{Name: "user_id", Value: tab.Passthrough[2].Value[r]}},
			Entities: []predlog.Column{{Name: "listing_id", Values: []string{tab.Passthrough[1].Value[r]}}}}
		for _, c := range tab.Columns {
			if c.Kind == ml.Categorical {
				v := ""
				if code := c.Values[r]; !math.IsNaN(float64(code)) {
					v = c.Categories[int(code)]
				}
				rec.Categorical, rec.Strings = append(rec.Categorical, c.Name), append(rec.Strings, v)
				continue
			}
			rec.Features, rec.Values = append(rec.Features, c.Name), append(rec.Values, c.Float64[r])
		}
		if !w.Log(rec) {
			t.Fatalf("record %d not logged", r)
		}
		res.rows++
		if res.first.IsZero() || ts.Before(res.first) {
			res.first = ts
		}
		if ts.After(res.last) {
			res.last = ts
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for id, n := range perListing {
		if n > perListing[res.listing] || (n == perListing[res.listing] && id < res.listing) {
			res.listing = id
		}
	}
	if res.rows == 0 || (listing >= 0 && res.changed == 0) {
		t.Fatalf("logged %d rows, %d of listing %d", res.rows, res.changed, listing)
	}
	return res
}

// TestOfflineTwinUsage: predict --model models:/ and skew refuse flags that
// do not go together, or are missing, as usage errors naming them.
func TestOfflineTwinUsage(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"predict", "--model", "models:/ranker@champion", "--data", "x.csv", "--out", "y.csv"}, "scores --spine"},
		{[]string{"predict", "--model", "models:/ranker@champion", "--out", "y.csv"}, "--spine"},
		{[]string{"predict", "--model", "ranker.txt", "--spine", "x.csv", "--out", "y.csv"}, "go with a registered model"},
		{[]string{"predict", "--model", "models:/ranker", "--spine", "x.csv", "--out", "y.csv"}, "want models:/NAME@ALIAS or models:/NAME/VERSION"},
		{[]string{"predict", "--model", "models:/ranker@", "--spine", "x.csv", "--out", "y.csv"}, "want models:/NAME@ALIAS or models:/NAME/VERSION"},
		{[]string{"predict", "--model", "models:/ranker@champion", "--spine", "x.csv", "--out", "x.csv"}, "is the --spine file"},
		{[]string{"predict", "--model", "models:/ranker@champion", "--spine", "x.csv", "--out", "nodir/y.csv"}, "directory"},
		{[]string{"predict", "--model", "ranker.txt", "--data", "x.csv", "--out", "nodir/y.csv"}, "nodir does not exist"},
		{[]string{"skew", "--model", "ranker"}, "--since"},
		{[]string{"skew", "--model", "ranker", "--since", "yesterday"}, "--since"},
		{[]string{"skew", "--model", "ranker", "--since", "1h", "--until", "2000-01-01"}, "is not before --until"},
		{[]string{"skew", "--model", "ranker", "--since", "1h", "--tolerance", "nan"}, "--tolerance NaN"},
		{[]string{"skew", "--model", "ranker", "--since", "1h", "--tolerance", "-1"}, "--tolerance -1"},
		{[]string{"skew", "--model", "ranker", "--since", "1h", "--tolerance", "inf"}, "--tolerance +Inf"},
		{[]string{"fit", "--data", "x.csv", "--label", "y", "--task", "binary", "--out", "m.json", "--alias", "champion"}, "go with --register"},
		{[]string{"fit", "--data", "x.csv", "--label", "y", "--task", "binary", "--register", "m", "--alias", "latest"}, `alias "latest"`},
		{[]string{"fit", "--data", "x.csv", "--label", "y", "--task", "binary", "--register", "m", "--tracking-uri", "file:///tmp/mlruns"}, "http(s) URL"},
		{[]string{"fit", "--data", "x.csv", "--label", "y", "--task", "binary", "--out", "m.json", "--tracking-uri", "http://127.0.0.1:1"}, "goes with --register"},
	} {
		code, _, errOut := atrium(t, append([]string{"--repo", dir}, tt.args...)...)
		if code != exitUsage || !strings.Contains(errOut, tt.want) {
			t.Errorf("atrium %v = %d, stderr %q; want a usage error naming %q", tt.args, code, errOut, tt.want)
		}
	}
}

// checkOfflineTwinErrors checks the failures of predict --model and skew on
// the demo project: a version registered without a feature service, then
// given one explicitly; a window without logged predictions.
func checkOfflineTwinErrors(t *testing.T, dir string) {
	train, spine := filepath.Join(dir, "training", "train.parquet"), filepath.Join(dir, "training", "test-spine.csv")
	out := mustAtrium(t, dir, "fit", "--data", train, "--label", "label", "--group", "session_id", "--task", "lambdarank",
		"--ignore", "listing_id,user_id,ts,position,preferred_neighborhoods", "--param", "num_iterations=5", "--register", "untagged")
	if !strings.Contains(out, "registered  untagged version 1") || strings.Contains(out, "alias") {
		t.Errorf("fit --register untagged:\n%s", out)
	}
	scores := filepath.Join(t.TempDir(), "scores.csv")
	code, _, errOut := atrium(t, "--repo", dir, "predict", "--model", "models:/untagged/1", "--spine", spine, "--out", scores)
	if code != exitFailure || !strings.Contains(errOut, "has no atrium.feature_service tag") || !strings.Contains(errOut, "--feature-service") {
		t.Errorf("predict of a version without a feature service = %d, %q", code, errOut)
	}
	mustAtrium(t, dir, "predict", "--model", "models:/untagged/1", "--spine", spine, "--feature-service", steps.Service, "--out", scores)
	if rows := readCSVFile(t, scores); len(rows) != len(readCSVFile(t, spine)) || rows[0]["prediction"] == "" {
		t.Errorf("predict with --feature-service wrote %d rows: %v", len(rows), rows[:min(1, len(rows))])
	}
	src, err := os.ReadFile(spine)
	if err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(t.TempDir(), "empty.csv")
	if err := os.WriteFile(empty, []byte(strings.SplitN(string(src), "\n", 2)[0]+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = atrium(t, "--repo", dir, "predict", "--model", "models:/untagged/1", "--spine", empty, "--feature-service", steps.Service, "--out", scores)
	if code != exitUsage || !strings.Contains(errOut, "spine "+empty+" has no data rows") || strings.Contains(errOut, ".atrium-features") {
		t.Errorf("predict of a spine without rows = %d, %q", code, errOut)
	}
	code, _, errOut = atrium(t, "--repo", dir, "predict", "--model", "models:/untagged@champion", "--spine", spine, "--out", scores)
	if code != exitFailure || !strings.Contains(errOut, `has no alias "champion"`) {
		t.Errorf("predict through a missing alias = %d, %q", code, errOut)
	}
	code, _, errOut = atrium(t, "--repo", dir, "skew", "--model", steps.ModelName, "--since", "2000-01-01T00:00:00Z", "--until", "2000-01-02T00:00:00Z")
	if code != exitFailure || !strings.Contains(errOut, "no logged predictions") {
		t.Errorf("skew of an empty window = %d, %q", code, errOut)
	}
}

// The text report says which rows were left out and why, and lists the
// versions not rescored (deleted since, or with no entity keys) with their
// rows, beside the versions checked.
func TestWriteSkewReportLeftOut(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		rep  skew.Report
		want []string
		not  []string
	}{
		{"nothing left out", skew.Report{Model: "ranker", Rows: 4, Requests: 2, Versions: []skew.VersionReport{{Version: "1", FeatureService: "svc", Rows: 4}}},
			[]string{"version 1 (features: svc), 4 rows\n", "no skew"}, []string{"left out", "not rescored"}},
		{"infer rows, shadow rows and a deleted version", skew.Report{Model: "ranker", Rows: 15, Requests: 9, ShadowRowsLeftOut: 3, RowsWithoutKeys: 5,
			Versions:    []skew.VersionReport{{Version: "1", FeatureService: "svc", Rows: 4, RowsWithoutKeys: 5}},
			NotRescored: []skew.NotRescored{{Version: "9", Rows: 6, Reason: skew.NotRescoredDeleted}}},
			[]string{"left out: 3 rows of shadow versions (--shadow checks them)", "left out: 5 rows without the entity keys of their feature service (OIP infer requests",
				"not rescored: version 9 (deleted), 6 rows", "version 1 (features: svc), 4 rows (5 without entity keys left out)"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.rep.Since, tc.rep.Until = t0, t0.Add(time.Hour)
			var b strings.Builder
			if err := writeSkewReport(&b, &tc.rep); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("report lacks %q:\n%s", w, b.String())
				}
			}
			for _, n := range tc.not {
				if strings.Contains(b.String(), n) {
					t.Errorf("report says %q:\n%s", n, b.String())
				}
			}
		})
	}
}
