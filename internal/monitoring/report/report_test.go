package report_test

import (
	"bytes"
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/monitoring/report"
)

func sample() *report.Report {
	th := 0.1
	return &report.Report{
		Title:     "Drift <report>",
		Subtitle:  "reference.parquet vs current.parquet",
		Generated: time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC),
		Summary:   []report.Fact{{Label: "drifted columns", Value: "1 of 2", Status: report.Alert}},
		Sections: []report.Section{
			{Title: "Drift scores", Status: report.Alert, Charts: []report.Chart{{
				Kind: report.Bars, Labels: []string{"price", "city"}, Threshold: &th, Marks: []int{0},
				Series: []report.Series{{Values: []float64{0.31, 0.02}}},
			}}, Tables: []report.Table{{
				Columns: []string{"column", "method", "score", "drift"}, Rows: [][]string{{"price", "wasserstein", "0.31", "yes"}, {"city", "jensenshannon", "0.02", "no"}},
				RowStatus: []report.Status{report.Alert, ""},
			}}},
			{Title: "price", Charts: []report.Chart{{
				Title: "distribution", Kind: report.Histogram, Edges: []float64{0, 1, 2, 3},
				Series: []report.Series{{Name: "reference", Values: []float64{0.2, 0.5, 0.3}}, {Name: "current", Values: []float64{0.1, 0.2, 0.7}}},
			}, {
				Title: "mean per day", Kind: report.Line, Labels: []string{"2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04"}, Marks: []int{3},
				Series: []report.Series{{Name: "mean", Values: []float64{1, math.NaN(), 1.1, 2.5}}},
			}}},
			{Title: "empty", Charts: []report.Chart{{Kind: report.Histogram}, {Kind: report.Line, Labels: []string{"a"}, Series: []report.Series{{Values: []float64{math.NaN()}}}}}},
		},
	}
}

func TestRenderStructure(t *testing.T) {
	var buf bytes.Buffer
	if err := report.Render(&buf, sample()); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	for _, want := range []string{
		"<title>Drift &lt;report&gt;</title>", // escaped
		`class="chart histogram"`, `class="chart bars"`, `class="chart line"`,
		`<tr class="alert"><td>price</td>`, "threshold 0.1", "generated 2026-12-05T12:00:00Z",
		"<p>no data</p>",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// Self-contained: nothing is loaded from elsewhere.
	if m := regexp.MustCompile(`(?i)(src=|href=|@import|url\()`).FindString(html); m != "" {
		t.Errorf("report refers to an outside resource: %q", m)
	}
	// 3 + 3 reference/current bars, 2 score bars; the NaN day breaks the line in two.
	if n := strings.Count(html, `class="bar"`); n != 8 {
		t.Errorf("%d bars, want 8", n)
	}
	if n := strings.Count(html, `class="series"`); n != 2 {
		t.Errorf("%d line segments, want 2 (a gap at the missing day)", n)
	}
}

func TestBinEdgesShares(t *testing.T) {
	e := report.Edges(4, []float64{0, 1}, []float64{4, math.NaN()})
	if !slices.Equal(e, []float64{0, 1, 2, 3, 4}) {
		t.Fatalf("edges %v", e)
	}
	c := report.Bin([]float64{0, 0.5, 1, 3.9, 4, 5, math.Inf(1)}, e)
	if !slices.Equal(c, []int64{2, 1, 0, 2}) {
		t.Errorf("counts %v, want [2 1 0 2]", c)
	}
	if s := report.Shares(c); !slices.Equal(s, []float64{0.4, 0.2, 0, 0.4}) {
		t.Errorf("shares %v", s)
	}
	if report.Edges(3, []float64{math.NaN()}) != nil {
		t.Error("edges of no finite value")
	}
}

// TestRenderChromium opens the report in headless Chromium and checks from
// the DOM it built that the SVG plots are there with their bars, lines and
// points. CI installs chromium-headless-shell (.ci/chromium.sh); set
// ATRIUM_TEST_CHROMIUM to another binary to use it.
func TestRenderChromium(t *testing.T) {
	bin := os.Getenv("ATRIUM_TEST_CHROMIUM")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("chromium-headless-shell"); err != nil {
			if bin, err = exec.LookPath("chromium"); err != nil {
				t.Skip("no chromium: install chromium-headless-shell or set ATRIUM_TEST_CHROMIUM")
			}
		}
	}
	path := filepath.Join(t.TempDir(), "report.html")
	var buf bytes.Buffer
	if err := report.Render(&buf, sample()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// --dump-dom prints the DOM after parsing and layout: what the browser
	// built, not the bytes we wrote.
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", "file://"+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, stderr.Bytes())
	}
	dom := string(out)
	for _, c := range []struct {
		what string
		re   string
		n    int
	}{
		{"svg plots", `<svg[^>]*class="chart `, 3},
		{"bars", `<rect class="bar"`, 8},
		{"line segments", `<polyline class="series"`, 2},
		{"threshold line", `<line class="threshold"`, 1},
		{"flagged row", `<tr class="alert">`, 1},
	} {
		if n := len(regexp.MustCompile(c.re).FindAllString(dom, -1)); n != c.n {
			t.Errorf("the browser's DOM has %d %s, want %d", n, c.what, c.n)
		}
	}
}
