package modelfile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
)

// LightGBM text models (LightGBM's src/boosting/gbdt_model_text.cpp and
// src/io/tree.cpp): a header of key=value lines, one block per tree, then
// "end of trees", feature importances and the training parameters.
// WriteLightGBM writes version v4, which LightGBM 4 loads; ReadLightGBM reads
// v3 and v4 (the tree layout did not change).

// errFormat is wrapped by every error about a LightGBM or XGBoost file's
// content. (Unexported so that it never collides with the package's exported
// sentinel errors defined with the Atrium format; Parse wraps these errors.)
var errFormat = errors.New("invalid model file")

// maxLightGBMLine bounds one line of a LightGBM text model (a tree's array of
// 131072 leaves stays far below it).
const maxLightGBMLine = 64 << 20

// lightgbmObjective returns the objective line LightGBM writes for m.
func lightgbmObjective(m *gbdt.Model) string {
	switch m.Objective {
	case gbdt.ObjBinary:
		return "binary sigmoid:" + fmtG(m.Sigmoid)
	case gbdt.ObjMulticlass:
		return fmt.Sprintf("multiclass num_class:%d", m.NumClass)
	}
	return m.Objective
}

// fmtG prints a float64 with the fewest digits that read back exactly
// (LightGBM reads any C floating-point notation).
func fmtG(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func joinFloats(v []float64) string {
	s := make([]string, len(v))
	for i, f := range v {
		s[i] = fmtG(f)
	}
	return strings.Join(s, " ")
}

func joinInts[T int | uint8 | uint32](v []T) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.FormatInt(int64(n), 10)
	}
	return strings.Join(s, " ")
}

// lightgbmName makes a feature name LightGBM accepts: names are separated by
// spaces in the file, so whitespace becomes "_" (as LightGBM's Python package
// does).
func lightgbmName(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
			return '_'
		}
		return r
	}, s)
}

// WriteLightGBM writes m as a LightGBM v4 text model. LightGBM compares
// doubles, so a model read from XGBoost (which rounds inputs to float32)
// gets the exact double form of its thresholds (gbdt's WithFloat64Inputs),
// or an error when it has none: the file must predict in LightGBM what m
// predicts in Atrium.
func WriteLightGBM(w io.Writer, m *gbdt.Model) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("write lightgbm model: %w", err)
	}
	m, err := m.WithFloat64Inputs()
	if err != nil {
		return fmt.Errorf("write lightgbm model: %w", err)
	}
	k := m.NumOutputs()
	var trees []string
	for i := range m.Trees {
		s, err := lightgbmTree(i, &m.Trees[i])
		if err != nil {
			return fmt.Errorf("write lightgbm model: tree %d: %w", i, err)
		}
		trees = append(trees, s)
	}
	var b strings.Builder
	b.WriteString("tree\nversion=v4\n")
	fmt.Fprintf(&b, "num_class=%d\nnum_tree_per_iteration=%d\nlabel_index=0\n", k, k)
	fmt.Fprintf(&b, "max_feature_idx=%d\n", len(m.Features)-1)
	fmt.Fprintf(&b, "objective=%s\n", lightgbmObjective(m))
	names := make([]string, len(m.Features))
	infos := make([]string, len(m.Features))
	for i, f := range m.Features {
		names[i] = lightgbmName(f.Name)
		switch {
		case f.Unused:
			infos[i] = "none"
		case f.Categorical:
			cats := []string{"-1"}
			for _, c := range f.Categories {
				cats = append(cats, strconv.Itoa(c))
			}
			infos[i] = strings.Join(cats, ":")
		default:
			infos[i] = "[" + fmtG(f.Min) + ":" + fmtG(f.Max) + "]"
		}
	}
	fmt.Fprintf(&b, "feature_names=%s\n", strings.Join(names, " "))
	fmt.Fprintf(&b, "feature_infos=%s\n", strings.Join(infos, " "))
	sizes := make([]string, len(trees))
	for i, t := range trees {
		sizes[i] = strconv.Itoa(len(t))
	}
	fmt.Fprintf(&b, "tree_sizes=%s\n\n", strings.Join(sizes, " "))
	for _, t := range trees {
		b.WriteString(t)
	}
	b.WriteString("end of trees\n\nfeature_importances:\n")
	counts := gbdt.SplitImportance(m)
	order := make([]int, 0, len(counts))
	for i, c := range counts {
		if c > 0 {
			order = append(order, i)
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return counts[order[a]] > counts[order[b]] })
	for _, i := range order {
		fmt.Fprintf(&b, "%s=%d\n", names[i], int(counts[i]))
	}
	if m.Params != nil {
		b.WriteString("\nparameters:\n")
		for _, l := range lightgbmParamLines(m.Params) {
			b.WriteString(l + "\n")
		}
		b.WriteString("\nend of parameters\n")
	}
	b.WriteString("\npandas_categorical:null\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write lightgbm model: %w", err)
	}
	return nil
}

