package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// unknownListing is a listing id the generator never uses (ids run from 1).
const unknownListing = 999_999_999

// online starts `atrium serve` in this process on a free loopback port and
// asks it what a search-ranking service asks, in Feast's wire format: the
// personalized_ranker vector of one user and the listings of their last search;
// then the ranker vector of a known and an unknown listing.
func (d *demoRun) online() error {
	s, err := d.market.LastSession(d.e.ctx)
	if err != nil {
		return err
	}
	url, stop, err := serveInProcess(d.e.ctx, d.dir)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintf(d.out, "      $ atrium serve --addr 127.0.0.1:0      (in-process, listening on %s)\n", url)
	users, listings := make([]int64, len(s.Impressions)), make([]int64, len(s.Impressions))
	for i, im := range s.Impressions {
		users[i], listings[i] = s.User.ID, im.Listing.ID
	}
	requests := []struct {
		what    string
		req     onlineRequest
		numKeys int
	}{
		{fmt.Sprintf("user %d and the %d listings of their last search", s.User.ID, len(listings)),
			onlineRequest{FeatureService: demoService, Entities: map[string][]int64{"user_id": users, "listing_id": listings}}, 2},
		{"a listing and one that does not exist",
			onlineRequest{FeatureService: "ranker", Entities: map[string][]int64{"listing_id": {listings[0], unknownListing}}}, 1},
	}
	for _, r := range requests {
		body, err := json.Marshal(r.req)
		if err != nil {
			return err
		}
		fmt.Fprintf(d.out, "      %s:\n      POST %s/get-online-features %s\n", r.what, url, body)
		resp, err := getOnlineFeatures(d.e.ctx, url, r.req)
		if err != nil {
			return err
		}
		d.printVectors(resp, r.numKeys)
	}
	return stop()
}

// onlineRequest is the body of Feast's POST /get-online-features.
type onlineRequest struct {
	FeatureService string             `json:"feature_service,omitempty"`
	Features       []string           `json:"features,omitempty"`
	Entities       map[string][]int64 `json:"entities"`
}

// onlineResponse is Feast's column-major answer: Results[i] is the column
// Metadata.FeatureNames[i], join keys first.
type onlineResponse struct {
	Metadata struct {
		FeatureNames []string `json:"feature_names"`
	} `json:"metadata"`
	Results []struct {
		Values          []any       `json:"values"` // json.Number, string, bool or nil
		Statuses        []string    `json:"statuses"`
		EventTimestamps []time.Time `json:"event_timestamps"`
	} `json:"results"`
}

// Feast's field statuses.
const (
	statusPresent       = "PRESENT"
	statusNullValue     = "NULL_VALUE"
	statusNotFound      = "NOT_FOUND"
	statusOutsideMaxAge = "OUTSIDE_MAX_AGE"
)

// getOnlineFeatures posts req to the server at url.
func getOnlineFeatures(ctx context.Context, url string, req onlineRequest) (*onlineResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/get-online-features", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hresp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("get-online-features: %w", err)
	}
	defer hresp.Body.Close()
	raw, err := io.ReadAll(hresp.Body)
	if err != nil {
		return nil, fmt.Errorf("get-online-features: %w", err)
	}
	if hresp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get-online-features: %s: %s", hresp.Status, bytes.TrimSpace(raw))
	}
	var resp onlineResponse
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&resp); err != nil {
		return nil, fmt.Errorf("get-online-features: decode the response: %w", err)
	}
	if len(resp.Results) != len(resp.Metadata.FeatureNames) {
		return nil, fmt.Errorf("get-online-features: %d result columns for %d feature names", len(resp.Results), len(resp.Metadata.FeatureNames))
	}
	for i, r := range resp.Results {
		if len(r.Values) != len(resp.Results[0].Values) || len(r.Statuses) != len(r.Values) {
			return nil, fmt.Errorf("get-online-features: column %s has %d values and %d statuses, want %d", resp.Metadata.FeatureNames[i], len(r.Values), len(r.Statuses), len(resp.Results[0].Values))
		}
	}
	return &resp, nil
}

