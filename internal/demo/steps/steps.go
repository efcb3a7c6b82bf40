// Package steps runs `atrium demo`: it generates the rental marketplace into a
// project directory and takes it through the platform step by step (apply,
// run, materialize, historical, online, fit), printing each step as the atrium
// commands a user would type in that directory, followed by what they print.
//
// The steps call the packages the commands call (catalog, pipeline,
// retrieval, server), on stores opened once for the whole run (Stores); the
// online step serves the feature API in-process on a listener it opens and
// reads it with the public Go client. Fitting and predicting are handed to a
// Modeler, which cmd/atrium implements with the code of `atrium fit` and
// `atrium predict`.
package steps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/atrium-ml/atrium/internal/demo"
	"github.com/atrium-ml/atrium/internal/platform/progress"
)

// Options configure a run of the demo.
type Options struct {
	// Dir is the project directory to create (required; it may exist).
	Dir string
	// Config sizes and seeds the generated market (required: demo.Preset).
	Config demo.Config
	// Size is the preset's name, for the first line printed.
	Size string
	// Force overwrites the project files of an earlier project in Dir.
	Force bool
	// Out receives the steps' report (required).
	Out io.Writer
	// Progress shows progress bars when it is a terminal. Default: none.
	Progress io.Writer
	// Logger receives the steps' warnings. Default: discard.
	Logger *slog.Logger
	// Stores are the project's stores, bound to Dir (required); the caller
	// closes them.
	Stores Stores
	// Modeler fits and applies the ranking model. Nil: the fit step says it is
	// not available, and the demo goes on.
	Modeler Modeler
	// Serving serves the registered ranker. Nil: the serve step says it is
	// not available.
	Serving Serving
}

func (o *Options) validate() error {
	var errs []error
	if o.Dir == "" {
		errs = append(errs, errors.New("demo: Options.Dir is required"))
	}
	if o.Out == nil {
		errs = append(errs, errors.New("demo: Options.Out is required"))
	}
	if o.Stores == nil {
		errs = append(errs, errors.New("demo: Options.Stores is required"))
	}
	if err := o.Config.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("demo: Options.Config: %w", err))
	}
	return errors.Join(errs...)
}

// runner is one run of the demo: its options, the generated market, and what
// the steps learned for later steps.
type runner struct {
	Options
	market *demo.Market
	// trainSet and testSet are the historical step's outputs: the impressions
	// of the training days and of the test days with their features.
	trainSet, testSet string
	testFrom          int // first test day
}

// step is one step of the demo. It does not run when a step it needs did not
// run, or when it says why it cannot (unavailable); the demo then goes on.
type step struct {
	name  string
	what  string
	after []string // earlier steps whose results it uses
	// unavailable, when set, says why the step cannot run in this build.
	unavailable func(r *runner) string
	run         func(r *runner, ctx context.Context) error
}

// Service is the feature service the demo trains on.
const Service = "personalized_ranker"

func steps() []step {
	return []step{
		{name: "generate", what: "a rental marketplace with a known utility function", run: (*runner).generate},
		{name: "apply", what: "validate features/*.yaml and register the definitions", after: []string{"generate"}, run: (*runner).apply},
		{name: "run", what: "compute every feature set over the data's date range into the offline store", after: []string{"apply"}, run: (*runner).runSets},
		{name: "materialize", what: "publish the latest value of every key to the online store", after: []string{"run"}, run: (*runner).materialize},
		{name: "historical", what: "build point-in-time training and test sets from the impressions", after: []string{"run"}, run: (*runner).historical},
		{name: "online", what: "read online feature vectors from an in-process server", after: []string{"materialize"}, run: (*runner).online},
		{name: "fit", what: "train and register a ranking model, score the test sessions with it and compare it with the truth", after: []string{"historical"},
			unavailable: func(r *runner) string {
				if r.Modeler == nil {
					return "no model training in this build"
				}
				return ""
			},
			run: (*runner).fit},
		{name: "serve", what: "serve the ranker, rank a user's candidates, show the prediction log and a skew check", after: []string{"fit", "materialize"},
			unavailable: func(r *runner) string {
				if r.Serving == nil {
					return "no model serving in this build"
				}
				return ""
			},
			run: (*runner).serve},
		{name: "schedule", what: "declare daily schedules and let the scheduler run the last days on a simulated clock", after: []string{"materialize"},
			run: (*runner).schedule},
	}
}

