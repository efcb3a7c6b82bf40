package ml

import "path/filepath"

// Progress shows how far a long step (loading a file, fitting a model) has
// come, typically as a progress bar on a terminal. For each step a caller
// calls Start once, Add any number of times, then Finish; steps never nest, so
// an implementation needs to track one step at a time. Calls come from the
// goroutine that runs the work.
type Progress interface {
	// Start begins a step: step describes it ("loading train.csv"), unit
	// names what is counted ("rows"), total is the count when done (<= 0:
	// unknown).
	Start(step, unit string, total int)
	// Add records n more units done.
	Add(n int)
	// Finish ends the step.
	Finish()
}

// LoadProgress adapts p to LoadOptions.Progress for loading path: the step
// "loading <file name>" in rows starts with the first chunk read (when the
// total is known). Call finish when Load returns; it ends the step if one was
// started. A nil p gives a nil progress func and a finish that does nothing.
func LoadProgress(p Progress, path string) (progress func(rows, total int), finish func()) {
	if p == nil {
		return nil, func() {}
	}
	started, shown := false, 0
	progress = func(rows, total int) {
		if !started {
			p.Start("loading "+filepath.Base(path), "rows", total)
			started = true
		}
		p.Add(rows - shown)
		shown = rows
	}
	finish = func() {
		if started {
			p.Finish()
		}
	}
	return progress, finish
}
