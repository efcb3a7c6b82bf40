package duckdb

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/atrium-ml/atrium/internal/data/pipeline"
	"github.com/atrium-ml/atrium/internal/data/profile"
	"github.com/atrium-ml/atrium/internal/platform/duckvec"
	"github.com/axiomhq/hyperloglog"
	"golang.org/x/sync/errgroup"
)

// profileSeed seeds the row hash that orders the partition samples, so that
// a rerun over the same rows draws the same samples.
const profileSeed = 42

// profileColumn is a feature column to profile and its SQL value expression:
// numbers as DOUBLE, the rest as VARCHAR with ” as NULL. NaN and ±Inf are
// missing values (profile's); they are dropped in Go (dayScan.addNumeric),
// where the test costs nothing next to DuckDB's isfinite and CASE on every
// value.
type profileColumn struct {
	name, kind, expr string
}

// profileColumns are the set's feature columns of the staged output (not
// the join keys nor the timestamp), in output order. Dates, times and nested
// types are not profiled.
func profileColumns(cols []pipeline.SourceColumn, keys []string) []profileColumn {
	var out []profileColumn
	for _, c := range cols {
		if c.Name == "timestamp" || slices.Contains(keys, c.Name) {
			continue
		}
		q := quoteIdent(c.Name)
		switch profile.SQLKind(c.Type) {
		case profile.Numeric:
			out = append(out, profileColumn{c.Name, profile.Numeric, fmt.Sprintf("CAST(%s AS DOUBLE)", q)})
		case profile.Categorical:
			out = append(out, profileColumn{c.Name, profile.Categorical, fmt.Sprintf("NULLIF(CAST(%s AS VARCHAR), '')", q)})
		}
	}
	return out
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// profile profiles each day of the run from its staged files (a day without
// rows gets a profile of 0 rows, so an empty day shows in the trends).
//
// Each day's files are read once by a query of their own that hands the
// profiled columns (numbers as DOUBLE, the rest as VARCHAR, see
// profileColumns) and each row's seeded hash to Go as whole vectors
// (internal/platform/duckvec), and the statistics of profile.Build are
// computed in Go: counts, min and max, mean and std (of x/max|x|, so that
// nothing overflows), 50-bin histograms (profile.Bins, the rule of
// profile.Build), HyperLogLog distinct counts, the top categories, and the
// sample (the DefaultSampleSize rows of lowest hash). Two days are profiled
// at a time on a 2-core machine, each by its own connection to a private
// in-memory DuckDB with one thread, so the cores are busy and no query
// waits on another. The SQL this replaced (grouped aggregates over all the
// staged files: 4-5 passes of per-value aggregate work in DuckDB) cost 3.5
// times the CPU: 8.7-9.0 CPU-s against 2.5-2.6 for bench/pipeline's 90 days
// of 49,000 rows x 16 columns (docs/benchmarks.md, "Partition profiles in
// `atrium run`", which also says where the CPU goes now).
//
// A day's rows are held in memory while it is profiled (8 bytes per
// numeric value, about as much again in DuckDB's result); a day of more
// than profileReadValues values is read in groups of columns, one query
// each, so memory stays bounded whatever the partition's size.
func (e *Engine) profile(ctx context.Context, conn *sql.Conn, plan *pipeline.Plan, keys []string, staged map[string][]string) (map[string]*profile.Profile, error) {
	schema, err := describe(ctx, conn, "SELECT * FROM "+outputView)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	cols := profileColumns(schema, keys)
	out := make(map[string]*profile.Profile, len(plan.Dates))
	var days []string
	for _, d := range plan.Dates {
		day, err := time.Parse(time.DateOnly, d)
		if err != nil {
			return nil, fmt.Errorf("profile %s: %w", d, err)
		}
		p := &profile.Profile{Version: profile.Version, Start: day, End: day.Add(pipeline.Day), Columns: make([]profile.Column, len(cols))}
		for i, c := range cols {
			p.Columns[i] = profile.Column{Name: c.name, Kind: c.kind}
		}
		out[d] = p
		if len(staged[d]) > 0 {
			days = append(days, d)
		}
	}
	// Without profiled columns the days are still read, to count their rows.
	if len(days) > 0 {
		footers, err := stagedRows(ctx, conn, staged)
		if err != nil {
			return nil, fmt.Errorf("profile: staged row counts: %w", err)
		}
		if err := profileDays(ctx, cols, profileHash(cols, keys), days, staged, footers, out); err != nil {
			return nil, fmt.Errorf("profile: %w", err)
		}
	}
	for _, p := range out {
		finishProfile(p)
	}
	return out, nil
}

// profileHash is the seeded hash of a whole staged row that orders the
// sample: the same rows draw the same sample however the files are read.
func profileHash(cols []profileColumn, keys []string) string {
	hashed := []string{fmt.Sprint(profileSeed), quoteIdent("timestamp")}
	for _, k := range keys {
		hashed = append(hashed, quoteIdent(k))
	}
	for _, c := range cols {
		hashed = append(hashed, quoteIdent(c.name))
	}
	return fmt.Sprintf("hash(%s)", strings.Join(hashed, ", "))
}

// stagedRows returns the rows of each day's staged files from their
// Parquet footers.
func stagedRows(ctx context.Context, conn *sql.Conn, staged map[string][]string) (map[string]int64, error) {
	var files []string
	dayOf := map[string]string{}
	for d, fs := range staged {
		for _, f := range fs {
			files = append(files, f)
			dayOf[f] = d
		}
	}
	list, err := fileList(files)
	if err != nil {
		return nil, err
	}
	rows, err := conn.QueryContext(ctx, "SELECT file_name, num_rows FROM parquet_file_metadata("+list+")")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	want := map[string]int64{}
	for rows.Next() {
		var f string
		var n int64
		if err := rows.Scan(&f, &n); err != nil {
			return nil, err
		}
		d, ok := dayOf[f]
		if !ok {
			return nil, fmt.Errorf("metadata of unknown file %s", f)
		}
		want[d] += n
	}
	return want, rows.Err()
}

// profileDays profiles days (each with staged files) into out, a few at a
// time, each worker on its own connection of a private in-memory DuckDB.
func profileDays(ctx context.Context, cols []profileColumn, hash string, days []string, staged map[string][]string, footers map[string]int64, out map[string]*profile.Profile) error {
	db, err := duckvec.Open()
	if err != nil {
		return err
	}
	defer db.Close()
	workers := min(runtime.GOMAXPROCS(0), len(days))
	conns := make([]*duckvec.Conn, workers)
	for w := range conns {
		if conns[w], err = db.Connect(); err != nil {
			return err
		}
		defer conns[w].Close()
	}
	// One DuckDB thread: each query runs on its caller's thread, and the
	// workers are the parallelism (a day's query is too small to split).
	if err := conns[0].Exec(ctx, "SET threads = 1"); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	var next atomic.Int64
	for _, c := range conns {
		g.Go(func() error {
			s := dayScan{cols: cols, hash: hash}
			for {
				k := int(next.Add(1)) - 1
				if k >= len(days) {
					return nil
				}
				d := days[k]
				if err := s.profile(gctx, c, staged[d], footers[d], out[d]); err != nil {
					return fmt.Errorf("%s: %w", d, err)
				}
			}
		})
	}
	return g.Wait()
}

// profileReadValues bounds the values (rows x columns) one query of a day
// reads: a larger day is read in groups of columns. A variable for tests.
var profileReadValues int64 = 1 << 23

// dayScan profiles one day at a time; its buffers are reused from day to
// day. Per group of columns read, j indexes the group's columns.
type dayScan struct {
	cols []profileColumn
	hash string
	// t is the sample's hash threshold: only rows of hash at most t can be
	// sampled (see sampleThreshold).
	t    uint64
	rows int64
	// Per column of the group: the non-missing values of a numeric column,
	// the value counts of a categorical one (keys cloned out of DuckDB's
	// memory), the non-missing count and the distinct-count sketch.
	vals   [][]float64
	cats   []map[string]*int64
	counts []int64
	hll    []*hyperloglog.Sketch
	// The rows that may be sampled: their hashes and, per column, their
	// values (NaN or "" when missing, which no present value is).
	candH []uint64
	candF [][]float64
	candS [][]string
	// Scratch: the rows of a chunk that may be sampled.
	candRows []int
}

// profile profiles the day whose staged files are files (rows rows in
// their footers) into p.
func (s *dayScan) profile(ctx context.Context, c *duckvec.Conn, files []string, rows int64, p *profile.Profile) error {
	list, err := fileList(files)
	if err != nil {
		return err
	}
	per := max(1, profileReadValues/max(rows, 1))
	groups := [][]int{{}}
	for i := range s.cols {
		if g := groups[len(groups)-1]; int64(len(g)) >= per {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], i)
	}
	for _, group := range groups {
		t := sampleThreshold(rows)
		for {
			if err := s.read(ctx, c, list, group, t); err != nil {
				return err
			}
			// A day's rows are its files' rows: a reader that skipped or
			// added some would profile another table.
			if s.rows != rows {
				return fmt.Errorf("read %d rows, but the Parquet footers of its files say %d", s.rows, rows)
			}
			// A threshold leaving fewer rows than the sample takes (about
			// once in 10^18) is dropped and the day read again.
			if t == math.MaxUint64 || int64(len(s.candH)) >= min(profile.DefaultSampleSize, rows) {
				break
			}
			t = math.MaxUint64
		}
		p.Rows = s.rows
		s.finish(group, p)
	}
	return nil
}

