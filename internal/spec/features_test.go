package spec

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestIssueExampleAccepted(t *testing.T) {
	f, err := LoadFeatures("testdata")
	if err != nil {
		t.Fatalf("the issue's example must be accepted verbatim: %v", err)
	}
	if len(f.Entities) != 2 || len(f.Sources) != 2 || len(f.FeatureSets) != 2 || len(f.Services) != 1 {
		t.Fatalf("got %d entities, %d sources, %d sets, %d services", len(f.Entities), len(f.Sources), len(f.FeatureSets), len(f.Services))
	}
	eng := f.Set("listing_engagement")
	if eng.Slide != Duration(24*time.Hour) || eng.TTL != Duration(48*time.Hour) || eng.LargestWindow() != Duration(7*24*time.Hour) {
		t.Errorf("listing_engagement slide=%s ttl=%s largest=%s", eng.Slide, eng.TTL, eng.LargestWindow())
	}
	var names []string
	for _, c := range eng.Columns() {
		names = append(names, c.Name+":"+string(c.Type))
	}
	want := []string{"clicks_sum_1d:int64", "clicks_sum_7d:int64", "impressions_sum_1d:int64", "impressions_sum_7d:int64",
		"viewers_count_distinct_1d:int64", "viewers_count_distinct_7d:int64", "ctr_7d:float64"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("columns = %v, want %v", names, want)
	}
	rent := f.Set("listing_profile").Features[0]
	if rent.Line != 13 || rent.File != filepath.Join("features", "issue_example.yaml") || len(rent.Checks) != 2 {
		t.Errorf("rent at %s:%d with %d checks", rent.File, rent.Line, len(rent.Checks))
	}
	if c := rent.Checks[1]; c.Kind != Between || *c.Min != 100 || *c.Max != 100000 || c.EffectiveLevel() != LevelError || c.EffectiveMostly() != 1 {
		t.Errorf("between check = %+v", c)
	}
}

func TestResolve(t *testing.T) {
	f, err := LoadFeatures("testdata")
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.ResolveService("ranker")
	if err != nil {
		t.Fatal(err)
	}
	refs := refsOf(got)
	want := []string{"listing_profile:rent", "listing_profile:price_per_m2", "listing_profile:neighborhood",
		"listing_engagement:ctr_7d", "listing_engagement:clicks_sum_1d"}
	if !reflect.DeepEqual(refs, want) {
		t.Errorf("ranker = %v, want %v", refs, want)
	}
	if r := got[3]; r.Set != "listing_engagement" || r.Name != "ctr_7d" || r.Type != Float64 || r.TTL != 48*time.Hour ||
		r.Entity != "listing" || !reflect.DeepEqual(r.JoinKeys, []string{"listing_id"}) {
		t.Errorf("ctr_7d resolved to %+v", r)
	}

	tests := []struct {
		refs    []string
		want    []string
		wantErr string
	}{
		{refs: []string{"listing_engagement:clicks"}, want: []string{"listing_engagement:clicks_sum_1d", "listing_engagement:clicks_sum_7d"}},
		{refs: []string{"ranker", "listing_profile:rent"}, want: want},
		{refs: []string{"listing_profile:rent", "listing_profile:rent"}, want: []string{"listing_profile:rent"}},
		{refs: []string{"nope", "listing_profile:nope"}, wantErr: `unknown feature set or service "nope", expected one of: listing_profile, listing_engagement, ranker; reference "listing_profile:nope": unknown feature "nope" in set "listing_profile", expected one of: rent, price_per_m2, neighborhood`},
		{refs: nil, wantErr: "no feature references"},
	}
	for _, tt := range tests {
		got, err := f.Resolve(tt.refs...)
		if tt.wantErr != "" {
			if !errors.Is(err, ErrUnknownFeature) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Resolve(%v) error = %v, want ErrUnknownFeature containing %q", tt.refs, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Resolve(%v): %v", tt.refs, err)
			continue
		}
		var refs []string
		for _, r := range got {
			refs = append(refs, r.Ref)
		}
		if !reflect.DeepEqual(refs, tt.want) {
			t.Errorf("Resolve(%v) = %v, want %v", tt.refs, refs, tt.want)
		}
	}
	groups := GroupBySet(got)
	if len(groups) != 2 || groups[0].Set != "listing_profile" || len(groups[1].Features) != 2 {
		t.Errorf("GroupBySet = %+v", groups)
	}
}

// TestEveryProblemReported checks that one file with many mistakes reports all of
// them, each with its line. The golden file lists the expected output
// (go test -run TestEveryProblemReported -update rewrites it).
func TestEveryProblemReported(t *testing.T) {
	path := filepath.Join("testdata", "invalid", "everything_wrong.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ParseFeatures("everything_wrong.yaml", data)
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error = %v, want Problems", err)
	}
	checkGolden(t, strings.TrimSuffix(path, ".yaml")+".golden", err.Error()+"\n")
	for _, p := range ps {
		if p.Line == 0 {
			t.Errorf("problem without a line: %s", p)
		}
	}
}

