package linear

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

func load(t *testing.T, name string) *ml.Dataset {
	t.Helper()
	ds, err := ml.Load(context.Background(), "testdata/sklearn/"+name, ml.LoadOptions{Label: "y"})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func train(t *testing.T, ds *ml.Dataset, params map[string]string) *Model {
	t.Helper()
	p, err := ParseParams(params)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Train(context.Background(), ds, p, TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParseParams(t *testing.T) {
	p, err := ParseParams(map[string]string{"objective": "binary", "reg_lambda": "0.5", "L1_regularization": "0.1", "num_iterations": "50", "seed": "7"})
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultParams(Binary)
	want.LambdaL2, want.LambdaL1, want.MaxIter = 0.5, 0.1, 50
	if !reflect.DeepEqual(p, want) {
		t.Errorf("ParseParams = %+v, want %+v", p, want)
	}
	if p, _ := ParseParams(nil); p.Objective != Regression || p.LambdaL2 != -1 || !p.FitIntercept || !p.Standardize {
		t.Errorf("defaults %+v", p)
	}
	_, err = ParseParams(map[string]string{"objective": "poisson", "lambda_l2": "-1", "max_iter": "0", "num_leaves": "31", "fit_intercept": "maybe"})
	if !errors.Is(err, ErrParams) {
		t.Fatalf("bad params: %v", err)
	}
	for _, part := range []string{`objective "poisson"`, `lambda_l2="-1": want a number >= 0`, `max_iter="0"`, `unknown parameter "num_leaves"`, `fit_intercept="maybe"`} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q lacks %q", err, part)
		}
	}
	if _, err := ParseParams(map[string]string{"num_class": "3"}); err == nil {
		t.Error("num_class for regression accepted")
	}
}

func TestLabelErrors(t *testing.T) {
	ds := &ml.Dataset{Columns: []ml.Column{{Name: "x", Values: []float32{1, 2, 3}}}, Label: []float64{0, 1, 2}}
	tests := []struct {
		params map[string]string
		want   string
	}{
		{map[string]string{"objective": "binary"}, "binary label of row 3 is 2, want 0 or 1"},
		{map[string]string{"objective": "multiclass", "num_class": "2"}, "class label of row 3 is 2"},
	}
	for _, tt := range tests {
		p, _ := ParseParams(tt.params)
		if _, err := Train(context.Background(), ds, p, TrainOptions{}); !errors.Is(err, ErrLabels) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %q", tt.params, err, tt.want)
		}
	}
	ds.Label[1] = 0.5
	p, _ := ParseParams(map[string]string{"objective": "multiclass"})
	if _, err := Train(context.Background(), ds, p, TrainOptions{}); err == nil || !strings.Contains(err.Error(), "row 2 is 0.5") {
		t.Errorf("fractional class: %v", err)
	}
	ds.Label = nil
	if _, err := Train(context.Background(), ds, DefaultParams(Regression), TrainOptions{}); !errors.Is(err, ErrLabels) {
		t.Errorf("no label: %v", err)
	}
}

func TestL1GivesExactZeros(t *testing.T) {
	ds := load(t, "binary_l1.csv")
	m := train(t, ds, map[string]string{"objective": "binary", "lambda_l1": "0.05"})
	zeros := 0
	for _, c := range m.Coef[0] {
		if c == 0 {
			zeros++
		}
	}
	// scikit-learn's saga fit has x4 and the three hood columns at zero.
	if zeros != 4 || m.Coef[0][0] == 0 {
		t.Errorf("coefficients %v: want exactly 4 zeros", m.Coef[0])
	}
	// More penalty, fewer non-zeros; enough penalty, none.
	if m := train(t, ds, map[string]string{"objective": "binary", "lambda_l1": "10"}); !reflect.DeepEqual(m.Coef[0], make([]float64, 7)) {
		t.Errorf("with lambda_l1=10: %v, want all zeros", m.Coef[0])
	}
}

