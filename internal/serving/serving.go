// Package serving serves registered models: it loads a registry version
// from the MLflow model directory its source points at (flavors lightgbm,
// xgboost and atrium; load.go), keeps the versions that models' aliases
// point at loaded and follows the aliases as they move (service.go), splits
// traffic to a canary and scores a shadow off the response path, and answers
// the Open Inference Protocol through oip.Backend (backend.go).
//
// What a request holds is a *Deployed: one immutable loaded version. A swap
// replaces the pointer a model's alias resolves to; requests that already
// hold the old version finish with it, so no response mixes versions.
package serving

import "errors"

// Errors of this package, for errors.Is. The OIP backend maps them to the
// protocol's (oip.ErrModelNotFound, oip.ErrInvalidInput, oip.ErrUnavailable).
var (
	// ErrNotFound: no such registered model, version or alias.
	ErrNotFound = errors.New("model not found")
	// ErrUnsupportedFlavor: the version's MLmodel has no flavor Atrium
	// serves (a scikit-learn pickle, a pyfunc-only model...).
	ErrUnsupportedFlavor = errors.New("unsupported model flavor")
	// ErrModelFormat: the version's files are not a valid model directory
	// of a served flavor (no MLmodel, a missing or corrupt data file, a
	// signature contradicting the model), or, once the endpoints exist, its
	// feature service is not defined or provides none of its inputs.
	ErrModelFormat = errors.New("invalid model directory")
	// ErrInvalidInput: rows that do not fit the model (columns, types).
	ErrInvalidInput = errors.New("invalid model input")
	// ErrNotReady: the model has no loaded version to serve yet (its
	// version failed to load) or the service is closed.
	ErrNotReady = errors.New("model not ready")
)