// lightgbmTree renders tree i's block, "Tree=i" to the blank lines after it.
func lightgbmTree(i int, t *gbdt.Tree) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "Tree=%d\nnum_leaves=%d\nnum_cat=%d\n", i, t.NumLeaves, t.NumCat)
	if t.NumLeaves <= 1 {
		// LightGBM's own form of a constant tree.
		b.WriteString("split_feature=\nsplit_gain=\nthreshold=\ndecision_type=\nleft_child=\nright_child=\n")
		fmt.Fprintf(&b, "leaf_value=%s\nleaf_weight=\n", fmtG(t.LeafValue[0]))
		count := 0
		if len(t.LeafCount) > 0 {
			count = t.LeafCount[0]
		}
		fmt.Fprintf(&b, "leaf_count=%d\ninternal_value=\ninternal_weight=\ninternal_count=\n", count)
		fmt.Fprintf(&b, "is_linear=0\nshrinkage=%s\n\n\n", fmtG(t.Shrinkage))
		return b.String(), nil
	}
	for n, dt := range t.DecisionType {
		if dt&1 != 0 && dt&2 != 0 {
			return "", fmt.Errorf("node %d sends missing categories left, which LightGBM cannot represent", n)
		}
	}
	ni := t.NumLeaves - 1
	orZeros := func(v []float64, n int) []float64 {
		if len(v) == n {
			return v
		}
		return make([]float64, n)
	}
	orZeroInts := func(v []int, n int) []int {
		if len(v) == n {
			return v
		}
		return make([]int, n)
	}
	fmt.Fprintf(&b, "split_feature=%s\n", joinInts(t.SplitFeature))
	fmt.Fprintf(&b, "split_gain=%s\n", joinFloats(orZeros(t.SplitGain, ni)))
	fmt.Fprintf(&b, "threshold=%s\n", joinFloats(t.Threshold))
	fmt.Fprintf(&b, "decision_type=%s\n", joinInts(t.DecisionType))
	fmt.Fprintf(&b, "left_child=%s\n", joinInts(t.LeftChild))
	fmt.Fprintf(&b, "right_child=%s\n", joinInts(t.RightChild))
	fmt.Fprintf(&b, "leaf_value=%s\n", joinFloats(t.LeafValue))
	fmt.Fprintf(&b, "leaf_weight=%s\n", joinFloats(orZeros(t.LeafWeight, t.NumLeaves)))
	fmt.Fprintf(&b, "leaf_count=%s\n", joinInts(orZeroInts(t.LeafCount, t.NumLeaves)))
	fmt.Fprintf(&b, "internal_value=%s\n", joinFloats(orZeros(t.InternalValue, ni)))
	fmt.Fprintf(&b, "internal_weight=%s\n", joinFloats(orZeros(t.InternalWeight, ni)))
	fmt.Fprintf(&b, "internal_count=%s\n", joinInts(orZeroInts(t.InternalCount, ni)))
	if t.NumCat > 0 {
		fmt.Fprintf(&b, "cat_boundaries=%s\n", joinInts(t.CatBoundaries))
		fmt.Fprintf(&b, "cat_threshold=%s\n", joinInts(t.CatThreshold))
	}
	fmt.Fprintf(&b, "is_linear=0\nshrinkage=%s\n\n\n", fmtG(t.Shrinkage))
	return b.String(), nil
}

