package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/pipeline"
	"github.com/atrium-ml/atrium/internal/data/quality"
)

var _ pipeline.SourceSpanner = (*Engine)(nil)

// SourceSpan implements pipeline.SourceSpanner: the min and max event time of
// the set's source files (one scan of the timestamp column).
func (e *Engine) SourceSpan(ctx context.Context, set string) (first, last time.Time, ok bool, err error) {
	fs, _, err := e.set(set)
	if err != nil {
		return first, last, false, fmt.Errorf("source span: %w", err)
	}
	src := e.feats.Source(fs.Source)
	files, err := e.sourceFiles(src)
	if err != nil || len(files) == 0 {
		return first, last, false, err
	}
	rel, err := sourceRelation(src, files)
	if err != nil {
		return first, last, false, err
	}
	cols, err := e.sourceSchema(ctx, e.db, src, files, rel)
	if err != nil {
		return first, last, false, fmt.Errorf("source span of %s: %w", set, err)
	}
	tsType := ""
	for _, c := range cols {
		if c.Name == src.Timestamp {
			tsType = c.Type
		}
	}
	if !pipeline.TimestampCompatible(tsType) {
		return first, last, false, fmt.Errorf("source span of %s: %w: no usable timestamp column %q", set, offline.ErrSource, src.Timestamp)
	}
	ts := pipeline.TimestampExpr(quality.Quote(src.Timestamp), tsType)
	var lo, hi sql.NullTime
	if err := e.db.QueryRowContext(ctx, fmt.Sprintf("SELECT min(%s), max(%s) FROM %s", ts, ts, rel)).Scan(&lo, &hi); err != nil {
		return first, last, false, fmt.Errorf("source span of %s: %w", set, e.readError(ctx, e.db, "source "+src.Name, src.Format, files, src.Timestamp, offline.ErrSource, err))
	}
	if !lo.Valid || !hi.Valid {
		return first, last, false, nil
	}
	return lo.Time.UTC(), hi.Time.UTC(), true, nil
}
