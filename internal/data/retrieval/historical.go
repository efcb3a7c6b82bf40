package retrieval

import (
	"context"
	"fmt"
	"strings"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/spec"
)

// HistoricalRequest asks for a point-in-time-correct training set.
type HistoricalRequest struct {
	// Spine is a CSV or Parquet file: the join keys of every set involved, a time
	// column, and any other columns (labels), which are copied to the output.
	Spine string
	// TimeColumn names the spine's time column ("" picks the only timestamp or
	// date column, or a column named timestamp, event_timestamp or ts).
	TimeColumn string
	// Service names a feature service; Features lists references instead
	// (set, set:feature, or service names). Exactly one of them is set.
	Service  string
	Features []string
	// Out is the output file, .csv or .parquet.
	Out string
	// FullNames names output columns set__feature instead of feature.
	FullNames bool
}

// HistoricalResult describes the written training set.
type HistoricalResult struct {
	Rows     int64
	Columns  []string
	Features []spec.ResolvedFeature
}

// Historical resolves the request's features and point-in-time joins the spine
// with them on the offline engine: for a spine row at t, each set contributes its
// latest row of the same keys with t - ttl < ts <= t, or nulls. No value from after
// t is ever used.
func Historical(ctx context.Context, eng offline.Engine, feats *spec.Features, req HistoricalRequest) (*HistoricalResult, error) {
	if (req.Service == "") == (len(req.Features) == 0) {
		return nil, fmt.Errorf("historical: %w: give a feature service or feature references, not both or neither", offline.ErrInvalid)
	}
	var resolved []spec.ResolvedFeature
	var err error
	if req.Service != "" {
		resolved, err = feats.ResolveService(req.Service)
	} else {
		resolved, err = feats.Resolve(req.Features...)
	}
	if err != nil {
		return nil, fmt.Errorf("historical: %w", err)
	}
	names, err := historicalColumnNames(resolved, req.FullNames)
	if err != nil {
		return nil, err
	}
	res, err := eng.PointInTime(ctx, offline.PointInTimeRequest{Spine: req.Spine, TimeColumn: req.TimeColumn, Features: resolved, Names: names, Out: req.Out})
	if err != nil {
		return nil, err
	}
	return &HistoricalResult{Rows: res.Rows, Columns: res.Columns, Features: resolved}, nil
}

// historicalColumnNames names each feature's output column: its column name, or
// set__name with full names. Two features with the same short name are an error
// that suggests full names.
func historicalColumnNames(fs []spec.ResolvedFeature, full bool) ([]string, error) {
	names := make([]string, len(fs))
	seen := map[string]string{}
	var clashes []string
	for i, f := range fs {
		names[i] = f.Name
		if full {
			names[i] = f.Set + "__" + f.Name
		}
		if prev, dup := seen[names[i]]; dup {
			clashes = append(clashes, fmt.Sprintf("%s and %s", prev, f.Ref))
		}
		seen[names[i]] = f.Ref
	}
	if len(clashes) > 0 {
		return nil, fmt.Errorf("historical: %w: features share an output name (%s); use full feature names (set__feature)", offline.ErrInvalid, strings.Join(clashes, "; "))
	}
	return names, nil
}
