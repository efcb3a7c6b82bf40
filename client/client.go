// Package client is the Go client of Atrium's HTTP APIs. It speaks the online
// feature server's API (Feast's wire format): GetOnlineFeatures, Push and
// MaterializeIncremental; and asks whether the server is Ready.
//
//	c, err := client.New("http://127.0.0.1:8080")
//	resp, err := c.GetOnlineFeatures(ctx, client.OnlineFeaturesRequest{
//		FeatureService: "ranker",
//		Entities:       new(client.Columns).Int64("listing_id", 17, 42),
//	})
//	rent, _ := resp.Column("rent")
//	fmt.Println(rent.Values[0], rent.Statuses[0])
//
// Every method takes a context first and returns an *Error for an answer of
// the server other than success, so callers can tell their own mistakes (4xx)
// from the server's (5xx).
package client

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls one Atrium server. It is safe for concurrent use.
type Client struct {
	base string
	http *http.Client
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (timeouts, transport, auth). Default: a
// client with a 30 s timeout.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// New returns a client of the server at baseURL ("http://host:port").
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("atrium client: server URL %q: want http://host:port", baseURL)
	}
	c := &Client{base: strings.TrimRight(baseURL, "/"), http: &http.Client{Timeout: 30 * time.Second}}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Error is a response of the server other than success.
type Error struct {
	// StatusCode is the HTTP status: 4xx for a mistake in the request, 5xx for
	// a failure of the server.
	StatusCode int
	// Message is the server's explanation.
	Message string
	// Path is the API route called.
	Path string
}

func (e *Error) Error() string {
	return fmt.Sprintf("atrium %s: %d %s: %s", e.Path, e.StatusCode, http.StatusText(e.StatusCode), e.Message)
}

// IsClientError reports whether err is the server's rejection of the request (4xx).
func IsClientError(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode >= 400 && e.StatusCode < 500
}

// do posts body as JSON to path and decodes the answer into out.
func (c *Client) do(ctx context.Context, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("atrium %s: encode request: %w", path, err)
	}
	raw, err := c.send(ctx, http.MethodPost, path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("atrium %s: decode response: %w", path, err)
	}
	return nil
}

// send makes one request and returns the body of a 200 answer; any other
// status is an *Error carrying the server's message.
func (c *Client) send(ctx context.Context, method, path string, body io.Reader) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("atrium %s: %w", path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("atrium %s: %w", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("atrium %s: read response: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		// The feature API answers {"error": ...}, MLflow's routes and the
		// platform's {"error_code": ..., "message": ...}.
		var e struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		msg := strings.TrimSpace(string(raw))
		if json.Unmarshal(raw, &e) == nil {
			msg = cmp.Or(e.Error, e.Message, msg)
		}
		return nil, &Error{StatusCode: resp.StatusCode, Message: msg, Path: path}
	}
	return raw, nil
}

// Ready calls GET /readyz: nil when the server is up and every API it serves
// can reach its stores; an *Error with status 503 while one cannot; the
// transport's error while nothing answers at the address.
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.send(ctx, http.MethodGet, "/readyz", nil)
	return err
}

// Columns are named lists of values of equal length, in the order added:
// entity columns of a feature request, or a frame of rows to push. The typed
// methods return c, so calls chain.
type Columns struct {
	names []string
	cols  []any
}

func (c *Columns) add(name string, values any) *Columns {
	for i, n := range c.names {
		if n == name {
			c.cols[i] = values
			return c
		}
	}
	c.names = append(c.names, name)
	c.cols = append(c.cols, values)
	return c
}

// Int64 adds an integer column.
func (c *Columns) Int64(name string, values ...int64) *Columns { return c.add(name, values) }

// String adds a string column.
func (c *Columns) String(name string, values ...string) *Columns { return c.add(name, values) }

// Float64 adds a number column.
func (c *Columns) Float64(name string, values ...float64) *Columns { return c.add(name, values) }

// Bool adds a boolean column.
func (c *Columns) Bool(name string, values ...bool) *Columns { return c.add(name, values) }

// Time adds a timestamp column (sent as RFC 3339 in UTC).
func (c *Columns) Time(name string, values ...time.Time) *Columns {
	s := make([]string, len(values))
	for i, t := range values {
		s[i] = t.UTC().Format(time.RFC3339Nano)
	}
	return c.add(name, s)
}

