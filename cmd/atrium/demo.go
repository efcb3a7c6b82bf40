package main

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/demo"
	"github.com/atrium-ml/atrium/internal/platform/progress"
)

// demoSize holds the flags that size and seed generated data (demo, demo
// generate, demo ranking, init).
type demoSize struct {
	name    string
	seed    uint64
	events  int
	workers int
	start   string
	// recent makes the default start recent: the sessions end at the last
	// midnight, so that served values are fresh (within their ttl) now.
	recent bool
}

func (s *demoSize) flags(cmd *cobra.Command, def string) {
	f := cmd.Flags()
	f.StringVar(&s.name, "size", def, "data size: "+strings.Join(demo.PresetNames(), ", "))
	startDefault := demo.DefaultStart.Format(time.DateOnly)
	if s.recent {
		startDefault = "the size's days before today"
	}
	f.StringVar(&s.start, "start", "", "first day of sessions, YYYY-MM-DD (default: "+startDefault+")")
	f.Uint64Var(&s.seed, "seed", 1, "random seed: the same seed and size give the same data")
	f.IntVar(&s.events, "events", 0, "scale the data to about this many events (overrides the size's count)")
	f.IntVar(&s.workers, "workers", 0, "goroutines generating days in parallel (default: one per core)")
}

func (s *demoSize) config() (demo.Config, error) {
	cfg, err := demo.Preset(s.name)
	if err != nil {
		return cfg, usagef("--size: %v", err)
	}
	if s.events < 0 || s.workers < 0 {
		return cfg, usagef("--events %d, --workers %d: want >= 0", s.events, s.workers)
	}
	cfg.Seed = s.seed
	if s.events > 0 {
		cfg = cfg.WithEvents(s.events)
	}
	switch {
	case s.start != "":
		t, err := time.Parse(time.DateOnly, s.start)
		if err != nil {
			return cfg, usagef("--start %q: want a date YYYY-MM-DD", s.start)
		}
		cfg.Start = t
	case s.recent:
		cfg.Start = recentStart(time.Now(), cfg.Days)
	}
	cfg.Workers = s.workers
	if err := cfg.Validate(); err != nil {
		return cfg, usagef("%v", err)
	}
	return cfg, nil
}

// recentStart is the start of days of sessions that end at the last midnight
// (UTC) before now.
func recentStart(now time.Time, days int) time.Time {
	return now.UTC().Truncate(24*time.Hour).AddDate(0, 0, -days)
}

// describeData says what a generation wrote, in one line.
func describeData(s *demo.Summary) string {
	return fmt.Sprintf("%s listings (%s price versions), %s users, %s sessions: %s impressions, %s clicks, %s visit requests = %s events in %d files",
		count(s.Listings), count(s.ListingRows), count(s.Users), count(s.Sessions),
		count(s.Impressions), count(s.Clicks), count(s.Visits), count(s.Events()), len(s.Files))
}

