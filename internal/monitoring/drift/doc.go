// Package drift computes per-column data drift between a reference sample and
// a current sample, with the statistics, default test selection and
// thresholds of Evidently's data-drift report, so that a verdict from Atrium
// reads the same as one users know from Evidently.
//
// # Inputs and missing values
//
// A column is numeric ([]float64) or categorical ([]string). NaN and ±Inf in
// numeric columns, and the empty string in categorical ones, are missing and
// are dropped from both samples before anything else, as Evidently does
// (Evidently also turns ±Inf into NaN and drops it). When either sample has no
// value left, the result is an error wrapping ErrEmpty: an empty window is
// never reported as "no drift".
//
// # Default test (Evidently's get_stattest)
//
// With N the reference size and K the number of distinct values in reference
// and current together, both after dropping missing values:
//
//	N <= 1000: numeric and K > 5  -> ks            (drift when p <= 0.05)
//	           K > 2              -> chisquare     (drift when p < 0.05)
//	           otherwise          -> z             (drift when p < 0.05)
//	N >  1000: numeric and K > 5  -> wasserstein   (drift when score >= 0.1)
//	           otherwise          -> jensenshannon (drift when score >= 0.1)
//
// The dataset drifts when the share of drifted columns is at least 0.5.
// Options overrides the method and threshold per column; every method keeps
// its direction (p-values drift below the threshold, distances at or above).
//
// # Methods
//
//   - ks: scipy.stats.ks_2samp p-value, exact up to 10,000 values per sample
//     as scipy's "auto" mode; see KS for the asymptotic branch.
//   - chisquare: scipy.stats.chisquare of current counts against reference
//     proportions scaled to the current size; a category unseen in the
//     reference gives p = 0.
//   - z: two-proportion Z-test with pooled variance, two-sided.
//   - wasserstein: scipy.stats.wasserstein_distance / max(std(reference), 0.001).
//   - jensenshannon: scipy.spatial.distance.jensenshannon (natural log) of the
//     shares per bucket. Numeric columns whose reference has more than 20
//     distinct values are cut into np.histogram_bin_edges(reference+current,
//     bins="sturges") bins; other columns use one bucket per value.
//   - psi: Σ (r-c)·ln(r/c) over the same buckets, zero shares replaced as
//     Evidently does (0.0001, or min(nonzero)/1e6 when that is smaller).
//   - hellinger: sqrt(1 - Σ sqrt(p·q)) over category shares, or over
//     densities of Sturges bins built from the distinct values for numeric
//     columns (Evidently's choice, kept as is).
//
// Every score is checked against scipy and numpy on the cases of
// testdata/expected.json, produced by testdata/gen.py.
//
// # Known differences from Evidently
//
//   - ks above 10,000 values per sample: scipy uses kstwo.sf (exact
//     one-sample distribution at n = round(mn/(m+n))); this package computes
//     it exactly (Marsaglia-Tsang-Wang) when floor(n·D) < 100, and otherwise
//     uses the Kolmogorov limit with Stephens' correction, within 1% relative
//     of scipy (0.02% near p = 0.05).
//   - chisquare with a single category: scipy returns NaN and Evidently
//     reports no drift; this package returns p = 1 and no drift, since JSON
//     has no NaN.
//   - chisquare and z named explicitly on a numeric column: Evidently refuses
//     them (it only picks them by default); this package computes them.
//
// testdata/evidently_check.py runs the real evidently package (0.7.23) on
// the cases of testdata/expected.json; TestEvidently runs it when
// ATRIUM_TEST_EVIDENTLY_PYTHON is set. Every method, score and verdict
// matches (the explicit chisquare-on-numeric cases are skipped, see above).
package drift