// Values adds a column of any JSON-encodable values; nil is null.
func (c *Columns) Values(name string, values ...any) *Columns { return c.add(name, values) }

// MarshalJSON writes the columns as one JSON object, in the order added.
func (c *Columns) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, n := range c.names {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(n)
		v, err := json.Marshal(c.cols[i])
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", n, err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// OnlineFeaturesRequest asks for the latest features of entities.
type OnlineFeaturesRequest struct {
	// Features are "set:feature" references; or name a FeatureService instead.
	Features       []string
	FeatureService string
	// Entities hold one column per join key.
	Entities *Columns
	// FullFeatureNames names features "set__feature" in the response.
	FullFeatureNames bool
}

// Status of a served value (Feast's FieldStatus).
type Status string

const (
	StatusPresent       Status = "PRESENT"
	StatusNullValue     Status = "NULL_VALUE"
	StatusNotFound      Status = "NOT_FOUND"
	StatusOutsideMaxAge Status = "OUTSIDE_MAX_AGE"
)

// FeatureVector is one column of the response: one value per entity row.
type FeatureVector struct {
	Name string
	// Values are int64, float64, string, bool or nil (numbers without a
	// fraction decode as int64; timestamps arrive as RFC 3339 strings).
	Values          []any
	Statuses        []Status
	EventTimestamps []time.Time
}

// OnlineFeaturesResponse is column-major: Vectors[i] is column
// FeatureNames[i], join keys first.
type OnlineFeaturesResponse struct {
	FeatureNames []string
	Vectors      []FeatureVector
}

// Rows is the number of entity rows.
func (r *OnlineFeaturesResponse) Rows() int {
	if len(r.Vectors) == 0 {
		return 0
	}
	return len(r.Vectors[0].Values)
}

// Column returns the vector named name.
func (r *OnlineFeaturesResponse) Column(name string) (*FeatureVector, bool) {
	for i := range r.Vectors {
		if r.Vectors[i].Name == name {
			return &r.Vectors[i], true
		}
	}
	return nil, false
}

// GetOnlineFeatures calls POST /get-online-features.
func (c *Client) GetOnlineFeatures(ctx context.Context, req OnlineFeaturesRequest) (*OnlineFeaturesResponse, error) {
	body := struct {
		Features         []string `json:"features,omitempty"`
		FeatureService   string   `json:"feature_service,omitempty"`
		Entities         *Columns `json:"entities"`
		FullFeatureNames bool     `json:"full_feature_names"`
	}{req.Features, req.FeatureService, req.Entities, req.FullFeatureNames}
	if body.Entities == nil {
		body.Entities = &Columns{}
	}
	var raw struct {
		Metadata struct {
			FeatureNames []string `json:"feature_names"`
		} `json:"metadata"`
		Results []struct {
			Values          []any    `json:"values"`
			Statuses        []Status `json:"statuses"`
			EventTimestamps []string `json:"event_timestamps"`
		} `json:"results"`
	}
	const path = "/get-online-features"
	if err := c.do(ctx, path, body, &raw); err != nil {
		return nil, err
	}
	if len(raw.Results) != len(raw.Metadata.FeatureNames) {
		return nil, fmt.Errorf("atrium %s: %d results for %d feature names", path, len(raw.Results), len(raw.Metadata.FeatureNames))
	}
	out := &OnlineFeaturesResponse{FeatureNames: raw.Metadata.FeatureNames, Vectors: make([]FeatureVector, len(raw.Results))}
	for i, r := range raw.Results {
		v := FeatureVector{Name: raw.Metadata.FeatureNames[i], Values: r.Values, Statuses: r.Statuses}
		for j, x := range v.Values {
			if n, ok := x.(json.Number); ok {
				if iv, err := n.Int64(); err == nil {
					v.Values[j] = iv
				} else if fv, err := n.Float64(); err == nil {
					v.Values[j] = fv
				}
			}
		}
		v.EventTimestamps = make([]time.Time, len(r.EventTimestamps))
		for j, s := range r.EventTimestamps {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return nil, fmt.Errorf("atrium %s: results[%d].event_timestamps[%d]: %w", path, i, j, err)
			}
			v.EventTimestamps[j] = t
		}
		out.Vectors[i] = v
	}
	return out, nil
}

