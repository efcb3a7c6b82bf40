package steps

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/atrium-ml/atrium/internal/data/catalog"
	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/pipeline"
	"github.com/atrium-ml/atrium/internal/data/profile/profiledb"
	"github.com/atrium-ml/atrium/internal/data/retrieval"
	"github.com/atrium-ml/atrium/internal/demo"
	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/platform/progress"
	"github.com/atrium-ml/atrium/internal/spec"
)

// apply validates features/*.yaml (structure, then SQL bound by the offline
// engine) and stores them as a catalog version, like `atrium apply`.
func (r *runner) apply(ctx context.Context) error {
	r.command("apply")
	p, err := r.Stores.Project()
	if err != nil {
		return err
	}
	feats, problems, err := spec.LoadFeaturesWithProblems(p.Dir)
	if err != nil {
		return err
	}
	eng, err := r.Stores.Offline(feats)
	if err != nil {
		return err
	}
	if v, ok := eng.(offline.Validator); ok {
		sqlProblems, _ := v.ValidateSQL(ctx, feats)
		problems = append(problems, sqlProblems...)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%d problem(s) in the feature definitions:\n%w", len(problems), problems)
	}
	db, err := r.Stores.Meta()
	if err != nil {
		return err
	}
	diff, err := catalog.Apply(ctx, db, feats)
	if err != nil {
		return err
	}
	w := r.indented()
	defer w.Flush()
	return diff.WriteText(w, false)
}

// runSets computes each feature set over its range, like `atrium run`, then
// lists the runs like `atrium runs`.
func (r *runner) runSets(ctx context.Context) error {
	db, l, eng, err := r.applied(ctx)
	if err != nil {
		return err
	}
	for _, s := range r.Config.FeatureSetRanges() {
		r.command("run", s.Set, "--start", s.Start.Format(time.DateOnly), "--end", s.End.Format(time.DateOnly))
		bar := progress.New(r.Progress, int64(len(offline.RunStages)), "run "+s.Set, "stages")
		req := offline.RunRequest{Set: s.Set, Start: s.Start, End: s.End, Progress: func(string) { bar.Add(1) }}
		run, runErr := pipeline.Execute(ctx, db, eng, req, l.Version)
		bar.Finish()
		if runErr == nil && run.Profiles != nil {
			runErr = profiledb.Save(ctx, db, run.Set, run.ID, run.Profiles, run.FinishedAt)
		}
		if run != nil {
			w := r.indented()
			err := run.WriteText(w)
			w.Flush()
			if err != nil {
				return err
			}
		}
		if runErr != nil {
			return fmt.Errorf("run %s: %w", s.Set, runErr)
		}
	}
	r.command("runs")
	runs, err := pipeline.ListRuns(ctx, db, pipeline.RunFilter{Limit: 50})
	if err != nil {
		return err
	}
	w := r.indented()
	defer w.Flush()
	return pipeline.WriteRunsTable(w, runs)
}

// applied returns the metadata DB, the applied catalog and the offline
// engine opened with it.
func (r *runner) applied(ctx context.Context) (*meta.DB, *catalog.Loaded, offline.Engine, error) {
	db, err := r.Stores.Meta()
	if err != nil {
		return nil, nil, nil, err
	}
	l, err := catalog.Load(ctx, db)
	if err != nil {
		return nil, nil, nil, err
	}
	eng, err := r.Stores.Offline(l.Features)
	return db, l, eng, err
}

// loadDefinitions loads the applied catalog and the online definitions of its sets.
func loadDefinitions(ctx context.Context, st Stores) (*catalog.Loaded, retrieval.Definitions, error) {
	db, err := st.Meta()
	if err != nil {
		return nil, retrieval.Definitions{}, err
	}
	l, err := catalog.Load(ctx, db)
	if err != nil {
		return nil, retrieval.Definitions{}, err
	}
	keyTypes, err := retrieval.LoadKeyTypes(ctx, db)
	if err != nil {
		return nil, retrieval.Definitions{}, err
	}
	defs, err := retrieval.DefinitionsFromSpec(l.Features, keyTypes)
	return l, defs, err
}

// materialize publishes every set's latest rows as of the end of the data,
// like `atrium materialize --end`.
func (r *runner) materialize(ctx context.Context) error {
	end := r.Config.End()
	r.command("materialize", "--end", end.Format(time.RFC3339))
	db, _, eng, err := r.applied(ctx)
	if err != nil {
		return err
	}
	_, defs, err := loadDefinitions(ctx, r.Stores)
	if err != nil {
		return err
	}
	store, err := r.Stores.Online()
	if err != nil {
		return err
	}
	m := retrieval.Materializer{Store: store, Meta: db, Engine: eng, Progress: r.Progress, Logger: r.Logger}
	results, err := m.Materialize(ctx, defs.Sets, end)
	w := r.indented()
	defer w.Flush()
	for _, res := range results {
		fmt.Fprintln(w, res.String())
	}
	return err
}

