package demo

import (
	"strings"
	"testing"
)

func TestTestDays(t *testing.T) {
	for _, tt := range []struct {
		days, testFrom int
		err            bool
	}{
		{days: 4, testFrom: 3}, {days: 14, testFrom: 11}, {days: 28, testFrom: 21}, {days: 3, testFrom: 2},
		{days: 2, err: true}, {days: 1, err: true},
	} {
		got, err := Config{Days: tt.days}.TestDays()
		if (err != nil) != tt.err || got != tt.testFrom {
			t.Errorf("%d days: TestDays() = %d, %v; want %d, error %v", tt.days, got, err, tt.testFrom, tt.err)
		}
	}
}

func TestCount(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 52072: "52,072", 1234567: "1,234,567", -1500: "-1,500"} {
		if got := Count(n); got != want {
			t.Errorf("Count(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestTourDates checks the tour's dates against the data of the tiny preset:
// sessions 2026-09-01 to 2026-09-04, so engagement from the day after the
// first session to the day after the last, and materialized up to that end.
func TestTourDates(t *testing.T) {
	cfg, err := Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	tour := strings.Join(cfg.Tour(), "\n")
	for _, want := range []string{
		"atrium run listing_profile --start 2026-06-03 --end 2026-09-05\n",
		"atrium run listing_engagement --start 2026-09-02 --end 2026-09-05\n",
		"atrium materialize --end 2026-09-05T00:00:00Z\n",
		"--spine data/train-spine.csv --service ranker",
		"--ignore listing_id,user_id,ts,position",
	} {
		if !strings.Contains(tour, want) {
			t.Errorf("the tour lacks %q:\n%s", want, tour)
		}
	}
	if strings.Contains(tour, "user_profile") {
		t.Errorf("the tour runs a set the ranker service does not read:\n%s", tour)
	}
}
