// Package tune is Atrium's hyperparameter search: Optuna's model in Go.
//
// A Study holds trials in a Storage (in memory, or the metadata DB through
// package tunedb so several processes can share a study and a killed one can
// be resumed). Optimize runs an Objective once per trial; the objective asks
// the Trial for parameters (SuggestFloat, SuggestInt, SuggestCategorical),
// reports intermediate values (Report) and asks whether to stop early
// (ShouldPrune). A Sampler proposes the parameters (TPE, random, grid) and a
// Pruner decides early stops (median, successive halving).
//
// Samplers follow Optuna's TPESampler, RandomSampler and GridSampler rules and
// defaults, and pruners its MedianPruner and SuccessiveHalvingPruner, so a
// study behaves as the Optuna documentation says. Each trial draws from its
// own random stream seeded by (study seed, trial number): with Parallel 1 a
// seed gives the same trials on every run.
package tune