// PushTo names where pushed rows go.
type PushTo string

const (
	PushOnline           PushTo = "online"
	PushOffline          PushTo = "offline"
	PushOnlineAndOffline PushTo = "online_and_offline"
)

// PushRequest writes fresh rows of a feature set.
type PushRequest struct {
	FeatureSet string
	// Rows hold the set's join keys, "timestamp" (the event time) and every
	// feature of the set, one column each.
	Rows *Columns
	// To defaults to PushOnline.
	To PushTo
}

// Push calls POST /push and returns the number of rows the server accepted.
// Rows older than what the online store holds are accepted and ignored there.
func (c *Client) Push(ctx context.Context, req PushRequest) (int, error) {
	if req.To == "" {
		req.To = PushOnline
	}
	if req.Rows == nil {
		req.Rows = &Columns{}
	}
	body := struct {
		FeatureSet string   `json:"feature_set"`
		DF         *Columns `json:"df"`
		To         PushTo   `json:"to"`
	}{req.FeatureSet, req.Rows, req.To}
	var out struct {
		Rows int `json:"rows"`
	}
	if err := c.do(ctx, "/push", body, &out); err != nil {
		return 0, err
	}
	return out.Rows, nil
}

// DeleteRequest deletes entity keys of a feature set from the online store.
type DeleteRequest struct {
	FeatureSet string
	// Keys hold the set's join keys, one column each.
	Keys *Columns
	// At is the deletion's time: a row stamped at or before it cannot bring a
	// key back (a replayed push, an old materialization); a later row does.
	// Zero: the server's clock. It may not be later than the server's clock
	// plus its push skew.
	At time.Time
}

// DeleteOnline calls POST /delete-online and returns the number of keys
// deleted. A key is deleted whatever its stored row's event time (the way to
// undo a row stamped in the future); the offline store is not changed.
func (c *Client) DeleteOnline(ctx context.Context, req DeleteRequest) (int, error) {
	if req.Keys == nil {
		req.Keys = &Columns{}
	}
	body := struct {
		FeatureSet string   `json:"feature_set"`
		Entities   *Columns `json:"entities"`
		Timestamp  string   `json:"timestamp,omitempty"`
	}{FeatureSet: req.FeatureSet, Entities: req.Keys}
	if !req.At.IsZero() {
		body.Timestamp = req.At.UTC().Format(time.RFC3339Nano)
	}
	var out struct {
		Deleted int `json:"deleted"`
	}
	if err := c.do(ctx, "/delete-online", body, &out); err != nil {
		return 0, err
	}
	return out.Deleted, nil
}

// MaterializeRequest asks the server to materialize feature sets into its
// online store (what `atrium materialize` does in-process).
type MaterializeRequest struct {
	// End is the time to materialize up to.
	End time.Time
	// Sets to materialize; none means all.
	Sets []string
	// Full reads each set from End - ttl instead of from its previous end.
	Full bool
}

// MaterializeResult is what the server did for one set.
type MaterializeResult struct {
	Set string `json:"set"`
	// From is the start of the window read (exclusive); nil when unbounded.
	From    *time.Time `json:"from"`
	End     time.Time  `json:"end"`
	Rows    int64      `json:"rows"`
	Skipped bool       `json:"skipped"`
	// NoData: the offline store holds nothing of the set up to End; nothing
	// was written and no resume point recorded.
	NoData          bool    `json:"no_data"`
	DurationSeconds float64 `json:"duration_seconds"`
}

// MaterializeIncremental calls POST /materialize-incremental. It can take as
// long as the materialization: give the client no overall timeout (or a long
// one) and bound it with ctx.
func (c *Client) MaterializeIncremental(ctx context.Context, req MaterializeRequest) ([]MaterializeResult, error) {
	body := struct {
		EndTS        string   `json:"end_ts"`
		FeatureViews []string `json:"feature_views,omitempty"`
		Full         bool     `json:"full"`
	}{req.End.UTC().Format(time.RFC3339Nano), req.Sets, req.Full}
	var out struct {
		Results []MaterializeResult `json:"results"`
	}
	if err := c.do(ctx, "/materialize-incremental", body, &out); err != nil {
		return nil, err
	}
	return out.Results, nil
}
