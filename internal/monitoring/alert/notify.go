package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/atrium-ml/atrium/internal/spec"
)

// Notification states.
const (
	StateFiring   = "firing"
	StateResolved = "resolved"
)

// Notification is one alert transition: a monitor started firing, or
// stopped. Its JSON form is the generic webhook's body.
type Notification struct {
	// Rule names the monitor (or, for the scheduler, the check) that changed.
	Rule     string `json:"rule"`
	Severity string `json:"severity"`
	// State is StateFiring or StateResolved.
	State string `json:"state"`
	// Summary is one human sentence: what was measured, its value and the
	// condition.
	Summary   string            `json:"summary"`
	Value     float64           `json:"value"`
	Threshold float64           `json:"threshold"`
	Labels    map[string]string `json:"labels,omitempty"`
	At        time.Time         `json:"at"`
}

// MarshalJSON writes a non-finite value (a no-data alert) as null.
func (n Notification) MarshalJSON() ([]byte, error) {
	type plain Notification
	var v *float64
	if !math.IsNaN(n.Value) {
		v = &n.Value
	}
	return marshal(struct {
		plain
		Value *float64 `json:"value"`
	}{plain(n), v})
}

// marshal is json.Marshal without HTML escaping: '<', '>' and '&' are
// written as they are (summaries hold comparisons).
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Notifier delivers notifications. Notify returns once the notification is
// delivered or can no longer be (its retries are spent, ctx is done);
// implementations are safe for concurrent use.
type Notifier interface {
	Notify(ctx context.Context, n Notification) error
}

// ErrPermanent marks a delivery failure that retrying cannot fix (the
// receiver refused the request: 4xx other than 408 and 429).
var ErrPermanent = errors.New("webhook refused the notification")

// Webhook posts notifications to a URL: the Notification as JSON (Format
// spec.NotifyJSON), or {"text": ...} for Slack-compatible incoming webhooks
// (spec.NotifySlack). Failed attempts (a network error, a 5xx, 408 or 429)
// are retried with exponential backoff; a Retry-After header in seconds
// stretches the wait.
type Webhook struct {
	// Name identifies the notifier in logs and metrics.
	Name   string
	URL    string
	Format string
	// Client sends the requests. Default: a client with a 10 s timeout.
	Client *http.Client
	// Attempts is the number of tries. Default 5.
	Attempts int
	// Backoff is the wait before the second attempt, doubled for each
	// further one up to MaxBackoff. Defaults 500ms and 30s.
	Backoff, MaxBackoff time.Duration
}

// NewWebhook builds the webhook of a notifier definition.
func NewWebhook(n *spec.Notifier) (*Webhook, error) {
	u, err := n.Endpoint()
	if err != nil {
		return nil, err
	}
	return &Webhook{Name: n.Name, URL: u, Format: n.Format}, nil
}

var defaultClient = &http.Client{Timeout: 10 * time.Second}

// Notify posts n, retrying as the type's doc says.
func (w *Webhook) Notify(ctx context.Context, n Notification) error {
	body, err := w.body(n)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", w.Name, err)
	}
	attempts := w.Attempts
	if attempts <= 0 {
		attempts = 5
	}
	wait := w.Backoff
	if wait <= 0 {
		wait = 500 * time.Millisecond
	}
	maxWait := w.MaxBackoff
	if maxWait <= 0 {
		maxWait = 30 * time.Second
	}
	var last error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			d := wait
			var ra retryAfter
			if errors.As(last, &ra) && time.Duration(ra) > d {
				d = min(time.Duration(ra), maxWait)
			}
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("webhook %s: %w (last attempt: %v)", w.Name, ctx.Err(), last)
			case <-t.C:
			}
			wait = min(2*wait, maxWait)
		}
		last = w.post(ctx, body)
		if last == nil {
			return nil
		}
		if errors.Is(last, ErrPermanent) {
			break
		}
	}
	return fmt.Errorf("webhook %s: %w", w.Name, last)
}

// retryAfter is a retryable failure whose answer asked for a wait.
type retryAfter time.Duration

func (r retryAfter) Error() string { return "retry after " + time.Duration(r).String() }

func (w *Webhook) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrPermanent, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "atrium-alerts")
	c := w.Client
	if c == nil {
		c = defaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500:
		err := fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
		if s, convErr := strconv.Atoi(resp.Header.Get("Retry-After")); convErr == nil && s > 0 {
			return errors.Join(err, retryAfter(time.Duration(s)*time.Second))
		}
		return err
	}
	return fmt.Errorf("%w: %s: %s", ErrPermanent, resp.Status, strings.TrimSpace(string(msg)))
}

func (w *Webhook) body(n Notification) ([]byte, error) {
	if w.Format == spec.NotifySlack {
		return marshal(map[string]string{"text": SlackText(n)})
	}
	return marshal(n)
}

// SlackText is the one-message text of a notification.
func SlackText(n Notification) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s] %s %s: %s", strings.ToUpper(n.State), n.Severity, n.Rule, n.Summary)
	if len(n.Labels) > 0 {
		keys := make([]string, 0, len(n.Labels))
		for k := range n.Labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b.WriteString(" (")
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s=%s", k, n.Labels[k])
		}
		b.WriteString(")")
	}
	return b.String()
}
