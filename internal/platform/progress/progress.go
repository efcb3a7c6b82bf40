// Package progress shows the progress of long jobs (rows, percent, ETA) on a
// terminal and stays silent when the output is not one (CI, pipes, files).
package progress

import (
	"io"
	"os"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Bar counts units of work. A nil *Bar is valid and does nothing, so callers
// never need to check whether progress is shown.
type Bar struct {
	pb *progressbar.ProgressBar
}

// New returns a bar writing to w if w is a terminal, and a silent bar otherwise.
// total <= 0 means unknown (a spinner with a running count). unit names what is
// counted ("rows", "keys").
func New(w io.Writer, total int64, description, unit string) *Bar {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return &Bar{pb: progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(description),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString(unit),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100_000_000), // redraw at most every 100 ms
		progressbar.OptionClearOnFinish(),
		progressbar.OptionOnCompletion(func() { _, _ = io.WriteString(w, "\n") }),
	)}
}

// Add records n more units of work done.
func (b *Bar) Add(n int64) {
	if b == nil {
		return
	}
	_ = b.pb.Add64(n)
}

// Finish completes the bar and clears it from the terminal.
func (b *Bar) Finish() {
	if b == nil {
		return
	}
	_ = b.pb.Finish()
}

// Describe replaces the text before the bar (a running best, a phase).
func (b *Bar) Describe(description string) {
	if b == nil {
		return
	}
	b.pb.Describe(description)
}
