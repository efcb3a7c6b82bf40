package gbdt

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Objective names, spelled as LightGBM writes them in model files.
const (
	ObjBinary       = "binary"
	ObjRegression   = "regression"
	ObjRegressionL1 = "regression_l1"
	ObjHuber        = "huber"
	ObjMulticlass   = "multiclass"
	ObjLambdarank   = "lambdarank"
)

// Canonical names of parameters that callers look up in a key=value map
// whose keys may be any alias (see ParamName).
const (
	ParamObjective = "objective"
	ParamNumClass  = "num_class"
	ParamSeed      = "seed"
	ParamLabelGain = "label_gain"
)

// Canonical names of LightGBM's parameters that name data columns. Atrium
// takes columns by name where the data is loaded (ml.LoadOptions), never as a
// training parameter: ParseParams refuses these and their aliases, and callers
// map them to their own column options with ParamName and IsColumnParam.
const (
	ParamCategoricalFeature = "categorical_feature"
	ParamLabelColumn        = "label_column"
	ParamWeightColumn       = "weight_column"
	ParamGroupColumn        = "group_column"
	ParamIgnoreColumn       = "ignore_column"
)

// Params are the training parameters, named and defaulted as LightGBM names
// and defaults them (docs/Parameters.rst of LightGBM 4). DefaultParams returns
// the defaults; ParseParams reads LightGBM-style key=value settings, aliases
// included. The JSON form is stored in model files as training metadata.
type Params struct {
	// Objective is one of binary, regression (L2), regression_l1, huber,
	// multiclass, lambdarank. Default regression.
	Objective string `json:"objective"`
	// NumIterations is the number of boosting rounds. Default 100.
	NumIterations int `json:"num_iterations"`
	// LearningRate shrinks every tree's output. Default 0.1.
	LearningRate float64 `json:"learning_rate"`
	// NumLeaves bounds the leaves of one tree (2..131072). Default 31.
	NumLeaves int `json:"num_leaves"`
	// MaxDepth bounds the depth of a tree; <= 0 means no limit. Default -1.
	MaxDepth int `json:"max_depth"`
	// NumThreads is the number of goroutines used for training and prediction;
	// 0 or less means GOMAXPROCS, as LightGBM takes num_threads <= 0 (and
	// scikit-learn users write n_jobs=-1). Results do not depend on it. Default 0.
	NumThreads int `json:"num_threads"`
	// Seed, when set (non-nil in ParseParams, Seeded here), derives the other
	// seeds as LightGBM does: bagging, feature fraction and data sampling.
	Seed   int64 `json:"seed"`
	Seeded bool  `json:"seeded,omitempty"`

	MinDataInLeaf       int     `json:"min_data_in_leaf"`        // default 20
	MinSumHessianInLeaf float64 `json:"min_sum_hessian_in_leaf"` // default 1e-3
	LambdaL1            float64 `json:"lambda_l1"`               // default 0
	LambdaL2            float64 `json:"lambda_l2"`               // default 0
	MinGainToSplit      float64 `json:"min_gain_to_split"`       // default 0

	BaggingFraction       float64 `json:"bagging_fraction"`        // default 1 (off)
	BaggingFreq           int     `json:"bagging_freq"`            // default 0 (off)
	BaggingSeed           int64   `json:"bagging_seed"`            // default 3
	FeatureFraction       float64 `json:"feature_fraction"`        // per tree; default 1
	FeatureFractionByNode float64 `json:"feature_fraction_bynode"` // per node; default 1
	FeatureFractionSeed   int64   `json:"feature_fraction_seed"`   // default 2

	EarlyStoppingRound    int     `json:"early_stopping_round"`     // default 0 (off)
	FirstMetricOnly       bool    `json:"first_metric_only"`        // default false
	EarlyStoppingMinDelta float64 `json:"early_stopping_min_delta"` // default 0

	MaxBin                int   `json:"max_bin"`                  // default 255
	MinDataInBin          int   `json:"min_data_in_bin"`          // default 3
	BinConstructSampleCnt int   `json:"bin_construct_sample_cnt"` // default 200000
	DataRandomSeed        int64 `json:"data_random_seed"`         // default 1
	UseMissing            bool  `json:"use_missing"`              // default true

	MaxCatToOnehot  int     `json:"max_cat_to_onehot"`  // default 4
	MaxCatThreshold int     `json:"max_cat_threshold"`  // default 32
	CatSmooth       float64 `json:"cat_smooth"`         // default 10
	CatL2           float64 `json:"cat_l2"`             // default 10
	MinDataPerGroup int     `json:"min_data_per_group"` // default 100

	// NumClass is the number of classes (multiclass only). Default 1.
	NumClass int `json:"num_class"`
	// Sigmoid is the sigmoid's slope (binary, lambdarank). Default 1.
	Sigmoid float64 `json:"sigmoid"`
	// IsUnbalance weights the classes of a binary task to balance them.
	IsUnbalance bool `json:"is_unbalance"`
	// ScalePosWeight weights the positive class (binary). Default 1.
	ScalePosWeight float64 `json:"scale_pos_weight"`
	// BoostFromAverage starts from the label average (binary, regression,
	// multiclass). Default true.
	BoostFromAverage bool `json:"boost_from_average"`
	// Alpha is Huber's delta. Default 0.9.
	Alpha float64 `json:"alpha"`

	LambdarankTruncationLevel int       `json:"lambdarank_truncation_level"` // default 30
	LambdarankNorm            bool      `json:"lambdarank_norm"`             // default true
	LabelGain                 []float64 `json:"label_gain,omitempty"`        // default 2^i-1, i < 31

	// Metric lists the validation metrics; empty means the objective's own
	// (binary_logloss, l2, l1, huber, multi_logloss, ndcg).
	Metric []string `json:"metric,omitempty"`
	// EvalAt lists the k of ndcg@k and map@k. Default 1,2,3,4,5.
	EvalAt []int `json:"eval_at,omitempty"`
}

