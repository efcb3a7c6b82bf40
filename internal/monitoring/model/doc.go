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
// Memory is bounded whatever the window's size: volumes and the rows per
// version are counted by DuckDB (predlog.Counts); the rows drift and
// performance need are read for the report's version only, and above
// Options.MaxRows (monitoring.max_rows) as whole requests drawn by a seeded
// hash of their ids (predlog.ReadSample), which Report.Sample records. A
// label joined by entity and time goes to the newest drawn row of its keys
// within its horizon.
package model
