// Package skew checks a served model for training/serving skew: it takes the
// rows the prediction log holds for a model over a time window, retrieves the
// same features point in time at each request's time from the offline store
// (what a training set of those requests would hold: the offline twin,
// batch.Features), rescores them with the version that scored the request,
// and reports, per feature, how often the logged (online) value differs from
// the recomputed (offline) one, and how far the predictions differ.
//
// A healthy deployment reports zero: the online store serves what was
// materialized from the offline store, and on-demand features are computed by
// one evaluator on both paths. Causes of skew it finds: values pushed to the
// online store that the offline store never saw, a materialization that lags
// the offline store, a feature definition changed after materialization, a
// model fed by another path than its feature service.
package skew

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/serving"
	"github.com/atrium-ml/atrium/internal/serving/batch"
	"github.com/atrium-ml/atrium/internal/serving/predlog"
	"github.com/atrium-ml/atrium/internal/spec"
)

// ErrNoRows: the log holds no row of the model in the window.
var ErrNoRows = errors.New("no logged predictions")

// ErrNothingComparable: the window has logged rows, but none the check can
// compare with the offline store: they lack the entity keys the feature
// service joins on (OIP infer requests), or their versions were deleted.
var ErrNothingComparable = errors.New("no logged prediction to compare")

// DefaultTolerance is the tolerance of `atrium skew`: the log keeps
// doubles and float32 features round-trip exactly, so anything past
// rounding is a difference.
const DefaultTolerance = 1e-9

// Options say which model's log to check over which window.
type Options struct {
	// Model is the registered model's name. Required.
	Model string
	// Since and Until bound the requests' times: [Since, Until). A zero
	// Until is now.
	Since, Until time.Time
	// LogDir is the prediction log's directory (the offline store's
	// directory; the log is LogDir/predictions).
	LogDir string
	// FeatureService overrides the versions' atrium.feature_service tag.
	FeatureService string
	// Tolerance is the relative difference under which two numbers are
	// equal: |a-b| <= Tolerance * max(1, |a|). 0 compares exactly (a zero
	// Options compares exactly: set DefaultTolerance for the CLI's
	// default); a negative, NaN or infinite tolerance is refused, since no
	// comparison with it means anything (NaN made every value differ and
	// every prediction agree).
	Tolerance float64
	// IncludeShadow also checks the rows a shadow version scored. Default:
	// only the rows that answered requests.
	IncludeShadow bool
	// TempDir holds the spine and features files while checking (removed
	// after). Default: the OS temporary directory.
	TempDir string
}

