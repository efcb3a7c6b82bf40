package steps

import (
	"bytes"
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
