package drift

import "testing"

// distinctUpTo counts the distinct values of two sorted samples together,
// shared values once, and stops at the limit.
func TestDistinctUpTo(t *testing.T) {
	tests := []struct {
		name  string
		a, b  []float64
		limit int
		want  int
	}{
		{"both empty", nil, nil, 6, 0},
		{"one side", []float64{1, 1, 2}, nil, 6, 2},
		{"shared values once", []float64{1, 2, 2, 3}, []float64{2, 3, 4}, 6, 4},
		{"interleaved", []float64{-1, 1, 3, 5}, []float64{0, 2, 4}, 10, 7},
		{"stops at the limit", []float64{1, 2, 3, 4, 5, 6, 7, 8}, []float64{9}, 6, 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := distinctUpTo(tc.a, tc.b, tc.limit); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}