// DefaultParams returns LightGBM's defaults.
func DefaultParams() Params {
	return Params{
		Objective:                 ObjRegression,
		NumIterations:             100,
		LearningRate:              0.1,
		NumLeaves:                 31,
		MaxDepth:                  -1,
		MinDataInLeaf:             20,
		MinSumHessianInLeaf:       1e-3,
		BaggingFraction:           1,
		BaggingSeed:               3,
		FeatureFraction:           1,
		FeatureFractionByNode:     1,
		FeatureFractionSeed:       2,
		MaxBin:                    255,
		MinDataInBin:              3,
		BinConstructSampleCnt:     200000,
		DataRandomSeed:            1,
		UseMissing:                true,
		MaxCatToOnehot:            4,
		MaxCatThreshold:           32,
		CatSmooth:                 10,
		CatL2:                     10,
		MinDataPerGroup:           100,
		NumClass:                  1,
		Sigmoid:                   1,
		ScalePosWeight:            1,
		BoostFromAverage:          true,
		Alpha:                     0.9,
		LambdarankTruncationLevel: 30,
		LambdarankNorm:            true,
		EvalAt:                    []int{1, 2, 3, 4, 5},
	}
}

// paramSpec is one LightGBM parameter: its canonical name, its aliases and
// how its value is parsed and stored.
type paramSpec struct {
	name    string
	aliases []string
	// set parses and stores a value; nil for the parameters that name data
	// columns, which ParseParams refuses with errColumnParam.
	set func(p *Params, v string) error
}

// errColumnParam is the problem with a parameter that names data columns.
var errColumnParam = errors.New("names data columns; give the columns by name where the data is loaded, not as a parameter")

func intParam(dst func(*Params) *int) func(*Params, string) error {
	return func(p *Params, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			// LightGBM's Python package passes whole floats such as "100.0".
			f, ferr := strconv.ParseFloat(v, 64)
			if ferr != nil || f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
				return fmt.Errorf("want an integer, got %q", v)
			}
			n = int(f)
		}
		*dst(p) = n
		return nil
	}
}

