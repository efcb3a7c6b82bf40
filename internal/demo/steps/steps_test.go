package steps

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/demo"
)

func TestIndentWriter(t *testing.T) {
	for _, tt := range []struct {
		name   string
		writes []string
		want   string
	}{
		{"lines", []string{"a\nb\n"}, "        a\n        b\n"},
		{"split writes", []string{"ab", "c\nd", "e\n"}, "        abc\n        de\n"},
		{"blank lines dropped", []string{"a\n\n  \nb\n"}, "        a\n        b\n"},
		{"unfinished last line", []string{"a\nb"}, "        a\n        b\n"},
	} {
		var out bytes.Buffer
		w := &indentWriter{out: &out}
		for _, s := range tt.writes {
			if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
				t.Fatalf("%s: Write = %d, %v", tt.name, n, err)
			}
		}
		w.Flush()
		if out.String() != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, out.String(), tt.want)
		}
	}
}

func TestRequestArgs(t *testing.T) {
	fit := FitRequest{Data: "t.parquet", Label: "label", Group: "session_id", Task: "lambdarank", Algorithm: "gbdt",
		Ignore: []string{"a", "b"}, ValidFraction: 0.2, Seed: 1, Out: "m.txt"}
	want := "fit --data t.parquet --label label --group session_id --task lambdarank --algorithm gbdt --ignore a,b --valid-fraction 0.2 --seed 1 --out m.txt"
	if got := strings.Join(fit.Args(), " "); got != want {
		t.Errorf("FitRequest.Args() = %s\nwant %s", got, want)
	}
	fit.Group, fit.Ignore, fit.ValidFraction = "", nil, 0
	if got := fit.Args(); slices.Contains(got, "--group") || slices.Contains(got, "--ignore") || slices.Contains(got, "--valid-fraction") {
		t.Errorf("empty flags are shown: %v", got)
	}
	p := PredictRequest{Model: "m.txt", Data: "x.parquet", Passthrough: []string{"id"}, Out: "s.csv"}
	if got := strings.Join(p.Args(), " "); got != "predict --model m.txt --data x.parquet --passthrough id --out s.csv" {
		t.Errorf("PredictRequest.Args() = %s", got)
	}
}

func TestOptionsValidate(t *testing.T) {
	cfg, err := demo.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	// validate only checks that Stores is set; no step runs here.
	type unopened struct{ Stores }
	ok := Options{Dir: t.TempDir(), Config: cfg, Out: &bytes.Buffer{}, Stores: unopened{}}
	if err := ok.validate(); err != nil {
		t.Errorf("valid options: %v", err)
	}
	// Every problem at once, each naming its field.
	err = (&Options{}).validate()
	for _, want := range []string{"Options.Dir", "Options.Out", "Options.Stores", "Options.Config"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("empty options: %v, want it to name %s", err, want)
		}
	}
}
