package train

import (
	"bytes"
	"errors"
	"fmt"
	"math"

	"github.com/atrium-ml/atrium/internal/data/profile"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
)

// referenceProfile profiles the training set's features (every row of the
// spine, as monitoring compares served features against the data the model
// learned from) and the best trial's predictions on its validation rows,
// for monitoring's drift checks (internal/data/profile's JSON).
func referenceProfile(set *trainingSet, best *fitResult, m *modelfile.Model) ([]byte, error) {
	ins := make([]profile.Input, len(set.ds.Columns))
	for i, c := range set.ds.Columns {
		ins[i] = columnInput(c)
	}
	p := profile.Build(ins, profile.Options{})
	p.Start, p.End = set.fp.Start, set.fp.End
	// Monitoring's prediction drift check compares served predictions with
	// this distribution: a version registered without it could not be
	// monitored, so its absence is an error, not an omission.
	if best == nil || len(best.validPred) == 0 {
		return nil, errors.New("reference profile: the best trial's validation predictions are missing (the prediction distribution monitoring compares with)")
	}
	pc := profile.BuildColumn(predictionInput(best.validPred, m.NumOutputs()), profile.Options{}, 0)
	p.Prediction = &pc
	var b bytes.Buffer
	if err := p.Encode(&b); err != nil {
		return nil, fmt.Errorf("reference profile: %w", err)
	}
	return b.Bytes(), nil
}

// columnInput is a dataset column as profile input: numbers as they are,
// categories by their names.
func columnInput(c ml.Column) profile.Input {
	if c.Kind != ml.Categorical {
		xs := make([]float64, len(c.Values))
		for i, v := range c.Values {
			xs[i] = float64(v)
		}
		return profile.Input{Name: c.Name, Float: xs}
	}
	ss := make([]string, len(c.Values))
	valid := make([]bool, len(c.Values))
	for i, v := range c.Values {
		if math.IsNaN(float64(v)) {
			continue
		}
		valid[i] = true
		if code := int(v); code < len(c.Categories) {
			ss[i] = c.Categories[code]
		} else {
			ss[i] = fmt.Sprint(code)
		}
	}
	return profile.Input{Name: c.Name, String: ss, Valid: valid}
}

// predictionInput is the predictions as profile input: the score of one
// output, the predicted class of several.
func predictionInput(pred []float64, k int) profile.Input {
	if k <= 1 {
		return profile.Input{Name: "prediction", Float: pred}
	}
	classes := argmax(pred, k)
	ss := make([]string, len(classes))
	for i, c := range classes {
		ss[i] = fmt.Sprint(c)
	}
	return profile.Input{Name: "prediction", String: ss}
}
