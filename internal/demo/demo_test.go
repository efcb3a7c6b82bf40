package demo

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

func tinyMarket(t *testing.T, mod func(*Config)) *Market {
	t.Helper()
	cfg, err := Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	if mod != nil {
		mod(&cfg)
	}
	m, err := NewMarket(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// readCSV reads a whole CSV file as a header and rows of named fields.
func readCSV(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	rows := make([]map[string]string, 0, len(recs)-1)
	for _, rec := range recs[1:] {
		row := map[string]string{}
		for i, name := range recs[0] {
			row[name] = rec[i]
		}
		rows = append(rows, row)
	}
	return rows
}

func parseTime(t *testing.T, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(TimeLayout, s)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func num(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPresets(t *testing.T) {
	prev := 0
	for _, name := range PresetNames() {
		cfg, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("preset %s: %v", name, err)
		}
		if cfg.Sessions <= prev {
			t.Errorf("preset %s has %d sessions, not more than the smaller preset's %d", name, cfg.Sessions, prev)
		}
		prev = cfg.Sessions
	}
	if _, err := Preset("huge"); err == nil || !strings.Contains(err.Error(), "tiny, small") {
		t.Errorf("Preset(huge) = %v, want an error listing the sizes", err)
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := Config{Start: DefaultStart.Add(time.Hour), Days: 0, Listings: 5, Users: 0, Sessions: 1, SessionSize: 8, Workers: -1}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate accepted a bad config")
	}
	for _, want := range []string{"start", "days 0", "users 0", "workers -1", "session size 8: want <= listings (5)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error %q does not mention %q", err, want)
		}
	}
}

func TestWithEvents(t *testing.T) {
	cfg, _ := Preset("small")
	big := cfg.WithEvents(10_000_000)
	if got := float64(big.Sessions*big.SessionSize) * eventsPerImpression; math.Abs(got-1e7) > 1e5 {
		t.Errorf("WithEvents(10M): %d sessions make about %.0f events", big.Sessions, got)
	}
	if big.Listings <= cfg.Listings || big.Users <= cfg.Users {
		t.Errorf("WithEvents(10M) kept the market at %d listings, %d users", big.Listings, big.Users)
	}
	small := cfg.WithEvents(1000)
	if small.Listings != cfg.Listings || small.Sessions != 46 { // 1000 / (1.085 * 20)
		t.Errorf("WithEvents(1000) = %d sessions, %d listings; want 46, %d", small.Sessions, small.Listings, cfg.Listings)
	}
}

func TestDaySessionsSplit(t *testing.T) {
	counts := daySessions(DefaultStart, 7, 100)
	total := 0
	for _, c := range counts {
		total += c
	}
	if total != 100 {
		t.Fatalf("daySessions sums to %d, want 100", total)
	}
	// 2026-09-05 and -06 are a Saturday and a Sunday: busier.
	if counts[4] <= counts[0] || counts[5] <= counts[1] {
		t.Errorf("weekend days %v not busier than weekdays", counts)
	}
}

// generate writes the tiny market's data under a temp dir and returns it.
func generate(t *testing.T, m *Market) (string, Summary) {
	t.Helper()
	dir := t.TempDir()
	sum, err := m.WriteData(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return dir, sum
}

func TestTinySize(t *testing.T) {
	m := tinyMarket(t, nil)
	_, sum := generate(t, m)
	if sum.Events() < 200 || sum.Events() > 1000 {
		t.Errorf("tiny preset wrote %d events, want a few hundred", sum.Events())
	}
	if len(sum.Files) != 2+m.Config.Days {
		t.Errorf("files %v, want listings, users and %d events files", sum.Files, m.Config.Days)
	}
}

func TestDeterministicBySeed(t *testing.T) {
	read := func(dir string) map[string][]byte {
		files := map[string][]byte{}
		paths, _ := filepath.Glob(filepath.Join(dir, "data", "*.csv"))
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			files[filepath.Base(p)] = b
		}
		return files
	}
	one, _ := generate(t, tinyMarket(t, func(c *Config) { c.Workers = 1 }))
	two, _ := generate(t, tinyMarket(t, func(c *Config) { c.Workers = 3 }))
	other, _ := generate(t, tinyMarket(t, func(c *Config) { c.Seed = 2 }))
	a, b, c := read(one), read(two), read(other)
	if len(a) != 2+4 {
		t.Fatalf("generated %d files, want 6", len(a))
	}
	for name := range a {
		if !bytes.Equal(a[name], b[name]) {
			t.Errorf("%s differs between 1 and 3 workers", name)
		}
		if bytes.Equal(a[name], c[name]) {
			t.Errorf("%s is the same for seeds 1 and 2", name)
		}
	}
}

// TestDataFiles checks the invariants of the generated files against each other,
// reading them back as a user's pipeline would.
func TestDataFiles(t *testing.T) {
	m := tinyMarket(t, nil)
	dir, sum := generate(t, m)
	start, end := m.Config.Start, m.Config.End()

	type version struct {
		at   time.Time
		rent float64
	}
	listings := map[string][]version{}
	lrows := readCSV(t, filepath.Join(dir, "data", ListingsFile))
	if int64(len(lrows)) != sum.ListingRows || sum.ListingRows <= sum.Listings {
		t.Errorf("listings.csv has %d rows; summary says %d rows for %d listings (want price updates)", len(lrows), sum.ListingRows, sum.Listings)
	}
	for _, r := range lrows {
		rent, area := num(t, r["rent"]), num(t, r["area_m2"])
		if rent < MinRent || rent > MaxRent || area < 15 || !strings.Contains(r["rent"], ".") {
			t.Errorf("listing %s: rent %s, area %s out of range", r["listing_id"], r["rent"], r["area_m2"])
		}
		at := parseTime(t, r["updated_at"])
		v := listings[r["listing_id"]]
		if len(v) > 0 && !at.After(v[len(v)-1].at) {
			t.Errorf("listing %s: versions not in time order", r["listing_id"])
		}
		listings[r["listing_id"]] = append(v, version{at, rent})
	}
	if int64(len(listings)) != sum.Listings {
		t.Errorf("listings.csv holds %d listings, want %d", len(listings), sum.Listings)
	}
	users := map[string]time.Time{}
	for _, r := range readCSV(t, filepath.Join(dir, "data", UsersFile)) {
		users[r["user_id"]] = parseTime(t, r["created_at"])
		if b := num(t, r["budget"]); b < 800 || b > MaxRent {
			t.Errorf("user %s: budget %v", r["user_id"], b)
		}
		if r["preferred_neighborhoods"] == "" {
			t.Errorf("user %s prefers no neighborhood", r["user_id"])
		}
	}

	type key struct{ session, listing string }
	shown := map[key]time.Time{}
	clicked := map[key]time.Time{}
	positions := map[string][]int{}
	var events, clicks, visits int64
	paths, _ := filepath.Glob(filepath.Join(dir, "data", "events*.csv"))
	for _, p := range paths {
		for _, r := range readCSV(t, p) {
			events++
			ts := parseTime(t, r["ts"])
			k := key{r["session_id"], r["listing_id"]}
			switch r["event"] {
			case EventImpression:
				if ts.Before(start) || !ts.Before(end) {
					t.Errorf("impression at %s outside [%s, %s)", ts, start, end)
				}
				created, ok := users[r["user_id"]]
				if !ok || created.After(ts) {
					t.Errorf("session %s: user %s unknown or signed up after the search", k.session, r["user_id"])
				}
				v := listings[k.listing]
				if len(v) == 0 || v[0].at.After(ts) {
					t.Errorf("session %s shows listing %s before it was published", k.session, k.listing)
				}
				shown[k] = ts
				pos, _ := strconv.Atoi(r["position"])
				positions[k.session] = append(positions[k.session], pos)
			case EventClick:
				clicks++
				if at, ok := shown[k]; !ok || ts.Before(at) {
					t.Errorf("click %v without an earlier impression", k)
				}
				clicked[k] = ts
			case EventVisitRequest:
				visits++
				if at, ok := clicked[k]; !ok || ts.Before(at) {
					t.Errorf("visit request %v without an earlier click", k)
				}
			default:
				t.Errorf("unknown event %q", r["event"])
			}
		}
	}
	if events != sum.Events() || clicks != sum.Clicks || visits != sum.Visits || int64(len(positions)) != sum.Sessions {
		t.Errorf("files hold %d events, %d clicks, %d visits, %d sessions; summary %+v", events, clicks, visits, len(positions), sum)
	}
	if clicks == 0 || visits == 0 {
		t.Errorf("tiny data has %d clicks and %d visit requests, want some of each", clicks, visits)
	}
	for s, ps := range positions {
		for i, p := range ps {
			if p != i+1 {
				t.Errorf("session %s positions %v, want 1..n in order", s, ps)
				break
			}
		}
	}
}

func TestStaleEventsRemoved(t *testing.T) {
	m := tinyMarket(t, nil)
	dir := t.TempDir()
	stale := filepath.Join(dir, "data", "events-2020-01-01.csv")
	mine := filepath.Join(dir, "data", "events-notes.csv") // not a name we write: kept
	os.MkdirAll(filepath.Dir(stale), 0o755)
	for _, p := range []string{stale, mine} {
		if err := os.WriteFile(p, []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.WriteData(context.Background(), dir, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale events file still there: %v", err)
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("a file we did not write was removed: %v", err)
	}
}

func TestCancelLeavesNoPartialFiles(t *testing.T) {
	m := tinyMarket(t, nil)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.WriteData(ctx, dir, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("WriteData on a cancelled context = %v, want context.Canceled", err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "data"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "events") || strings.HasPrefix(e.Name(), ".") {
			t.Errorf("cancelled run left %s", e.Name())
		}
	}
}

func TestRentAt(t *testing.T) {
	t0 := DefaultStart
	l := Listing{Prices: []PriceVersion{{t0, 3000}, {t0.Add(48 * time.Hour), 2800}}}
	tests := []struct {
		at      time.Time
		rent    float64
		version int
		ok      bool
	}{
		{t0.Add(-time.Second), 0, 0, false},
		{t0, 3000, 0, true},
		{t0.Add(47 * time.Hour), 3000, 0, true},
		{t0.Add(48 * time.Hour), 2800, 1, true},
		{t0.Add(1000 * time.Hour), 2800, 1, true},
	}
	for _, tt := range tests {
		rent, v, ok := l.RentAt(tt.at)
		if rent != tt.rent || v != tt.version || ok != tt.ok {
			t.Errorf("RentAt(%s) = %v, %d, %v; want %v, %d, %v", tt.at, rent, v, ok, tt.rent, tt.version, tt.ok)
		}
	}
}

func TestProjectIsIssueExampleVerbatim(t *testing.T) {
	want, err := os.ReadFile("testdata/issue2-example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ProjectFile("features/rentals.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("features/rentals.yaml differs from the issue's example")
	}
	if files := ProjectFiles(); !slices.Equal(files, []string{"atrium.yaml", "features/rentals.yaml", "features/users.yaml", "train.py"}) {
		t.Errorf("ProjectFiles() = %v", files)
	}
}

func TestWriteProjectRefusesOverwrite(t *testing.T) {
	dir := t.TempDir()
	if _, err := WriteProject(dir, false); err != nil {
		t.Fatal(err)
	}
	custom := []byte("project: mine\n")
	os.WriteFile(filepath.Join(dir, "atrium.yaml"), custom, 0o644)
	_, err := WriteProject(dir, false)
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "atrium.yaml") || !strings.Contains(err.Error(), "users.yaml") {
		t.Errorf("second WriteProject = %v, want ErrExists naming every file", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "atrium.yaml")); !bytes.Equal(got, custom) {
		t.Error("refused WriteProject changed atrium.yaml")
	}
	if _, err := WriteProject(dir, true); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "atrium.yaml")); bytes.Equal(got, custom) {
		t.Error("WriteProject with overwrite kept the old atrium.yaml")
	}
}

// TestFeatureSetRanges checks that the run plan covers exactly the project's
// feature sets, and that each range covers the session days.
func TestFeatureSetRanges(t *testing.T) {
	var want []string
	for _, f := range ProjectFiles() {
		if !strings.HasPrefix(f, "features/") {
			continue
		}
		data, _ := ProjectFile(f)
		var doc struct {
			FeatureSets []struct {
				Name string `yaml:"name"`
			} `yaml:"feature_sets"`
		}
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, s := range doc.FeatureSets {
			want = append(want, s.Name)
		}
	}
	cfg, _ := Preset("tiny")
	var got []string
	for _, r := range cfg.FeatureSetRanges() {
		got = append(got, r.Set)
		if r.Start.After(cfg.Start.AddDate(0, 0, 1)) || r.End.Before(cfg.End()) {
			t.Errorf("%s: range [%s, %s] does not cover the sessions", r.Set, r.Start, r.End)
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("FeatureSetRanges covers %v, the project defines %v", got, want)
	}
}
