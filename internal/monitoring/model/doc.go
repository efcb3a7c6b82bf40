// Package model monitors served models: for a window of the prediction log
// (features as served, predictions), it compares each input and the
// predictions with the version's training profile (reference/profile.json
// of the version's run, written by atrium train) and with the previous
// window of the same length, reports missing-value rates and volume, and
// joins the delayed labels of internal/monitoring/labels for realized
// metrics next to the version's test metrics (atrium.test.<metric> tags).
//
// Drift follows internal/monitoring/drift: Evidently's default test per
// column, with the profile's sample (up to 5,000 values) standing in for the
// reference data, so a reference of more than 1,000 rows is compared with
// Wasserstein distance (numeric) or Jensen-Shannon distance (categorical)
// at 0.1, as Evidently does on the same data.
//
// The window's rows are those of one version (the one that scored the
// newest row, unless the request pins one): versions differ in inputs and
// reference. Shadow rows are left out unless the version is pinned.
//
// Measurer adapts reports to the monitors of monitors/*.yaml
// (internal/monitoring/alert), and Monitor exports the last drift scores
// as atrium_feature_drift_score{model,version,feature} and
// atrium_prediction_drift_score{model,version}.
//
// Limits: a window's rows are read into memory (predlog.Read); windows of
// millions of rows want a DuckDB aggregation instead.
package model