// Run runs every step in order, printing each, and ends with a summary and
// how to run the commands shown with an atrium binary of one's own.
func Run(ctx context.Context, opts Options) error {
	if err := opts.validate(); err != nil {
		return err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := &runner{Options: opts}
	return r.runAll(ctx)
}

func (r *runner) runAll(ctx context.Context) error {
	start := time.Now()
	fmt.Fprintf(r.Out, "atrium demo: size %s, seed %d, project in %s\n", r.Size, r.Config.Seed, r.Dir)
	fmt.Fprintf(r.Out, "(each step runs what the atrium commands run, in this process; they are shown as you would type them in that directory)\n\n")
	all := steps()
	done := map[string]bool{}
	var ran, unavailable []string
	for i, s := range all {
		fmt.Fprintf(r.Out, "[%d/%d] %s: %s\n", i+1, len(all), s.name, s.what)
		if why := r.unavailable(s, done); why != "" {
			fmt.Fprintf(r.Out, "      not available yet: %s\n\n", why)
			unavailable = append(unavailable, s.name)
			continue
		}
		t := time.Now()
		if err := s.run(r, ctx); err != nil {
			return fmt.Errorf("demo step %s: %w", s.name, err)
		}
		fmt.Fprintf(r.Out, "      done in %s\n\n", Since(t))
		done[s.name] = true
		ran = append(ran, s.name)
	}
	fmt.Fprintf(r.Out, "demo finished in %s: %d steps ran (%s)", Since(start), len(ran), strings.Join(ran, ", "))
	if len(unavailable) > 0 {
		fmt.Fprintf(r.Out, "; not available yet: %s", strings.Join(unavailable, ", "))
	}
	fmt.Fprintf(r.Out, "\nthe project is in %s; the commands above run there as shown (cd %s)\n", r.Dir, r.Dir)
	fmt.Fprintf(r.Out, "to have an atrium command on your PATH, from the repository's root:\n")
	fmt.Fprintf(r.Out, "  go install ./cmd/atrium              (into $(go env GOPATH)/bin; add it to PATH)\n")
	fmt.Fprintf(r.Out, "  go build -o /usr/local/bin/atrium ./cmd/atrium    (or any directory on your PATH)\n")
	return nil
}

// unavailable says why step s cannot run, or "" when it can.
func (r *runner) unavailable(s step, done map[string]bool) string {
	if s.unavailable != nil {
		if why := s.unavailable(r); why != "" {
			return why
		}
	}
	for _, a := range s.after {
		if !done[a] {
			return "needs the " + a + " step"
		}
	}
	return ""
}

// Generate writes the project files and the data of cfg under dir, showing
// progress on a terminal. With overwrite unset it writes nothing over an
// existing project, and the error wraps demo.ErrExists.
func Generate(ctx context.Context, dir string, cfg demo.Config, overwrite bool, progressTo io.Writer) (*demo.Market, demo.Summary, error) {
	if _, err := demo.WriteProject(dir, overwrite); err != nil {
		return nil, demo.Summary{}, err
	}
	m, err := demo.NewMarket(cfg)
	if err != nil {
		return nil, demo.Summary{}, err
	}
	bar := progress.New(progressTo, 0, "generating", "events")
	defer bar.Finish()
	sum, err := m.WriteData(ctx, dir, bar.Add)
	return m, sum, err
}

func (r *runner) generate(ctx context.Context) error {
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return fmt.Errorf("project directory: %w", err)
	}
	m, sum, err := Generate(ctx, r.Dir, r.Config, r.Force, r.Progress)
	if err != nil {
		return err
	}
	r.market = m
	fmt.Fprintf(r.Out, "      wrote %s\n", sum.Describe())
	fmt.Fprintf(r.Out, "      sessions from %s to %s; project files: %s\n",
		r.Config.Start.Format(time.DateOnly), r.Config.End().AddDate(0, 0, -1).Format(time.DateOnly), strings.Join(demo.ProjectFiles(), ", "))
	return nil
}

// command prints a command as typed inside the project directory.
func (r *runner) command(args ...string) {
	shown := make([]string, len(args))
	for i, a := range args {
		shown[i] = strings.ReplaceAll(a, r.Dir+string(filepath.Separator), "")
	}
	fmt.Fprintf(r.Out, "      $ atrium %s\n", strings.Join(shown, " "))
}

// indented returns a writer that prints what a command printed, each
// non-empty line indented under the command.
func (r *runner) indented() *indentWriter { return &indentWriter{out: r.Out} }

// indentWriter indents whole lines; Flush prints a last line without "\n".
type indentWriter struct {
	out io.Writer
	buf []byte
}

func (w *indentWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			return len(p), nil
		}
		w.line(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

func (w *indentWriter) line(s string) {
	if strings.TrimSpace(s) != "" {
		fmt.Fprintf(w.out, "        %s\n", s)
	}
}

// Flush prints what is left of an unfinished line.
func (w *indentWriter) Flush() {
	if len(w.buf) > 0 {
		w.line(string(w.buf))
		w.buf = nil
	}
}

// day formats session day i.
func (r *runner) day(i int) string { return r.Config.Start.AddDate(0, 0, i).Format(time.DateOnly) }

// rel shows path relative to the project directory.
func (r *runner) rel(path string) string {
	if rel, err := filepath.Rel(r.Dir, path); err == nil {
		return rel
	}
	return path
}

// Since formats the time elapsed since t for humans.
func Since(t time.Time) string {
	d := time.Since(t)
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}
