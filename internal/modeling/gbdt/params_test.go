package gbdt

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseParamsDefaults(t *testing.T) {
	p, err := ParseParams(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, DefaultParams()) {
		t.Errorf("ParseParams(nil) = %+v, want the defaults", p)
	}
	// LightGBM's documented defaults.
	want := map[string]any{
		"NumIterations": 100, "LearningRate": 0.1, "NumLeaves": 31, "MaxDepth": -1, "MinDataInLeaf": 20,
		"MinSumHessianInLeaf": 1e-3, "MaxBin": 255, "MinDataInBin": 3, "BinConstructSampleCnt": 200000,
		"BaggingFraction": 1.0, "BaggingFreq": 0, "FeatureFraction": 1.0, "MaxCatToOnehot": 4,
		"MaxCatThreshold": 32, "CatSmooth": 10.0, "CatL2": 10.0, "LambdarankTruncationLevel": 30,
		"Sigmoid": 1.0, "Alpha": 0.9, "UseMissing": true, "BoostFromAverage": true, "LambdarankNorm": true,
	}
	v := reflect.ValueOf(p)
	for name, w := range want {
		if got := v.FieldByName(name).Interface(); got != w {
			t.Errorf("default %s = %v, want %v", name, got, w)
		}
	}
}

func TestParseParamsAliases(t *testing.T) {
	p, err := ParseParams(map[string]string{
		"application": "softmax", "num_classes": "4", "n_estimators": "7", "eta": "0.05",
		"max_leaves": "63", "min_child_samples": "5", "min_child_weight": "0.5", "subsample": "0.8",
		"subsample_freq": "2", "colsample_bytree": "0.7", "reg_alpha": "0.1", "reg_lambda": "2",
		"min_split_gain": "0.01", "n_jobs": "2", "random_state": "42", "max_bins": "63",
		"early_stopping_rounds": "10", "metric": "multiclass,multi_error", "verbose": "-1",
		"ndcg_eval_at": "1,5",
	})
	if err != nil {
		t.Fatal(err)
	}
	got := []any{p.Objective, p.NumClass, p.NumIterations, p.LearningRate, p.NumLeaves, p.MinDataInLeaf,
		p.MinSumHessianInLeaf, p.BaggingFraction, p.BaggingFreq, p.FeatureFraction, p.LambdaL1, p.LambdaL2,
		p.MinGainToSplit, p.NumThreads, p.Seed, p.MaxBin, p.EarlyStoppingRound, p.Metric, p.EvalAt}
	want := []any{ObjMulticlass, 4, 7, 0.05, 63, 5, 0.5, 0.8, 2, 0.7, 0.1, 2.0, 0.01, 2, int64(42), 63, 10,
		[]string{"multi_logloss", "multi_error"}, []int{1, 5}}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("field %d = %v, want %v", i, got[i], want[i])
		}
	}
	if !p.Seeded || p.BaggingSeed == 3 {
		t.Errorf("seed did not derive the other seeds: %+v", p)
	}
}

func TestParseParamsErrors(t *testing.T) {
	tests := []struct {
		kv   map[string]string
		want []string
	}{
		{map[string]string{"num_leaves": "1"}, []string{`parameter "num_leaves": 1, want 2..131072`}},
		{map[string]string{"learning_rate": "fast"}, []string{`parameter "learning_rate": want a number, got "fast"`}},
		{map[string]string{"colour": "blue"}, []string{`parameter "colour": unknown`}},
		{map[string]string{"objective": "poisson"}, []string{`parameter "objective": unsupported objective "poisson"`}},
		{map[string]string{"eta": "0.1", "learning_rate": "0.2"}, []string{`parameter "learning_rate": set twice`}},
		{map[string]string{"objective": "multiclass"}, []string{`parameter "num_class": 1, want 2..65536`}},
		{map[string]string{"bagging_fraction": "1.5", "feature_fraction": "0", "metric": "bleu"},
			[]string{`"bagging_fraction": 1.5`, `"feature_fraction": 0`, `unsupported metric "bleu"`}},
		{map[string]string{"zero_as_missing": "true"}, []string{`zero_as_missing=true is not supported`}},
		{map[string]string{"boosting": "dart"}, []string{`unsupported boosting "dart"`}},
	}
	for _, tc := range tests {
		_, err := ParseParams(tc.kv)
		if err == nil || !errors.Is(err, ErrParams) {
			t.Errorf("%v: error %v, want ErrParams", tc.kv, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q, want it to contain %q", tc.kv, err, w)
			}
		}
	}
}
