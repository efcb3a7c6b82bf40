package tune

import "fmt"

// NewSampler returns the sampler a training spec names: "tpe" (default
// when empty), "random" or "grid" (which needs space: every combination of
// its values; a float range needs a step).
func NewSampler(name string, space Space, seed int64) (Sampler, error) {
	switch name {
	case "", "tpe":
		return NewTPESampler(TPEOptions{}), nil
	case "random":
		return RandomSampler{}, nil
	case "grid":
		return NewGridSampler(space, seed)
	}
	return nil, fmt.Errorf("sampler %q: want tpe, random or grid", name)
}

// NewPruner returns the pruner a training spec names: "median" (default
// when empty), "asha" (successive halving, min resource "auto"), or "none".
func NewPruner(name string) (Pruner, error) {
	switch name {
	case "", "median":
		return MedianPruner{}, nil
	case "asha", "successive_halving":
		return &SuccessiveHalvingPruner{}, nil
	case "none":
		return NopPruner{}, nil
	}
	return nil, fmt.Errorf("pruner %q: want median, asha or none", name)
}
