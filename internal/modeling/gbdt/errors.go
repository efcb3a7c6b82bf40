package gbdt

import "errors"

// Errors of this package, checked with errors.Is. Each returned error wraps
// one of them with the details (which parameter, column or tree).
var (
	// ErrParams: a training parameter is unknown or out of range.
	ErrParams = errors.New("gbdt: invalid parameters")
	// ErrData: a dataset cannot be used for training or prediction (shape,
	// labels, groups or columns that do not match the model).
	ErrData = errors.New("gbdt: invalid data")
	// ErrModel: a model is inconsistent (array lengths, child indices,
	// feature indices) and cannot be used.
	ErrModel = errors.New("gbdt: invalid model")
)