// sampleThreshold is the highest row hash that a day of rows rows keeps as
// a sample candidate: about sampleMargin() rows are left of the day, every
// row dropped having a higher hash than every row kept, so the lowest
// DefaultSampleSize hashes are among them whenever at least that many are
// left. Only those rows are held and ordered, not the whole day.
func sampleThreshold(rows int64) uint64 {
	if k := sampleMargin(); float64(rows) > k {
		return uint64(k / float64(rows) * (1 << 64))
	}
	return math.MaxUint64
}

// sampleMargin is how many rows the hash threshold keeps of a day on
// average: DefaultSampleSize plus 8 standard deviations of the binomial
// count and 100, so that fewer than DefaultSampleSize are left about once
// in 10^18.
func sampleMargin() float64 {
	k := float64(profile.DefaultSampleSize)
	return k + 8*math.Sqrt(k) + 100
}

// read reads the group's columns of the day's files (list) into the
// buffers, keeping as sample candidates the rows of hash at most t.
func (s *dayScan) read(ctx context.Context, c *duckvec.Conn, list string, group []int, t uint64) error {
	s.reset(len(group))
	s.t = t
	sel := make([]string, 0, len(group)+1)
	for _, i := range group {
		sel = append(sel, s.cols[i].expr)
	}
	sel = append(sel, s.hash)
	q := fmt.Sprintf("SELECT %s FROM read_parquet(%s, hive_partitioning = false)", strings.Join(sel, ", "), list)
	return c.Query(ctx, q, func(ch *duckvec.Chunk) error {
		s.add(ch, group)
		return nil
	})
}

