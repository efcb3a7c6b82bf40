package train

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
	"github.com/atrium-ml/atrium/internal/modeling/linear"
	"github.com/atrium-ml/atrium/internal/registry"
	"github.com/atrium-ml/atrium/internal/spec"
)

// The checks here need the learners and the registry, which the spec
// package, read by the data layer too, must not import: Run makes them
// before anything else, next to the features' (spec.CheckFeatures), so a
// spec's every problem is still reported at once, at its line, before any
// data is read or any trial runs.

// checkParams reports the problems of t's learner parameters and
// registered model name (see validateParams).
func checkParams(t *spec.Training) []spec.Problem {
	var ps []spec.Problem
	add := func(path, format string, args ...any) { ps = append(ps, t.Problem(path, format, args...)) }
	validateParams(t, add)
	if r := t.Register; r != nil && r.Model != "" {
		if err := registry.ValidateName(r.Model, "register.model"); err != nil {
			// The registry's own rule: the name is refused there only after
			// the whole study otherwise.
			add("register.model", "register.model %q: %v", r.Model, err)
		}
	}
	return ps
}

// specOwnedParams are the learner parameters the orchestrator sets itself in
// every trial (internal/modeling/train), by canonical name, with where the
// spec sets them: a value in model.params or tune.space would be silently
// overwritten.
var specOwnedParams = map[string]string{
	gbdt.ParamObjective: "model.objective",
	"metric":            "tune.metric (the study's metric)",
	"eval_at":           "tune.metric's @k (ndcg@10)",
	"num_threads":       "atrium train --threads",
}

// canonicalParam is the LightGBM name of a parameter key (its aliases
// resolved, gbdt.ParamName), or the key itself, lower-cased, when LightGBM
// has no such parameter. Linear models take LightGBM's names too.
func canonicalParam(key string) string {
	if n, ok := gbdt.ParamName(key); ok {
		return n
	}
	return strings.ToLower(strings.TrimSpace(key))
}

// learner returns the parameter parsing of the model's learner, as each
// trial's fit runs it (internal/modeling/fit: gbdt.ParseParams or
// linear.ParseParams), giving the problems one per line (nil: accepted),
// and the parameters the fit adds to the spec's: the objective, and for a
// multiclass tree the class count the labels will give (2 stands in for
// it, as fit does before reading data, unless num_class is given: see
// standIn).
func learner(t *spec.Training) (parse func(map[string]string) []string, base map[string]string) {
	m := t.Model
	if m.Kind == spec.ModelLinear {
		parse = func(kv map[string]string) []string {
			_, err := linear.ParseParams(kv)
			return paramProblems(err, linear.ErrParams)
		}
		return parse, map[string]string{gbdt.ParamObjective: m.Task()}
	}
	parse = func(kv map[string]string) []string {
		_, err := gbdt.ParseParams(kv)
		return paramProblems(err, gbdt.ErrParams)
	}
	base = map[string]string{gbdt.ParamObjective: m.Objective}
	if m.Objective == "multiclass" {
		base[gbdt.ParamNumClass] = "2"
	}
	return parse, base
}

// standIn is kv without its parameters of key's canonical name: base's
// stand-in num_class gives way to a num_class given in model.params or
// searched (under its name or an alias), while every other parameter is
// still checked with a class count.
func standIn(kv map[string]string, key string) map[string]string {
	out := maps.Clone(kv)
	c := canonicalParam(key)
	for k := range out {
		if canonicalParam(k) == c {
			delete(out, k)
		}
	}
	return out
}

