package serving

import (
	"crypto/rand"
	"encoding/hex"
	"math"
	"strconv"
	"sync/atomic"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/serving/predlog"
)

// PredictionLog receives scored requests: a *predlog.Writer, which never
// blocks (a full buffer drops and counts). It owns a logged record's slices.
type PredictionLog interface {
	// Sampled reports whether a record of the request would be kept, so
	// that an unsampled request's rows are never copied into one.
	Sampled(requestID string) bool
	Log(rec predlog.Record) bool
	// Floats returns n values for a record's Values, whose elements the
	// caller sets (recycled from records already written).
	Floats(n int) []float64
}

var _ PredictionLog = (*predlog.Writer)(nil)

// logPredictions sends the rows d scored and its predictions to the
// prediction log, when there is one. rec carries the request's id, time,
// route, routing key, entity keys and latency; the model, version, features
// and scores come from d, ds and preds. The feature values logged are the
// ones the model scored: numbers as they were, categories as their text (a
// category the model does not know, and a missing value, are NULL).
//
// extra are request values the model does not take as inputs (those its
// on-demand features read): logged next to the features, so that the skew
// check can recompute the on-demand features offline.
func (s *Service) logPredictions(d *Deployed, ds *ml.Dataset, preds []float64, rec predlog.Record, extra ...requestValue) {
	l := s.opts.PredictionLog
	if l == nil || ds.NumRows() == 0 || !l.Sampled(rec.RequestID) {
		return
	}
	rows := ds.NumRows()
	rec.Model, rec.Version, rec.Rows = d.Name, d.Version, rows
	rec.Outputs, rec.Scores = d.NumOutputs(), preds
	var nNum, nCat int
	for _, c := range ds.Columns {
		if c.Kind == ml.Categorical {
			nCat++
		} else {
			nNum++
		}
	}
	for _, x := range extra {
		if x.text {
			nCat++
		} else {
			nNum++
		}
	}
	rec.Features = make([]string, 0, nNum)
	rec.Values = l.Floats(rows * nNum)
	rec.Categorical = make([]string, 0, nCat)
	rec.Strings = make([]string, rows*nCat)
	for _, c := range ds.Columns {
		if c.Kind == ml.Categorical {
			k := len(rec.Categorical)
			rec.Categorical = append(rec.Categorical, c.Name)
			for r, v := range c.Values {
				rec.Strings[r*nCat+k] = categoryText(c.Categories, v)
			}
			continue
		}
		k := len(rec.Features)
		rec.Features = append(rec.Features, c.Name)
		for r := range rows {
			v := math.NaN()
			if c.Float64 != nil {
				v = c.Float64[r]
			} else if r < len(c.Values) {
				v = float64(c.Values[r])
			}
			rec.Values[r*nNum+k] = v
		}
	}
	for _, x := range extra {
		if x.text {
			k := len(rec.Categorical)
			rec.Categorical = append(rec.Categorical, x.name)
			for r := range rows {
				s, _ := x.col.at(r).(string)
				rec.Strings[r*nCat+k] = s
			}
			continue
		}
		k := len(rec.Features)
		rec.Features = append(rec.Features, x.name)
		for r := range rows {
			rec.Values[r*nNum+k] = number(x.col.at(r))
		}
	}
	l.Log(rec)
}

// requestValue is a request value to log: text, or numbers (booleans as
// 0/1); a value of the other kind is logged missing.
type requestValue struct {
	name string
	text bool
	col  Column
}

// requestValues are the request's values that d does not take as inputs,
// by name, each typed by its first non-null value.
func requestValues(d *Deployed, req map[string]Column, rows int) []requestValue {
	var out []requestValue
	for _, n := range sortedKeys(req) {
		c := req[n]
		if d.InputIndex(n) >= 0 || (!c.Broadcast && len(c.Values) != rows) {
			continue
		}
		x := requestValue{name: n, col: c}
		for _, v := range c.Values {
			if v != nil {
				_, x.text = v.(string)
				break
			}
		}
		out = append(out, x)
	}
	return out
}

// number is a request value as a logged number: NaN for null and text.
func number(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int64:
		return float64(x)
	case bool:
		if x {
			return 1
		}
		return 0
	}
	return math.NaN()
}

// categoryText is the text of a category code: its name, or the code
// itself for inputs without names; "" (missing) for NaN.
func categoryText(cats []string, code float32) string {
	if code != code {
		return ""
	}
	if i := int(code); cats != nil && i >= 0 && i < len(cats) {
		return cats[i]
	}
	return strconv.Itoa(int(code))
}

// localPrefix and localCount name requests that came without an id (OIP
// over gRPC without one): the prediction log samples and groups rows by
// request id.
var (
	localPrefix = func() string {
		var b [6]byte
		_, _ = rand.Read(b[:]) // never fails (crypto/rand's contract)
		return "local-" + hex.EncodeToString(b[:]) + "-"
	}()
	localCount atomic.Uint64
)

// localRequestID returns a request id unique in this process.
func localRequestID() string {
	return localPrefix + strconv.FormatUint(localCount.Add(1), 10)
}