// reset empties the buffers for a group of n columns.
func (s *dayScan) reset(n int) {
	s.rows = 0
	s.candH = s.candH[:0]
	for len(s.vals) < n {
		s.vals, s.candF, s.candS = append(s.vals, nil), append(s.candF, nil), append(s.candS, nil)
	}
	s.cats, s.counts, s.hll = make([]map[string]*int64, n), make([]int64, n), make([]*hyperloglog.Sketch, n)
	for j := range n {
		s.vals[j], s.candF[j], s.candS[j] = s.vals[j][:0], s.candF[j][:0], s.candS[j][:0]
		s.hll[j] = newSketch()
	}
}

// newSketch is a distinct-count sketch: 2^12 registers (a standard error
// of 1.6%), dense from the start, whose insert is a register update (the
// sparse representation's set insert cost more per value than the rest of
// the statistics) and whose estimate sums 4,096 registers, not the 16,384
// of the library's default precision.
func newSketch() *hyperloglog.Sketch {
	sk, err := hyperloglog.NewSketch(12, false)
	if err != nil {
		panic(err) // a constant precision in the library's range
	}
	return sk
}

// add takes one chunk of a group's read.
func (s *dayScan) add(ch *duckvec.Chunk, group []int) {
	n := ch.Len()
	s.candRows = s.candRows[:0]
	for r, h := range duckvec.Values[uint64](ch, len(group)) {
		if h <= s.t {
			s.candH = append(s.candH, h)
			s.candRows = append(s.candRows, r)
		}
	}
	for j, i := range group {
		if s.cols[i].kind == profile.Numeric {
			s.addNumeric(ch, j)
		} else {
			s.addText(ch, j)
		}
	}
	s.rows += int64(n)
}

