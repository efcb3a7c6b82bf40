package retrieval

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/spec"
)

// DefaultPushMaxSkew is how far past the server's clock a pushed row's event
// time may be when APIOptions.PushMaxSkew is zero.
const DefaultPushMaxSkew = 5 * time.Minute

// FeatureCheck is a data-quality check of one feature column, as POST /push
// applies it to the pushed rows (see SetDef.Checks).
type FeatureCheck struct {
	// Feature is the column checked: one of the set's Features.
	Feature string
	Check   *spec.Check
}

// rowCheck reports whether a check kind applies to single rows. Push applies
// those (not_null, between, in_set) to the pushed rows, with `mostly` over the
// rows of the request; unique, row_count and freshness describe a whole
// partition of the historical store, which a push is not, and stay with
// pipeline runs.
func rowCheck(k spec.CheckKind) bool {
	return k == spec.NotNull || k == spec.Between || k == spec.InSet
}

// checkFailure is one failed check of a push: the first failing row and its
// value name it.
type checkFailure struct {
	feature string
	check   *spec.Check
	row     int
	value   online.Value
	failed  int
	total   int
}

func (f *checkFailure) String() string {
	v := f.value.String()
	if len(v) > maxEchoedValue { // never echo unbounded input
		v = v[:maxEchoedValue] + "..."
	}
	return fmt.Sprintf("row %d: feature %s = %s fails %s (%d of %d rows fail)",
		f.row, f.feature, v, f.check, f.failed, f.total)
}

// maxEchoedValue bounds the bytes of a pushed value an error message repeats.
const maxEchoedValue = 64

// runPushChecks applies the set's row checks to rows and returns the failed
// ones: with `mostly`, a check fails when the share of rows passing it is
// below mostly, like the pipeline's checks (nulls count for not_null only).
func runPushChecks(set *setInfo, rows []online.Row) []checkFailure {
	var out []checkFailure
	for _, fc := range set.Checks {
		if !rowCheck(fc.Check.Kind) {
			continue
		}
		fi := set.features[fc.Feature]
		f := checkFailure{feature: fc.Feature, check: fc.Check, row: -1}
		for r := range rows {
			v := rows[r].Values[fi]
			if v.IsNull() && fc.Check.Kind != spec.NotNull {
				continue
			}
			f.total++
			if !passes(fc.Check, v) {
				if f.row < 0 {
					f.row, f.value = r, v
				}
				f.failed++
			}
		}
		if f.failed > 0 && float64(f.total-f.failed)/float64(f.total) < fc.Check.EffectiveMostly() {
			out = append(out, f)
		}
	}
	return out
}

// passes reports whether one value passes a row check.
func passes(c *spec.Check, v online.Value) bool {
	switch c.Kind {
	case spec.NotNull:
		return !v.IsNull()
	case spec.Between:
		x, ok := number(v)
		if !ok || math.IsNaN(x) {
			return false
		}
		return (c.Min == nil || x >= *c.Min) && (c.Max == nil || x <= *c.Max)
	case spec.InSet:
		for _, want := range c.Values {
			if equalsLiteral(v, want) {
				return true
			}
		}
		return false
	}
	return true
}

func number(v online.Value) (float64, bool) {
	switch v.Kind() {
	case online.KindInt64:
		return float64(v.Int64()), true
	case online.KindFloat64:
		return v.Float64(), true
	}
	return 0, false
}

// equalsLiteral compares a value to an in_set literal the way the pipeline's
// SQL does: a string column against the literal's text, numbers by value.
func equalsLiteral(v online.Value, lit any) bool {
	switch v.Kind() {
	case online.KindString:
		return v.Str() == fmt.Sprint(lit)
	case online.KindBool:
		b, ok := lit.(bool)
		return ok && b == v.Bool()
	case online.KindInt64, online.KindFloat64:
		x, _ := number(v)
		switch l := lit.(type) {
		case int64:
			return x == float64(l)
		case float64:
			return x == l
		case string:
			f, err := strconv.ParseFloat(l, 64)
			return err == nil && x == f
		}
	}
	return false
}
