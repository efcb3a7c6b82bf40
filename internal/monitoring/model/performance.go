package model

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/monitoring/labels"
	"github.com/atrium-ml/atrium/internal/serving/predlog"
	"github.com/atrium-ml/atrium/internal/spec"
)

// LabelSource is where delayed labels come from (labels.Store).
type LabelSource interface {
	ByRequest(ctx context.Context, model string, ids []string) ([]labels.Label, error)
	ByEntity(ctx context.Context, model string, from, to time.Time) ([]labels.Label, error)
	Received(ctx context.Context, model string, from, to time.Time) ([]labels.Label, error)
}

var _ LabelSource = (*labels.Store)(nil)

// Performance is realized performance over the window: the version's
// predictions joined with the labels that arrived, next to its test metrics.
type Performance struct {
	// Predictions is the number of the window's rows; Labeled how many got
	// a label (a ranking metric also counts, as 0, the unlabeled rows of a
	// request that has labels: a click log's implied negatives).
	Predictions int `json:"predictions"`
	Labeled     int `json:"labeled"`
	// Duplicates is how many of the joined labels were sent more than once
	// (the last value counts).
	Duplicates int `json:"duplicates"`
	// Unmatched counts the labels received in the window whose request id
	// matches no prediction of the model from one window before it to its
	// end, or whose row is not in the request; Examples shows a few.
	Unmatched        int      `json:"unmatched"`
	UnmatchedExample []string `json:"unmatched_examples,omitempty"`
	Metrics          []Metric `json:"metrics"`
	// Message says why there are no metrics (no labels yet).
	Message string `json:"message,omitempty"`
}

// Metric is one realized metric and the version's test value of it.
type Metric struct {
	Name  string   `json:"name"`
	Value float64  `json:"value"`
	Test  *float64 `json:"test,omitempty"`
	Rows  int      `json:"rows"`
	Error string   `json:"error,omitempty"`
}

// Metric returns the realized metric named name ("ndcg@10"), if computed.
func (p *Performance) Metric(name string) (Metric, bool) {
	i := slices.IndexFunc(p.Metrics, func(m Metric) bool { return strings.EqualFold(m.Name, name) })
	if i < 0 {
		return Metric{}, false
	}
	return p.Metrics[i], true
}

// joined is the window's rows with their labels.
type joined struct {
	rows    []predlog.Row
	label   []float64 // NaN: no label
	labeled int
	dups    int
}

// join attaches labels to rows: by request id (and row index or entity
// keys), then by entity and time. It returns the labels by request that
// matched no row of the window.
func join(rs []predlog.Row, byReq, byEnt []labels.Label) (joined, []labels.Label) {
	j := joined{rows: rs, label: make([]float64, len(rs))}
	for i := range j.label {
		j.label[i] = math.NaN()
	}
	byID := map[string][]int{}
	for i, r := range rs {
		byID[r.RequestID] = append(byID[r.RequestID], i)
	}
	set := func(i int, l labels.Label) {
		if math.IsNaN(j.label[i]) {
			j.labeled++
			if l.Writes > 1 {
				j.dups++
			}
		}
		j.label[i] = l.Value
	}
	var unmatched []labels.Label
	for _, l := range byReq {
		idx := byID[l.RequestID]
		hit := false
		for _, i := range idx {
			r := rs[i]
			switch {
			case l.Row != nil:
				if r.Row != *l.Row {
					continue
				}
			case len(l.Entities) > 0:
				if !hasEntities(r, l.Entities) {
					continue
				}
			case len(idx) > 1:
				continue // a several-row request needs the row named
			}
			set(i, l)
			hit = true
		}
		if !hit {
			unmatched = append(unmatched, l)
		}
	}
	// By entity and time: the newest row of those keys in [time-horizon, time].
	for _, l := range byEnt {
		best := -1
		for i, r := range rs {
			if r.Time.After(l.Time) || r.Time.Before(l.Time.Add(-l.Horizon)) || !hasEntities(r, l.Entities) {
				continue
			}
			if best < 0 || r.Time.After(rs[best].Time) {
				best = i
			}
		}
		if best >= 0 {
			set(best, l)
		}
	}
	return j, unmatched
}

func hasEntities(r predlog.Row, want map[string]string) bool {
	for k, v := range want {
		if r.Entities[k] != v {
			return false
		}
	}
	return true
}

