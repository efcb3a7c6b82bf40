// Package predlog is the prediction log: every scored request, written
// asynchronously to the offline store as hourly Parquet files that DuckDB and
// the monitoring layer read.
//
// # Files
//
// A Writer opened on the offline store's directory DIR publishes
//
//	DIR/predictions/model=<name>/date=YYYY-MM-DD/hour=HH/<unix-nanos>-<pid>-<random>.parquet
//
// Hive-style partitions, by the UTC hour of each request's time. Every flush
// writes a new file per model and hour that it has rows for; a published file
// is never rewritten or appended to. A file is written under a hidden temporary
// name in its final directory (".<id>.parquet.tmp"), synced, and renamed:
// readers (the "*.parquet" glob, Files) never see a half-written file, and Open
// removes the temporary files unwritten for ten flush intervals (at least 15
// minutes): a dead writer's, whatever container or host it ran in. <name> is the
// model name with every byte outside [A-Za-z0-9_-] (and a leading '.')
// percent-encoded; the exact name is also a column of the file.
//
// The files use encodings of the Parquet 2.0 format (PARQUET_VERSION V2 of
// DuckDB's writer): doubles BYTE_STREAM_SPLIT, integers DELTA_BINARY_PACKED,
// zstd-compressed, no dictionary pages. DuckDB reads them (monitoring and the
// skew check read through it); so does any reader of those encodings.
//
// # Schema (format version 1, in the files' key-value metadata "atrium_prediction_log")
//
// One Parquet row per scored row (a rank request of 200 candidates is 200 rows):
//
//	request_id    VARCHAR    the request's id (X-Request-Id); shared by a request's primary and shadow rows
//	row           INTEGER    the row's index in the request, from 0
//	n_rows        INTEGER    the request's number of rows
//	timestamp     TIMESTAMP  request time, UTC, microseconds (named like the offline store's event time)
//	model         VARCHAR    registered model name
//	model_version VARCHAR    the version that scored the row
//	route         VARCHAR    infer | predict | rank | shadow
//	routing_key   VARCHAR    the key that chose the version (canary split), NULL if none
//	sample_rate   DOUBLE     the sampling rate the row was kept at: count(*) / sample_rate estimates volume
//	latency_ms    DOUBLE     the request's total latency; fetch_ms and model_ms its feature-fetch and model parts
//	fetch_ms      DOUBLE
//	model_ms      DOUBLE
//	entities      STRUCT(<key> VARCHAR, ...)             entity keys of the row, request-level context keys (user_id) included
//	features      STRUCT(<feature> DOUBLE|VARCHAR, ...)  the values the model scored; NULL is a missing value
//	score         DOUBLE     the prediction of a single-output model (NULL for multiclass)
//	scores        DOUBLE[]   a multiclass model's per-class predictions (NULL for single-output)
//
// A file lacks entities when none of its rows has an entity key (infer with
// tensors), features when none has a feature, and scores or score when no row
// needs it; read with union_by_name, absent columns are NULL.
//
// # Why a STRUCT of features, not a MAP, nor top-level columns
//
// Models differ in their features and a model's features change between
// versions. A MAP(VARCHAR, DOUBLE) would keep one schema, but Parquet stores a
// map as repeated key and value lists: reading one feature reads every
// feature's keys and values, there are no per-feature statistics, and drift
// over a day of traffic (tens of millions of rows x 30 features) pays for it.
// Top-level columns per feature are fast but share the namespace of the fixed
// columns (a feature named "score" or "timestamp"). A STRUCT is both: each
// field is its own Parquet column (read alone, with min/max statistics), names
// cannot collide, and DuckDB's read_parquet(union_by_name = true) unions the
// fields of files written by different versions (a field a file lacks reads
// NULL); on a million logged rows, DuckDB computes one feature's statistics
// 8x faster from the STRUCT than from a MAP of the same values
// (docs/benchmarks.md). SQL reads it as features.rent, and unnest(features) or
// unnest(entities) turns it into columns, which is how the skew check builds
// its spine. Missing values are NULL, as the offline store's point-in-time
// joins return them, so logged and recomputed features compare directly.
// Within one file, a row of a version without some feature of another version
// reads NULL for it: monitoring restricts a feature to the versions that take
// it (the registry knows a version's inputs).
//
// Entity keys are strings (an integer key is logged as its decimal text): the
// skew check casts them to the entity's type from the feature specs. DuckDB's
// struct field names ignore case: feature or key names that differ only in
// case are one field, spelled as first written.
//
// # Writing
//
// Log never blocks and does no I/O: it decides sampling (a hash of the
// request id, so a request is logged whole or not at all, and its primary and
// shadow rows together), and appends the record to a buffer bounded in rows
// (waiting and being written); a record that does not fit is dropped whole and
// its rows counted in atrium_prediction_log_dropped_rows_total{model,reason}.
// The Writer takes ownership of a logged record's slices: the caller must not
// modify them afterwards. Once a record is written, its Values array is
// handed out again by Writer.Floats, which the serving layer fills a logged
// request's feature values into: at a high rate the log would otherwise
// allocate as much as the request path itself. A background goroutine flushes every FlushInterval,
// when the buffer is half full, and at Close, through an in-memory DuckDB
// (rows appended by data chunk through its C API, then COPY TO Parquet) limited
// to one thread, on a thread of the SCHED_IDLE policy (Linux), so that a flush
// runs on the cores the request path leaves idle instead of taking them (when
// the cores are busy the log falls behind, and what overflows the buffer is
// dropped and counted); the last flush, at Close, runs at normal priority.
// Values are written into DuckDB's vectors, not boxed one by one, so a
// flush leaves almost no garbage for the request path's collector.
//
// Why DuckDB writes the files rather than arrow-go's Parquet writer: both are
// one order of magnitude or more above need (a busy server logs thousands of
// rows per second; bench/predlog measured 43,000 to 126,000 rows/s of 30
// features for this writer on a loaded 2-core machine, 1.06x to 1.36x
// arrow-go's in the same runs, with files 25% smaller); DuckDB is already
// linked for the offline store, whose Parquet it writes the same way; and
// arrow-go's writer would add thrift and brotli to go.mod.
//
// Crash window: a process that dies loses the rows logged since the last
// completed flush, at most FlushInterval of traffic (or the buffer's
// capacity), and never leaves a partial file visible. A flush that fails
// (disk full) drops its rows, counted with reason "write_error".
//
// # Reading
//
// Files lists the published files of a time range (pruning partitions by
// directory name), Source wraps them in a DuckDB table expression, and Read
// and Tail return typed rows. Any DuckDB reads the log directly:
//
//	SELECT * FROM read_parquet('DIR/predictions/model=ranker/**/*.parquet',
//	    hive_partitioning = true, union_by_name = true)
//	WHERE date >= DATE '2026-12-05' AND "timestamp" >= TIMESTAMP '2026-12-05 07:00:00'
package predlog
