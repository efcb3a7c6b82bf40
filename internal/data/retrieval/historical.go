package retrieval

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/ondemand"
	"github.com/atrium-ml/atrium/internal/data/online"
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
	// OnDemandFailed counts on-demand values that could not be computed (they
	// are null) and FirstFailure says why the first did.
	OnDemandFailed int
	FirstFailure   error
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
	stored, storedNames := resolved, names
	out := &HistoricalResult{Features: resolved}
	var computed *offline.Computed
	if _, od := spec.SplitOnDemand(resolved); len(od) > 0 {
		stored, storedNames = nil, nil
		for i, r := range resolved {
			if !r.OnDemand {
				stored, storedNames = append(stored, r), append(storedNames, names[i])
			}
		}
		computed, stored, storedNames, err = onDemandColumns(feats, resolved, names, stored, storedNames, out)
		if err != nil {
			return nil, fmt.Errorf("historical: %w", err)
		}
	}
	res, err := eng.PointInTime(ctx, offline.PointInTimeRequest{Spine: req.Spine, TimeColumn: req.TimeColumn, Features: stored, Names: storedNames,
		Out: req.Out, Computed: computed})
	if err != nil {
		return nil, err
	}
	out.Rows, out.Columns = res.Rows, res.Columns
	return out, nil
}

// onDemandColumns plans the on-demand features of resolved (named by names)
// as columns computed after the join: the stored features their expressions
// read are joined too (hidden when not requested), request values are read
// from spine columns of the same name. It returns the stored features to
// join; failures are counted into res.
func onDemandColumns(feats *spec.Features, resolved []spec.ResolvedFeature, names []string, stored []spec.ResolvedFeature, storedNames []string,
	res *HistoricalResult) (*offline.Computed, []spec.ResolvedFeature, []string, error) {
	c := &offline.Computed{}
	inputIndex := map[string]int{} // input column name -> index in c.Inputs
	input := func(name string, t spec.Type) int {
		i, ok := inputIndex[name]
		if !ok {
			i = len(c.Inputs)
			inputIndex[name] = i
			c.Inputs = append(c.Inputs, offline.ComputedColumn{Name: name, Type: t})
		}
		return i
	}
	type setPlan struct {
		prg  *ondemand.Program
		vars []int // input index of each variable
		outs []int // [k]: expression index of the set's k-th requested feature
		cols []int // [k]: its index in c.Columns
	}
	var plans []*setPlan
	bySet := map[string]*setPlan{}
	for i, r := range resolved {
		if !r.OnDemand {
			continue
		}
		p := bySet[r.Set]
		if p == nil {
			prg, vars, err := feats.CompileOnDemand(r.Set)
			if err != nil {
				return nil, nil, nil, err
			}
			p = &setPlan{prg: prg}
			for _, v := range vars {
				name := v.Name // a request value: the spine column of that name
				if v.Feature != nil {
					k := slices.IndexFunc(stored, func(s spec.ResolvedFeature) bool { return s.Ref == v.Feature.Ref })
					if k < 0 {
						k = len(stored)
						stored = append(stored, *v.Feature)
						storedNames = append(storedNames, fmt.Sprintf("%sin_%d", spec.ReservedPrefix, k))
						c.Hidden = append(c.Hidden, storedNames[k])
					}
					name = storedNames[k]
				}
				p.vars = append(p.vars, input(name, v.Type))
			}
			bySet[r.Set] = p
			plans = append(plans, p)
		}
		e := slices.IndexFunc(p.prg.Exprs(), func(x ondemand.Expr) bool { return x.Name == r.Name })
		p.outs = append(p.outs, e)
		p.cols = append(p.cols, len(c.Columns))
		c.Columns = append(c.Columns, offline.ComputedColumn{Name: names[i], Type: r.Type})
	}
	var scratch []online.Value
	c.Compute = func(in [][]online.Value, rows int, out []online.Value) error {
		nc := len(c.Columns)
		for _, p := range plans {
			ne := p.prg.Len()
			scratch = slices.Grow(scratch[:0], rows*ne)[:rows*ne]
			err := p.prg.Eval(mappedInput{in: in, vars: p.vars}, rows, scratch)
			var failed *ondemand.EvalError
			if errors.As(err, &failed) {
				for _, e := range p.outs {
					res.OnDemandFailed += failed.Failed[e]
				}
				if res.FirstFailure == nil {
					res.FirstFailure = failed.First
				}
			} else if err != nil {
				return err
			}
			for r := range rows {
				for k, e := range p.outs {
					out[r*nc+p.cols[k]] = scratch[r*ne+e]
				}
			}
		}
		return nil
	}
	return c, stored, storedNames, nil
}

// mappedInput reads a program's variable v from column vars[v] of in.
type mappedInput struct {
	in   [][]online.Value
	vars []int
}

func (m mappedInput) Value(v, r int) online.Value { return m.in[m.vars[v]][r] }

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
