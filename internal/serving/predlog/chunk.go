package predlog

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/atrium-ml/atrium/internal/platform/duckvec"
	"github.com/duckdb/duckdb-go/v2/mapping"
)

// This file appends a group's rows to the stage table through duckdb-go's
// C-API bindings (its mapping package), a data chunk of up to 2048 rows at a
// time, writing values straight into the chunk's vectors. duckdb-go's
// Appender.AppendRow takes one driver.Value per cell: every float64 boxed into
// an interface, a heap allocation each (about 41 per logged row, 4 million
// per flush of 100,000 rank rows), garbage that request goroutines then help
// collect (GC assists: the serving tail, docs/benchmarks.md). Here a flush
// allocates per group and per column, not per value, and the values live in
// DuckDB's memory, outside the Go heap. The layout written is DuckDB's
// documented C ABI (duckdb.h: duckdb_vector_get_data, duckdb_vector_get_validity,
// duckdb_string_t, duckdb_list_entry).

// listEntry mirrors duckdb_list_entry: a row's slice of a LIST's child vector.
type listEntry struct {
	offset, length uint64
}

// stageColumn is one vector of the chunk being filled; data and mask point
// into DuckDB memory and are refreshed after every reset of the chunk.
type stageColumn struct {
	vec      mapping.Vector
	data     unsafe.Pointer
	mask     []uint64 // validity: bit i of word i/64 set = row i not NULL
	nullable bool
	str      bool
}

// chunkAppender appends rows to the stage table through one data chunk.
type chunkAppender struct {
	app   mapping.Appender
	chunk mapping.DataChunk
	size  int // rows the chunk holds
	n     int // rows filled
	cols  []stageColumn
	buf   []byte // scratch for numbers formatted into string columns
}

// Column positions of the stage table (see fixedColumns).
const (
	colRequestID = iota
	colRow
	colNRows
	colTimestamp
	colModel
	colVersion
	colRoute
	colRoutingKey
	colSampleRate
	colLatency
	colFetch
	colModelMs
)

// newChunkAppender opens an appender on the stage table, whose columns are
// the fixed ones, l's entity keys (VARCHAR), l's features (DOUBLE or VARCHAR
// by kind), score DOUBLE and scores DOUBLE[].
func newChunkAppender(conn mapping.Connection, l *layout) (*chunkAppender, error) {
	a := &chunkAppender{}
	if mapping.AppenderCreateExt(conn, "", "", stageTable, &a.app) == mapping.StateError {
		err := errors.New(mapping.AppenderError(a.app))
		mapping.AppenderDestroy(&a.app)
		return nil, err
	}
	varchar := mapping.CreateLogicalType(mapping.TypeVarchar)
	double := mapping.CreateLogicalType(mapping.TypeDouble)
	integer := mapping.CreateLogicalType(mapping.TypeInteger)
	timestamp := mapping.CreateLogicalType(mapping.TypeTimestamp)
	list := mapping.CreateListType(double)
	defer func() {
		for _, t := range []*mapping.LogicalType{&varchar, &double, &integer, &timestamp, &list} {
			mapping.DestroyLogicalType(t)
		}
	}()
	types := []mapping.LogicalType{
		varchar, integer, integer, timestamp, varchar, varchar, varchar, varchar,
		double, double, double, double,
	}
	a.cols = make([]stageColumn, 0, len(fixedColumns)+len(l.entities)+len(l.features)+2)
	for i := range types {
		a.cols = append(a.cols, stageColumn{nullable: i == colRoutingKey, str: types[i] == varchar})
	}
	for range l.entities {
		types = append(types, varchar)
		a.cols = append(a.cols, stageColumn{nullable: true, str: true})
	}
	for _, kind := range l.kinds {
		if kind == kindString {
			types = append(types, varchar)
		} else {
			types = append(types, double)
		}
		a.cols = append(a.cols, stageColumn{nullable: true, str: kind == kindString})
	}
	types = append(types, double, list)
	a.cols = append(a.cols, stageColumn{nullable: true}, stageColumn{nullable: true})
	a.chunk = mapping.CreateDataChunk(types)
	a.size = int(mapping.VectorSize())
	a.reset()
	return a, nil
}

// reset readies the chunk for the next rows: every nullable column starts all
// NULL (and, for strings, zeroed), so a row that lacks a column needs no write.
func (a *chunkAppender) reset() {
	mapping.DataChunkReset(a.chunk)
	a.n = 0
	words := (a.size + 63) / 64
	for i := range a.cols {
		c := &a.cols[i]
		c.vec = mapping.DataChunkGetVector(a.chunk, mapping.IdxT(i))
		mapping.VectorEnsureValidityWritable(c.vec)
		c.data = mapping.VectorGetData(c.vec)
		c.mask = unsafe.Slice((*uint64)(mapping.VectorGetValidity(c.vec)), words)
		if c.nullable {
			clear(c.mask)
			if c.str {
				clear(unsafe.Slice((*duckvec.String)(c.data), a.size))
			}
		}
	}
}

// flush appends the filled rows to the table and resets the chunk.
func (a *chunkAppender) flush() error {
	if a.n == 0 {
		return nil
	}
	mapping.DataChunkSetSize(a.chunk, mapping.IdxT(a.n))
	if mapping.AppendDataChunk(a.app, a.chunk) == mapping.StateError {
		return errors.New(mapping.AppenderError(a.app))
	}
	a.reset()
	return nil
}

