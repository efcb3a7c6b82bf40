// Package duckvec queries an in-memory DuckDB through duckdb-go's C-API
// bindings (its mapping package) instead of database/sql, and hands each
// result over as whole column vectors read in place.
//
// database/sql hands over one boxed value per cell (an allocation each: 100
// million for two 1M x 50 files, most of the time of the row-by-row reader
// this replaced in datadrift); a result chunk hands over vectors of up to
// 2048 values. The layout read below is DuckDB's documented C ABI (duckdb.h:
// duckdb_vector_get_data, duckdb_vector_get_validity, duckdb_string_t).
//
// Users: internal/monitoring/datadrift (columns of two files), the duckdb
// offline engine's partition profiles (a run's staged files) and the
// prediction log's sink (its statements; it appends through Raw). The
// package knows nothing of them: it is a reader of query results.
package duckvec

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"github.com/duckdb/duckdb-go/v2/mapping"
)

// DB is one in-memory DuckDB database. Its connections may be used from
// different goroutines, one goroutine per connection at a time.
type DB struct{ d mapping.Database }

// Open opens a new in-memory database; Close it.
func Open() (*DB, error) {
	var d DB
	if mapping.Open("", &d.d) == mapping.StateError {
		return nil, errors.New("open in-memory duckdb")
	}
	return &d, nil
}

// Close closes the database (after its connections).
func (d *DB) Close() { mapping.Close(&d.d) }

// Conn is one connection of a DB.
type Conn struct{ c mapping.Connection }

// Connect opens a connection; Close it.
func (d *DB) Connect() (*Conn, error) {
	var c Conn
	if mapping.Connect(d.d, &c.c) == mapping.StateError {
		return nil, errors.New("connect to in-memory duckdb")
	}
	return &c, nil
}

// Close closes the connection.
func (c *Conn) Close() { mapping.Disconnect(&c.c) }

// Raw is the connection's C-API handle, for the calls this package does not
// wrap (the prediction log's data-chunk appender). It stays owned by c.
func (c *Conn) Raw() mapping.Connection { return c.c }

// Query runs sql to completion and calls fn with each chunk of its result, in
// order. If ctx ends first the query is interrupted and ctx's error returned.
// The result is materialised by DuckDB before the first chunk: a query should
// either reduce its input (counts, GROUP BY) or return columns small enough
// to hold (materialising copies them once, about 10 ms per 1M values).
func (c *Conn) Query(ctx context.Context, sql string, fn func(ch *Chunk) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { mapping.Interrupt(c.c) })
	defer stop()
	var res mapping.Result
	defer mapping.DestroyResult(&res)
	if mapping.Query(c.c, sql, &res) == mapping.StateError {
		if err := ctx.Err(); err != nil {
			return err
		}
		msg, _, _ := strings.Cut(mapping.ResultError(&res), "\n")
		return errors.New(msg)
	}
	for {
		ch := Chunk{c: mapping.FetchChunk(res)}
		if ch.c.Ptr == nil {
			return ctx.Err()
		}
		ch.n = int(mapping.DataChunkGetSize(ch.c))
		err := fn(&ch)
		mapping.DestroyDataChunk(&ch.c)
		if err != nil {
			return err
		}
	}
}

// Exec runs a statement without a result worth reading.
func (c *Conn) Exec(ctx context.Context, sql string) error {
	return c.Query(ctx, sql, func(*Chunk) error { return nil })
}

// Chunk is up to 2048 rows of a result. Slices and strings it returns point
// into DuckDB memory and are valid only during the callback that got it.
type Chunk struct {
	c mapping.DataChunk
	n int
}

// Len is the chunk's number of rows.
func (ch *Chunk) Len() int { return ch.n }

func (ch *Chunk) vector(col int) mapping.Vector {
	return mapping.DataChunkGetVector(ch.c, mapping.IdxT(col))
}

// Valid reports whether row i of col is not NULL.
func (ch *Chunk) Valid(col int) func(i int) bool {
	mask := ch.ValidityMask(col)
	if mask == nil {
		return func(int) bool { return true }
	}
	return func(i int) bool { return mask[i>>6]&(1<<(uint(i)&63)) != 0 }
}

// ValidityMask returns col's validity bits (bit i&63 of word i>>6 set: row i
// is not NULL), or nil when every row is valid. For loops over many values,
// where a closure call per row shows.
func (ch *Chunk) ValidityMask(col int) []uint64 {
	p := mapping.VectorGetValidity(ch.vector(col))
	if p == nil {
		return nil
	}
	return unsafe.Slice((*uint64)(p), (ch.n+63)/64)
}

// Values returns col as a []T; T must be the column's C type (float64 for
// DOUBLE, int64 for BIGINT, uint64 for UBIGINT). NULL rows hold garbage:
// check Valid.
func Values[T float64 | int64 | uint64](ch *Chunk, col int) []T {
	return unsafe.Slice((*T)(mapping.VectorGetData(ch.vector(col))), ch.n)
}

// String mirrors duckdb_string_t, a VARCHAR vector's element: 16 bytes,
// the length first; strings of at most 12 bytes are stored inline after it
// (zero-padded: DuckDB compares inline strings by their 16 bytes), longer
// ones behind a pointer at offset 8 (after a 4-byte prefix), which writers
// set through duckdb_vector_assign_string_element.
type String struct {
	Length uint32
	Inline [12]byte
}

// Text returns row i of a VARCHAR column, borrowing DuckDB's memory
// (strings.Clone it to keep it), and false for NULL.
func (ch *Chunk) Text(col int) func(i int) (string, bool) {
	vals := unsafe.Slice((*String)(mapping.VectorGetData(ch.vector(col))), ch.n)
	valid := ch.Valid(col)
	return func(i int) (string, bool) {
		if !valid(i) {
			return "", false
		}
		v := &vals[i]
		if v.Length <= 12 {
			return unsafe.String(&v.Inline[0], int(v.Length)), true
		}
		ptr := *(*unsafe.Pointer)(unsafe.Add(unsafe.Pointer(v), 8))
		return unsafe.String((*byte)(ptr), int(v.Length)), true
	}
}

// Count runs a query returning one BIGINT.
func (c *Conn) Count(ctx context.Context, sql string) (int64, error) {
	var n int64
	var got bool
	err := c.Query(ctx, sql, func(ch *Chunk) error {
		if ch.n > 0 && ch.Valid(0)(0) {
			n, got = Values[int64](ch, 0)[0], true
		}
		return nil
	})
	if err == nil && !got {
		err = fmt.Errorf("no count from %s", sql)
	}
	return n, err
}
