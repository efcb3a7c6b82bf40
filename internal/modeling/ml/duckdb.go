package ml

import (
	"context"
	"errors"
	"strings"
	"sync"
	"unsafe"

	"github.com/duckdb/duckdb-go/v2/mapping"
)

// This file reads query results from DuckDB chunk by chunk, through duckdb-go's
// C-API bindings (the mapping package) rather than database/sql: database/sql
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

// duckResult is a materialized query result; chunks are fetched in order.
type duckResult struct {
	res mapping.Result
}

// query runs sql, interrupting it if ctx ends first. The caller must close the result.
func (d *duck) query(ctx context.Context, sql string) (*duckResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
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
	r := &duckResult{}
	state := mapping.Query(d.conn, sql, &r.res)
	close(done)
	wg.Wait()
	if state == mapping.StateError {
		msg := mapping.ResultError(&r.res)
		mapping.DestroyResult(&r.res)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, errors.New(msg)
	}
	return r, nil
}

func (r *duckResult) close() { mapping.DestroyResult(&r.res) }

// maxRows is an upper bound of the result's row count (chunks of at most 2048
// rows), used to size the destination slices once instead of growing them.
func (r *duckResult) maxRows() int {
	//lint:ignore SA1019 the replacement (streaming fetch) gives no count; the result here is materialized, for which the count is exact.
	return int(mapping.ResultChunkCount(r.res)) * int(mapping.VectorSize())
}

// next returns the next chunk, or ok=false at the end. The caller must destroy it.
func (r *duckResult) next() (duckChunk, bool) {
	ch := mapping.FetchChunk(r.res)
	if ch.Ptr == nil {
		return duckChunk{}, false
	}
	return duckChunk{ch: ch, n: int(mapping.DataChunkGetSize(ch))}, true
}

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