// lightgbmParamLines renders the training parameters as LightGBM's
// "parameters:" section lists them.
func lightgbmParamLines(p *gbdt.Params) []string {
	evalAt := make([]string, len(p.EvalAt))
	for i, k := range p.EvalAt {
		evalAt[i] = strconv.Itoa(k)
	}
	b2i := func(b bool) int {
		if b {
			return 1
		}
		return 0
	}
	return []string{
		"[boosting: gbdt]",
		"[objective: " + p.Objective + "]",
		"[metric: " + strings.Join(p.Metric, ",") + "]",
		"[data_sample_strategy: bagging]",
		fmt.Sprintf("[num_iterations: %d]", p.NumIterations),
		"[learning_rate: " + fmtG(p.LearningRate) + "]",
		fmt.Sprintf("[num_leaves: %d]", p.NumLeaves),
		fmt.Sprintf("[num_threads: %d]", p.NumThreads),
		fmt.Sprintf("[seed: %d]", p.Seed),
		fmt.Sprintf("[max_depth: %d]", p.MaxDepth),
		fmt.Sprintf("[min_data_in_leaf: %d]", p.MinDataInLeaf),
		"[min_sum_hessian_in_leaf: " + fmtG(p.MinSumHessianInLeaf) + "]",
		"[bagging_fraction: " + fmtG(p.BaggingFraction) + "]",
		fmt.Sprintf("[bagging_freq: %d]", p.BaggingFreq),
		fmt.Sprintf("[bagging_seed: %d]", p.BaggingSeed),
		"[feature_fraction: " + fmtG(p.FeatureFraction) + "]",
		"[feature_fraction_bynode: " + fmtG(p.FeatureFractionByNode) + "]",
		fmt.Sprintf("[feature_fraction_seed: %d]", p.FeatureFractionSeed),
		fmt.Sprintf("[early_stopping_round: %d]", p.EarlyStoppingRound),
		"[early_stopping_min_delta: " + fmtG(p.EarlyStoppingMinDelta) + "]",
		fmt.Sprintf("[first_metric_only: %d]", b2i(p.FirstMetricOnly)),
		"[lambda_l1: " + fmtG(p.LambdaL1) + "]",
		"[lambda_l2: " + fmtG(p.LambdaL2) + "]",
		"[min_gain_to_split: " + fmtG(p.MinGainToSplit) + "]",
		fmt.Sprintf("[min_data_per_group: %d]", p.MinDataPerGroup),
		fmt.Sprintf("[max_cat_threshold: %d]", p.MaxCatThreshold),
		"[cat_l2: " + fmtG(p.CatL2) + "]",
		"[cat_smooth: " + fmtG(p.CatSmooth) + "]",
		fmt.Sprintf("[max_cat_to_onehot: %d]", p.MaxCatToOnehot),
		fmt.Sprintf("[max_bin: %d]", p.MaxBin),
		fmt.Sprintf("[min_data_in_bin: %d]", p.MinDataInBin),
		fmt.Sprintf("[bin_construct_sample_cnt: %d]", p.BinConstructSampleCnt),
		fmt.Sprintf("[data_random_seed: %d]", p.DataRandomSeed),
		fmt.Sprintf("[use_missing: %d]", b2i(p.UseMissing)),
		fmt.Sprintf("[num_class: %d]", p.NumClass),
		fmt.Sprintf("[is_unbalance: %d]", b2i(p.IsUnbalance)),
		"[scale_pos_weight: " + fmtG(p.ScalePosWeight) + "]",
		"[sigmoid: " + fmtG(p.Sigmoid) + "]",
		fmt.Sprintf("[boost_from_average: %d]", b2i(p.BoostFromAverage)),
		"[alpha: " + fmtG(p.Alpha) + "]",
		fmt.Sprintf("[lambdarank_truncation_level: %d]", p.LambdarankTruncationLevel),
		fmt.Sprintf("[lambdarank_norm: %d]", b2i(p.LambdarankNorm)),
		"[label_gain: " + joinFloatsComma(p.LabelGain) + "]",
		"[eval_at: " + strings.Join(evalAt, ",") + "]",
	}
}

func joinFloatsComma(v []float64) string {
	s := make([]string, len(v))
	for i, f := range v {
		s[i] = fmtG(f)
	}
	return strings.Join(s, ",")
}

