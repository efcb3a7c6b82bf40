package duckdb

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/spec"
)

var _ offline.SourceCounter = (*Engine)(nil)

// CountSourceRows implements offline.SourceCounter: the source's rows with
// an event time in [from, to). A source with no files has none.
func (e *Engine) CountSourceRows(ctx context.Context, src *spec.Source, from, to time.Time) (int64, error) {
	files, err := e.sourceFiles(src)
	if err != nil || len(files) == 0 {
		return 0, err
	}
	rel, err := sourceRelation(src, files)
	if err != nil {
		return 0, err
	}
	ts := `"` + strings.ReplaceAll(src.Timestamp, `"`, `""`) + `"`
	var n int64
	q := fmt.Sprintf(`SELECT count(*) FROM %s WHERE CAST(%s AS TIMESTAMP) >= ? AND CAST(%s AS TIMESTAMP) < ?`, rel, ts, ts)
	if err := e.db.QueryRowContext(ctx, q, from.UTC(), to.UTC()).Scan(&n); err != nil {
		return 0, fmt.Errorf("%w: count rows of source %s: %v", offline.ErrSource, src.Name, err)
	}
	return n, nil
}
