package scheduler

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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
// the job, with a deadline; an error is logged, never retried. The
// monitoring layer's notifier plugs in here through a small adapter.
type Notifier interface {
	Notify(ctx context.Context, a Alert) error
}

// Webhook posts each alert as JSON to a URL (atrium.yaml's
// scheduler.alert_webhook).
type Webhook struct {
	URL    string
	Client *http.Client // default: a client with a 10 s timeout
}

// Notify posts the alert; a status other than 2xx is an error.
func (w *Webhook) Notify(ctx context.Context, a Alert) error {
	body, err := json.Marshal(a)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("alert webhook %s: %w", w.URL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	c := w.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("alert webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("alert webhook %s answered %s", w.URL, resp.Status)
	}
	return nil
}