// ReadLightGBM reads a LightGBM text model (version v3 or v4) of the
// objectives Atrium predicts with: binary, regression, regression_l1, huber,
// multiclass and lambdarank. Anything else — another format, version or
// objective, linear trees, random-forest averaging, a truncated file or
// inconsistent arrays — is an error saying what and where.
func ReadLightGBM(r io.Reader) (*gbdt.Model, error) {
	m, err := readLightGBM(r)
	if err != nil {
		return nil, fmt.Errorf("read lightgbm model: %w", err)
	}
	return m, nil
}

type lineReader struct {
	sc   *bufio.Scanner
	line int
}

func (lr *lineReader) next() (string, bool) {
	if !lr.sc.Scan() {
		return "", false
	}
	lr.line++
	return strings.TrimRight(lr.sc.Text(), "\r"), true
}

func readLightGBM(r io.Reader) (*gbdt.Model, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLightGBMLine)
	lr := &lineReader{sc: sc}
	first, ok := lr.next()
	if !ok {
		if err := sc.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: empty file", errFormat)
	}
	if strings.TrimSpace(first) != "tree" {
		return nil, fmt.Errorf("%w: line 1 is %q, want \"tree\" (not a LightGBM text model)", errFormat, clip(first))
	}
	header := map[string]string{}
	var line string
	for {
		line, ok = lr.next()
		if !ok {
			return nil, truncated(lr, "the header")
		}
		if strings.HasPrefix(line, "Tree=") || line == "end of trees" {
			break
		}
		if line == "" {
			continue
		}
		k, v, found := strings.Cut(line, "=")
		if !found {
			if line == "average_output" {
				header[line] = ""
				continue
			}
			return nil, fmt.Errorf("%w: line %d: %q, want key=value", errFormat, lr.line, clip(line))
		}
		header[k] = v
	}
	m, err := lightgbmHeader(header)
	if err != nil {
		return nil, err
	}
	for line != "end of trees" {
		idx, err := strconv.Atoi(strings.TrimPrefix(line, "Tree="))
		if err != nil || idx != len(m.Trees) {
			return nil, fmt.Errorf("%w: line %d: %q, want Tree=%d", errFormat, lr.line, clip(line), len(m.Trees))
		}
		fields := map[string]string{}
		for {
			line, ok = lr.next()
			if !ok {
				return nil, truncated(lr, fmt.Sprintf("tree %d", idx))
			}
			if strings.HasPrefix(line, "Tree=") || line == "end of trees" {
				break
			}
			if line == "" {
				continue
			}
			k, v, found := strings.Cut(line, "=")
			if !found {
				return nil, fmt.Errorf("%w: line %d (tree %d): %q, want key=value", errFormat, lr.line, idx, clip(line))
			}
			fields[k] = v
		}
		t, err := lightgbmParseTree(fields)
		if err != nil {
			return nil, fmt.Errorf("%w: tree %d: %w", errFormat, idx, err)
		}
		m.Trees = append(m.Trees, *t)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if sizes := header["tree_sizes"]; sizes != "" {
		if n := len(strings.Fields(sizes)); n != len(m.Trees) {
			return nil, fmt.Errorf("%w: tree_sizes lists %d trees, the file has %d", errFormat, n, len(m.Trees))
		}
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

func truncated(lr *lineReader, where string) error {
	if err := lr.sc.Err(); err != nil {
		return fmt.Errorf("%w: line %d: %v", errFormat, lr.line+1, err)
	}
	return fmt.Errorf("%w: truncated in %s after line %d (no \"end of trees\")", errFormat, where, lr.line)
}

// clip shortens a line quoted in an error.
func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

func lightgbmHeader(h map[string]string) (*gbdt.Model, error) {
	switch v := h["version"]; v {
	case "v3", "v4":
	case "":
		return nil, fmt.Errorf("%w: header has no version", errFormat)
	default:
		return nil, fmt.Errorf("%w: version %q, want v3 or v4", ErrUnsupported, clip(v))
	}
	if _, ok := h["average_output"]; ok {
		return nil, fmt.Errorf("%w: random-forest models (average_output) are not supported", ErrUnsupported)
	}
	atoi := func(key string) (int, error) {
		v, ok := h[key]
		if !ok {
			return 0, fmt.Errorf("%w: header has no %s", errFormat, key)
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, fmt.Errorf("%w: header %s=%q, want an integer", errFormat, key, clip(v))
		}
		return n, nil
	}
	numClass, err := atoi("num_class")
	if err != nil {
		return nil, err
	}
	if numClass < 1 || numClass > gbdt.MaxClasses {
		return nil, fmt.Errorf("%w: num_class=%d, want 1..%d", errFormat, numClass, gbdt.MaxClasses)
	}
	perIter, err := atoi("num_tree_per_iteration")
	if err != nil {
		return nil, err
	}
	maxFeat, err := atoi("max_feature_idx")
	if err != nil {
		return nil, err
	}
	if maxFeat < 0 || maxFeat >= maxFeatures {
		return nil, fmt.Errorf("%w: max_feature_idx=%d out of range", errFormat, maxFeat)
	}
	m := &gbdt.Model{Version: gbdt.ModelVersion, NumClass: numClass}
	obj := strings.Fields(h["objective"])
	if len(obj) == 0 {
		return nil, fmt.Errorf("%w: header has no objective", errFormat)
	}
	m.Objective = obj[0]
	switch obj[0] {
	case gbdt.ObjBinary:
		m.Sigmoid = 1
		for _, o := range obj[1:] {
			if v, ok := strings.CutPrefix(o, "sigmoid:"); ok {
				s, err := strconv.ParseFloat(v, 64)
				if err != nil || !(s > 0) {
					return nil, fmt.Errorf("%w: objective %q has a bad sigmoid", errFormat, clip(h["objective"]))
				}
				m.Sigmoid = s
			}
		}
	case gbdt.ObjRegression, gbdt.ObjRegressionL1, gbdt.ObjHuber, gbdt.ObjLambdarank, gbdt.ObjMulticlass:
		for _, o := range obj[1:] {
			if o == "sqrt" {
				return nil, fmt.Errorf("%w: objective %q: reg_sqrt is not supported", ErrUnsupported, clip(h["objective"]))
			}
		}
	default:
		return nil, fmt.Errorf("%w: objective %q is not supported (want binary, regression, regression_l1, huber, multiclass or lambdarank)", ErrUnsupported, clip(obj[0]))
	}
	if perIter != numClass {
		return nil, fmt.Errorf("%w: num_tree_per_iteration=%d, want num_class=%d", errFormat, perIter, numClass)
	}
	names := strings.Fields(h["feature_names"])
	if len(names) != maxFeat+1 {
		return nil, fmt.Errorf("%w: feature_names lists %d names, max_feature_idx=%d wants %d", errFormat, len(names), maxFeat, maxFeat+1)
	}
	infos := strings.Fields(h["feature_infos"])
	if len(infos) != 0 && len(infos) != len(names) {
		return nil, fmt.Errorf("%w: feature_infos lists %d features, want %d", errFormat, len(infos), len(names))
	}
	m.Features = make([]gbdt.Feature, len(names))
	for i, name := range names {
		f := gbdt.Feature{Name: name}
		if len(infos) > 0 {
			if err := parseFeatureInfo(infos[i], &f); err != nil {
				return nil, fmt.Errorf("%w: feature_infos of %q: %v", errFormat, name, err)
			}
		}
		m.Features[i] = f
	}
	return m, nil
}

func parseFeatureInfo(s string, f *gbdt.Feature) error {
	switch {
	case s == "none":
		f.Unused = true
	case strings.HasPrefix(s, "["):
		inner := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
		lo, hi, ok := strings.Cut(inner, ":")
		if !ok || !strings.HasSuffix(s, "]") {
			return fmt.Errorf("%q, want [min:max]", clip(s))
		}
		var err1, err2 error
		f.Min, err1 = strconv.ParseFloat(lo, 64)
		f.Max, err2 = strconv.ParseFloat(hi, 64)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("%q, want [min:max]", clip(s))
		}
	default:
		f.Categorical = true
		for _, c := range strings.Split(s, ":") {
			v, err := strconv.Atoi(c)
			if err != nil {
				return fmt.Errorf("%q, want category codes separated by ':'", clip(s))
			}
			if v >= 0 {
				f.Categories = append(f.Categories, v)
			}
		}
	}
	return nil
}

// parseList parses a space-separated array of a tree block.
func parseList[T any](key, s, want string, parse func(string) (T, bool)) ([]T, error) {
	fs := strings.Fields(s)
	out := make([]T, len(fs))
	for i, f := range fs {
		v, ok := parse(f)
		if !ok {
			return nil, fmt.Errorf("%s entry %d is %q, want %s", key, i, clip(f), want)
		}
		out[i] = v
	}
	return out, nil
}

func parseFloats(key, s string) ([]float64, error) {
	return parseList(key, s, "a number", func(f string) (float64, bool) {
		v, err := strconv.ParseFloat(f, 64)
		return v, err == nil || errors.Is(err, strconv.ErrRange)
	})
}

func parseInts(key, s string) ([]int, error) {
	return parseList(key, s, "an integer", func(f string) (int, bool) {
		v, err := strconv.Atoi(f)
		return v, err == nil && v <= math.MaxInt32 && v >= math.MinInt32
	})
}

func lightgbmParseTree(f map[string]string) (*gbdt.Tree, error) {
	t := &gbdt.Tree{}
	var err error
	t.NumLeaves, err = strconv.Atoi(f["num_leaves"])
	if err != nil {
		return nil, fmt.Errorf("num_leaves=%q, want an integer", clip(f["num_leaves"]))
	}
	if v, ok := f["num_cat"]; ok {
		if t.NumCat, err = strconv.Atoi(v); err != nil {
			return nil, fmt.Errorf("num_cat=%q, want an integer", clip(v))
		}
	}
	if v := f["is_linear"]; v != "" && v != "0" {
		return nil, fmt.Errorf("%w: linear trees (is_linear=1) are not supported", ErrUnsupported)
	}
	t.Shrinkage = 1
	if v, ok := f["shrinkage"]; ok {
		if t.Shrinkage, err = strconv.ParseFloat(v, 64); err != nil {
			return nil, fmt.Errorf("shrinkage=%q, want a number", clip(v))
		}
	}
	floats := []struct {
		key string
		dst *[]float64
	}{
		{"split_gain", &t.SplitGain}, {"threshold", &t.Threshold}, {"leaf_value", &t.LeafValue},
		{"leaf_weight", &t.LeafWeight}, {"internal_value", &t.InternalValue}, {"internal_weight", &t.InternalWeight},
	}
	for _, a := range floats {
		if *a.dst, err = parseFloats(a.key, f[a.key]); err != nil {
			return nil, err
		}
	}
	ints := []struct {
		key string
		dst *[]int
	}{
		{"split_feature", &t.SplitFeature}, {"left_child", &t.LeftChild}, {"right_child", &t.RightChild},
		{"leaf_count", &t.LeafCount}, {"internal_count", &t.InternalCount}, {"cat_boundaries", &t.CatBoundaries},
	}
	for _, a := range ints {
		if *a.dst, err = parseInts(a.key, f[a.key]); err != nil {
			return nil, err
		}
	}
	dts, err := parseInts("decision_type", f["decision_type"])
	if err != nil {
		return nil, err
	}
	t.DecisionType = make([]uint8, len(dts))
	for i, d := range dts {
		if d < 0 || d > 15 {
			return nil, fmt.Errorf("decision_type entry %d is %d, want 0..15", i, d)
		}
		t.DecisionType[i] = uint8(d)
	}
	t.CatThreshold, err = parseList("cat_threshold", f["cat_threshold"], "an unsigned 32-bit integer", func(w string) (uint32, bool) {
		v, err := strconv.ParseUint(w, 10, 32)
		return uint32(v), err == nil
	})
	if err != nil {
		return nil, err
	}
	if t.NumLeaves == 1 {
		// A constant tree lists only its value (and count).
		t.LeafWeight = nil
		if len(t.LeafCount) != 1 {
			t.LeafCount = nil
		}
	}
	return t, nil
}

// IsLightGBMText reports whether data starts like a LightGBM text model.
func IsLightGBMText(data []byte) bool {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	return string(bytes.TrimSpace(line)) == "tree"
}
