package gbdt

// SplitImportance returns, per feature, how many splits use it (LightGBM's
// importance_type="split").
func SplitImportance(m *Model) []float64 {
	out := make([]float64, len(m.Features))
	for i := range m.Trees {
		t := &m.Trees[i]
		for _, f := range t.SplitFeature[:max(0, t.NumLeaves-1)] {
			out[f]++
		}
	}
	return out
}

// GainImportance returns, per feature, the total gain of the splits using it
// (LightGBM's importance_type="gain").
func GainImportance(m *Model) []float64 {
	out := make([]float64, len(m.Features))
	for i := range m.Trees {
		t := &m.Trees[i]
		if len(t.SplitGain) != t.NumLeaves-1 {
			continue
		}
		for n, f := range t.SplitFeature[:max(0, t.NumLeaves-1)] {
			out[f] += t.SplitGain[n]
		}
	}
	return out
}