// close appends what is left and releases the chunk and the appender; the
// rows are in the table once it returns nil.
func (a *chunkAppender) close() error {
	err := a.flush()
	if err == nil && mapping.AppenderClose(a.app) == mapping.StateError {
		err = errors.New(mapping.AppenderError(a.app))
	}
	mapping.DestroyDataChunk(&a.chunk)
	if mapping.AppenderDestroy(&a.app) == mapping.StateError && err == nil {
		err = errors.New("destroy appender")
	}
	return err
}

func (c *stageColumn) valid(i int) { c.mask[i>>6] |= 1 << (uint(i) & 63) }

func setAt[T int32 | int64 | float64](c *stageColumn, i int, v T) {
	*(*T)(unsafe.Add(c.data, uintptr(i)*unsafe.Sizeof(v))) = v
}

// setString writes s to row i of a VARCHAR column and marks it valid.
func (c *stageColumn) setString(i int, s string) {
	if len(s) <= 12 {
		d := (*duckvec.String)(unsafe.Add(c.data, uintptr(i)*unsafe.Sizeof(duckvec.String{})))
		d.Length = uint32(len(s))
		n := copy(d.Inline[:], s)
		clear(d.Inline[n:])
	} else {
		mapping.VectorAssignStringElement(c.vec, mapping.IdxT(i), s)
	}
	c.valid(i)
}

// appendRecords appends every row of l's records, NULL where a record lacks a
// column of the group or a value is missing.
func (a *chunkAppender) appendRecords(l *layout, rate float64) error {
	for _, r := range l.recs {
		for from := 0; from < r.Rows; {
			k := min(r.Rows-from, a.size-a.n)
			if err := a.fill(l, r, rate, from, k); err != nil {
				return err
			}
			from += k
			a.n += k
			if a.n == a.size {
				if err := a.flush(); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// fill writes rows [from, from+k) of r to the chunk's rows [a.n, a.n+k),
// column by column.
func (a *chunkAppender) fill(l *layout, r *Record, rate float64, from, k int) error {
	at := a.n
	cols := a.cols
	ts := r.Time.UTC().Truncate(time.Microsecond).UnixMicro()
	for j := range k {
		i := at + j
		cols[colRequestID].setString(i, r.RequestID)
		setAt(&cols[colRow], i, int32(from+j))
		setAt(&cols[colNRows], i, int32(r.Rows))
		setAt(&cols[colTimestamp], i, ts)
		cols[colModel].setString(i, r.Model)
		cols[colVersion].setString(i, r.Version)
		cols[colRoute].setString(i, string(r.Route))
		if r.RoutingKey != "" {
			cols[colRoutingKey].setString(i, r.RoutingKey)
		}
		setAt(&cols[colSampleRate], i, rate)
		setAt(&cols[colLatency], i, millis(r.Latency.Total))
		setAt(&cols[colFetch], i, millis(r.Latency.Fetch))
		setAt(&cols[colModelMs], i, millis(r.Latency.Model))
	}
	ent0 := len(fixedColumns)
	feat0 := ent0 + len(l.entities)
	for _, f := range r.Context {
		c := &cols[ent0+l.entityAt[strings.ToLower(f.Name)]]
		for j := range k {
			c.setString(at+j, f.Value)
		}
	}
	for _, e := range r.Entities {
		c := &cols[ent0+l.entityAt[strings.ToLower(e.Name)]]
		for j, v := range e.Values[from : from+k] {
			c.setString(at+j, v)
		}
	}
	nf := len(r.Features)
	for fi, name := range r.Features {
		c := &cols[feat0+l.featAt[strings.ToLower(name)]]
		for j := range k {
			v := r.Values[(from+j)*nf+fi]
			switch {
			case math.IsNaN(v):
			case c.str:
				// A feature numeric here and categorical in another record
				// of the group: its column is VARCHAR.
				a.buf = strconv.AppendFloat(a.buf[:0], v, 'g', -1, 64)
				c.setString(at+j, unsafe.String(unsafe.SliceData(a.buf), len(a.buf)))
			default:
				setAt(c, at+j, v)
				c.valid(at + j)
			}
		}
	}
	nc := len(r.Categorical)
	for ci, name := range r.Categorical {
		c := &cols[feat0+l.featAt[strings.ToLower(name)]]
		for j := range k {
			if v := r.Strings[(from+j)*nc+ci]; v != "" {
				c.setString(at+j, v)
			}
		}
	}
	score := &cols[feat0+len(l.features)]
	outs := r.outputs()
	if outs == 1 {
		for j, v := range r.Scores[from : from+k] {
			setAt(score, at+j, v)
			score.valid(at + j)
		}
		return nil
	}
	return a.fillScores(&cols[feat0+len(l.features)+1], r.Scores[from*outs:(from+k)*outs], outs, at)
}

// fillScores writes k rows of outs scores each to the scores LIST column,
// from chunk row at: the values go to the end of the list's child vector.
func (a *chunkAppender) fillScores(c *stageColumn, scores []float64, outs, at int) error {
	base := uint64(mapping.ListVectorGetSize(c.vec))
	size := base + uint64(len(scores))
	if mapping.ListVectorReserve(c.vec, mapping.IdxT(size)) == mapping.StateError ||
		mapping.ListVectorSetSize(c.vec, mapping.IdxT(size)) == mapping.StateError {
		return fmt.Errorf("scores: reserve %d values", size)
	}
	// The child's memory may move when it grows: take its address after.
	child := mapping.ListVectorGetChild(c.vec)
	copy(unsafe.Slice((*float64)(mapping.VectorGetData(child)), size)[base:], scores)
	entries := unsafe.Slice((*listEntry)(c.data), a.size)
	for j := range len(scores) / outs {
		entries[at+j] = listEntry{offset: base + uint64(j*outs), length: uint64(outs)}
		c.valid(at + j)
	}
	return nil
}