// addNumeric keeps the finite values of a numeric column (NULL, NaN and
// ±Inf are missing).
func (s *dayScan) addNumeric(ch *duckvec.Chunk, j int) {
	vals, mask := duckvec.Values[float64](ch, j), ch.ValidityMask(j)
	valid := func(r int) bool {
		return (mask == nil || mask[r>>6]&(1<<(uint(r)&63)) != 0) && finite(vals[r])
	}
	buf := s.vals[j]
	if mask == nil {
		for _, x := range vals {
			if finite(x) {
				buf = append(buf, x)
			}
		}
	} else {
		for r, x := range vals {
			if mask[r>>6]&(1<<(uint(r)&63)) != 0 && finite(x) {
				buf = append(buf, x)
			}
		}
	}
	s.vals[j] = buf
	for _, r := range s.candRows {
		x := math.NaN()
		if valid(r) {
			x = vals[r]
		}
		s.candF[j] = append(s.candF[j], x)
	}
}

// finite reports whether x is neither NaN nor ±Inf (x-x is NaN for both).
func finite(x float64) bool { return x-x == 0 }

func (s *dayScan) addText(ch *duckvec.Chunk, j int) {
	text := ch.Text(j)
	if s.cats[j] == nil {
		s.cats[j] = map[string]*int64{}
	}
	cats := s.cats[j]
	for r := range ch.Len() {
		v, ok := text(r)
		if !ok {
			continue
		}
		s.counts[j]++
		s.hll[j].Insert(unsafe.Slice(unsafe.StringData(v), len(v)))
		// v borrows DuckDB's memory: only a clone may stay in the map (an
		// assignment to an existing string key would store v too).
		if n := cats[v]; n != nil {
			*n++
		} else {
			one := int64(1)
			cats[strings.Clone(v)] = &one
		}
	}
	for _, r := range s.candRows {
		v, _ := text(r)
		s.candS[j] = append(s.candS[j], strings.Clone(v))
	}
}

// finish computes the group's statistics into p's columns.
func (s *dayScan) finish(group []int, p *profile.Profile) {
	// The sample: the candidates of lowest hash, in hash order.
	order := make([]int, len(s.candH))
	for k := range order {
		order[k] = k
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(s.candH[a], s.candH[b]) })
	order = order[:min(len(order), profile.DefaultSampleSize)]
	for j, i := range group {
		col := &p.Columns[i]
		if col.Kind == profile.Numeric {
			s.numeric(col, s.vals[j], s.hll[j])
			for _, k := range order {
				if x := s.candF[j][k]; !math.IsNaN(x) {
					col.SampleFloat = append(col.SampleFloat, x)
				}
			}
			continue
		}
		col.Count, col.Distinct = s.counts[j], int64(s.hll[j].Estimate())
		col.Categories = make([]profile.Category, 0, len(s.cats[j]))
		for v, n := range s.cats[j] {
			col.Categories = append(col.Categories, profile.Category{Value: v, Count: *n})
		}
		profile.SortCategories(col.Categories)
		col.Categories = col.Categories[:min(len(col.Categories), profile.DefaultTopK)]
		if len(col.Categories) == 0 {
			col.Categories = nil
		}
		for _, k := range order {
			if v := s.candS[j][k]; v != "" {
				col.SampleString = append(col.SampleString, v)
			}
		}
	}
}