// performance joins the window's rows of the version with their labels.
func (m *Monitor) performance(ctx context.Context, rep *Report, rs []predlog.Row, ref *Reference) (*Performance, error) {
	src := m.opts.Labels
	ids := make([]string, 0, len(rs))
	seen := map[string]bool{}
	for _, r := range rs {
		if !seen[r.RequestID] {
			seen[r.RequestID] = true
			ids = append(ids, r.RequestID)
		}
	}
	byReq, err := src.ByRequest(ctx, rep.Model, ids)
	if err != nil {
		return nil, err
	}
	// A label by entity may come up to its horizon after the prediction;
	// those of the window's rows have times from its start on.
	byEnt, err := src.ByEntity(ctx, rep.Model, rep.Window.Start, rep.Window.End.Add(labels.MaxHorizon))
	if err != nil {
		return nil, err
	}
	j, unmatched := join(rs, byReq, byEnt)
	p := &Performance{Predictions: len(rs), Labeled: j.labeled, Duplicates: j.dups, Metrics: []Metric{}}
	// Labels received in the window for request ids the log does not know:
	// compared with every request of the model (any version) from one
	// window before the window's start, since a label follows its
	// prediction.
	recv, err := src.Received(ctx, rep.Model, rep.Window.Start, rep.Window.End)
	if err != nil {
		return nil, err
	}
	if len(recv) > 0 || len(unmatched) > 0 {
		span := rep.Window.End.Sub(rep.Window.Start)
		var asked []string
		for _, l := range recv {
			asked = append(asked, l.RequestID)
		}
		ids, err := predlog.Known(ctx, m.opts.LogDir, rep.Model, rep.Window.Start.Add(-span), rep.Window.End, asked)
		if err != nil {
			return nil, err
		}
		bad := map[string]bool{}
		for _, l := range unmatched {
			bad[labelText(l)] = true // its request is in the window, its row is not
		}
		for _, l := range recv {
			if !ids[l.RequestID] {
				bad[labelText(l)] = true
			}
		}
		p.Unmatched = len(bad)
		for t := range bad {
			p.UnmatchedExample = append(p.UnmatchedExample, t)
		}
		sort.Strings(p.UnmatchedExample)
		if len(p.UnmatchedExample) > 5 {
			p.UnmatchedExample = p.UnmatchedExample[:5]
		}
	}
	if p.Labeled == 0 {
		p.Message = fmt.Sprintf("no labels yet for the %d predictions of version %s in this window: realized metrics appear once labels arrive (POST /v1/labels)", len(rs), rep.Version)
		return p, nil
	}
	var tests map[string]float64
	if ref != nil {
		tests = ref.TestMetrics
	}
	for _, name := range metricNames(rs, j, tests) {
		mt := realized(name, j)
		if t, ok := tests[name]; ok {
			mt.Test = &t
		}
		p.Metrics = append(p.Metrics, mt)
	}
	return p, nil
}

func labelText(l labels.Label) string {
	switch {
	case l.Row != nil:
		return fmt.Sprintf("request %s row %d", l.RequestID, *l.Row)
	case len(l.Entities) > 0:
		return fmt.Sprintf("request %s %s", l.RequestID, labels.EntityKey(l.Entities))
	}
	return "request " + l.RequestID
}

// metricNames are the realized metrics to compute: the version's test
// metrics this package computes, else by the predictions' route and
// labels: ndcg@10 and map@10 for ranking, auc and logloss for 0/1 labels,
// mae and rmse otherwise.
func metricNames(rs []predlog.Row, j joined, tests map[string]float64) []string {
	var out []string
	for name := range tests {
		if _, _, err := spec.ParseRealizedMetric(name); err == nil {
			out = append(out, strings.ToLower(name))
		}
	}
	if len(out) > 0 {
		sort.Strings(out)
		return out
	}
	if len(rs) > 0 && rs[len(rs)-1].Route == predlog.RouteRank {
		return []string{"ndcg@10", "map@10"}
	}
	binary := true
	for _, l := range j.label {
		if !math.IsNaN(l) && l != 0 && l != 1 {
			binary = false
		}
	}
	if binary {
		return []string{"auc", "logloss"}
	}
	return []string{"mae", "rmse"}
}

// realized computes one metric over the labeled rows (ranking: the
// requests with at least one label, their unlabeled rows as 0).
func realized(name string, j joined) Metric {
	base, k, err := spec.ParseRealizedMetric(name)
	mt := Metric{Name: name}
	if err != nil {
		mt.Error = err.Error()
		return mt
	}
	if base == "ndcg" || base == "map" {
		label, score, groups := rankGroups(j)
		mt.Rows = len(label)
		if mt.Rows == 0 {
			mt.Error = "no labeled request"
			return mt
		}
		if base == "ndcg" {
			mt.Value, err = ml.NDCG(label, score, groups, k, nil)
		} else {
			mt.Value, err = ml.MAP(label, score, groups, k)
		}
	} else {
		var label, score []float64
		for i, r := range j.rows {
			if !math.IsNaN(j.label[i]) && len(r.Scores) == 1 && !math.IsNaN(r.Scores[0]) {
				label = append(label, j.label[i])
				score = append(score, r.Scores[0])
			}
		}
		mt.Rows = len(label)
		if mt.Rows == 0 {
			mt.Error = "no labeled row with a single score"
			return mt
		}
		switch base {
		case "auc":
			mt.Value, err = ml.AUC(label, score, nil)
		case "logloss":
			mt.Value, err = ml.LogLoss(label, score, nil)
		case "mae":
			mt.Value, err = ml.MAE(label, score, nil)
		case "rmse":
			mt.Value, err = ml.RMSE(label, score, nil)
		}
	}
	if err != nil {
		mt.Error = err.Error()
	}
	return mt
}

// rankGroups lays out the requests that have a label as consecutive
// queries.
func rankGroups(j joined) (label, score []float64, groups []int) {
	type req struct{ rows []int }
	order := []string{}
	reqs := map[string]*req{}
	for i, r := range j.rows {
		q := reqs[r.RequestID]
		if q == nil {
			q = &req{}
			reqs[r.RequestID] = q
			order = append(order, r.RequestID)
		}
		q.rows = append(q.rows, i)
	}
	for _, id := range order {
		q := reqs[id]
		has := slices.ContainsFunc(q.rows, func(i int) bool { return !math.IsNaN(j.label[i]) })
		if !has {
			continue
		}
		for _, i := range q.rows {
			l := j.label[i]
			if math.IsNaN(l) {
				l = 0
			}
			s := math.Inf(-1)
			if len(j.rows[i].Scores) == 1 && !math.IsNaN(j.rows[i].Scores[0]) {
				s = j.rows[i].Scores[0]
			}
			label = append(label, l)
			score = append(score, s)
		}
		groups = append(groups, len(q.rows))
	}
	return label, score, groups
}