// Report is what Check found.
type Report struct {
	Model string    `json:"model"`
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Rows and Requests count the logged rows the check read (shadow rows
	// only with IncludeShadow), compared or left out.
	Rows     int `json:"rows"`
	Requests int `json:"requests"`
	// ShadowRowsLeftOut counts the rows shadow versions scored in the
	// window, left out without IncludeShadow.
	ShadowRowsLeftOut int `json:"shadow_rows_left_out"`
	// RowsWithoutKeys counts the rows left out because they lack the
	// entity keys their version's feature service joins on: OIP infer
	// requests send feature values, not keys, so nothing can be retrieved
	// offline for them. Counted per version too.
	RowsWithoutKeys int `json:"rows_without_keys"`
	// Versions lists the versions checked, in order.
	Versions []VersionReport `json:"versions"`
	// NotRescored lists the versions none of whose rows were compared, in
	// order, and why.
	NotRescored []NotRescored `json:"not_rescored,omitempty"`
}

// Why a version's rows were not rescored.
const (
	// NotRescoredDeleted: the version (or its model) was deleted from the
	// registry after it scored the rows; its files cannot be loaded.
	NotRescoredDeleted = "deleted"
	// NotRescoredNoKeys: every row of the version lacks the entity keys
	// its feature service joins on (OIP infer requests).
	NotRescoredNoKeys = "no entity keys"
)

// NotRescored is a version whose logged rows the check could not compare.
type NotRescored struct {
	Version string `json:"version"`
	// Rows counts the version's logged rows in the window.
	Rows int `json:"rows"`
	// Reason is NotRescoredDeleted or NotRescoredNoKeys.
	Reason string `json:"reason"`
}

// VersionReport is the check of the rows one version scored.
type VersionReport struct {
	Version        string `json:"version"`
	FeatureService string `json:"feature_service"`
	// Rows counts the rows compared.
	Rows int `json:"rows"`
	// RowsWithoutKeys counts the version's rows left out because they lack
	// the entity keys of the feature service (OIP infer requests).
	RowsWithoutKeys int `json:"rows_without_keys"`
	// Features are the model's inputs, in the model's order.
	Features []FeatureSkew `json:"features"`
	// Predictions compares the logged scores with the offline rescoring.
	Predictions PredictionSkew `json:"predictions"`
	// UnloggedRequestValues are request values of the service's on-demand
	// features that no logged row of the version carries (rows logged before
	// serving logged request values, or by a caller that did not send
	// them): the on-demand features reading them are recomputed as missing.
	UnloggedRequestValues []string `json:"unlogged_request_values,omitempty"`
}

// FeatureSkew counts the rows whose logged value differs from the one
// retrieved offline. A value missing on one side only is a mismatch.
type FeatureSkew struct {
	Name       string  `json:"name"`
	Rows       int     `json:"rows"`
	Mismatches int     `json:"mismatches"`
	Rate       float64 `json:"mismatch_rate"`
	// MissingOnline and MissingOffline count the rows missing on each side.
	MissingOnline  int `json:"missing_online"`
	MissingOffline int `json:"missing_offline"`
	// Example is the first mismatch: entity keys, time and both values.
	Example *Mismatch `json:"example,omitempty"`
}

// Mismatch is one row whose values differ.
type Mismatch struct {
	RequestID string            `json:"request_id"`
	Time      time.Time         `json:"timestamp"`
	Entities  map[string]string `json:"entities"`
	Online    string            `json:"online"`
	Offline   string            `json:"offline"`
}

// PredictionSkew compares logged and recomputed predictions.
type PredictionSkew struct {
	Rows       int     `json:"rows"`
	Mismatches int     `json:"mismatches"`
	Rate       float64 `json:"mismatch_rate"`
	MaxAbsDiff float64 `json:"max_abs_diff"`
	// MeanAbsDiff averages |logged - offline| over every row and output.
	MeanAbsDiff float64   `json:"mean_abs_diff"`
	Example     *Mismatch `json:"example,omitempty"`
}

// Clean reports whether nothing differs.
func (r *Report) Clean() bool {
	for _, v := range r.Versions {
		if v.Predictions.Mismatches > 0 {
			return false
		}
		for _, f := range v.Features {
			if f.Mismatches > 0 {
				return false
			}
		}
	}
	return true
}

// Column names of the spine Check writes: the request's time and the row's
// position in the log, chosen not to collide with entity keys.
const (
	timeColumn = "skew_request_time"
	rowColumn  = "skew_log_row"
)

// Check reads the log of o.Model over [o.Since, o.Until) and compares every
// row with its offline twin.
func Check(ctx context.Context, src batch.Sources, o Options) (*Report, error) {
	if o.Model == "" {
		return nil, errors.New("skew: a model name is required")
	}
	if o.Until.IsZero() {
		o.Until = time.Now()
	}
	if o.Tolerance < 0 || math.IsNaN(o.Tolerance) || math.IsInf(o.Tolerance, 0) {
		return nil, fmt.Errorf("skew: tolerance %v: want a relative difference of 0 (exact) or more, finite", o.Tolerance)
	}
	rows, err := predlog.Read(ctx, o.LogDir, o.Model, o.Since, o.Until)
	if errors.Is(err, predlog.ErrNoPredictions) {
		return nil, fmt.Errorf("%w: %w", ErrNoRows, err)
	}
	if err != nil {
		return nil, fmt.Errorf("skew of %s: %w", o.Model, err)
	}
	all := len(rows)
	if !o.IncludeShadow {
		rows = slices.DeleteFunc(rows, func(r predlog.Row) bool { return r.Route == predlog.RouteShadow })
	}
	rep := &Report{Model: o.Model, Since: o.Since.UTC(), Until: o.Until.UTC(), Rows: len(rows), ShadowRowsLeftOut: all - len(rows)}
	window := fmt.Sprintf("between %s and %s", o.Since.UTC().Format(time.RFC3339), o.Until.UTC().Format(time.RFC3339))
	if len(rows) == 0 {
		shadow := ""
		if rep.ShadowRowsLeftOut > 0 {
			shadow = fmt.Sprintf(" (%d rows of shadow versions left out: --shadow checks them)", rep.ShadowRowsLeftOut)
		}
		return rep, fmt.Errorf("%w of model %q in %s %s%s", ErrNoRows, o.Model, filepath.Join(o.LogDir, "predictions"), window, shadow)
	}
	requests := map[string]bool{}
	byVersion := map[string][]predlog.Row{}
	for _, r := range rows {
		requests[r.RequestID] = true
		byVersion[r.Version] = append(byVersion[r.Version], r)
	}
	rep.Requests = len(requests)
	versions := make([]string, 0, len(byVersion))
	for v := range byVersion {
		versions = append(versions, v)
	}
	sort.Slice(versions, func(i, j int) bool { return versionLess(versions[i], versions[j]) })
	for _, v := range versions {
		vr, nr, err := checkVersion(ctx, src, o, v, byVersion[v])
		if err != nil {
			return nil, err
		}
		if nr != nil {
			rep.NotRescored = append(rep.NotRescored, *nr)
			if nr.Reason == NotRescoredNoKeys {
				rep.RowsWithoutKeys += nr.Rows
			}
			continue
		}
		rep.RowsWithoutKeys += vr.RowsWithoutKeys
		rep.Versions = append(rep.Versions, *vr)
	}
	if len(rep.Versions) == 0 {
		return rep, fmt.Errorf("%w: model %q %s: %s", ErrNothingComparable, o.Model, window, rep.leftOut())
	}
	return rep, nil
}

// leftOut says which rows were not compared and why, in words.
func (r *Report) leftOut() string {
	var parts []string
	if r.RowsWithoutKeys > 0 {
		parts = append(parts, fmt.Sprintf("%d logged rows carry no entity keys to retrieve their features offline with (OIP infer requests send feature values, not keys)", r.RowsWithoutKeys))
	}
	for _, n := range r.NotRescored {
		if n.Reason == NotRescoredDeleted {
			parts = append(parts, fmt.Sprintf("version %s, which scored %d logged rows, has been deleted from the registry", n.Version, n.Rows))
		}
	}
	return strings.Join(parts, "; ")
}

// versionLess orders version numbers numerically.
func versionLess(a, b string) bool {
	x, errA := strconv.Atoi(a)
	y, errB := strconv.Atoi(b)
	if errA != nil || errB != nil {
		return a < b
	}
	return x < y
}

// checkVersion retrieves and rescores the rows one version scored. A
// version deleted since, or none of whose rows carry the entity keys, is
// not rescored: it returns why instead of a report, and the other versions
// are checked (right after deleting a bad version is when the check is
// wanted).
func checkVersion(ctx context.Context, src batch.Sources, o Options, version string, rows []predlog.Row) (*VersionReport, *NotRescored, error) {
	d, err := src.Loader.Load(ctx, o.Model, version)
	if errors.Is(err, serving.ErrNotFound) {
		return nil, &NotRescored{Version: version, Rows: len(rows), Reason: NotRescoredDeleted}, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("skew: version %s of %s, which scored %d logged rows: %w", version, o.Model, len(rows), err)
	}
	service := o.FeatureService
	if service == "" {
		service = d.FeatureService
	}
	all := len(rows)
	keys, known := joinKeys(src.Features, service)
	rows = withKeys(rows, keys, known)
	if len(rows) == 0 {
		return nil, &NotRescored{Version: version, Rows: all, Reason: NotRescoredNoKeys}, nil
	}
	tmp, err := os.MkdirTemp(o.TempDir, "atrium-skew-*")
	if err != nil {
		return nil, nil, fmt.Errorf("skew: %w", err)
	}
	defer os.RemoveAll(tmp)
	requestCols, unlogged := requestValues(src, service, rows)
	spine := filepath.Join(tmp, "spine.csv")
	if err := writeSpine(spine, rows, requestCols); err != nil {
		return nil, nil, err
	}
	joined, _, service, cleanup, err := batch.Features(ctx, src, d, service, spine, timeColumn, tmp)
	if err != nil {
		return nil, nil, fmt.Errorf("skew: version %s of %s, %d logged rows: %w", version, o.Model, len(rows), spineNamed(err, spine))
	}
	defer cleanup()
	m := batch.ServedModel(d)
	opts := m.LoadOptions()
	opts.Passthrough = []string{rowColumn}
	tab, err := ml.LoadTable(ctx, joined, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("skew: read the features retrieved for version %s: %w", version, err)
	}
	preds, err := m.Predict(tab.Dataset)
	if err != nil {
		return nil, nil, fmt.Errorf("skew: rescore with version %s: %w", version, err)
	}
	vr := &VersionReport{Version: version, FeatureService: service, Rows: len(rows), RowsWithoutKeys: all - len(rows), UnloggedRequestValues: unlogged}
	compare(vr, o.Tolerance, d, tab, preds, rows)
	return vr, nil, nil
}

// spineNamed is err with the spine's path, a temporary file of this check
// that means nothing to the caller, replaced by what it was made of.
func spineNamed(err error, spine string) error {
	msg := err.Error()
	if !strings.Contains(msg, spine) {
		return err
	}
	msg = strings.ReplaceAll(msg, "spine "+spine, "spine of the logged rows")
	return &renamed{err: err, msg: strings.ReplaceAll(msg, spine, "the spine of the logged rows")}
}

// renamed is an error with another message, still unwrapping to its cause.
type renamed struct {
	err error
	msg string
}

func (r *renamed) Error() string { return r.msg }
func (r *renamed) Unwrap() error { return r.err }

// joinKeys are the entity keys the point-in-time join of service needs:
// the join keys of its stored features' sets and of the sets its on-demand
// features read. ok is false when the service is unknown (or none is
// named): batch.Features then says so.
func joinKeys(feats *spec.Features, service string) (keys []string, ok bool) {
	if feats == nil || service == "" {
		return nil, false
	}
	resolved, err := feats.ResolveService(service)
	if err != nil {
		return nil, false
	}
	seen := map[string]bool{}
	add := func(set string) {
		for _, k := range feats.JoinKeys(set) {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	for _, r := range resolved {
		if !r.OnDemand {
			add(r.Set)
			continue
		}
		vars, err := feats.OnDemandVars(r.Set)
		if err != nil {
			return nil, false
		}
		for _, v := range vars {
			if v.Feature != nil {
				add(v.Feature.Set)
			}
		}
	}
	return keys, true
}

// withKeys keeps the rows that carry every key of keys (ok: keys are
// known), or, keys unknown, any entity key at all: a row without them (an
// OIP infer request, which sends feature values) has nothing to join on,
// and comparing it would count every feature as missing offline.
func withKeys(rows []predlog.Row, keys []string, ok bool) []predlog.Row {
	return slices.DeleteFunc(slices.Clone(rows), func(r predlog.Row) bool {
		if !ok {
			return len(r.Entities) == 0
		}
		for _, k := range keys {
			if _, has := r.Entities[k]; !has {
				return true
			}
		}
		return false
	})
}

// requestValues are the request values the service's on-demand features
// read, which the spine must carry, and those of them no row logged
// (serving logs every request value next to the model's inputs, so that
// the on-demand features can be recomputed offline).
func requestValues(src batch.Sources, service string, rows []predlog.Row) (cols, unlogged []string) {
	resolved, err := src.Features.ResolveService(service)
	if err != nil {
		return nil, nil // batch.Features reports the unknown service
	}
	seen := map[string]bool{}
	for _, r := range resolved {
		if !r.OnDemand {
			continue
		}
		set := src.Features.OnDemand(r.Set)
		if set == nil {
			continue
		}
		for _, f := range set.Request {
			if seen[f.Name] {
				continue
			}
			seen[f.Name] = true
			// Unlogged values are spine columns too, empty: historical
			// reads every request value from the spine, and a missing one
			// is a missing value.
			cols = append(cols, f.Name)
			if !anyLogged(rows, f.Name) {
				unlogged = append(unlogged, f.Name)
			}
		}
	}
	return cols, unlogged
}

// anyLogged reports whether a row of rows carries a value named name.
func anyLogged(rows []predlog.Row, name string) bool {
	for _, r := range rows {
		if _, ok := r.Features[name]; ok {
			return true
		}
		if _, ok := r.Categorical[name]; ok {
			return true
		}
	}
	return false
}

// writeSpine writes the rows' entity keys, times, positions and request
// values as a CSV spine. Entity keys are logged as text; the CSV reader
// types them back (integer keys become integers, as the feature sets keep
// them).
func writeSpine(path string, rows []predlog.Row, requestCols []string) error {
	keySet := map[string]bool{}
	for _, r := range rows {
		for k := range r.Entities {
			keySet[k] = true
		}
	}
	keys := make([]string, 0, len(keySet))
	for k := range keySet {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("skew: spine: %w", err)
	}
	w := csv.NewWriter(f)
	header := append(append(append([]string{}, keys...), timeColumn, rowColumn), requestCols...)
	_ = w.Write(header)
	rec := make([]string, len(header))
	for i, r := range rows {
		for j, k := range keys {
			rec[j] = r.Entities[k]
		}
		rec[len(keys)] = r.Time.UTC().Format("2006-01-02 15:04:05.999999")
		rec[len(keys)+1] = strconv.Itoa(i)
		for j, c := range requestCols {
			rec[len(keys)+2+j] = loggedText(r, c)
		}
		_ = w.Write(rec)
	}
	w.Flush()
	if err := errors.Join(w.Error(), f.Close()); err != nil {
		return fmt.Errorf("skew: spine %s: %w", path, err)
	}
	return nil
}

// loggedText is a logged value as text ("" when missing).
func loggedText(r predlog.Row, name string) string {
	if v, ok := r.Features[name]; ok && !math.IsNaN(v) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return r.Categorical[name]
}

// compare fills vr's feature and prediction counts: tab holds the offline
// features of the logged rows (its passthrough column the row's position in
// rows), preds their rescoring.
func compare(vr *VersionReport, tol float64, d *serving.Deployed, tab *ml.Table, preds []float64, rows []predlog.Row) {
	pos := tab.Passthrough[0]
	k := d.NumOutputs()
	vr.Features = make([]FeatureSkew, len(d.Inputs))
	for i, in := range d.Inputs {
		vr.Features[i].Name = in.Name
	}
	p := &vr.Predictions
	var sumDiff float64
	for r := range tab.NumRows() {
		idx, err := strconv.Atoi(pos.Value[r])
		if err != nil || idx < 0 || idx >= len(rows) {
			continue // not a row this check wrote
		}
		row := rows[idx]
		for i := range d.Inputs {
			c := &tab.Columns[tab.ColumnIndex(d.Inputs[i].Name)]
			online, onMissing := onlineValue(row, c)
			offline, offMissing := offlineValue(c, r)
			fs := &vr.Features[i]
			fs.Rows++
			if onMissing {
				fs.MissingOnline++
			}
			if offMissing {
				fs.MissingOffline++
			}
			if !sameValue(c.Kind, online, offline, onMissing, offMissing, tol) {
				fs.Mismatches++
				if fs.Example == nil {
					fs.Example = &Mismatch{RequestID: row.RequestID, Time: row.Time, Entities: row.Entities, Online: shown(online, onMissing), Offline: shown(offline, offMissing)}
				}
			}
		}
		p.Rows++
		differs := len(row.Scores) != k
		var worst float64
		for j := 0; j < k && j < len(row.Scores); j++ {
			diff := math.Abs(row.Scores[j] - preds[r*k+j])
			if math.IsNaN(diff) {
				diff = math.Inf(1)
				if math.IsNaN(row.Scores[j]) && math.IsNaN(preds[r*k+j]) {
					diff = 0
				}
			}
			sumDiff += diff
			worst = max(worst, diff)
			if diff > tol*math.Max(1, math.Abs(row.Scores[j])) {
				differs = true
			}
		}
		p.MaxAbsDiff = max(p.MaxAbsDiff, worst)
		if differs {
			p.Mismatches++
			if p.Example == nil {
				p.Example = &Mismatch{RequestID: row.RequestID, Time: row.Time, Entities: row.Entities,
					Online: fmt.Sprint(row.Scores), Offline: fmt.Sprint(preds[r*k : r*k+k])}
			}
		}
	}
	for i := range vr.Features {
		if f := &vr.Features[i]; f.Rows > 0 {
			f.Rate = float64(f.Mismatches) / float64(f.Rows)
		}
	}
	if p.Rows > 0 {
		p.Rate = float64(p.Mismatches) / float64(p.Rows)
		p.MeanAbsDiff = sumDiff / float64(p.Rows*k)
	}
}

// value is a feature value: a number, or a category's text.
type value struct {
	num float64
	cat string
}

func onlineValue(row predlog.Row, c *ml.Column) (value, bool) {
	if c.Kind == ml.Categorical {
		s, ok := row.Categorical[c.Name]
		return value{cat: s}, !ok || s == ""
	}
	v, ok := row.Features[c.Name]
	return value{num: v}, !ok || math.IsNaN(v)
}

func offlineValue(c *ml.Column, r int) (value, bool) {
	if c.Kind == ml.Categorical {
		code := c.Values[r]
		if math.IsNaN(float64(code)) {
			return value{}, true
		}
		if i := int(code); c.Categories != nil && i >= 0 && i < len(c.Categories) {
			return value{cat: c.Categories[i]}, false
		}
		return value{cat: strconv.Itoa(int(code))}, false
	}
	v := float64(c.Values[r])
	if c.Float64 != nil {
		v = c.Float64[r]
	}
	return value{num: v}, math.IsNaN(v)
}

func sameValue(kind ml.Kind, a, b value, aMissing, bMissing bool, tol float64) bool {
	switch {
	case aMissing || bMissing:
		return aMissing == bMissing
	case kind == ml.Categorical:
		return a.cat == b.cat
	}
	return math.Abs(a.num-b.num) <= tol*math.Max(1, math.Abs(a.num))
}

func shown(v value, missing bool) string {
	switch {
	case missing:
		return "missing"
	case v.cat != "":
		return v.cat
	}
	return strconv.FormatFloat(v.num, 'g', -1, 64)
}