// numeric computes a numeric column's count, range, distinct-count
// estimate, moments and histogram from its non-missing values xs.
//
// Mean and std are of x/scale (scale = max |x|, profileScale) in two passes,
// so that no sum can overflow on values near the float range; bins follow
// profile.Bins, as profile.Build's.
func (s *dayScan) numeric(col *profile.Column, xs []float64, sk *hyperloglog.Sketch) {
	col.Count = int64(len(xs))
	if len(xs) == 0 {
		return
	}
	lo, hi := xs[0], xs[0]
	for _, x := range xs {
		if x < lo {
			lo = x
		}
		if x > hi {
			hi = x
		}
		if x == 0 {
			x = 0 // -0 and 0 are one value
		}
		sk.InsertHash(mix64(math.Float64bits(x)))
	}
	col.Min, col.Max, col.Distinct = lo, hi, int64(sk.Estimate())
	scale := profileScale(col)
	var sum float64
	for _, x := range xs {
		sum += x / scale
	}
	n := float64(len(xs))
	mean := sum / n
	edges := profile.HistogramEdges(lo, hi, profile.DefaultBins)
	bins := profile.NewBins(lo, hi, len(edges)-1)
	counts := make([]int64, len(edges)-1)
	var ss float64
	for _, x := range xs {
		d := x/scale - mean
		ss += d * d
		counts[bins.Index(x)]++
	}
	col.Mean = mean * scale
	if len(xs) > 1 {
		col.Std = math.Sqrt(ss/(n-1)) * scale
	}
	col.Histogram = &profile.Histogram{Edges: edges, Counts: counts}
}

// mix64 hashes a value's 8 bytes for the distinct-count sketch: the
// SplitMix64 finalizer, a bijection whose output bits each depend on every
// input bit, which is what HyperLogLog needs of its hash (the library's own,
// Insert with metro hash of a byte slice, cost an indirect call per value).
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// profileScale is what a numeric column's values are divided by for their
// moments: the largest magnitude, or 1 when that is 0.
func profileScale(col *profile.Column) float64 {
	if s := max(math.Abs(col.Min), math.Abs(col.Max)); s != 0 {
		return s
	}
	return 1
}

// finishProfile derives what the day's read leaves: missing counts, the
// order of categories and their remainder, and quantiles from the sample.
//
// Quantiles come from the sample: exact when the partition fits in it (as
// profile.Build's), otherwise within about 1/sqrt(5000) = 1.4% in rank. For
// the same reason distinct counts are HyperLogLog estimates, made exact
// from the sample when the partition fits in it.
func finishProfile(p *profile.Profile) {
	for i := range p.Columns {
		col := &p.Columns[i]
		col.Missing = p.Rows - col.Count
		if col.Kind == profile.Categorical {
			profile.SortCategories(col.Categories)
			col.Other = col.Count
			for _, c := range col.Categories {
				col.Other -= c.Count
			}
		}
		if col.Kind == profile.Numeric && col.Count > 0 {
			col.Quantiles = profile.Quantiles(col.SampleFloat)
		}
		if p.Rows <= profile.DefaultSampleSize {
			col.Distinct = distinct(col.SampleFloat, col.SampleString)
		}
	}
}

func distinct(f []float64, s []string) int64 {
	seenF, seenS := map[float64]bool{}, map[string]bool{}
	for _, v := range f {
		seenF[v] = true
	}
	for _, v := range s {
		seenS[v] = true
	}
	return int64(len(seenF) + len(seenS))
}
