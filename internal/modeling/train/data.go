package train

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/retrieval"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/spec"
)

// Fingerprint identifies a training set: what the registered version's
// lineage tags and the parent run's fingerprint.json record.
type Fingerprint struct {
	Rows int64 `json:"rows"`
	// Start and End are the range of the spine's event times.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Hash is "sha256:<hex>" of the loaded training set: feature names and
	// kinds, every value, labels, weights, query groups and times, in row
	// order. The same spine and feature data give the same hash.
	Hash string `json:"hash"`
	// Spine is the spine file as the spec names it.
	Spine string `json:"spine"`
	// Features are the feature references in model input order.
	Features []string `json:"features"`
	// FeatureService is the spec's feature service ("" for a list).
	FeatureService string `json:"feature_service,omitempty"`
	// CatalogVersion is the feature catalog version the set was built from,
	// FeatureVersions each feature set's version in that catalog.
	CatalogVersion  int            `json:"catalog_version"`
	FeatureVersions map[string]int `json:"feature_versions"`
}

// trainingSet is the point-in-time training set, loaded.
type trainingSet struct {
	ds *ml.Dataset
	// times are the rows' event times (Unix ns), in ds's row order.
	times    []int64
	features []spec.ResolvedFeature
	fp       Fingerprint
}

// build joins the spine with the features point in time into dir and loads
// the result. The spine's columns are checked against the spec first.
func build(ctx context.Context, o *Options, features []spec.ResolvedFeature) (*trainingSet, error) {
	t := o.Spec
	spine := t.Spine.Path
	if !filepath.IsAbs(spine) {
		spine = filepath.Join(o.Dir, spine)
	}
	out := filepath.Join(o.WorkDir, "training-set.parquet")
	refs := make([]string, len(features))
	for i, f := range features {
		refs[i] = f.Ref
	}
	res, err := retrieval.Historical(ctx, o.Engine, o.Features, retrieval.HistoricalRequest{
		Spine: spine, TimeColumn: t.Spine.Timestamp, Features: refs, Out: out})
	if errors.Is(err, offline.ErrInvalid) {
		return nil, specError(t.Problem("spine", "spine %s: %v", t.Spine.Path, err))
	}
	if err != nil {
		return nil, fmt.Errorf("training set of %s: %w", t.File, err)
	}
	if res.OnDemandFailed > 0 {
		o.Logger.Warn("on-demand values could not be computed and are null", "count", res.OnDemandFailed, "first", res.FirstFailure)
	}
	if err := checkSpineColumns(t, res.Columns, features); err != nil {
		return nil, err
	}
	names := make([]string, len(features))
	for i, f := range features {
		names[i] = f.Name
	}
	// The label is checked against the objective as it is read (each
	// value) and once it is (the values together), before any trial: a
	// problem of the spine's data is the spec's, at the spine's line and
	// naming the spine, not the temporary training set file. The training
	// set keeps the spine's rows in order, so a row number is the spine's.
	check, want := labelRule(t)
	tab, err := ml.LoadTable(ctx, out, ml.LoadOptions{Label: t.Spine.Label, Weight: t.Spine.Weight, Group: t.Spine.Group,
		Features: names, Passthrough: []string{t.Spine.Timestamp}, CheckLabel: check})
	if err != nil {
		if serr := spineDataError(t, err, want); serr != nil {
			return nil, serr
		}
		return nil, fmt.Errorf("training set of %s: %w", t.File, err)
	}
	if err := checkLabels(t, tab.Label, want); err != nil {
		return nil, err
	}
	times, err := parseTimes(tab.Passthrough[0])
	if err != nil {
		return nil, specError(t.Problem("spine.timestamp", "spine.timestamp %s: %v", t.Spine.Timestamp, err))
	}
	ts := &trainingSet{ds: tab.Dataset, times: times, features: features}
	ts.fp = Fingerprint{Rows: int64(tab.NumRows()), Spine: t.Spine.Path, Features: refs, FeatureService: t.Features.Service,
		CatalogVersion: o.CatalogVersion, FeatureVersions: map[string]int{}, Hash: contentHash(tab.Dataset, times)}
	if len(times) > 0 {
		ts.fp.Start, ts.fp.End = time.Unix(0, slices.Min(times)).UTC(), time.Unix(0, slices.Max(times)).UTC()
	}
	for _, f := range features {
		if v, ok := o.SetVersions[f.Set]; ok {
			ts.fp.FeatureVersions[f.Set] = v
		}
	}
	return ts, nil
}

// checkSpineColumns reports the spec's spine columns missing from the
// joined file, each at its line, and feature names that clash with them.
func checkSpineColumns(t *spec.Training, cols []string, features []spec.ResolvedFeature) error {
	var ps spec.Problems
	have := func(c string) bool { return slices.Contains(cols, c) }
	for _, c := range []struct{ key, col string }{{"label", t.Spine.Label}, {"group", t.Spine.Group},
		{"weight", t.Spine.Weight}, {"timestamp", t.Spine.Timestamp}} {
		if c.col != "" && !have(c.col) {
			ps = append(ps, t.Problem("spine."+c.key, "spine.%s %q is not a column of %s (columns: %s)", c.key, c.col, t.Spine.Path, strings.Join(cols, ", ")))
		}
	}
	for _, f := range features {
		if f.Name == t.Spine.Label {
			ps = append(ps, t.Problem("features", "feature %s has the label's name %q: the model would read its own label", f.Ref, f.Name))
		}
	}
	if len(ps) > 0 {
		return specError(ps...)
	}
	return nil
}

// timeLayouts are the texts DuckDB casts timestamps and dates to.
var timeLayouts = []string{"2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999Z07", "2006-01-02 15:04:05.999999999",
	time.RFC3339Nano, "2006-01-02"}

func parseTimes(c ml.RawColumn) ([]int64, error) {
	out := make([]int64, len(c.Value))
	for i, s := range c.Value {
		if !c.Valid[i] {
			return nil, fmt.Errorf("row %d has no time", i+1)
		}
		var t time.Time
		var err error
		for _, l := range timeLayouts {
			if t, err = time.Parse(l, s); err == nil {
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("row %d: %q is not a time (column type %s)", i+1, s, c.Type)
		}
		out[i] = t.UnixNano()
	}
	return out, nil
}

// contentHash hashes the loaded training set (see Fingerprint.Hash).
func contentHash(ds *ml.Dataset, times []int64) string {
	h := sha256.New()
	for _, c := range ds.Columns {
		writeString(h, c.Name)
		writeString(h, c.Kind.String())
		for _, cat := range c.Categories {
			writeString(h, cat)
		}
		buf := make([]byte, 4*len(c.Values))
		for i, v := range c.Values {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		h.Write(buf)
	}
	for _, xs := range [][]float64{ds.Label, ds.Weight} {
		writeString(h, "|")
		buf := make([]byte, 8*len(xs))
		for i, v := range xs {
			binary.LittleEndian.PutUint64(buf[8*i:], math.Float64bits(v))
		}
		h.Write(buf)
	}
	writeString(h, "|")
	for _, g := range ds.Groups {
		_ = binary.Write(h, binary.LittleEndian, int64(g))
	}
	writeString(h, "|")
	buf := make([]byte, 8*len(times))
	for i, v := range times {
		binary.LittleEndian.PutUint64(buf[8*i:], uint64(v))
	}
	h.Write(buf)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func writeString(h hash.Hash, s string) {
	_ = binary.Write(h, binary.LittleEndian, int64(len(s)))
	h.Write([]byte(s))
}
