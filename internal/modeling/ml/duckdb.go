package ml

import (
	"context"
	"errors"
	"strings"
	"sync"
	"unsafe"

	bindings "github.com/duckdb/duckdb-go-bindings"
	"github.com/duckdb/duckdb-go/v2/mapping"
)

// This file reads query results from DuckDB chunk by chunk, through duckdb-go's
// C-API bindings (its mapping package, and duckdb-go-bindings beneath it for
// the one call mapping does not re-export) rather than database/sql: database/sql
// boxes every value in an interface (one allocation per cell: 50 million for a
// 1M x 50 file), while a chunk hands over whole float vectors that we copy with
// one loop. The bindings are part of duckdb-go itself; only the vector layout
// below is DuckDB's documented C ABI (duckdb.h: duckdb_vector_get_data,
// duckdb_vector_get_validity, duckdb_string_t).

// duck is one in-memory DuckDB database with one connection, used to read a data
// file. Not safe for concurrent use.
type duck struct {
	db   mapping.Database
	conn mapping.Connection
}

func openDuck() (*duck, error) {
	d := &duck{}
	if mapping.Open("", &d.db) == mapping.StateError {
		return nil, errors.New("open in-memory duckdb")
	}
	if mapping.Connect(d.db, &d.conn) == mapping.StateError {
		mapping.Close(&d.db)
		return nil, errors.New("connect to in-memory duckdb")
	}
	return d, nil
}

func (d *duck) close() {
	mapping.Disconnect(&d.conn)
	mapping.Close(&d.db)
}

// duckResult is a streaming query result: DuckDB computes chunks (on its own
// threads) as they are fetched, in order.
type duckResult struct {
	ctx     context.Context
	stmt    mapping.PreparedStatement
	pending mapping.PendingResult
	res     mapping.Result
	stop    func() // ends the goroutine that interrupts the query when ctx ends
}

// query runs sql, interrupting it if ctx ends before the result is closed.
// The caller must close the result.
//
// The result streams: materialising it first (duckdb_query) made DuckDB
// copy a 1M x 50 Parquet file into a result buffer before handing out the
// first chunk, 3 to 4 times slower than streaming it (bench/linear). The C
// API's streaming call is marked deprecated, with no streaming replacement
// yet; should a later duckdb-go-bindings drop it, mapping.PendingPrepared
// (materialising) is the drop-in substitute.
func (d *duck) query(ctx context.Context, sql string) (*duckResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := &duckResult{ctx: ctx}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
			mapping.Interrupt(d.conn)
		case <-done:
		}
	}()
	r.stop = func() {
		close(done)
		wg.Wait()
	}
	fail := func(msg string) (*duckResult, error) {
		r.close()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, errors.New(msg)
	}
	if mapping.Prepare(d.conn, sql, &r.stmt) == mapping.StateError {
		return fail(mapping.PrepareError(r.stmt))
	}
	if bindings.PendingPreparedStreaming(r.stmt, &r.pending) == mapping.StateError {
		return fail(mapping.PendingError(r.pending))
	}
	if mapping.ExecutePending(r.pending, &r.res) == mapping.StateError {
		typ := mapping.ResultErrorType(&r.res)
		msg := mapping.ResultError(&r.res)
		r.close()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, &duckError{typ: typ, msg: msg}
	}
	return r, nil
}

// close releases the result; it may be called on a partly built one.
func (r *duckResult) close() {
	mapping.DestroyResult(&r.res)
	mapping.DestroyPending(&r.pending)
	mapping.DestroyPrepare(&r.stmt)
	if r.stop != nil {
		r.stop()
		r.stop = nil
	}
}

// next returns the next chunk, or ok=false at the end of the result or when
// the query failed while streaming (then err says why). The caller must
// destroy the chunk.
func (r *duckResult) next() (c duckChunk, ok bool, err error) {
	ch := mapping.FetchChunk(r.res)
	if ch.Ptr == nil {
		if msg := mapping.ResultError(&r.res); msg != "" {
			if err := r.ctx.Err(); err != nil {
				return duckChunk{}, false, err
			}
			return duckChunk{}, false, &duckError{typ: mapping.ResultErrorType(&r.res), msg: msg}
		}
		return duckChunk{}, false, nil
	}
	return duckChunk{ch: ch, n: int(mapping.DataChunkGetSize(ch))}, true, nil
}

// duckError is a failure DuckDB reported on a result, with its error type, so
// that callers classify it by type rather than by its text.
type duckError struct {
	typ mapping.ErrorType
	msg string
}

func (e *duckError) Error() string { return e.msg }

// duckChunk is one chunk of a result: up to 2048 rows of every column. Slices
// returned by its methods point into DuckDB memory and are valid until destroy.
type duckChunk struct {
	ch mapping.DataChunk
	n  int
}

func (c *duckChunk) destroy() { mapping.DestroyDataChunk(&c.ch) }

func (c *duckChunk) vector(col int) mapping.Vector {
	return mapping.DataChunkGetVector(c.ch, mapping.IdxT(col))
}

// valid returns the validity bitmask of a column (bit i set = row i not NULL),
// or nil when every row is valid.
func (c *duckChunk) valid(col int) []uint64 {
	p := mapping.VectorGetValidity(c.vector(col))
	if p == nil {
		return nil
	}
	return unsafe.Slice((*uint64)(p), (c.n+63)/64)
}

func isValid(mask []uint64, i int) bool {
	return mask == nil || mask[i>>6]&(1<<(uint(i)&63)) != 0
}

// data returns a column's values as a slice of T. T must match the column's
// DuckDB type (float32 for FLOAT, float64 for DOUBLE, int64 for BIGINT).
func data[T float32 | float64 | int64](c *duckChunk, col int) []T {
	p := mapping.VectorGetData(c.vector(col))
	return unsafe.Slice((*T)(p), c.n)
}

// duckString mirrors duckdb_string_t: 16 bytes, the length first; strings of at
// most 12 bytes are stored inline after it, longer ones behind a pointer at
// offset 8 (after a 4-byte prefix).
type duckString struct {
	length uint32
	inline [12]byte
}

// strings calls fn with each non-NULL string of a VARCHAR column. The string
// borrows DuckDB memory: copy it (strings.Clone) to keep it past destroy.
func (c *duckChunk) strings(col int, fn func(row int, s string)) {
	p := mapping.VectorGetData(c.vector(col))
	mask := c.valid(col)
	vals := unsafe.Slice((*duckString)(p), c.n)
	for i := range vals {
		if !isValid(mask, i) {
			continue
		}
		v := &vals[i]
		var s string
		if v.length <= 12 {
			s = unsafe.String(&v.inline[0], int(v.length))
		} else {
			ptr := *(*unsafe.Pointer)(unsafe.Add(unsafe.Pointer(v), 8))
			s = unsafe.String((*byte)(ptr), int(v.length))
		}
		fn(i, s)
	}
}

// quoteIdent quotes a column name for SQL.
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// quoteString quotes a string literal for SQL.
func quoteString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// duckMessage shortens a DuckDB error to its first line; DuckDB appends the
// query and a caret, which only repeat what the caller's context says.
func duckMessage(err error) string {
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return strings.TrimSpace(msg)
}
