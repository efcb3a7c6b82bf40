package gbdt

import (
	"context"
	"github.com/atrium-ml/atrium/internal/modeling/gbdt/gbdttest"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

func mustParams(t testing.TB, kv map[string]string) Params {
	t.Helper()
	p, err := ParseParams(kv)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTrainBinaryLearns(t *testing.T) {
	train := gbdttest.Synth(ObjBinary, 4000, 1)
	valid := gbdttest.Synth(ObjBinary, 2000, 2)
	p := mustParams(t, map[string]string{"objective": "binary", "metric": "auc,binary_logloss", "num_iterations": "60"})
	var last []Eval
	m, err := Train(context.Background(), train, valid, p, TrainOptions{OnIteration: func(_ int, e []Eval) { last = e }})
	if err != nil {
		t.Fatal(err)
	}
	pred, err := m.Predict(valid)
	if err != nil {
		t.Fatal(err)
	}
	auc, err := ml.AUC(valid.Label, pred, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("valid AUC %.4f, evals %v, trees %d", auc, last, len(m.Trees))
	if auc < 0.8 {
		t.Errorf("AUC %.4f, want >= 0.8", auc)
	}
	if last[0].Name != "auc" || last[0].Value != auc {
		t.Errorf("last eval %v, want auc %v", last[0], auc)
	}
}