// paramProblems splits a learner's parameter error into its lines, without
// the sentinel's text.
func paramProblems(err, sentinel error) []string {
	if err == nil {
		return nil
	}
	s := err.Error()
	if errors.Is(err, sentinel) {
		s = strings.TrimPrefix(s, sentinel.Error())
	}
	var out []string
	for _, l := range strings.Split(strings.TrimLeft(s, ": \n"), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// validateParams checks the names and values of model.params and
// tune.space with the learner's own parameter parsing, as every trial's fit
// will: a name the learner does not know, or a value it refuses, would fail
// every trial. Each problem is at its parameter's line. A searched
// parameter is checked by its name and, for a choice, each value, for an
// int or float range its bounds (and for a float range a fractional value
// inside it, which an integer parameter refuses); the trial fails, as
// before, when only a combination of sampled values is refused.
func validateParams(t *spec.Training, add func(path, format string, args ...any)) {
	m := t.Model
	var space []spec.TuneParam
	if t.Tune != nil {
		space = t.Tune.Space
	}
	parse, base := learner(t)
	fixedOK := true
	for _, k := range slices.Sorted(maps.Keys(m.Params)) {
		path := "model.params." + k
		if by, owned := specOwnedParams[canonicalParam(k)]; owned {
			add(path, "model.params.%s: set by %s, expected it there and not in model.params", k, by)
			fixedOK = false
			continue
		}
		kv := standIn(base, k)
		kv[k] = m.Params[k]
		for _, line := range parse(kv) {
			add(path, "model.params.%s: %s", k, strings.TrimPrefix(line, fmt.Sprintf("parameter %q: ", k)))
			fixedOK = false
		}
	}
	fixed := maps.Clone(base)
	for k := range m.Params {
		fixed = standIn(fixed, k) // only base's keys are in it yet
	}
	maps.Copy(fixed, m.Params)
	if fixedOK {
		// Each parameter alone is fine: what is left is a combination
		// (a parameter given twice under two names, say).
		for _, line := range parse(fixed) {
			add("model.params", "model.params: %s", line)
			fixedOK = false
		}
	}
	if !fixedOK {
		fixed = base // the searched values are checked on their own
	}
	for _, p := range space {
		if msg := searchConflict(t, p.Name); msg != "" {
			add("tune.space."+p.Name, "%s", msg)
			continue
		}
		path := "tune.space." + p.Name
		values, fraction := probes(p)
		seen := map[string]bool{}
		check := func(v, format string) {
			kv := standIn(fixed, p.Name)
			kv[p.Name] = v
			for _, line := range parse(kv) {
				if !seen[line] {
					seen[line] = true
					add(path, format, p.Name, strings.TrimPrefix(line, fmt.Sprintf("parameter %q: ", p.Name)))
				}
			}
		}
		for _, v := range values {
			check(v, "tune.space.%s: %s")
		}
		if fraction != "" {
			check(fraction, "tune.space.%s: a float range samples fractional values such as "+fraction+": %s")
		}
	}
}

// probes are the values of a searched parameter the learner is asked
// about: a choice's values, a range's bounds (written as a trial writes its
// sampled values), and for a float range a fractional value inside it
// ("" when it has none). A range that is not well formed (reported by
// validateTune) has none.
func probes(p spec.TuneParam) (values []string, fraction string) {
	switch p.Type {
	case "categorical":
		return p.Choices, ""
	case "int", "float":
	default:
		return nil, ""
	}
	if p.Low > p.High || p.Log && p.Low <= 0 || math.IsNaN(p.Low) || math.IsNaN(p.High) {
		return nil, ""
	}
	if p.Type == "int" {
		if p.Low != math.Trunc(p.Low) || p.High != math.Trunc(p.High) {
			return nil, ""
		}
		lo, hi := strconv.FormatFloat(p.Low, 'f', 0, 64), strconv.FormatFloat(p.High, 'f', 0, 64)
		return slices.Compact([]string{lo, hi}), ""
	}
	f := func(x float64) string { return fmt.Sprintf("%.10g", x) }
	values = slices.Compact([]string{f(p.Low), f(p.High)})
	x := (p.Low + p.High) / 2
	if x == math.Trunc(x) {
		x = p.Low + (p.High-p.Low)/4
	}
	if x > p.Low && x < p.High && x != math.Trunc(x) {
		fraction = f(x)
	}
	return values, fraction
}

// searchConflict says why the searched parameter name cannot be searched
// ("" when it can): the orchestrator sets it, it is fixed in model.params
// too (under its name or an alias), or another searched name is the same
// parameter.
func searchConflict(t *spec.Training, name string) string {
	c := canonicalParam(name)
	if by, owned := specOwnedParams[c]; owned {
		return fmt.Sprintf("%s is set by %s, not searched", name, by)
	}
	if _, fixed := t.Model.Params[name]; fixed {
		return "" // reported by the spec's own check
	}
	for _, k := range slices.Sorted(maps.Keys(t.Model.Params)) {
		if canonicalParam(k) == c {
			return fmt.Sprintf("%s is both searched and fixed in model.params (as %s, the same parameter %s): remove one", name, k, c)
		}
	}
	for _, p := range t.Tune.Space {
		if p.Name == name {
			break
		}
		if canonicalParam(p.Name) == c {
			return fmt.Sprintf("%s is searched twice, as %s too (the same parameter %s): search it once", name, p.Name, c)
		}
	}
	return ""
}