// count formats n with thousands separators.
func count(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + count(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// generateData writes the project files and the data of cfg under dir, showing
// progress on a terminal.
func generateData(e *env, dir string, cfg demo.Config, overwrite bool) (demo.Summary, error) {
	if _, err := demo.WriteProject(dir, overwrite); err != nil {
		if errors.Is(err, demo.ErrExists) {
			return demo.Summary{}, fmt.Errorf("%w\n(use --force to overwrite)", err)
		}
		return demo.Summary{}, err
	}
	m, err := demo.NewMarket(cfg)
	if err != nil {
		return demo.Summary{}, err
	}
	bar := progress.New(e.stderr, 0, "generating", "events")
	defer bar.Finish()
	return m.WriteData(e.ctx, dir, bar.Add)
}

func init() {
	register(newDemoCmd)
}

func newDemoCmd(e *env) *cobra.Command {
	var dir string
	var force bool
	size := demoSize{recent: true}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the platform end to end on a generated rental marketplace",
		Long: `Generate a rental marketplace (listings, users, search sessions with clicks and
visit requests drawn from a known utility function) into a fresh project, then
run the platform on it step by step, printing what each step did: apply the
feature definitions, compute every feature set over the date range, materialize
the latest values online, build a point-in-time training set, read online feature
vectors from an in-process server, and train a ranking model and compare it with
the true-utility ranking and a random one.

Steps whose commands are not part of this build are listed as not available.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := size.config()
			if err != nil {
				return err
			}
			if dir == "" {
				if dir, err = os.MkdirTemp("", "atrium-demo-*"); err != nil {
					return fmt.Errorf("demo: %w", err)
				}
			} else if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			if dir, err = filepath.Abs(dir); err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			d := &demoRun{e: e, dir: dir, cfg: cfg, size: size.name, force: force}
			return d.runAll()
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "project directory to create (default: a new directory under the OS temp dir)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite the project files if --dir already holds a project")
	size.flags(cmd, "small")
	cmd.AddCommand(newDemoGenerateCmd(e), newDemoRankingCmd(e))
	return cmd
}

func newDemoGenerateCmd(e *env) *cobra.Command {
	var force bool
	var size demoSize
	cmd := &cobra.Command{
		Use:   "generate DIR",
		Short: "Write the demo project and generated data into DIR (no other step)",
		Long: `Write atrium.yaml, features/*.yaml and the generated data (data/listings.csv,
data/users.csv, data/events-YYYY-MM-DD.csv) into DIR. With --size large or
--events 10000000 it writes benchmark-sized data, streaming, on every core.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := size.config()
			if err != nil {
				return err
			}
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return fmt.Errorf("demo generate: %w", err)
			}
			start := time.Now()
			sum, err := generateData(e, args[0], cfg, force)
			if err != nil {
				return fmt.Errorf("demo generate: %w", err)
			}
			fmt.Fprintf(e.stdout, "wrote %s to %s in %s\n", describeData(&sum), args[0], since(start))
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite the project files if DIR already holds a project")
	size.flags(cmd, "small")
	return cmd
}

func newDemoRankingCmd(e *env) *cobra.Command {
	var out, testOut string
	var testDays int
	var truth bool
	var size demoSize
	cmd := &cobra.Command{
		Use:   "ranking --out FILE",
		Short: "Write a learning-to-rank training set from generated sessions",
		Long: `Write one row per (session, listing impression): session_id (the query id),
label (0 shown, 1 clicked, 2 visit requested) and the features a ranker can see
at search time (listing, user and user-listing features; not the position).
CSV or Parquet by the file's extension. Train on it with
  atrium fit --data FILE --label label --group session_id --task lambdarank
--test-out and --test-days put the last days' sessions in a second file;
--truth adds the true utility as a last column (the answer: drop it to train).`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usagef("--out is required")
			}
			if (testOut == "") != (testDays == 0) {
				return usagef("--test-out and --test-days go together")
			}
			cfg, err := size.config()
			if err != nil {
				return err
			}
			m, err := demo.NewMarket(cfg)
			if err != nil {
				return err
			}
			start := time.Now()
			bar := progress.New(e.stderr, 0, "ranking set", "rows")
			sum, err := m.WriteRanking(e.ctx, out, demo.RankingOptions{TestPath: testOut, TestDays: testDays, Truth: truth, Progress: bar.Add})
			bar.Finish()
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "wrote %s rows of %s sessions to %s", count(sum.Rows), count(sum.Sessions), out)
			if testOut != "" {
				fmt.Fprintf(e.stdout, ", %s rows of %s sessions to %s", count(sum.TestRows), count(sum.TestSessions), testOut)
			}
			fmt.Fprintf(e.stdout, " in %s\n", since(start))
			if testOut == "" {
				return nil
			}
			ev, err := m.Evaluate(e.ctx, cfg.Days-testDays, cfg.Days, 10, demo.BaselineRankers(cfg.Seed))
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "reference NDCG@10 on the test sessions (observed labels / attentive labels):")
			for i, name := range ev.Rankers {
				fmt.Fprintf(e.stdout, " %s %.4f / %.4f;", name, ev.Observed[i], ev.Attentive[i])
			}
			fmt.Fprintln(e.stdout)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "output file, .csv or .parquet (required)")
	f.StringVar(&testOut, "test-out", "", "file for the sessions of the last --test-days days")
	f.IntVar(&testDays, "test-days", 0, "days of sessions, at the end of the range, for --test-out")
	f.BoolVar(&truth, "truth", false, "add the true_utility column")
	size.flags(cmd, "small")
	return cmd
}

// since formats the time elapsed since t for humans.
func since(t time.Time) string {
	d := time.Since(t)
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// demoRun is one run of `atrium demo`: the project directory, the generated
// market, and what the steps learned for later steps.
type demoRun struct {
	e     *env
	dir   string
	cfg   demo.Config
	size  string
	force bool
	out   io.Writer // e.stdout

	market *demo.Market
	// trainSet and testSet are the historical step's outputs: the impressions
	// of the training days and of the test days with their features.
	trainSet, testSet string
	testFrom          int // first test day
}

// demoService is the feature service the demo trains on.
const demoService = "personalized_ranker"

// demoStep is one step of the demo. It is not available when one of the CLI
// commands it drives is not part of this build, or when a step it needs did not
// run; it then prints why and the demo goes on.
type demoStep struct {
	name  string
	what  string
	needs []string // CLI commands the step drives
	after []string // earlier steps whose results it uses
	run   func(d *demoRun) error
}

func (d *demoRun) steps() []demoStep {
	return []demoStep{
		{name: "generate", what: "a rental marketplace with a known utility function", run: (*demoRun).generate},
		{name: "apply", what: "validate features/*.yaml and register the definitions", needs: []string{"apply"}, after: []string{"generate"}, run: (*demoRun).apply},
		{name: "run", what: "compute every feature set over the data's date range into the offline store", needs: []string{"run", "runs"}, after: []string{"apply"}, run: (*demoRun).runSets},
		{name: "materialize", what: "publish the latest value of every key to the online store", needs: []string{"materialize"}, after: []string{"run"}, run: (*demoRun).materialize},
		{name: "historical", what: "build point-in-time training and test sets from the impressions", needs: []string{"historical"}, after: []string{"run"}, run: (*demoRun).historical},
		{name: "online", what: "read online feature vectors from an in-process server", needs: []string{"serve"}, after: []string{"materialize"}, run: (*demoRun).online},
		{name: "fit", what: "train a ranking model on the training set and compare it with the truth", needs: []string{"fit", "predict"}, after: []string{"historical"}, run: (*demoRun).fit},
	}
}

// runAll runs every step in order and ends with a summary line.
func (d *demoRun) runAll() error {
	d.out = d.e.stdout
	start := time.Now()
	fmt.Fprintf(d.out, "atrium demo: size %s, seed %d, project in %s\n", d.size, d.cfg.Seed, d.dir)
	fmt.Fprintf(d.out, "(each step runs atrium commands in-process; they are shown as you would type them in that directory)\n\n")
	steps := d.steps()
	done := map[string]bool{}
	var ran, unavailable []string
	for i, s := range steps {
		fmt.Fprintf(d.out, "[%d/%d] %s: %s\n", i+1, len(steps), s.name, s.what)
		if why := d.unavailable(s, done); why != "" {
			fmt.Fprintf(d.out, "      not available yet: %s\n\n", why)
			unavailable = append(unavailable, s.name)
			continue
		}
		t := time.Now()
		if err := s.run(d); err != nil {
			return fmt.Errorf("demo step %s: %w", s.name, err)
		}
		fmt.Fprintf(d.out, "      done in %s\n\n", since(t))
		done[s.name] = true
		ran = append(ran, s.name)
	}
	fmt.Fprintf(d.out, "demo finished in %s: %d steps ran (%s)", since(start), len(ran), strings.Join(ran, ", "))
	if len(unavailable) > 0 {
		fmt.Fprintf(d.out, "; not available yet: %s", strings.Join(unavailable, ", "))
	}
	fmt.Fprintf(d.out, "\nthe project is in %s; the commands above run there as shown (cd %s)\n", d.dir, d.dir)
	return nil
}

// unavailable says why step s cannot run, or "" when it can.
func (d *demoRun) unavailable(s demoStep, done map[string]bool) string {
	var missing []string
	for _, c := range s.needs {
		if !hasCommand(c) {
			missing = append(missing, "`atrium "+c+"`")
		}
	}
	if len(missing) > 0 {
		return strings.Join(missing, " and ") + " not in this build"
	}
	for _, a := range s.after {
		if !done[a] {
			return "needs the " + a + " step"
		}
	}
	if s.run == nil {
		return "not wired into the demo yet"
	}
	return ""
}

// hasCommand reports whether the CLI has the (sub)command path, e.g. "apply".
func hasCommand(path string) bool {
	root := newRootCmd(&env{stdout: io.Discard, stderr: io.Discard})
	c, _, err := root.Find(strings.Fields(path))
	return err == nil && c != root && c.CommandPath() == "atrium "+path
}

// atrium runs a CLI command in-process against the demo project, prints its
// output indented, and returns its stdout.
func (d *demoRun) atrium(args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	full := append([]string{"--repo", d.dir}, args...)
	// Show the command as typed inside the project directory.
	shown := make([]string, len(args))
	for i, a := range args {
		shown[i] = strings.ReplaceAll(a, d.dir+string(filepath.Separator), "")
	}
	fmt.Fprintf(d.out, "      $ atrium %s\n", strings.Join(shown, " "))
	code := run(d.e.ctx, full, &stdout, &stderr)
	d.printIndented(stdout.String())
	if code != exitOK {
		return stdout.String(), fmt.Errorf("atrium %s: exit code %d: %s", strings.Join(args, " "), code, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func (d *demoRun) printIndented(s string) {
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if line != "" {
			fmt.Fprintf(d.out, "        %s\n", line)
		}
	}
}

func (d *demoRun) generate() error {
	sum, err := generateData(d.e, d.dir, d.cfg, d.force)
	if err != nil {
		return err
	}
	m, err := demo.NewMarket(d.cfg)
	if err != nil {
		return err
	}
	d.market = m
	fmt.Fprintf(d.out, "      wrote %s\n", describeData(&sum))
	fmt.Fprintf(d.out, "      sessions from %s to %s; project files: %s\n",
		d.cfg.Start.Format(time.DateOnly), d.cfg.End().AddDate(0, 0, -1).Format(time.DateOnly), strings.Join(demo.ProjectFiles(), ", "))
	return nil
}

func (d *demoRun) apply() error {
	_, err := d.atrium("apply")
	return err
}

// runSets computes each feature set over its range, then lists the runs.
func (d *demoRun) runSets() error {
	for _, r := range d.cfg.FeatureSetRanges() {
		if _, err := d.atrium("run", r.Set, "--start", r.Start.Format(time.DateOnly), "--end", r.End.Format(time.DateOnly)); err != nil {
			return err
		}
	}
	_, err := d.atrium("runs")
	return err
}

// historical writes spines of impressions (training days, then the last test
// days), joins them with the feature service at each impression's time, and
// checks a point-in-time join against the generated truth.
func (d *demoRun) historical() error {
	days := d.cfg.Days
	// Day 0 has no engagement history yet; the last quarter of the days (at
	// least one) is held out for testing.
	d.testFrom = days - max(1, days/4)
	if d.testFrom <= 1 {
		return fmt.Errorf("%d days of data: want at least 3 to train and test", days)
	}
	dir := filepath.Join(d.dir, "training")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, part := range []struct {
		name     string
		from, to int
		out      *string
	}{{"train", 1, d.testFrom, &d.trainSet}, {"test", d.testFrom, days, &d.testSet}} {
		spine := filepath.Join(dir, part.name+"-spine.csv")
		sum, err := d.market.WriteSpine(d.e.ctx, spine, part.from, part.to)
		if err != nil {
			return err
		}
		fmt.Fprintf(d.out, "      %s spine: %s impressions of %s sessions, %s to %s (%s)\n", part.name, count(sum.Rows), count(sum.Sessions),
			d.day(part.from), d.day(part.to-1), d.rel(spine))
		*part.out = filepath.Join(dir, part.name+".parquet")
		if _, err := d.atrium("historical", "--spine", spine, "--service", demoService, "--out", *part.out); err != nil {
			return err
		}
	}
	return d.pointInTimeProbe(dir)
}

// pointInTimeProbe joins listing_profile:rent for one listing at three times:
// just before it was published (no row yet: null), when it was published (its
// first rent) and after its first price change (the new rent), and compares
// with the generated truth.
func (d *demoRun) pointInTimeProbe(dir string) error {
	l := d.market.ProbeListing()
	if l == nil {
		fmt.Fprintf(d.out, "      point-in-time probe: no listing was published and repriced during the sessions at this size\n")
		return nil
	}
	probes := []struct {
		at   time.Time
		want string
	}{
		{l.Prices[0].At.Add(-time.Second), ""},
		{l.Prices[0].At, fmt.Sprint(l.Prices[0].Rent)},
		{l.Prices[1].At.Add(time.Minute), fmt.Sprint(l.Prices[1].Rent)},
	}
	spine := filepath.Join(dir, "probe-spine.csv")
	var b strings.Builder
	b.WriteString("listing_id,ts\n")
	for _, p := range probes {
		fmt.Fprintf(&b, "%d,%s\n", l.ID, p.at.Format(demo.TimeLayout))
	}
	if err := os.WriteFile(spine, []byte(b.String()), 0o644); err != nil {
		return err
	}
	out := filepath.Join(dir, "probe.csv")
	fmt.Fprintf(d.out, "      point-in-time probe: listing %d, published %s at %v, repriced %s to %v\n",
		l.ID, l.Prices[0].At.Format(demo.TimeLayout), l.Prices[0].Rent, l.Prices[1].At.Format(demo.TimeLayout), l.Prices[1].Rent)
	if _, err := d.atrium("historical", "--spine", spine, "--features", "listing_profile:rent", "--out", out); err != nil {
		return err
	}
	rows, err := readCSVRows(out)
	if err != nil {
		return err
	}
	if len(rows) != len(probes) {
		return fmt.Errorf("point-in-time probe: %d rows back, want %d", len(rows), len(probes))
	}
	for i, p := range probes {
		got := rows[i]["rent"]
		if got != "" {
			if v, err := strconv.ParseFloat(got, 64); err == nil {
				got = fmt.Sprint(v)
			}
		}
		verdict := "ok"
		if got != p.want {
			verdict = "WRONG"
		}
		fmt.Fprintf(d.out, "        at %s  rent %-6s (truth %-6s) %s\n", p.at.Format(demo.TimeLayout), orNull(got), orNull(p.want), verdict)
		if got != p.want {
			return fmt.Errorf("point-in-time probe: listing %d at %s: rent %s, truth %s", l.ID, p.at.Format(demo.TimeLayout), orNull(got), orNull(p.want))
		}
	}
	return nil
}

func orNull(s string) string {
	if s == "" {
		return "null"
	}
	return s
}

// readCSVRows reads a small CSV file into rows of named fields.
func readCSVRows(path string) ([]map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%s: empty file, want a header", path)
	}
	rows := make([]map[string]string, 0, len(recs)-1)
	for _, rec := range recs[1:] {
		row := make(map[string]string, len(rec))
		for i, name := range recs[0] {
			row[name] = rec[i]
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// day formats session day i.
func (d *demoRun) day(i int) string { return d.cfg.Start.AddDate(0, 0, i).Format(time.DateOnly) }

// rel shows path relative to the project directory.
func (d *demoRun) rel(path string) string {
	if r, err := filepath.Rel(d.dir, path); err == nil {
		return r
	}
	return path
}

// fit adds the user × listing features to the training and test sets, trains
// a lambdarank model (a pointwise linear model when gradient-boosted trees are
// not in the build), scores the test impressions, and compares the model's
// NDCG@10 with the true-utility, logged and random rankings of the same sessions.
func (d *demoRun) fit() error {
	dir := filepath.Dir(d.trainSet)
	train, test := filepath.Join(dir, "train-x.parquet"), filepath.Join(dir, "test-x.parquet")
	for _, f := range [][2]string{{d.trainSet, train}, {d.testSet, test}} {
		if err := demo.WithCrossFeatures(d.e.ctx, f[0], f[1]); err != nil {
			return err
		}
	}
	fmt.Fprintf(d.out, "      added %s (user x listing, from the joined features) to %s and %s\n",
		strings.Join(demo.CrossFeatures, ", "), d.rel(train), d.rel(test))
	ignore := strings.Join(slices.DeleteFunc(slices.Clone(demo.NonFeatureColumns), func(c string) bool { return c == "label" || c == "session_id" }), ",")
	model := filepath.Join(dir, "ranker.txt")
	kind := "lambdarank, gradient-boosted trees"
	_, err := d.atrium("fit", "--data", train, "--label", "label", "--group", "session_id", "--task", "lambdarank", "--algorithm", "gbdt",
		"--ignore", ignore, "--valid-fraction", "0.2", "--seed", "1", "--out", model)
	if err != nil && strings.Contains(err.Error(), "not available in this build") {
		fmt.Fprintf(d.out, "      gradient-boosted trees are not in this build yet: fitting a pointwise linear model of the label instead\n")
		model, kind = filepath.Join(dir, "ranker.json"), "pointwise linear regression"
		_, err = d.atrium("fit", "--data", train, "--label", "label", "--task", "regression", "--algorithm", "linear",
			"--ignore", ignore+",session_id", "--valid-fraction", "0.2", "--seed", "1", "--out", model)
	}
	if err != nil {
		return err
	}
	scoresPath := filepath.Join(dir, "test-scores.csv")
	if _, err := d.atrium("predict", "--model", model, "--data", test, "--passthrough", "session_id,listing_id", "--out", scoresPath); err != nil {
		return err
	}
	scores, err := readScores(scoresPath)
	if err != nil {
		return err
	}
	rankers := append([]demo.NamedRanker{{Name: "model (" + kind + ")", Ranker: demo.ScoreRanker(scores)}}, demo.BaselineRankers(d.cfg.Seed)...)
	ev, err := d.market.Evaluate(d.e.ctx, d.testFrom, d.cfg.Days, 10, rankers)
	if err != nil {
		return err
	}
	d.printEvaluation(ev)
	return nil
}

// printEvaluation prints the NDCG@K table of the test sessions.
func (d *demoRun) printEvaluation(ev demo.Evaluation) {
	fmt.Fprintf(d.out, "      NDCG@%d on the %s test sessions (%s to %s):\n", ev.K, count(ev.Sessions), d.day(d.testFrom), d.day(d.cfg.Days-1))
	width := 0
	for _, name := range ev.Rankers {
		width = max(width, len(name))
	}
	fmt.Fprintf(d.out, "        %-*s  %8s  %9s\n", width, "ranking by", "observed", "attentive")
	for i, name := range ev.Rankers {
		fmt.Fprintf(d.out, "        %-*s  %8.4f  %9.4f\n", width, name, ev.Observed[i], ev.Attentive[i])
	}
	fmt.Fprintf(d.out, "      observed: the logged clicks and visits (position-biased, so the logged order looks good);\n")
	fmt.Fprintf(d.out, "      attentive: labels redrawn from the true utility as if every listing had been examined.\n")
}

// readScores reads predict's output (session_id, listing_id, prediction).
func readScores(path string) (map[[2]int64]float64, error) {
	rows, err := readCSVRows(path)
	if err != nil {
		return nil, err
	}
	scores := make(map[[2]int64]float64, len(rows))
	for i, r := range rows {
		s, err1 := strconv.ParseInt(r["session_id"], 10, 64)
		l, err2 := strconv.ParseInt(r["listing_id"], 10, 64)
		p, err3 := strconv.ParseFloat(r["prediction"], 64)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("%s row %d: %w", path, i+2, err)
		}
		scores[[2]int64{s, l}] = p
	}
	return scores, nil
}

// materialize publishes every set's latest rows as of the end of the data.
func (d *demoRun) materialize() error {
	_, err := d.atrium("materialize", "--end", d.cfg.End().Format(time.RFC3339))
	return err
}
