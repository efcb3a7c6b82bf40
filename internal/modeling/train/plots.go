package train

import "github.com/atrium-ml/atrium/internal/modeling/modelfile"

// plotFiles draws the study's PNG plots, by artifact path.
func plotFiles(res *Result, set *trainingSet, m *modelfile.Model, best *fitResult) (map[string][]byte, error) {
	return nil, nil
}
