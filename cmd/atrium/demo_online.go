//go:build atrium_online_client

// Built once the online feature API and its Go client (client/) are merged into
// main; until then `go build -tags atrium_online_client` does not compile here.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/atrium-ml/atrium/client"
)

// unknownListing is a listing id the generator never uses (ids run from 1).
const unknownListing = 999_999_999

// online starts `atrium serve` in this process on a free loopback port and
// asks it, through the Go client, for what a search-ranking service asks: the
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
	c, err := client.New(url)
	if err != nil {
		return err
	}
	users, listings := make([]int64, len(s.Impressions)), make([]int64, len(s.Impressions))
	for i, im := range s.Impressions {
		users[i], listings[i] = s.User.ID, im.Listing.ID
	}
	requests := []struct {
		what    string
		service string
		keys    *client.Columns
		numKeys int
	}{
		{fmt.Sprintf("user %d and the %d listings of their last search", s.User.ID, len(listings)), demoService,
			new(client.Columns).Int64("user_id", users...).Int64("listing_id", listings...), 2},
		{"a listing and one that does not exist", "ranker", new(client.Columns).Int64("listing_id", listings[0], unknownListing), 1},
	}
	for _, r := range requests {
		keys, err := json.Marshal(r.keys)
		if err != nil {
			return err
		}
		fmt.Fprintf(d.out, "      %s:\n      POST %s/get-online-features {\"feature_service\": %q, \"entities\": %s}\n", r.what, url, r.service, keys)
		resp, err := c.GetOnlineFeatures(d.e.ctx, client.OnlineFeaturesRequest{FeatureService: r.service, Entities: r.keys})
		if err != nil {
			return err
		}
		d.printVectors(resp, r.numKeys)
	}
	return stop()
}

// printVectors prints a column-major response as rows (a value that is not
// PRESENT shows its status), then counts the statuses of the feature columns,
// which follow the numKeys join-key columns.
func (d *demoRun) printVectors(resp *client.OnlineFeaturesResponse, numKeys int) {
	cells := make([][]string, resp.Rows()+1)
	statuses := map[client.Status]int{}
	for c, v := range resp.Vectors {
		cells[0] = append(cells[0], v.Name)
		for r, val := range v.Values {
			text := "null"
			switch x := val.(type) {
			case nil:
			case float64:
				text = fmt.Sprintf("%.4g", x)
			default:
				text = fmt.Sprint(x)
			}
			if r < len(v.Statuses) && v.Statuses[r] != client.StatusPresent {
				text = string(v.Statuses[r])
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
	for _, st := range []client.Status{client.StatusPresent, client.StatusNullValue, client.StatusNotFound, client.StatusOutsideMaxAge} {
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

func init() { demoOnlineStep = (*demoRun).online }
