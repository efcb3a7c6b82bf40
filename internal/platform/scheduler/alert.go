package scheduler

import (
	"context"
	"time"
)

// Alert says a job's interval failed for good: its retries are spent, or an
// error-level check failed (everything downstream of the interval waits).
type Alert struct {
	Job      string    `json:"job"`
	Kind     string    `json:"kind"`
	Interval Interval  `json:"-"`
	Start    time.Time `json:"interval_start"`
	End      time.Time `json:"interval_end"`
	// State is StateFailed or StateChecksFailed.
	State   string    `json:"state"`
	Attempt int       `json:"attempt"`
	Error   string    `json:"error"`
	At      time.Time `json:"at"`
	// Summary is one line for a chat message or a pager.
	Summary string `json:"summary"`
}

// Notifier delivers alerts. Notify is called from the goroutine that ran
// the job, with a deadline; an error is logged. cmd/atrium adapts the
// monitoring layer's notifiers (webhooks, Slack) to it.
type Notifier interface {
	Notify(ctx context.Context, a Alert) error
}
