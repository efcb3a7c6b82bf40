// Command predlog measures the prediction log's flush (predlog.Writer: DuckDB's
// appender, then COPY TO Parquet) against the same rows written with
// arrow-go's Parquet writer (pqarrow), the alternative considered, in the same
// run: rows per second and file size, both zstd, both synced to disk.
//
//	cd bench/predlog && go run . -rows 100000 -runs 5
//
// It is its own module so that arrow-go's Parquet dependencies (thrift,
// brotli) stay out of Atrium's go.mod.
package main

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/atrium-ml/atrium/internal/serving/predlog"
)

const (
	perRequest = 200 // rows per rank request
	numeric    = 27
	strs       = 3
)

var t0 = time.Date(2026, 12, 5, 7, 0, 0, 0, time.UTC)

func main() {
	rows := flag.Int("rows", 100_000, "rows per flush (a multiple of 200)")
	runs := flag.Int("runs", 5, "flushes per writer")
	readRows := flag.Int("read-rows", 0, "if set, measure reading features from a log of this many rows (STRUCT) against the same rows with MAP columns, instead of the flush")
	flag.Parse()
	if *readRows > 0 {
		benchRead(*readRows, *runs)
		return
	}
	recs := make([]predlog.Record, *rows/perRequest)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range recs {
		recs[i] = record(rng, fmt.Sprint("req-", i))
	}
	n := len(recs) * perRequest
	fmt.Printf("%d rows per flush (%d requests x %d rows x %d features), %d flushes each, interleaved\n", n, len(recs), perRequest, numeric+strs, *runs)
	var duck, arr []time.Duration
	var duckSize, arrSize int64
	for range *runs {
		d, s := runDuckDB(recs)
		duck, duckSize = append(duck, d), s
		d, s = runArrow(recs)
		arr, arrSize = append(arr, d), s
	}
	report := func(name string, ds []time.Duration, size int64) float64 {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		med := ds[len(ds)/2]
		rate := float64(n) / med.Seconds()
		fmt.Printf("%-34s median %7.1f ms  %9.0f rows/s  %6.2f MB\n", name, float64(med)/1e6, rate, float64(size)/1e6)
		return rate
	}
	a := report("predlog (DuckDB appender + COPY)", duck, duckSize)
	b := report("arrow-go pqarrow", arr, arrSize)
	fmt.Printf("predlog / arrow-go throughput: %.2fx\n", a/b)
}

// record is a rank request of random listings, feature values and scores.
func record(rng *rand.Rand, id string) predlog.Record {
	user := fmt.Sprint("user-", rng.IntN(100_000))
	r := predlog.Record{
		RequestID: id, Time: t0, Model: "ranker", Version: "3", Route: predlog.RouteRank, RoutingKey: user, Rows: perRequest,
		Context:  []predlog.Field{{Name: "user_id", Value: user}},
		Entities: []predlog.Column{{Name: "listing_id", Values: make([]string, perRequest)}},
		Values:   make([]float64, perRequest*numeric), Strings: make([]string, perRequest*strs), Scores: make([]float64, perRequest),
		Latency: predlog.Latency{Total: 3 * time.Millisecond, Fetch: time.Millisecond, Model: time.Millisecond},
	}
	for j := range numeric {
		r.Features = append(r.Features, fmt.Sprintf("f%02d", j))
	}
	r.Categorical = []string{"city", "kind", "neighbourhood"}
	for i := range perRequest {
		r.Entities[0].Values[i] = fmt.Sprint("listing-", rng.IntN(1_000_000))
		for j := range numeric {
			r.Values[i*numeric+j] = rng.NormFloat64() * float64(j+1)
		}
		for j := range strs {
			r.Strings[i*strs+j] = fmt.Sprint("c", rng.IntN(20*(j+1)))
		}
		r.Scores[i] = rng.Float64()
	}
	return r
}

// runDuckDB logs recs and times one flush.
func runDuckDB(recs []predlog.Record) (time.Duration, int64) {
	dir, err := os.MkdirTemp("", "predlog-bench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	w, err := predlog.Open(ctx, predlog.Options{Dir: dir, BufferRows: 1 << 30, FlushInterval: time.Hour})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range recs {
		w.Log(r)
	}
	start := time.Now()
	if err := w.Flush(ctx); err != nil {
		log.Fatal(err)
	}
	d := time.Since(start)
	if err := w.Close(ctx); err != nil {
		log.Fatal(err)
	}
	return d, treeSize(dir)
}

