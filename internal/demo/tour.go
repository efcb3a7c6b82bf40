package demo

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// The spines `atrium init` writes next to the sources (under data/), for the
// tour's point-in-time joins: the impressions of the training days and of the
// test days, with their labels.
const (
	TrainSpineFile = "train-spine.csv"
	TestSpineFile  = "test-spine.csv"
)

// TourService is the feature service the tour joins and trains on: the
// listing sets only, so that the tour runs two feature sets.
const TourService = "ranker"

// TourIgnore are the spine's columns that are not model features: ids, the
// search time and the position (the logged ranker's output; a model that
// learns it learns to reproduce the old order).
var TourIgnore = []string{"listing_id", "user_id", SpineTimeColumn, "position"}

// TestDays splits the session days [0, Days) for training and testing: days
// [1, testFrom) train and [testFrom, Days) test, the last quarter of the days
// (at least one). Day 0 never trains: its engagement features have no history.
func (c Config) TestDays() (testFrom int, err error) {
	testFrom = c.Days - max(1, c.Days/4)
	if testFrom <= 1 {
		return 0, fmt.Errorf("%d days of data: want at least 3 to train and test", c.Days)
	}
	return testFrom, nil
}

// WriteSpines writes data/train-spine.csv and data/test-spine.csv under dir
// (see TestDays) and returns what each holds.
func (m *Market) WriteSpines(ctx context.Context, dir string) (train, test FileSummary, err error) {
	testFrom, err := m.Config.TestDays()
	if err != nil {
		return train, test, err
	}
	sums, err := m.writeTable(ctx, spineTable, []tableFile{
		{filepath.Join(dir, "data", TrainSpineFile), 1, testFrom},
		{filepath.Join(dir, "data", TestSpineFile), testFrom, m.Config.Days},
	}, nil)
	if err != nil {
		return train, test, err
	}
	return sums[0], sums[1], nil
}

// TourAddr is the address `atrium serve` listens on in a project made by
// `atrium init` (the server's default).
const TourAddr = "127.0.0.1:8080"

// Tour returns the commands, one a line as typed in the project directory,
// that take a project `atrium init` wrote with c through every step: apply,
// the runs of the feature sets TourService needs, materialize, the
// point-in-time joins of the spines, fit, predict, serve (in the background)
// and train.py, which records the fitted model with the official mlflow
// client. The dates are c's: a tour written for one Config is true for the
// data of that Config, whatever the day it is run.
func (c Config) Tour() []string {
	lines := []string{"atrium apply"}
	for _, r := range c.FeatureSetRanges() {
		if r.Set == "listing_profile" || r.Set == "listing_engagement" {
			lines = append(lines, fmt.Sprintf("atrium run %s --start %s --end %s", r.Set, r.Start.Format(time.DateOnly), r.End.Format(time.DateOnly)))
		}
	}
	spine := func(f string) string { return filepath.ToSlash(filepath.Join("data", f)) }
	return append(lines,
		"atrium runs",
		"atrium materialize --end "+c.End().Format(time.RFC3339),
		fmt.Sprintf("atrium historical --spine %s --service %s --out train.parquet", spine(TrainSpineFile), TourService),
		fmt.Sprintf("atrium historical --spine %s --service %s --out test.parquet", spine(TestSpineFile), TourService),
		"atrium fit --data train.parquet --label label --group session_id --task lambdarank --ignore "+strings.Join(TourIgnore, ",")+" --out ranker.txt",
		"atrium predict --model ranker.txt --data test.parquet --passthrough session_id,listing_id --out scores.csv",
		"atrium serve &",
		"MLFLOW_TRACKING_URI=http://"+TourAddr+" python train.py",
	)
}

// Describe says what a generation wrote, in one line.
func (s *Summary) Describe() string {
	return fmt.Sprintf("%s listings (%s price versions), %s users, %s sessions: %s impressions, %s clicks, %s visit requests = %s events in %d files",
		Count(s.Listings), Count(s.ListingRows), Count(s.Users), Count(s.Sessions),
		Count(s.Impressions), Count(s.Clicks), Count(s.Visits), Count(s.Events()), len(s.Files))
}

// Count formats n with thousands separators.
func Count(n int64) string {
	if n < 0 {
		return "-" + Count(-n)
	}
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