// joinHistorical point-in-time joins spine with req's features into out, like
// `atrium historical`, and prints the command and its result.
func (r *runner) joinHistorical(ctx context.Context, req retrieval.HistoricalRequest) error {
	args := []string{"historical", "--spine", req.Spine}
	if req.Service != "" {
		args = append(args, "--service", req.Service)
	} else {
		args = append(args, "--features", strings.Join(req.Features, ","))
	}
	r.command(append(args, "--out", req.Out)...)
	_, l, eng, err := r.applied(ctx)
	if err != nil {
		return err
	}
	res, err := retrieval.Historical(ctx, eng, l.Features, req)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.Out, "        wrote %d rows x %d columns (%d features) to %s\n", res.Rows, len(res.Columns), len(res.Features), req.Out)
	return nil
}

// historical writes spines of impressions (training days, then the last test
// days), joins them with the feature service at each impression's time, and
// checks a point-in-time join against the generated truth.
func (r *runner) historical(ctx context.Context) error {
	testFrom, err := r.Config.TestDays()
	if err != nil {
		return err
	}
	r.testFrom = testFrom
	dir := filepath.Join(r.Dir, "training")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, part := range []struct {
		name     string
		from, to int
		out      *string
	}{{"train", 1, testFrom, &r.trainSet}, {"test", testFrom, r.Config.Days, &r.testSet}} {
		spine := filepath.Join(dir, part.name+"-spine.csv")
		sum, err := r.market.WriteSpine(ctx, spine, part.from, part.to)
		if err != nil {
			return err
		}
		fmt.Fprintf(r.Out, "      %s spine: %s impressions of %s sessions, %s to %s (%s)\n", part.name, demo.Count(sum.Rows), demo.Count(sum.Sessions),
			r.day(part.from), r.day(part.to-1), r.rel(spine))
		*part.out = filepath.Join(dir, part.name+".parquet")
		if err := r.joinHistorical(ctx, retrieval.HistoricalRequest{Spine: spine, Service: Service, Out: *part.out}); err != nil {
			return err
		}
	}
	return r.pointInTimeProbe(ctx, dir)
}

// pointInTimeProbe joins listing_profile:rent for one listing at three times:
// just before it was published (no row yet: null), when it was published (its
// first rent) and after its first price change (the new rent), and compares
// with the generated truth.
func (r *runner) pointInTimeProbe(ctx context.Context, dir string) error {
	l := r.market.ProbeListing()
	if l == nil {
		fmt.Fprintf(r.Out, "      point-in-time probe: no listing was published and repriced during the sessions at this size\n")
		return nil
	}
	probes := []struct {
		at   time.Time
		want string
	}{
		{l.Prices[0].At.Add(-time.Second), ""},
		{l.Prices[0].At, fmt.Sprint(l.Prices[0].Rent)},
		{l.Prices[1].At.Add(time.Minute), fmt.Sprint(l.Prices[1].Rent)},
	}
	spine := filepath.Join(dir, "probe-spine.csv")
	var b strings.Builder
	b.WriteString("listing_id,ts\n")
	for _, p := range probes {
		fmt.Fprintf(&b, "%d,%s\n", l.ID, p.at.Format(demo.TimeLayout))
	}
	if err := os.WriteFile(spine, []byte(b.String()), 0o644); err != nil {
		return err
	}
	out := filepath.Join(dir, "probe.csv")
	fmt.Fprintf(r.Out, "      point-in-time probe: listing %d, published %s at %v, repriced %s to %v\n",
		l.ID, l.Prices[0].At.Format(demo.TimeLayout), l.Prices[0].Rent, l.Prices[1].At.Format(demo.TimeLayout), l.Prices[1].Rent)
	if err := r.joinHistorical(ctx, retrieval.HistoricalRequest{Spine: spine, Features: []string{"listing_profile:rent"}, Out: out}); err != nil {
		return err
	}
	rows, err := ReadCSV(out)
	if err != nil {
		return err
	}
	if len(rows) != len(probes) {
		return fmt.Errorf("point-in-time probe: %d rows back, want %d", len(rows), len(probes))
	}
	for i, p := range probes {
		got := rows[i]["rent"]
		if got != "" {
			if v, err := strconv.ParseFloat(got, 64); err == nil {
				got = fmt.Sprint(v)
			}
		}
		verdict := "ok"
		if got != p.want {
			verdict = "WRONG"
		}
		fmt.Fprintf(r.Out, "        at %s  rent %-6s (truth %-6s) %s\n", p.at.Format(demo.TimeLayout), orNull(got), orNull(p.want), verdict)
		if got != p.want {
			return fmt.Errorf("point-in-time probe: listing %d at %s: rent %s, truth %s", l.ID, p.at.Format(demo.TimeLayout), orNull(got), orNull(p.want))
		}
	}
	return nil
}

func orNull(s string) string {
	if s == "" {
		return "null"
	}
	return s
}

// ReadCSV reads a small CSV file into rows of named fields.
func ReadCSV(path string) ([]map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%s: empty file, want a header", path)
	}
	rows := make([]map[string]string, 0, len(recs)-1)
	for _, rec := range recs[1:] {
		row := make(map[string]string, len(rec))
		for i, name := range recs[0] {
			row[name] = rec[i]
		}
		rows = append(rows, row)
	}
	return rows, nil
}