// runArrow writes the same rows and schema with pqarrow, then syncs.
func runArrow(recs []predlog.Record) (time.Duration, int64) {
	dir, err := os.MkdirTemp("", "predlog-bench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	featFields := make([]arrow.Field, 0, numeric+strs)
	for _, f := range recs[0].Features {
		featFields = append(featFields, arrow.Field{Name: f, Type: arrow.PrimitiveTypes.Float64, Nullable: true})
	}
	for _, f := range recs[0].Categorical {
		featFields = append(featFields, arrow.Field{Name: f, Type: arrow.BinaryTypes.String, Nullable: true})
	}
	str := func(n string) arrow.Field {
		return arrow.Field{Name: n, Type: arrow.BinaryTypes.String, Nullable: true}
	}
	f64 := func(n string) arrow.Field {
		return arrow.Field{Name: n, Type: arrow.PrimitiveTypes.Float64, Nullable: true}
	}
	i32 := func(n string) arrow.Field {
		return arrow.Field{Name: n, Type: arrow.PrimitiveTypes.Int32, Nullable: true}
	}
	schema := arrow.NewSchema([]arrow.Field{
		str("request_id"), i32("row"), i32("n_rows"),
		{Name: "timestamp", Type: &arrow.TimestampType{Unit: arrow.Microsecond}, Nullable: true},
		str("model"), str("model_version"), str("route"), str("routing_key"),
		f64("sample_rate"), f64("latency_ms"), f64("fetch_ms"), f64("model_ms"),
		{Name: "entities", Type: arrow.StructOf(str("user_id"), str("listing_id")), Nullable: true},
		{Name: "features", Type: arrow.StructOf(featFields...), Nullable: true},
		f64("score"),
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	s := func(i int) *array.StringBuilder { return b.Field(i).(*array.StringBuilder) }
	f := func(i int) *array.Float64Builder { return b.Field(i).(*array.Float64Builder) }
	in := func(i int) *array.Int32Builder { return b.Field(i).(*array.Int32Builder) }
	ents := b.Field(12).(*array.StructBuilder)
	feats := b.Field(13).(*array.StructBuilder)
	for _, r := range recs {
		ts := arrow.Timestamp(r.Time.UnixMicro())
		for row := range r.Rows {
			s(0).Append(r.RequestID)
			in(1).Append(int32(row))
			in(2).Append(int32(r.Rows))
			b.Field(3).(*array.TimestampBuilder).Append(ts)
			s(4).Append(r.Model)
			s(5).Append(r.Version)
			s(6).Append(string(r.Route))
			s(7).Append(r.RoutingKey)
			f(8).Append(1)
			f(9).Append(float64(r.Latency.Total) / 1e6)
			f(10).Append(float64(r.Latency.Fetch) / 1e6)
			f(11).Append(float64(r.Latency.Model) / 1e6)
			ents.Append(true)
			ents.FieldBuilder(0).(*array.StringBuilder).Append(r.Context[0].Value)
			ents.FieldBuilder(1).(*array.StringBuilder).Append(r.Entities[0].Values[row])
			feats.Append(true)
			for j := range numeric {
				feats.FieldBuilder(j).(*array.Float64Builder).Append(r.Values[row*numeric+j])
			}
			for j := range strs {
				feats.FieldBuilder(numeric + j).(*array.StringBuilder).Append(r.Strings[row*strs+j])
			}
			f(14).Append(r.Scores[row])
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	path := filepath.Join(dir, "out.parquet")
	out, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd), parquet.WithDictionaryDefault(true))
	fw, err := pqarrow.NewFileWriter(schema, out, props, pqarrow.DefaultWriterProps())
	if err != nil {
		log.Fatal(err)
	}
	if err := fw.Write(rec); err != nil {
		log.Fatal(err)
	}
	if err := fw.Close(); err != nil { // closes out
		log.Fatal(err)
	}
	sync, err := os.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	if err := sync.Sync(); err != nil {
		log.Fatal(err)
	}
	sync.Close()
	return time.Since(start), treeSize(dir)
}

func treeSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return err
	})
	return n
}