func TestMalformedYAML(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{"entities: [\n", "f.yaml:"},
		{"entities:\n  - name: x\n    join_keys: [a]\n  - {name: y, join_keys: [b]\n", "f.yaml:"},
		{"- just\n- a list\n", "f.yaml:1: feature file: got a list, expected a mapping"},
		{"entities: 3\n", "f.yaml:1: entities: got the number 3, expected a list"},
		{"entities:\n  - name: x\n    join_keys: &k [a]\n  - name: y\n    join_keys: *k\n", "f.yaml:5: entity: join_keys: YAML aliases are not supported"},
		{"sources:\n  - {name: s, format: csv, path: a, timestamp: ts, delim: ';'}\n", `f.yaml:2: source: unknown field "delim", expected one of description, format, name, path, ready, timestamp`},
		{"entities:\n  - {name: e, join_keys: [atrium_s]}\n", `f.yaml:2: entity e join key "atrium_s": names starting with "atrium_" are reserved`},
	}
	for _, tt := range tests {
		_, err := ParseFeatures("f.yaml", []byte(tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseFeatures(%q) error = %v, want it to contain %q", tt.yaml, err, tt.want)
		}
	}
	if f, err := ParseFeatures("empty.yaml", nil); err != nil || len(f.FeatureSets) != 0 {
		t.Errorf("empty file: %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		str  string
		bad  bool
	}{
		{in: "90d", want: 90 * 24 * time.Hour, str: "90d"},
		{in: "1w", want: 7 * 24 * time.Hour, str: "7d"},
		{in: "36h", want: 36 * time.Hour, str: "36h"},
		{in: "48h", want: 48 * time.Hour, str: "2d"},
		{in: "30m", want: 30 * time.Minute, str: "30m"},
		{in: "45s", want: 45 * time.Second, str: "45s"},
		{in: "0", want: 0, str: "0"},
		{in: "2 days", bad: true}, {in: "d", bad: true}, {in: "-1d", bad: true}, {in: "1.5d", bad: true},
		{in: "", bad: true}, {in: "99999999999999999d", bad: true}, {in: "+1d", bad: true},
	}
	for _, tt := range tests {
		d, err := ParseDuration(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("ParseDuration(%q) = %s, want an error", tt.in, d)
			}
			continue
		}
		if err != nil || d.D() != tt.want || d.String() != tt.str {
			t.Errorf("ParseDuration(%q) = %v (%s), %v; want %v (%s)", tt.in, d.D(), d, err, tt.want, tt.str)
		}
	}
}

func TestChecksDecode(t *testing.T) {
	yaml := `entities: [{name: e, join_keys: [id]}]
sources: [{name: s, format: parquet, path: x.parquet, timestamp: ts}]
feature_sets:
  - name: fs
    entity: e
    source: s
    checks: [unique, {row_count: {min: 1, max: 1000}}, {freshness: 2d, level: warn}]
    features:
      - name: a
        type: string
        expr: a
        checks:
          - {in_set: [x, 1, true, 2.5], mostly: 0.9}
          - {not_null: true, level: warn}
          - {between: [null, 5]}
`
	_, err := ParseFeatures("f.yaml", []byte(yaml))
	if err == nil || !strings.Contains(err.Error(), "f.yaml:15: feature \"a\": type mismatch: between needs numbers, column a is string") {
		t.Fatalf("error = %v, want the between type mismatch", err)
	}
	f, err := ParseFeatures("f.yaml", []byte(strings.Replace(yaml, "          - {between: [null, 5]}\n", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	fs := f.Set("fs")
	if got := fs.Checks[1].String(); got != "row_count [1, 1000]" {
		t.Errorf("row_count = %q", got)
	}
	if c := fs.Checks[2]; c.Kind != Freshness || c.Within != Duration(48*time.Hour) || c.Level != LevelWarn {
		t.Errorf("freshness = %+v", c)
	}
	in := fs.Features[0].Checks[0]
	if !reflect.DeepEqual(in.Values, []any{"x", int64(1), true, 2.5}) || in.Mostly != 0.9 {
		t.Errorf("in_set = %+v", in)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	f, err := LoadFeatures("testdata")
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeFeaturesJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(back)
	if string(again) != string(data) {
		t.Errorf("round trip differs:\n%s\n%s", data, again)
	}
	if !reflect.DeepEqual(back.Set("listing_engagement").Columns(), f.Set("listing_engagement").Columns()) {
		t.Error("columns differ after the round trip")
	}
	if _, err := DecodeFeaturesJSON([]byte(`{"feature_sets":[{"name":"x"}]}`)); err == nil {
		t.Error("invalid stored definitions decoded without an error")
	}
}

// TestLoadFeaturesGlobCharacters loads a repository whose path holds glob
// characters: its own features/*.yaml are read, not those of a sibling the path
// matches as a pattern.
func TestLoadFeaturesGlobCharacters(t *testing.T) {
	parent := t.TempDir()
	for dir, entity := range map[string]string{"p[3]*?": "mine", "p3xy": "decoy"} {
		if err := os.MkdirAll(filepath.Join(parent, dir, FeaturesDir), 0o755); err != nil {
			t.Fatal(err)
		}
		yaml := "entities:\n  - {name: " + entity + ", join_keys: [id]}\n"
		if err := os.WriteFile(filepath.Join(parent, dir, FeaturesDir, "a.yaml"), []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := LoadFeatures(filepath.Join(parent, "p[3]*?"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range f.Entities {
		got = append(got, e.File+":"+e.Name)
	}
	if want := filepath.Join(FeaturesDir, "a.yaml") + ":mine"; strings.Join(got, ",") != want {
		t.Errorf("entities = %v, want %s", got, want)
	}
}

// refsOf lists the references of resolved features.
func refsOf(rs []ResolvedFeature) []string {
	var refs []string
	for _, r := range rs {
		refs = append(refs, r.Ref)
	}
	return refs
}