func int64Param(dst func(*Params) *int64) func(*Params, string) error {
	return func(p *Params, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("want an integer, got %q", v)
		}
		*dst(p) = n
		return nil
	}
}

func floatParam(dst func(*Params) *float64) func(*Params, string) error {
	return func(p *Params, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) {
			return fmt.Errorf("want a number, got %q", v)
		}
		*dst(p) = f
		return nil
	}
}

func boolParam(dst func(*Params) *bool) func(*Params, string) error {
	return func(p *Params, v string) error {
		switch strings.ToLower(v) {
		case "true", "1", "+":
			*dst(p) = true
		case "false", "0", "-":
			*dst(p) = false
		default:
			return fmt.Errorf("want true or false, got %q", v)
		}
		return nil
	}
}

// ignored accepts LightGBM settings that change how LightGBM runs but not what
// it computes here (verbosity, memory layout hints), after checking the type.
func ignored(check func(string) error) func(*Params, string) error {
	return func(_ *Params, v string) error { return check(v) }
}

func checkInt(v string) error {
	_, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("want an integer, got %q", v)
	}
	return nil
}

func checkBool(v string) error {
	var b bool
	return boolParam(func(*Params) *bool { return &b })(nil, v)
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

var objectiveAliases = map[string]string{
	"regression": ObjRegression, "regression_l2": ObjRegression, "l2": ObjRegression,
	"mean_squared_error": ObjRegression, "mse": ObjRegression, "l2_root": ObjRegression,
	"root_mean_squared_error": ObjRegression, "rmse": ObjRegression,
	"regression_l1": ObjRegressionL1, "l1": ObjRegressionL1, "mean_absolute_error": ObjRegressionL1, "mae": ObjRegressionL1,
	"huber":      ObjHuber,
	"binary":     ObjBinary,
	"multiclass": ObjMulticlass, "softmax": ObjMulticlass,
	"lambdarank": ObjLambdarank,
}

var paramSpecs = []paramSpec{
	{ParamCategoricalFeature, []string{"cat_feature", "categorical_column", "cat_column", "categorical_features"}, nil},
	{ParamLabelColumn, []string{"label"}, nil},
	{ParamWeightColumn, []string{"weight"}, nil},
	{ParamGroupColumn, []string{"group", "group_id", "query_column", "query", "query_id"}, nil},
	{ParamIgnoreColumn, []string{"ignore_feature", "blacklist"}, nil},
	{ParamObjective, []string{"objective_type", "app", "application", "loss"}, func(p *Params, v string) error {
		o, ok := objectiveAliases[strings.ToLower(v)]
		if !ok {
			return fmt.Errorf("unsupported objective %q (want binary, regression, regression_l1, huber, multiclass or lambdarank)", v)
		}
		p.Objective = o
		return nil
	}},
	{"boosting", []string{"boosting_type", "boost"}, func(_ *Params, v string) error {
		if v != "gbdt" && v != "gbrt" {
			return fmt.Errorf("unsupported boosting %q (only gbdt)", v)
		}
		return nil
	}},
	{"data_sample_strategy", nil, func(_ *Params, v string) error {
		if v != "bagging" {
			return fmt.Errorf("unsupported data_sample_strategy %q (only bagging)", v)
		}
		return nil
	}},
	{"num_iterations", []string{"num_iteration", "n_iter", "num_tree", "num_trees", "num_round", "num_rounds", "nrounds", "num_boost_round", "n_estimators", "max_iter"}, intParam(func(p *Params) *int { return &p.NumIterations })},
	{"learning_rate", []string{"shrinkage_rate", "eta"}, floatParam(func(p *Params) *float64 { return &p.LearningRate })},
	{"num_leaves", []string{"num_leaf", "max_leaves", "max_leaf", "max_leaf_nodes"}, intParam(func(p *Params) *int { return &p.NumLeaves })},
	{"num_threads", []string{"num_thread", "nthread", "nthreads", "n_jobs"}, intParam(func(p *Params) *int { return &p.NumThreads })},
	{ParamSeed, []string{"random_seed", "random_state"}, func(p *Params, v string) error {
		if err := int64Param(func(p *Params) *int64 { return &p.Seed })(p, v); err != nil {
			return err
		}
		p.Seeded = true
		return nil
	}},
	{"deterministic", nil, ignored(checkBool)},
	{"force_col_wise", nil, ignored(checkBool)},
	{"force_row_wise", nil, ignored(checkBool)},
	{"feature_pre_filter", nil, ignored(checkBool)},
	{"verbosity", []string{"verbose"}, ignored(checkInt)},
	{"max_depth", nil, intParam(func(p *Params) *int { return &p.MaxDepth })},
	{"min_data_in_leaf", []string{"min_data_per_leaf", "min_data", "min_child_samples", "min_samples_leaf"}, intParam(func(p *Params) *int { return &p.MinDataInLeaf })},
	{"min_sum_hessian_in_leaf", []string{"min_sum_hessian_per_leaf", "min_sum_hessian", "min_hessian", "min_child_weight"}, floatParam(func(p *Params) *float64 { return &p.MinSumHessianInLeaf })},
	{"bagging_fraction", []string{"sub_row", "subsample", "bagging"}, floatParam(func(p *Params) *float64 { return &p.BaggingFraction })},
	{"bagging_freq", []string{"subsample_freq"}, intParam(func(p *Params) *int { return &p.BaggingFreq })},
	{"bagging_seed", []string{"bagging_fraction_seed"}, int64Param(func(p *Params) *int64 { return &p.BaggingSeed })},
	{"feature_fraction", []string{"sub_feature", "colsample_bytree"}, floatParam(func(p *Params) *float64 { return &p.FeatureFraction })},
	{"feature_fraction_bynode", []string{"sub_feature_bynode", "colsample_bynode"}, floatParam(func(p *Params) *float64 { return &p.FeatureFractionByNode })},
	{"feature_fraction_seed", nil, int64Param(func(p *Params) *int64 { return &p.FeatureFractionSeed })},
	{"early_stopping_round", []string{"early_stopping_rounds", "early_stopping", "n_iter_no_change"}, intParam(func(p *Params) *int { return &p.EarlyStoppingRound })},
	{"first_metric_only", nil, boolParam(func(p *Params) *bool { return &p.FirstMetricOnly })},
	{"early_stopping_min_delta", nil, floatParam(func(p *Params) *float64 { return &p.EarlyStoppingMinDelta })},
	{"lambda_l1", []string{"reg_alpha", "l1_regularization"}, floatParam(func(p *Params) *float64 { return &p.LambdaL1 })},
	{"lambda_l2", []string{"reg_lambda", "lambda", "l2_regularization"}, floatParam(func(p *Params) *float64 { return &p.LambdaL2 })},
	{"min_gain_to_split", []string{"min_split_gain"}, floatParam(func(p *Params) *float64 { return &p.MinGainToSplit })},
	{"max_bin", []string{"max_bins"}, intParam(func(p *Params) *int { return &p.MaxBin })},
	{"min_data_in_bin", nil, intParam(func(p *Params) *int { return &p.MinDataInBin })},
	{"bin_construct_sample_cnt", []string{"subsample_for_bin"}, intParam(func(p *Params) *int { return &p.BinConstructSampleCnt })},
	{"data_random_seed", []string{"data_seed"}, int64Param(func(p *Params) *int64 { return &p.DataRandomSeed })},
	{"use_missing", nil, boolParam(func(p *Params) *bool { return &p.UseMissing })},
	{"zero_as_missing", nil, func(_ *Params, v string) error {
		if err := checkBool(v); err != nil {
			return err
		}
		if b, _ := strconv.ParseBool(v); b {
			return fmt.Errorf("zero_as_missing=true is not supported; store missing values as NaN")
		}
		return nil
	}},
	{"max_cat_to_onehot", nil, intParam(func(p *Params) *int { return &p.MaxCatToOnehot })},
	{"max_cat_threshold", nil, intParam(func(p *Params) *int { return &p.MaxCatThreshold })},
	{"cat_smooth", nil, floatParam(func(p *Params) *float64 { return &p.CatSmooth })},
	{"cat_l2", nil, floatParam(func(p *Params) *float64 { return &p.CatL2 })},
	{"min_data_per_group", nil, intParam(func(p *Params) *int { return &p.MinDataPerGroup })},
	{ParamNumClass, []string{"num_classes"}, intParam(func(p *Params) *int { return &p.NumClass })},
	{"sigmoid", nil, floatParam(func(p *Params) *float64 { return &p.Sigmoid })},
	{"is_unbalance", []string{"unbalance", "unbalanced_sets"}, boolParam(func(p *Params) *bool { return &p.IsUnbalance })},
	{"scale_pos_weight", nil, floatParam(func(p *Params) *float64 { return &p.ScalePosWeight })},
	{"boost_from_average", nil, boolParam(func(p *Params) *bool { return &p.BoostFromAverage })},
	{"alpha", nil, floatParam(func(p *Params) *float64 { return &p.Alpha })},
	{"lambdarank_truncation_level", nil, intParam(func(p *Params) *int { return &p.LambdarankTruncationLevel })},
	{"lambdarank_norm", nil, boolParam(func(p *Params) *bool { return &p.LambdarankNorm })},
	{ParamLabelGain, nil, func(p *Params, v string) error {
		var gains []float64
		for _, s := range splitList(v) {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsNaN(f) {
				return fmt.Errorf("want a comma-separated list of numbers, got %q", v)
			}
			gains = append(gains, f)
		}
		p.LabelGain = gains
		return nil
	}},
	{"metric", []string{"metrics", "metric_types"}, func(p *Params, v string) error {
		p.Metric = nil
		for _, s := range splitList(v) {
			m, err := canonicalMetric(s)
			if err != nil {
				return err
			}
			if m != "" {
				p.Metric = append(p.Metric, m)
			}
		}
		if len(p.Metric) == 0 {
			// LightGBM's "None" / "na": no metric at all.
			p.Metric = []string{}
		}
		return nil
	}},
	{"eval_at", []string{"ndcg_eval_at", "ndcg_at", "map_eval_at", "map_at"}, func(p *Params, v string) error {
		var ks []int
		for _, s := range splitList(v) {
			k, err := strconv.Atoi(s)
			if err != nil || k <= 0 {
				return fmt.Errorf("want a comma-separated list of positive integers, got %q", v)
			}
			ks = append(ks, k)
		}
		if len(ks) == 0 {
			return fmt.Errorf("want a comma-separated list of positive integers, got %q", v)
		}
		p.EvalAt = ks
		return nil
	}},
}

// paramIndex maps every name and alias to its spec.
var paramIndex = func() map[string]*paramSpec {
	m := make(map[string]*paramSpec)
	for i := range paramSpecs {
		s := &paramSpecs[i]
		m[s.name] = s
		for _, a := range s.aliases {
			m[a] = s
		}
	}
	return m
}()

// ParamName returns the canonical name of the LightGBM parameter key names
// (the name itself or any alias, case and surrounding space ignored), and
// false for a key that is no parameter ParseParams knows.
func ParamName(key string) (string, bool) {
	spec, ok := paramIndex[strings.ToLower(strings.TrimSpace(key))]
	if !ok {
		return "", false
	}
	return spec.name, true
}

// IsColumnParam reports whether the canonical parameter name names data
// columns (ParamCategoricalFeature, ParamLabelColumn, ...).
func IsColumnParam(name string) bool {
	spec, ok := paramIndex[name]
	return ok && spec.name == name && spec.set == nil
}

// ParseParams reads LightGBM-style settings (names or aliases, as in
// LightGBM's docs/Parameters.rst) over DefaultParams and validates the
// result. Every problem is reported, one per line, naming the parameter.
func ParseParams(kv map[string]string) (Params, error) {
	p := DefaultParams()
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var problems []string
	seen := make(map[string]string) // canonical name -> key used
	for _, k := range keys {
		key := strings.ToLower(strings.TrimSpace(k))
		spec, ok := paramIndex[key]
		if !ok {
			problems = append(problems, fmt.Sprintf("parameter %q: unknown (see docs/modeling-gbdt.md for the supported LightGBM parameters)", k))
			continue
		}
		if prev, dup := seen[spec.name]; dup {
			problems = append(problems, fmt.Sprintf("parameter %q: set twice, as %q and %q", spec.name, prev, k))
			continue
		}
		seen[spec.name] = k
		if spec.set == nil {
			problems = append(problems, fmt.Sprintf("parameter %q: %v", k, errColumnParam))
			continue
		}
		if err := spec.set(&p, strings.TrimSpace(kv[k])); err != nil {
			problems = append(problems, fmt.Sprintf("parameter %q: %v", k, err))
		}
	}
	if p.Seeded {
		p.deriveSeeds()
	}
	problems = append(problems, p.problems()...)
	if len(problems) > 0 {
		return p, fmt.Errorf("%w:\n%s", ErrParams, strings.Join(problems, "\n"))
	}
	return p, nil
}

// deriveSeeds sets the specific seeds from Seed, as LightGBM does when `seed`
// is given (the derived values differ from LightGBM's own: only determinism
// for a seed is promised, not LightGBM's random streams).
func (p *Params) deriveSeeds() {
	r := newRand(uint64(p.Seed))
	p.DataRandomSeed = int64(r.Uint32())
	p.BaggingSeed = int64(r.Uint32())
	p.FeatureFractionSeed = int64(r.Uint32())
}

// Validate reports every invalid setting, one per line, naming the parameter.
func (p *Params) Validate() error {
	if pr := p.problems(); len(pr) > 0 {
		return fmt.Errorf("%w:\n%s", ErrParams, strings.Join(pr, "\n"))
	}
	return nil
}

func (p *Params) problems() []string {
	var out []string
	bad := func(name, format string, args ...any) {
		out = append(out, fmt.Sprintf("parameter %q: ", name)+fmt.Sprintf(format, args...))
	}
	if _, ok := objectiveAliases[p.Objective]; !ok || objectiveAliases[p.Objective] != p.Objective {
		bad("objective", "unsupported objective %q", p.Objective)
	}
	if p.NumIterations < 0 {
		bad("num_iterations", "%d, want >= 0", p.NumIterations)
	}
	if !(p.LearningRate > 0) || math.IsInf(p.LearningRate, 0) {
		bad("learning_rate", "%v, want > 0", p.LearningRate)
	}
	if p.NumLeaves < 2 || p.NumLeaves > 131072 {
		bad("num_leaves", "%d, want 2..131072", p.NumLeaves)
	}
	if p.MinDataInLeaf < 0 {
		bad("min_data_in_leaf", "%d, want >= 0", p.MinDataInLeaf)
	}
	if !(p.MinSumHessianInLeaf >= 0) {
		bad("min_sum_hessian_in_leaf", "%v, want >= 0", p.MinSumHessianInLeaf)
	}
	if !(p.LambdaL1 >= 0) {
		bad("lambda_l1", "%v, want >= 0", p.LambdaL1)
	}
	if !(p.LambdaL2 >= 0) {
		bad("lambda_l2", "%v, want >= 0", p.LambdaL2)
	}
	if !(p.MinGainToSplit >= 0) {
		bad("min_gain_to_split", "%v, want >= 0", p.MinGainToSplit)
	}
	if !(p.BaggingFraction > 0 && p.BaggingFraction <= 1) {
		bad("bagging_fraction", "%v, want in (0, 1]", p.BaggingFraction)
	}
	if p.BaggingFreq < 0 {
		bad("bagging_freq", "%d, want >= 0", p.BaggingFreq)
	}
	if !(p.FeatureFraction > 0 && p.FeatureFraction <= 1) {
		bad("feature_fraction", "%v, want in (0, 1]", p.FeatureFraction)
	}
	if !(p.FeatureFractionByNode > 0 && p.FeatureFractionByNode <= 1) {
		bad("feature_fraction_bynode", "%v, want in (0, 1]", p.FeatureFractionByNode)
	}
	if p.EarlyStoppingRound < 0 {
		bad("early_stopping_round", "%d, want >= 0", p.EarlyStoppingRound)
	}
	if !(p.EarlyStoppingMinDelta >= 0) {
		bad("early_stopping_min_delta", "%v, want >= 0", p.EarlyStoppingMinDelta)
	}
	if p.MaxBin < 2 || p.MaxBin > 65535 {
		bad("max_bin", "%d, want 2..65535", p.MaxBin)
	}
	if p.MinDataInBin < 1 {
		bad("min_data_in_bin", "%d, want >= 1", p.MinDataInBin)
	}
	if p.BinConstructSampleCnt < 1 {
		bad("bin_construct_sample_cnt", "%d, want >= 1", p.BinConstructSampleCnt)
	}
	if p.MaxCatToOnehot < 1 {
		bad("max_cat_to_onehot", "%d, want >= 1", p.MaxCatToOnehot)
	}
	if p.MaxCatThreshold < 1 {
		bad("max_cat_threshold", "%d, want >= 1", p.MaxCatThreshold)
	}
	if !(p.CatSmooth >= 0) {
		bad("cat_smooth", "%v, want >= 0", p.CatSmooth)
	}
	if !(p.CatL2 >= 0) {
		bad("cat_l2", "%v, want >= 0", p.CatL2)
	}
	if p.MinDataPerGroup < 1 {
		bad("min_data_per_group", "%d, want >= 1", p.MinDataPerGroup)
	}
	switch {
	case p.Objective == ObjMulticlass && (p.NumClass < 2 || p.NumClass > MaxClasses):
		bad("num_class", "%d, want 2..%d for multiclass", p.NumClass, MaxClasses)
	case p.Objective != ObjMulticlass && p.NumClass != 1:
		bad("num_class", "%d, want 1 for %s (only multiclass has classes)", p.NumClass, p.Objective)
	}
	if !(p.Sigmoid > 0) {
		bad("sigmoid", "%v, want > 0", p.Sigmoid)
	}
	if !(p.ScalePosWeight > 0) {
		bad("scale_pos_weight", "%v, want > 0", p.ScalePosWeight)
	}
	if p.IsUnbalance && p.ScalePosWeight != 1 {
		bad("is_unbalance", "cannot be used together with scale_pos_weight")
	}
	if !(p.Alpha > 0) {
		bad("alpha", "%v, want > 0", p.Alpha)
	}
	if p.LambdarankTruncationLevel < 1 {
		bad("lambdarank_truncation_level", "%d, want >= 1", p.LambdarankTruncationLevel)
	}
	for i, g := range p.LabelGain {
		if !(g >= 0) || math.IsInf(g, 0) {
			bad("label_gain", "entry %d is %v, want a finite number >= 0", i, g)
		}
	}
	for _, m := range p.Metric {
		if _, err := canonicalMetric(m); err != nil {
			bad("metric", "%v", err)
		}
	}
	for _, k := range p.EvalAt {
		if k <= 0 {
			bad("eval_at", "%d, want > 0", k)
		}
	}
	return out
}

// labelGain returns the gain of each relevance label (LightGBM's label_gain,
// default 2^label - 1 for labels 0..30).
func (p *Params) labelGain() []float64 {
	if len(p.LabelGain) > 0 {
		return p.LabelGain
	}
	g := make([]float64, 31)
	for i := range g {
		g[i] = float64(uint64(1)<<i) - 1
	}
	return g
}
