package datadrift

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"github.com/duckdb/duckdb-go/v2/mapping"
)

// This file queries DuckDB through duckdb-go's C-API bindings (its mapping
// package) instead of database/sql. database/sql hands over one boxed value
// per cell (an allocation each: 100 million for two 1M x 50 files, most of
// the time of the row-by-row reader this replaced); a result chunk hands over
// whole vectors of up to 2048 values, read here in place. The layout read
// below is DuckDB's documented C ABI (duckdb.h: duckdb_vector_get_data,
// duckdb_vector_get_validity, duckdb_string_t).

// db is one in-memory DuckDB database. Its connections may be used from
// different goroutines, one goroutine per connection at a time.
type db struct{ d mapping.Database }

func openDB() (*db, error) {
	var d db
	if mapping.Open("", &d.d) == mapping.StateError {
		return nil, errors.New("open in-memory duckdb")
	}
	return &d, nil
}

func (d *db) close() { mapping.Close(&d.d) }

// conn is one connection of db.
type conn struct{ c mapping.Connection }

func (d *db) connect() (*conn, error) {
	var c conn
	if mapping.Connect(d.d, &c.c) == mapping.StateError {
		return nil, errors.New("connect to in-memory duckdb")
	}
	return &c, nil
}

func (c *conn) close() { mapping.Disconnect(&c.c) }

// query runs sql to completion and calls fn with each chunk of its result, in
// order. If ctx ends first the query is interrupted and ctx's error returned.
// The result is materialised by DuckDB before the first chunk: every query
// here either reduces its input (counts, GROUP BY) or returns one DOUBLE
// column, which materialising copies once (about 10 ms per 1M values).
func (c *conn) query(ctx context.Context, sql string, fn func(ch *chunk) error) error {
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
		ch := chunk{c: mapping.FetchChunk(res)}
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

// exec runs a statement without a result worth reading.
func (c *conn) exec(ctx context.Context, sql string) error {
	return c.query(ctx, sql, func(*chunk) error { return nil })
}

// chunk is up to 2048 rows of a result. Slices and strings it returns point
// into DuckDB memory and are valid only during the callback that got it.
type chunk struct {
	c mapping.DataChunk
	n int
}

func (ch *chunk) vector(col int) mapping.Vector {
	return mapping.DataChunkGetVector(ch.c, mapping.IdxT(col))
}

// valid reports whether row i of col is not NULL.
func (ch *chunk) valid(col int) func(i int) bool {
	p := mapping.VectorGetValidity(ch.vector(col))
	if p == nil {
		return func(int) bool { return true }
	}
	mask := unsafe.Slice((*uint64)(p), (ch.n+63)/64)
	return func(i int) bool { return mask[i>>6]&(1<<(uint(i)&63)) != 0 }
}

// values returns col as a []T; T must be the column's C type (float64 for
// DOUBLE, int64 for BIGINT). NULL rows hold garbage: check valid.
func values[T float64 | int64](ch *chunk, col int) []T {
	return unsafe.Slice((*T)(mapping.VectorGetData(ch.vector(col))), ch.n)
}

// duckString mirrors duckdb_string_t: 16 bytes, the length first; strings of
// at most 12 bytes are stored inline after it, longer ones behind a pointer at
// offset 8 (after a 4-byte prefix).
type duckString struct {
	length uint32
	inline [12]byte
}

// text returns row i of a VARCHAR column, borrowing DuckDB's memory
// (strings.Clone it to keep it), and false for NULL.
func (ch *chunk) text(col int) func(i int) (string, bool) {
	vals := unsafe.Slice((*duckString)(mapping.VectorGetData(ch.vector(col))), ch.n)
	valid := ch.valid(col)
	return func(i int) (string, bool) {
		if !valid(i) {
			return "", false
		}
		v := &vals[i]
		if v.length <= 12 {
			return unsafe.String(&v.inline[0], int(v.length)), true
		}
		ptr := *(*unsafe.Pointer)(unsafe.Add(unsafe.Pointer(v), 8))
		return unsafe.String((*byte)(ptr), int(v.length)), true
	}
}

// count runs a query returning one BIGINT.
func (c *conn) count(ctx context.Context, sql string) (int64, error) {
	var n int64
	var got bool
	err := c.query(ctx, sql, func(ch *chunk) error {
		if ch.n > 0 && ch.valid(0)(0) {
			n, got = values[int64](ch, 0)[0], true
		}
		return nil
	})
	if err == nil && !got {
		err = fmt.Errorf("no count from %s", sql)
	}
	return n, err
}