// printVectors prints a column-major response as rows (a value that is not
// PRESENT shows its status), then counts the statuses of the feature columns,
// which follow the numKeys join-key columns.
func (d *demoRun) printVectors(resp *onlineResponse, numKeys int) {
	rows := 0
	if len(resp.Results) > 0 {
		rows = len(resp.Results[0].Values)
	}
	cells := make([][]string, rows+1)
	statuses := map[string]int{}
	for c, v := range resp.Results {
		cells[0] = append(cells[0], resp.Metadata.FeatureNames[c])
		for r, val := range v.Values {
			text := "null"
			switch x := val.(type) {
			case nil:
			case json.Number:
				text = x.String()
				if f, err := strconv.ParseFloat(text, 64); err == nil && strings.ContainsAny(text, ".eE") {
					text = strconv.FormatFloat(f, 'g', 4, 64)
				}
			default:
				text = fmt.Sprint(x)
			}
			if v.Statuses[r] != statusPresent {
				text = v.Statuses[r]
			}
			cells[r+1] = append(cells[r+1], text)
		}
		if c >= numKeys {
			for _, st := range v.Statuses {
				statuses[st]++
			}
		}
	}
	widths := make([]int, len(cells[0]))
	for _, row := range cells {
		for i, c := range row {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	shown := cells
	if len(cells) > 7 {
		shown = cells[:6]
	}
	for _, row := range shown {
		var b strings.Builder
		for i, c := range row {
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", widths[i]-len([]rune(c))+2))
		}
		fmt.Fprintf(d.out, "        %s\n", strings.TrimRight(b.String(), " "))
	}
	if len(shown) < len(cells) {
		fmt.Fprintf(d.out, "        ... %d more rows\n", len(cells)-len(shown))
	}
	var parts []string
	for _, st := range []string{statusPresent, statusNullValue, statusNotFound, statusOutsideMaxAge} {
		if statuses[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", statuses[st], st))
		}
	}
	fmt.Fprintf(d.out, "        feature statuses: %s\n", strings.Join(parts, ", "))
}

// serveInProcess runs `atrium serve` for the project in dir on a free loopback
// port, in a goroutine of this process. It returns the server's base URL and a
// stop function that shuts the server down and reports how it ended.
func serveInProcess(ctx context.Context, dir string) (url string, stop func() error, err error) {
	ctx, cancel := context.WithCancel(ctx)
	stderr := &lineWatcher{prefix: "atrium serving on ", found: make(chan string, 1)}
	done := make(chan error, 1)
	go func() {
		code := run(ctx, []string{"--repo", dir, "serve", "--addr", "127.0.0.1:0"}, io.Discard, stderr)
		if code != exitOK {
			done <- fmt.Errorf("atrium serve: exit code %d: %s", code, strings.TrimSpace(stderr.text()))
			return
		}
		done <- nil
	}()
	var once sync.Once
	var stopErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			stopErr = <-done
		})
		return stopErr
	}
	select {
	case url := <-stderr.found:
		return url, stop, nil
	case err := <-done:
		cancel()
		if err == nil {
			err = errors.New("atrium serve ended before listening")
		}
		return "", nil, err
	case <-time.After(30 * time.Second):
		stop()
		return "", nil, errors.New("atrium serve did not listen within 30s")
	}
}

// lineWatcher is an io.Writer that keeps what is written and sends the rest of
// the first line starting with prefix on found.
type lineWatcher struct {
	prefix string
	found  chan string

	mu   sync.Mutex
	buf  bytes.Buffer
	sent bool
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.sent {
		for _, line := range strings.Split(w.buf.String(), "\n") {
			if rest, ok := strings.CutPrefix(line, w.prefix); ok && strings.HasSuffix(w.buf.String(), "\n") {
				w.found <- strings.TrimSpace(rest)
				w.sent = true
				break
			}
		}
	}
	return len(p), nil
}

func (w *lineWatcher) text() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
