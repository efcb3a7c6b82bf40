package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/atrium-ml/atrium/client"
	"github.com/atrium-ml/atrium/internal/data/retrieval"
	"github.com/atrium-ml/atrium/internal/demo"
	"github.com/atrium-ml/atrium/internal/platform/server"
)

// UnknownListing is a listing id the generator never uses (ids run from 1).
const UnknownListing = 999_999_999

// Server is the online feature API of a project, served in this process on a
// loopback port.
type Server struct {
	// URL is the server's base URL, http://127.0.0.1:PORT.
	URL string
	// Client is a client of the server.
	Client *client.Client

	stop func() error
}

// Close shuts the server down and reports how it ended. It is safe to call
// more than once; the stores stay open.
func (s *Server) Close() error { return s.stop() }

// ServeFeatures serves the online feature API of the applied catalog, on the
// stores' online store, at a free loopback port, until Close or ctx ends. The
// listener is open when it returns, so the server is reachable at once.
func ServeFeatures(ctx context.Context, st Stores, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, err := st.Meta()
	if err != nil {
		return nil, err
	}
	_, defs, err := loadDefinitions(ctx, st)
	if err != nil {
		return nil, err
	}
	store, err := st.Online()
	if err != nil {
		return nil, err
	}
	o, err := retrieval.NewOnline(store, defs, retrieval.Options{})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("serve features: %w", err)
	}
	url := "http://" + ln.Addr().String()
	c, err := client.New(url)
	if err != nil {
		ln.Close()
		return nil, err
	}
	srv := server.New(server.Options{Logger: log}, retrieval.NewAPI(o, retrieval.APIOptions{Logger: log, Meta: db}))
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	var stopped bool
	var stopErr error
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
			stopErr = <-done
		}
		return stopErr
	}
	return &Server{URL: url, Client: c, stop: stop}, nil
}

// online serves the feature API in this process and asks it what a
// search-ranking service asks, in Feast's wire format: the
// personalized_ranker vector of one user and the listings of their last
// search; then the ranker vector of a known and an unknown listing.
func (r *runner) online(ctx context.Context) error {
	s, err := r.market.LastSession(ctx)
	if err != nil {
		return err
	}
	srv, err := ServeFeatures(ctx, r.Stores, r.Logger)
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintf(r.Out, "      $ atrium serve --addr 127.0.0.1:0      (in-process, listening on %s)\n", srv.URL)
	users, listings := make([]int64, len(s.Impressions)), make([]int64, len(s.Impressions))
	for i, im := range s.Impressions {
		users[i], listings[i] = s.User.ID, im.Listing.ID
	}
	requests := []struct {
		what    string
		req     client.OnlineFeaturesRequest
		numKeys int
	}{
		{fmt.Sprintf("user %d and the %d listings of their last search (%s: on-demand, computed from the values read)",
			s.User.ID, len(listings), strings.Join(demo.CrossFeatures, ", ")),
			client.OnlineFeaturesRequest{FeatureService: Service, Entities: new(client.Columns).Int64("listing_id", listings...).Int64("user_id", users...)}, 2},
		{"a listing and one that does not exist",
			client.OnlineFeaturesRequest{FeatureService: "ranker", Entities: new(client.Columns).Int64("listing_id", listings[0], UnknownListing)}, 1},
	}
	for _, q := range requests {
		body, err := json.Marshal(struct {
			FeatureService string          `json:"feature_service"`
			Entities       *client.Columns `json:"entities"`
		}{q.req.FeatureService, q.req.Entities})
		if err != nil {
			return err
		}
		fmt.Fprintf(r.Out, "      %s:\n      POST %s/get-online-features %s\n", q.what, srv.URL, body)
		resp, err := srv.Client.GetOnlineFeatures(ctx, q.req)
		if err != nil {
			return err
		}
		if err := checkColumns(resp); err != nil {
			return err
		}
		r.printVectors(resp, q.numKeys)
	}
	return srv.Close()
}

// checkColumns refuses a response whose columns disagree in length.
func checkColumns(resp *client.OnlineFeaturesResponse) error {
	if len(resp.Vectors) == 0 {
		return errors.New("get-online-features: no columns in the response")
	}
	for _, v := range resp.Vectors {
		if len(v.Values) != resp.Rows() || len(v.Statuses) != len(v.Values) {
			return fmt.Errorf("get-online-features: column %s has %d values and %d statuses, want %d", v.Name, len(v.Values), len(v.Statuses), resp.Rows())
		}
	}
	return nil
}

// printVectors prints a column-major response as rows (a value that is not
// PRESENT shows its status), then counts the statuses of the feature columns,
// which follow the numKeys join-key columns.
func (r *runner) printVectors(resp *client.OnlineFeaturesResponse, numKeys int) {
	cells := make([][]string, resp.Rows()+1)
	statuses := map[client.Status]int{}
	for c, v := range resp.Vectors {
		cells[0] = append(cells[0], v.Name)
		for row, val := range v.Values {
			text := "null"
			switch x := val.(type) {
			case nil:
			case float64:
				text = strconv.FormatFloat(x, 'g', 4, 64)
			default:
				text = fmt.Sprint(x)
			}
			if v.Statuses[row] != client.StatusPresent {
				text = string(v.Statuses[row])
			}
			cells[row+1] = append(cells[row+1], text)
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
		fmt.Fprintf(r.Out, "        %s\n", strings.TrimRight(b.String(), " "))
	}
	if len(shown) < len(cells) {
		fmt.Fprintf(r.Out, "        ... %d more rows\n", len(cells)-len(shown))
	}
	var parts []string
	for _, st := range []client.Status{client.StatusPresent, client.StatusNullValue, client.StatusNotFound, client.StatusOutsideMaxAge} {
		if statuses[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", statuses[st], st))
		}
	}
	fmt.Fprintf(r.Out, "        feature statuses: %s\n", strings.Join(parts, ", "))
}
