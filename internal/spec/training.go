package spec

import (
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Training is a training spec, training/*.yaml: what `atrium train` builds,
// tunes, evaluates, registers and promotes (docs/training.md).
//
// A *Training returned by ParseTraining or LoadTraining has passed every
// check that needs only the file; CheckFeatures checks its feature
// references against a catalog, and the orchestrator checks the spine's
// columns (it reads the file), both reporting Problems at the spec's lines.
type Training struct {
	// File is the spec's path as given.
	File string `json:"-"`
	// Name names the study and the parent run. Required.
	Name     string           `json:"name"`
	Features TrainingFeatures `json:"features"`
	Spine    TrainingSpine    `json:"spine"`
	Split    TrainingSplit    `json:"split"`
	Model    TrainingModel    `json:"model"`
	// Tune is nil when the spec has no tune block: one trial with the
	// model's parameters.
	Tune *TrainingTune `json:"tune,omitempty"`
	// Register is nil when the model is not registered.
	Register *TrainingRegister `json:"register,omitempty"`
	// Schedule, when set, retrains the model on it (job "train:NAME"):
	// each period waits for the scheduled feature sets it reads to be
	// fresh up to the period's end. Nil: trained only by hand.
	Schedule *Schedule `json:"schedule,omitempty"`

	// lines maps a field's path ("spine.label", "tune.space.num_leaves") to
	// its line in File.
	lines map[string]int
}

// TrainingFeatures are the model's features: a feature service or a list of
// references (set, set:feature or a service), exactly one of them.
type TrainingFeatures struct {
	Service string   `json:"service,omitempty"`
	Refs    []string `json:"refs,omitempty"`
	// Exclude lists features of the service that are not model inputs
	// (set:feature references or feature names), such as a raw list a
	// derived feature already encodes. Serving still fetches the service and
	// passes the model its inputs by name.
	Exclude []string `json:"exclude,omitempty"`
}

// TrainingSpine is the file of labelled events the features are joined to
// point in time.
type TrainingSpine struct {
	// Path is a CSV or Parquet file, relative to the project directory.
	// Required.
	Path string `json:"path"`
	// Timestamp is the spine's time column. Required.
	Timestamp string `json:"timestamp"`
	// Label is the target column. Required.
	Label string `json:"label"`
	// Group is the query column (required for lambdarank); splits never
	// put one group in two parts.
	Group string `json:"group,omitempty"`
	// Weight is an optional per-row weight column.
	Weight string `json:"weight,omitempty"`
	// Ignore lists spine columns that are not features (ids); the join keys,
	// timestamp, label, group and weight are never features.
	Ignore []string `json:"ignore,omitempty"`
}

// Split methods.
const (
	SplitByTime   = "time"
	SplitByRandom = "random"
	SplitByKFold  = "kfold"
)

// TrainingSplit says how the training set is cut into train, valid and test.
type TrainingSplit struct {
	// By is SplitByTime, SplitByRandom or SplitByKFold.
	By string `json:"by"`
	// ValidSpan and TestSpan (by time) are the last spans of the data's time
	// range: test is the last TestSpan, valid the ValidSpan before it.
	ValidSpan Duration `json:"valid_span,omitempty"`
	TestSpan  Duration `json:"test_span,omitempty"`
	// Valid and Test (random) are shares of the rows (of the groups, with a
	// group column). With kfold, Test is the share held out for the test
	// split (default 0.2) and the rest is cut into KFold folds.
	Valid float64 `json:"valid,omitempty"`
	Test  float64 `json:"test,omitempty"`
	// KFold is the number of folds (by kfold).
	KFold int `json:"kfold,omitempty"`
	// Seed seeds random splits. Default 1.
	Seed uint64 `json:"seed"`
}

// Model kinds.
const (
	ModelGBDT   = "gbdt"
	ModelLinear = "linear"
)

// TrainingModel is the learner and its fixed parameters.
type TrainingModel struct {
	// Kind is ModelGBDT (default) or ModelLinear.
	Kind string `json:"kind"`
	// Objective is binary, regression, regression_l1, huber, multiclass or
	// lambdarank (linear: binary, regression or multiclass). Required.
	Objective string `json:"objective"`
	// Params are LightGBM-named parameters every trial starts from; the
	// search space overrides them.
	Params map[string]string `json:"params,omitempty"`
}

// Task is the modeling task of the objective (fit.Options.Task).
func (m TrainingModel) Task() string {
	switch m.Objective {
	case "regression_l1", "huber", "regression":
		return "regression"
	}
	return m.Objective
}

// TrainingTune is the search.
type TrainingTune struct {
	// Trials is the trial budget. Default 20.
	Trials int `json:"trials"`
	// Parallel trials share the CPUs. Default 1.
	Parallel int `json:"parallel"`
	// Seed seeds the sampler (and each trial's model). Default 1.
	Seed uint64 `json:"seed"`
	// Sampler is tpe (default), random or grid.
	Sampler string `json:"sampler"`
	// Pruner is median (default), asha or none.
	Pruner string `json:"pruner"`
	// Metric is the validation metric to optimize, LightGBM's name (ndcg@10,
	// auc, binary_logloss, l2, ...). Default: the objective's own.
	Metric string `json:"metric"`
	// Direction is maximize or minimize; default: the metric's own.
	Direction string `json:"direction"`
	// Space is the searched parameters, in file order.
	Space []TuneParam `json:"space"`
}

// TuneParam is one searched parameter.
type TuneParam struct {
	Name string `json:"name"`
	// Type is "int", "float" or "categorical".
	Type string `json:"type"`
	// Low and High bound int and float parameters (inclusive).
	Low  float64 `json:"low,omitempty"`
	High float64 `json:"high,omitempty"`
	// Log samples on a log scale (Low > 0).
	Log bool `json:"log,omitempty"`
	// Step, when > 0, is the grid of int and float values (Low, Low+Step, ...).
	Step float64 `json:"step,omitempty"`
	// Choices are the values of a categorical parameter, as text.
	Choices []string `json:"choices,omitempty"`

	// unread marks an int or float range whose bounds could not be read (a
	// problem reported): checks of the range are skipped.
	unread bool
}

// TrainingRegister registers the refit model.
type TrainingRegister struct {
	// Model is the registered model's name. Required.
	Model string `json:"model"`
	// Alias, when set, points at every new version (challenger, say).
	Alias string `json:"alias,omitempty"`
	// Promote, when set, moves its alias to the new version when it beats
	// the alias's current version on the same test split by IfBetterBy.
	Promote *TrainingPromote `json:"promote,omitempty"`
}

// TrainingPromote is the promotion gate.
type TrainingPromote struct {
	Alias      string  `json:"alias"`
	IfBetterBy float64 `json:"if_better_by"`
}

// Defaults of a training spec.
const (
	DefaultTuneTrials = 20
	DefaultKFoldTest  = 0.2
)

// Line returns the line of a field of the spec ("spine.label",
// "tune.space.num_leaves", "features"), or of the nearest enclosing field
// present; 0 when none is.
func (t *Training) Line(path string) int {
	for {
		if l, ok := t.lines[path]; ok {
			return l
		}
		i := strings.LastIndexByte(path, '.')
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
}

// Problem returns a problem of the spec at the line of the field at path.
func (t *Training) Problem(path, format string, args ...any) Problem {
	return Problem{File: t.File, Line: t.Line(path), Msg: fmt.Sprintf(format, args...)}
}

// LoadTraining reads and checks a training spec (see ParseTraining).
func LoadTraining(path string) (*Training, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("training spec: %w", err)
	}
	return ParseTraining(path, data)
}

// ParseTraining decodes a training spec and reports every problem the file
// alone shows, as Problems located by file:line: unknown or missing fields,
// bad values, a metric that does not fit the objective, a search range with
// low > high. The learner's parameters and the registered model's name are
// checked by internal/modeling/train, which knows the learners and the
// registry (this package, read by the data layer too, does not).
func ParseTraining(file string, data []byte) (*Training, error) {
	var ps Problems
	t := &Training{File: file, lines: map[string]int{}}
	parsed, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, Problems{yamlProblem(file, err)}
	}
	d := &nodeDecoder{file: file, ps: &ps}
	docs := 0
	for _, doc := range parsed.Docs {
		if doc == nil || isNull(doc.Body) {
			continue
		}
		if docs++; docs > 1 {
			d.add(doc.Body, "training spec: a second YAML document, expected one spec per file")
			continue
		}
		t.decode(d, doc.Body)
	}
	if docs == 0 {
		ps.Add(file, 0, "training spec is empty, expected name, features, spine, split and model")
	}
	t.ensureDefaults()
	if docs > 0 {
		t.validate(&ps)
	}
	if err := ps.Err(); err != nil {
		return nil, err
	}
	return t, nil
}

// keyed records the line of each key of a mapping under prefix.
func (t *Training) keyed(prefix string, lines map[string]int) {
	for k, l := range lines {
		t.lines[prefix+k] = l
	}
}

func (t *Training) decode(d *nodeDecoder, body ast.Node) {
	lines, _ := d.mapping(body, "training spec", map[string]func(ast.Node){
		"name":     func(v ast.Node) { t.Name = d.str(v, "name") },
		"features": func(v ast.Node) { t.decodeFeatures(d, v) },
		"spine": func(v ast.Node) {
			s := &t.Spine
			l, _ := d.mapping(v, "spine", map[string]func(ast.Node){
				"path":      func(v ast.Node) { s.Path = d.str(v, "spine.path") },
				"timestamp": func(v ast.Node) { s.Timestamp = d.str(v, "spine.timestamp") },
				"label":     func(v ast.Node) { s.Label = d.str(v, "spine.label") },
				"group":     func(v ast.Node) { s.Group = d.str(v, "spine.group") },
				"weight":    func(v ast.Node) { s.Weight = d.str(v, "spine.weight") },
				"ignore":    func(v ast.Node) { s.Ignore = d.strs(v, "spine.ignore") },
			})
			t.keyed("spine.", l)
		},
		"split": func(v ast.Node) { t.decodeSplit(d, v) },
		"model": func(v ast.Node) {
			m := &t.Model
			l, _ := d.mapping(v, "model", map[string]func(ast.Node){
				"kind":      func(v ast.Node) { m.Kind = d.str(v, "model.kind") },
				"objective": func(v ast.Node) { m.Objective = d.str(v, "model.objective") },
				"params": func(v ast.Node) {
					var pl map[string]int
					m.Params, pl = d.params(v, "model.params")
					t.keyed("model.params.", pl)
				},
			})
			t.keyed("model.", l)
		},
		"tune":     func(v ast.Node) { t.decodeTune(d, v) },
		"register": func(v ast.Node) { t.decodeRegister(d, v) },
		"schedule": func(v ast.Node) { t.Schedule = d.schedule(v, "schedule") },
	})
	t.keyed("", lines)
}

func (t *Training) decodeFeatures(d *nodeDecoder, n ast.Node) {
	if _, ok := unwrap(n).(*ast.SequenceNode); ok {
		t.Features.Refs = d.strs(n, "features")
		t.itemLines("features.", n)
		return
	}
	l, _ := d.mapping(n, "features (a mapping {service: NAME} or a list of feature references)", map[string]func(ast.Node){
		"service": func(v ast.Node) { t.Features.Service = d.str(v, "features.service") },
		"exclude": func(v ast.Node) {
			t.Features.Exclude = d.strs(v, "features.exclude")
			t.itemLines("features.exclude.", v)
		},
	})
	t.keyed("features.", l)
}

// itemLines records the line of each item of a list under prefix+index
// ("features.2"), so that a problem with one reference is at its own line
// in a block list (a flow list's items share its line).
func (t *Training) itemLines(prefix string, n ast.Node) {
	if seq, ok := unwrap(n).(*ast.SequenceNode); ok {
		for i, v := range seq.Values {
			t.lines[prefix+strconv.Itoa(i)] = lineOf(v)
		}
	}
}

func (t *Training) decodeSplit(d *nodeDecoder, n ast.Node) {
	s := &t.Split
	var valid, test ast.Node
	l, _ := d.mapping(n, "split", map[string]func(ast.Node){
		"by":    func(v ast.Node) { s.By = d.str(v, "split.by") },
		"valid": func(v ast.Node) { valid = v },
		"test":  func(v ast.Node) { test = v },
		"kfold": func(v ast.Node) {
			if k, ok := d.number(v, "split.kfold"); ok {
				if k != math.Trunc(k) || k < 2 || k > 100 {
					d.add(v, "split.kfold: %v, expected a whole number of folds from 2 to 100", k)
				}
				s.KFold = int(k)
			}
		},
		"seed": func(v ast.Node) { s.Seed = d.seed(v, "split.seed") },
	})
	t.keyed("split.", l)
	if s.By == "" && s.KFold > 0 {
		s.By = SplitByKFold
	}
	// valid and test are spans by time, shares otherwise.
	share := func(v ast.Node, what string) float64 {
		if v == nil {
			return 0
		}
		f, ok := d.number(v, what)
		if ok && !(f > 0 && f < 1) {
			d.add(v, "%s: %v, expected a share of the rows above 0 and below 1 (0.2 for 20%%)", what, f)
		}
		return f
	}
	switch s.By {
	case SplitByTime:
		for _, x := range []struct {
			n   ast.Node
			key string
			dst *Duration
		}{{valid, "valid", &s.ValidSpan}, {test, "test", &s.TestSpan}} {
			if x.n == nil {
				continue
			}
			*x.dst = d.duration(x.n, "split."+x.key)
			if _, err := ParseDuration(scalarText(x.n)); err == nil && *x.dst == 0 {
				d.add(x.n, "split.%s: expected a positive span such as 7d", x.key)
			}
		}
	default:
		s.Valid, s.Test = share(valid, "split.valid"), share(test, "split.test")
	}
}

func (t *Training) decodeTune(d *nodeDecoder, n ast.Node) {
	tu := &TrainingTune{}
	t.Tune = tu
	count := func(v ast.Node, what string) int {
		f, ok := d.number(v, what)
		if ok && (f != math.Trunc(f) || f < 1 || f > 1e6) {
			d.add(v, "%s: %v, expected a whole number from 1", what, f)
			ok = false
		}
		if !ok {
			return -1 // reported: no default, no checks against it
		}
		return int(f)
	}
	l, _ := d.mapping(n, "tune", map[string]func(ast.Node){
		"trials":    func(v ast.Node) { tu.Trials = count(v, "tune.trials") },
		"parallel":  func(v ast.Node) { tu.Parallel = count(v, "tune.parallel") },
		"seed":      func(v ast.Node) { tu.Seed = d.seed(v, "tune.seed") },
		"sampler":   func(v ast.Node) { tu.Sampler = d.str(v, "tune.sampler") },
		"pruner":    func(v ast.Node) { tu.Pruner = d.str(v, "tune.pruner") },
		"metric":    func(v ast.Node) { tu.Metric = d.str(v, "tune.metric") },
		"direction": func(v ast.Node) { tu.Direction = d.str(v, "tune.direction") },
		"space": func(v ast.Node) {
			v = unwrap(v)
			mn, ok := v.(ast.MapNode)
			if !ok || v.Type() == ast.NullType {
				d.add(v, "tune.space: got %s, expected a mapping of parameter names to ranges ({int: [15, 255]})", describe(v))
				return
			}
			it := mn.MapRange()
			for it.Next() {
				name := scalarText(it.Key())
				t.lines["tune.space."+name] = lineOf(it.Key())
				if slices.ContainsFunc(tu.Space, func(p TuneParam) bool { return p.Name == name }) {
					d.add(it.Key(), "tune.space: parameter %q is given twice", name)
					continue
				}
				tu.Space = append(tu.Space, d.tuneParam(name, it.Value()))
			}
		},
	})
	t.keyed("tune.", l)
}

// tuneParam decodes {int: [lo, hi], log: true, step: s}, {float: [lo, hi]}
// or {choice: [a, b, c]}.
func (d *nodeDecoder) tuneParam(name string, n ast.Node) TuneParam {
	p := TuneParam{Name: name}
	what := "tune.space." + name
	bounds := func(typ string) func(ast.Node) {
		return func(v ast.Node) {
			if p.Type != "" {
				d.add(v, "%s: give one of int, float and choice", what)
				return
			}
			p.Type = typ
			var xs []float64
			reported := len(*d.ps)
			d.seq(v, what+"."+typ, func(e ast.Node) {
				if x, ok := d.number(e, what+"."+typ); ok {
					xs = append(xs, x)
				}
			})
			if len(*d.ps) > reported {
				// The bounds are reported already: no follow-on problems
				// about a range that was never read.
				p.unread = true
				return
			}
			if len(xs) != 2 {
				d.add(v, "%s.%s: expected [low, high]", what, typ)
				p.unread = true
				return
			}
			p.Low, p.High = xs[0], xs[1]
			if typ == "int" && (p.Low != math.Trunc(p.Low) || p.High != math.Trunc(p.High)) {
				d.add(v, "%s.int: [%v, %v], expected whole numbers", what, p.Low, p.High)
			}
		}
	}
	d.mapping(n, what, map[string]func(ast.Node){
		"int":   bounds("int"),
		"float": bounds("float"),
		"choice": func(v ast.Node) {
			if p.Type != "" {
				d.add(v, "%s: give one of int, float and choice", what)
				return
			}
			p.Type = "categorical"
			d.seq(v, what+".choice", func(e ast.Node) {
				if !isScalar(e) {
					d.add(e, "%s.choice: got %s, expected a value", what, describe(e))
					return
				}
				p.Choices = append(p.Choices, scalarText(e))
			})
		},
		"log": func(v ast.Node) {
			b, ok := unwrap(v).(*ast.BoolNode)
			if !ok {
				d.add(v, "%s.log: got %s, expected true or false", what, describe(v))
				return
			}
			p.Log = b.Value
		},
		"step": func(v ast.Node) {
			x, ok := d.number(v, what+".step")
			switch {
			case !ok:
			case x <= 0 || math.IsInf(x, 0):
				d.add(v, "%s.step: %v, expected a positive step (leave it out for none)", what, x)
			default:
				p.Step = x
			}
		},
	})
	return p
}

func (t *Training) decodeRegister(d *nodeDecoder, n ast.Node) {
	r := &TrainingRegister{}
	t.Register = r
	l, _ := d.mapping(n, "register", map[string]func(ast.Node){
		"model": func(v ast.Node) { r.Model = d.str(v, "register.model") },
		"alias": func(v ast.Node) { r.Alias = d.str(v, "register.alias") },
		"promote": func(v ast.Node) {
			p := &TrainingPromote{}
			r.Promote = p
			l, _ := d.mapping(v, "register.promote", map[string]func(ast.Node){
				"alias": func(v ast.Node) { p.Alias = d.str(v, "register.promote.alias") },
				"if_better_by": func(v ast.Node) {
					if x, ok := d.number(v, "register.promote.if_better_by"); ok {
						p.IfBetterBy = x
					}
				},
			})
			t.keyed("register.promote.", l)
		},
	})
	t.keyed("register.", l)
}

// params decodes a mapping of parameter names to scalars, as text, and
// returns the line of each name.
func (d *nodeDecoder) params(n ast.Node, what string) (map[string]string, map[string]int) {
	out, lines := map[string]string{}, map[string]int{}
	n = unwrap(n)
	if isNull(n) {
		return out, lines
	}
	mn, ok := n.(ast.MapNode)
	if !ok {
		d.add(n, "%s: got %s, expected a mapping of parameter names to values", what, describe(n))
		return out, lines
	}
	it := mn.MapRange()
	for it.Next() {
		k := scalarText(it.Key())
		lines[k] = lineOf(it.Key())
		if !isScalar(it.Value()) {
			d.add(it.Value(), "%s.%s: got %s, expected a number, string or boolean", what, k, describe(it.Value()))
			continue
		}
		out[k] = scalarText(it.Value())
	}
	return out, lines
}

// seed decodes a non-negative whole number.
func (d *nodeDecoder) seed(n ast.Node, what string) uint64 {
	s, err := strconv.ParseUint(scalarText(n), 10, 64)
	if err != nil {
		d.add(n, "%s: got %s, expected a whole number >= 0", what, describe(n))
	}
	return s
}

func (t *Training) ensureDefaults() {
	if t.Model.Kind == "" {
		t.Model.Kind = ModelGBDT
	}
	if t.Split.Seed == 0 && t.lines["split.seed"] == 0 {
		t.Split.Seed = 1
	}
	if t.Split.By == SplitByKFold && t.Split.Test == 0 && t.lines["split.test"] == 0 {
		t.Split.Test = DefaultKFoldTest
	}
	if tu := t.Tune; tu != nil {
		if tu.Trials == 0 {
			tu.Trials = DefaultTuneTrials
		}
		if tu.Parallel == 0 {
			tu.Parallel = 1
		}
		if tu.Seed == 0 && t.lines["tune.seed"] == 0 {
			tu.Seed = 1
		}
		if tu.Sampler == "" {
			tu.Sampler = "tpe"
		}
		if tu.Pruner == "" {
			tu.Pruner = "median"
		}
	}
}

// objectives are the objectives of each model kind.
var objectives = map[string][]string{
	ModelGBDT:   {"binary", "regression", "regression_l1", "huber", "multiclass", "lambdarank"},
	ModelLinear: {"binary", "regression", "multiclass"},
}

// metricPattern is a metric name with an optional @k cut-off.
var metricPattern = regexp.MustCompile(`^([a-z_0-9]+)(?:@([0-9]+))?$`)

// objectiveMetrics are the validation metrics each objective's models can
// be judged by; the first is the default.
var objectiveMetrics = map[string][]string{
	"binary":        {"binary_logloss", "auc", "binary_error"},
	"regression":    {"l2", "rmse", "l1", "huber"},
	"regression_l1": {"l1", "l2", "rmse", "huber"},
	"huber":         {"huber", "l2", "rmse", "l1"},
	"multiclass":    {"multi_logloss", "multi_error"},
	"lambdarank":    {"ndcg", "map"},
}

// DefaultMetric is the metric a study of the objective optimizes when the
// spec names none (ndcg@10 for lambdarank).
func DefaultMetric(objective string) string {
	ms := objectiveMetrics[objective]
	if len(ms) == 0 {
		return ""
	}
	if objective == "lambdarank" {
		return "ndcg@10"
	}
	return ms[0]
}

// HigherIsBetter reports whether a larger value of the metric is better.
func HigherIsBetter(metric string) bool {
	base, _, _ := strings.Cut(metric, "@")
	return base == "auc" || base == "ndcg" || base == "map"
}

// checkMetric says what is wrong with metric for objective ("" when fine).
func checkMetric(metric, objective string) string {
	m := metricPattern.FindStringSubmatch(metric)
	if m == nil {
		return fmt.Sprintf("%q is not a metric name, expected one such as auc or ndcg@10", metric)
	}
	allowed := objectiveMetrics[objective]
	if !slices.Contains(allowed, m[1]) {
		return fmt.Sprintf("%s does not fit objective %s, expected one of %s", metric, objective, strings.Join(allowed, ", "))
	}
	if m[2] != "" && m[1] != "ndcg" && m[1] != "map" {
		return fmt.Sprintf("%s: only ndcg and map take a cut-off @k", metric)
	}
	if k, err := strconv.Atoi(m[2]); m[2] != "" && (err != nil || k < 1) {
		return fmt.Sprintf("%s: the cut-off @k counts the top results, expected 1 or more (%s@10)", metric, m[1])
	}
	return ""
}

var studyName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// validate checks what the file alone shows.
func (t *Training) validate(ps *Problems) {
	add := func(path, format string, args ...any) { *ps = append(*ps, t.Problem(path, format, args...)) }
	switch {
	case t.Name == "":
		add("name", "name is required: it names the study and its runs")
	case !studyName.MatchString(t.Name):
		add("name", "name %q: expected letters, digits, '_', '-' and '.', starting with a letter or digit", t.Name)
	}
	f := t.Features
	if f.Service == "" && len(f.Refs) == 0 {
		add("features", "features is required: {service: NAME} or a list of feature references (set:feature)")
	}
	s := t.Spine
	if _, ok := t.lines["spine"]; !ok {
		add("spine", "spine is required: {path, timestamp, label} of the labelled events")
	} else {
		for _, r := range []struct{ key, v string }{{"path", s.Path}, {"timestamp", s.Timestamp}, {"label", s.Label}} {
			if r.v == "" {
				add("spine", "spine.%s is required", r.key)
			}
		}
	}
	m := t.Model
	objs, kindOK := objectives[m.Kind]
	switch {
	case !kindOK:
		add("model.kind", "model.kind %q, expected gbdt or linear", m.Kind)
	case m.Objective == "":
		add("model", "model.objective is required: one of %s", strings.Join(objs, ", "))
	case !slices.Contains(objs, m.Objective):
		add("model.objective", "model.objective %q, expected one of %s for kind %s", m.Objective, strings.Join(objs, ", "), m.Kind)
	}
	if m.Objective == "lambdarank" && s.Group == "" {
		add("spine", "objective lambdarank needs spine.group (the query column)")
	}
	t.validateSplit(add)
	validateJobSchedule(ps, t.Schedule, "schedule", "a training waits for the scheduled feature sets it reads")
	if tu := t.Tune; tu != nil {
		t.validateTune(tu, add)
	}
	if r := t.Register; r != nil {
		if r.Model == "" {
			add("register", "register.model is required: the registered model's name")
		}
		for _, a := range []struct{ path, v string }{{"register.alias", r.Alias}} {
			if a.v != "" && !aliasName.MatchString(a.v) {
				add(a.path, "%q is not an alias name: letters, digits, '_' and '-' only", a.v)
			}
		}
		if p := r.Promote; p != nil {
			switch {
			case p.Alias == "":
				add("register.promote", "register.promote.alias is required: the alias the gate moves (champion)")
			case !aliasName.MatchString(p.Alias):
				add("register.promote.alias", "%q is not an alias name: letters, digits, '_' and '-' only", p.Alias)
			case p.Alias == r.Alias:
				add("register.promote.alias", "%q is also register.alias, which every new version takes: the gate would be bypassed", p.Alias)
			}
			if p.IfBetterBy < 0 || math.IsNaN(p.IfBetterBy) {
				add("register.promote.if_better_by", "register.promote.if_better_by %v, expected a margin >= 0", p.IfBetterBy)
			}
		}
	}
}

func (t *Training) validateSplit(add func(path, format string, args ...any)) {
	s := t.Split
	if _, ok := t.lines["split"]; !ok {
		add("split", "split is required: {by: time, valid: 7d, test: 7d}, {by: random, valid: 0.2, test: 0.1} or {kfold: 5}")
		return
	}
	switch s.By {
	case SplitByTime:
		if s.ValidSpan == 0 || s.TestSpan == 0 {
			add("split", "split by time needs valid and test spans, such as valid: 7d, test: 7d")
		}
		if s.KFold > 0 {
			add("split.kfold", "split.kfold does not go with by: time")
		}
	case SplitByRandom:
		if s.Valid == 0 || s.Test == 0 {
			add("split", "split by random needs valid and test shares, such as valid: 0.2, test: 0.1")
		}
		if s.Valid+s.Test >= 1 {
			add("split", "split.valid + split.test = %v leaves no training rows", strconv.FormatFloat(s.Valid+s.Test, 'g', 12, 64))
		}
		if s.KFold > 0 {
			add("split.kfold", "split.kfold does not go with by: random")
		}
	case SplitByKFold:
		if s.KFold == 0 {
			add("split", "split by kfold needs kfold: K (the number of folds)")
		}
		if s.Valid != 0 {
			add("split.valid", "split.valid does not go with kfold: each fold validates in turn")
		}
	case "":
		add("split", "split.by is required: time, random, or kfold: K")
	default:
		add("split.by", "split.by %q, expected time, random or kfold", s.By)
	}
}

func (t *Training) validateTune(tu *TrainingTune, add func(path, format string, args ...any)) {
	if !slices.Contains([]string{"tpe", "random", "grid"}, tu.Sampler) {
		add("tune.sampler", "tune.sampler %q, expected tpe, random or grid", tu.Sampler)
	}
	if !slices.Contains([]string{"median", "asha", "none"}, tu.Pruner) {
		add("tune.pruner", "tune.pruner %q, expected median, asha or none", tu.Pruner)
	}
	if tu.Metric != "" && t.Model.Objective != "" {
		if msg := checkMetric(tu.Metric, t.Model.Objective); msg != "" {
			add("tune.metric", "tune.metric %s", msg)
		}
	}
	if tu.Direction != "" && tu.Direction != "maximize" && tu.Direction != "minimize" {
		add("tune.direction", "tune.direction %q, expected maximize or minimize", tu.Direction)
	}
	if tu.Trials > 0 && tu.Parallel > tu.Trials {
		add("tune.parallel", "tune.parallel %d is more than tune.trials %d", tu.Parallel, tu.Trials)
	}
	for _, p := range tu.Space {
		path := "tune.space." + p.Name
		if _, fixed := t.Model.Params[p.Name]; fixed {
			add(path, "%s is both searched and fixed in model.params: remove one", p.Name)
		}
		switch p.Type {
		case "":
			add(path, "%s: expected {int: [low, high]}, {float: [low, high]} or {choice: [values]}", path)
		case "int", "float":
			if p.unread {
				continue
			}
			if p.Low > p.High {
				add(path, "%s: low %v > high %v", path, p.Low, p.High)
			}
			if p.Log && p.Low <= 0 {
				add(path, "%s: log scale needs low > 0, got %v", path, p.Low)
			}
			if p.Step > 0 && p.Log {
				add(path, "%s: step %v: a step does not go with log", path, p.Step)
			}
			if p.Type == "int" && p.Step != math.Trunc(p.Step) {
				add(path, "%s: step %v: expected a whole number for an int range", path, p.Step)
			}
		case "categorical":
			if len(p.Choices) == 0 {
				add(path, "%s: choice needs at least one value", path)
			}
			if p.Log || p.Step != 0 {
				add(path, "%s: log and step go with int and float ranges, not choice", path)
			}
		}
	}
}

// Metric is the validation metric the study optimizes: tune.metric, or the
// objective's default.
func (t *Training) Metric() string {
	if t.Tune != nil && t.Tune.Metric != "" {
		return t.Tune.Metric
	}
	return DefaultMetric(t.Model.Objective)
}

// Maximize reports whether the study maximizes Metric.
func (t *Training) Maximize() bool {
	if t.Tune != nil && t.Tune.Direction != "" {
		return t.Tune.Direction == "maximize"
	}
	return HigherIsBetter(t.Metric())
}

// CheckFeatures checks the spec's feature references against the catalog's
// definitions, returning the resolved features in model input order.
func (t *Training) CheckFeatures(f *Features) ([]ResolvedFeature, Problems) {
	var ps Problems
	var res []ResolvedFeature
	var err error
	if t.Features.Service != "" {
		if f.Service(t.Features.Service) == nil {
			ps = append(ps, t.Problem("features.service", "feature service %q is not defined, expected one of %s", t.Features.Service, f.serviceNames()))
			return nil, ps
		}
		res, err = f.ResolveService(t.Features.Service)
	} else {
		for i, r := range t.Features.Refs {
			if _, err := f.Resolve(r); err != nil {
				ps = append(ps, t.Problem("features."+strconv.Itoa(i), "features: %v", err))
			}
		}
		if len(ps) > 0 {
			return nil, ps
		}
		res, err = f.Resolve(t.Features.Refs...)
	}
	if err != nil {
		ps = append(ps, t.Problem("features", "features: %v", err))
		return nil, ps
	}
	for i, x := range t.Features.Exclude {
		n := len(res)
		res = slices.DeleteFunc(res, func(r ResolvedFeature) bool { return r.Ref == x || r.Name == x })
		if len(res) == n {
			ps = append(ps, t.Problem("features.exclude."+strconv.Itoa(i), "features.exclude: %q is not a feature of the spec's features", x))
		}
	}
	if len(res) == 0 && len(ps) == 0 {
		ps = append(ps, t.Problem("features", "features: every feature is excluded"))
	}
	return res, ps
}