func TestTrainDeterministicAndReported(t *testing.T) {
	ds := load(t, "multiclass_l2.csv")
	p, _ := ParseParams(map[string]string{"objective": "multiclass"})
	var iters []int
	var objectives []float64
	m1, err := Train(context.Background(), ds, p, TrainOptions{OnIteration: func(iter int, f float64, m *Model) error {
		iters = append(iters, iter)
		objectives = append(objectives, f)
		if m.Pre == nil || len(m.Coef) != 3 {
			return errors.New("snapshot without preprocessing or coefficients")
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(iters) != m1.Iterations || iters[0] != 1 || !m1.Converged {
		t.Errorf("reported %v iterations, model says %d (converged %v)", iters, m1.Iterations, m1.Converged)
	}
	for i := 1; i < len(objectives); i++ {
		if objectives[i] > objectives[i-1] {
			t.Errorf("objective went up at iteration %d: %v", i+1, objectives)
		}
	}
	m2, _ := Train(context.Background(), ds, p, TrainOptions{})
	if !reflect.DeepEqual(m1.Coef, m2.Coef) || !reflect.DeepEqual(m1.Intercept, m2.Intercept) {
		t.Error("two fits of the same data differ")
	}
	stop := errors.New("enough")
	if _, err := Train(context.Background(), ds, p, TrainOptions{OnIteration: func(iter int, _ float64, _ *Model) error {
		if iter == 3 {
			return stop
		}
		return nil
	}}); !errors.Is(err, stop) {
		t.Errorf("callback error: %v", err)
	}
	for _, params := range []map[string]string{{"objective": "multiclass"}, {"objective": "multiclass", "lambda_l1": "0.01"}} {
		ctx, cancel := context.WithCancel(context.Background())
		p, _ := ParseParams(params)
		_, err := Train(ctx, ds, p, TrainOptions{OnIteration: func(iter int, _ float64, _ *Model) error {
			cancel()
			return nil
		}})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%v: canceled training returned %v", params, err)
		}
	}
}

func TestPredict(t *testing.T) {
	ds := load(t, "multiclass_l2.csv")
	m := train(t, ds, map[string]string{"objective": "multiclass"})
	if m.NumOutputs() != 3 || m.Validate() != nil {
		t.Fatalf("outputs %d, validate %v", m.NumOutputs(), m.Validate())
	}
	raw, err := m.PredictRaw(ds)
	if err != nil {
		t.Fatal(err)
	}
	prob, _ := m.Predict(ds)
	for i := 0; i < len(prob); i += 3 {
		sum := prob[i] + prob[i+1] + prob[i+2]
		if math.Abs(sum-1) > 1e-12 {
			t.Fatalf("row %d probabilities sum to %v", i/3, sum)
		}
		// Softmax keeps the order of the margins.
		if (raw[i] > raw[i+1]) != (prob[i] > prob[i+1]) {
			t.Fatalf("row %d: margins %v, probabilities %v", i/3, raw[i:i+3], prob[i:i+3])
		}
	}
	// A category not seen in training predicts like a missing one.
	hood := ds.ColumnIndex("hood")
	unseen := ds.Subset([]int{0, 0}) // the same row twice
	unseen.Columns[hood].Categories = []string{"west"}
	unseen.Columns[hood].Values = []float32{0, float32(math.NaN())}
	p, err := m.Predict(unseen)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p[:3], p[3:]) || reflect.DeepEqual(p[:3], prob[:3]) {
		t.Errorf("unseen category %v, missing %v, trained %v: want the first two equal", p[:3], p[3:], prob[:3])
	}
	// The model's JSON holds everything but the preprocessing.
	b, _ := json.Marshal(m)
	var back Model
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if _, err := back.Predict(ds); !errors.Is(err, ErrModel) {
		t.Errorf("prediction without preprocessing: %v", err)
	}
	back.Pre = m.Pre
	again, _ := back.Predict(ds)
	if !reflect.DeepEqual(again, prob) {
		t.Error("a JSON round trip changed the predictions")
	}
	back.Coef = back.Coef[:2]
	if err := back.Validate(); !errors.Is(err, ErrModel) {
		t.Errorf("two coefficient rows for three classes: %v", err)
	}
}
