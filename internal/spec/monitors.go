package spec

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// MonitorsDir is the directory of monitoring rules inside a repository.
const MonitorsDir = "monitors"

// Monitoring is atrium.yaml's monitoring block.
type Monitoring struct {
	// EvaluateEvery is how often `atrium serve` evaluates the monitors of
	// monitors/*.yaml. Default 1m.
	EvaluateEvery time.Duration `yaml:"evaluate_every"`
	// MaxRows bounds the rows of a window a model report reads into memory;
	// above it the report is computed on whole requests drawn at random and
	// says so (volumes stay exact). Default 100000.
	MaxRows int64 `yaml:"max_rows"`
}

// DefaultEvaluateEvery is monitoring.evaluate_every's default.
const DefaultEvaluateEvery = time.Minute

// DefaultMaxRows is monitoring.max_rows's default: about 200 MB of rows of
// 30 features in memory.
const DefaultMaxRows = 100_000

// Monitors is every definition of monitors/*.yaml: the rules the server
// evaluates on a schedule and the notifiers their alerts go to. Like
// Features, it is read-only once loaded.
type Monitors struct {
	Monitors  []*Monitor  `json:"monitors"`
	Notifiers []*Notifier `json:"notifiers,omitempty"`
}

// Measure names what a monitor measures.
type Measure string

// The measures. Model measures read the model's prediction log over the
// monitor's window and compare it with the version's training reference;
// feature-set measures read the pipeline runs of the window.
const (
	// MeasureFeatureDriftShare is the share of a model's features that drift
	// (0..1), Evidently's default test per feature.
	MeasureFeatureDriftShare Measure = "feature_drift_share"
	// MeasureFeatureDrift is one feature's drift score (Method's score: a
	// distance, or a p-value for ks, chisquare and z).
	MeasureFeatureDrift Measure = "feature_drift"
	// MeasurePredictionDrift is the drift score of the model's predictions.
	MeasurePredictionDrift Measure = "prediction_drift"
	// MeasureMissingShare is the share of missing values of one feature, or
	// of all features together when Feature is empty.
	MeasureMissingShare Measure = "missing_share"
	// MeasureVolume is the number of scored rows in the window (estimated
	// from the log's sampling rate).
	MeasureVolume Measure = "volume"
	// MeasureRealizedMetric is a metric (Metric: auc, logloss, mae, rmse,
	// ndcg@k, map@k) over the predictions of the window whose labels arrived.
	MeasureRealizedMetric Measure = "realized_metric"
	// MeasureCheckFailures is the number of failed data-quality checks in the
	// feature set's pipeline runs of the window.
	MeasureCheckFailures Measure = "check_failures"
	// MeasureFailedRuns is the number of the feature set's pipeline runs of
	// the window that failed or whose checks failed.
	MeasureFailedRuns Measure = "failed_runs"
)

// modelMeasures and setMeasures say which subject each measure needs.
var (
	modelMeasures = []Measure{MeasureFeatureDriftShare, MeasureFeatureDrift, MeasurePredictionDrift, MeasureMissingShare, MeasureVolume, MeasureRealizedMetric}
	setMeasures   = []Measure{MeasureCheckFailures, MeasureFailedRuns}
)

// IsModel reports whether the measure is about a served model.
func (m Measure) IsModel() bool { return contains(modelMeasures, m) }

// IsFeatureSet reports whether the measure is about a feature set.
func (m Measure) IsFeatureSet() bool { return contains(setMeasures, m) }

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// Comparisons a monitor fires on (value <op> threshold).
var comparisons = []string{">", ">=", "<", "<="}

// Severities, in increasing order.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// What a monitor does when its window has no data (an empty window, a model
// that was not served): NoDataKeep leaves its state as it is (default),
// NoDataAlerting counts it as the condition being true, NoDataOK as false.
const (
	NoDataKeep     = "keep"
	NoDataAlerting = "alerting"
	NoDataOK       = "ok"
)

// DefaultMonitorWindow is a monitor's window when it names none.
const DefaultMonitorWindow = Duration(24 * time.Hour)

// driftMethods are the drift tests a monitor may pin (internal/monitoring/drift's
// method names; spec sits below that package and repeats them).
var driftMethods = []string{"ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi", "hellinger"}

// realizedMetrics are the metric names of MeasureRealizedMetric without their
// @k suffix.
var realizedMetrics = []string{"auc", "logloss", "mae", "rmse", "ndcg", "map"}

// Monitor is one rule: a measured value, compared with a threshold every
// evaluation; it fires after the condition has held for For.
type Monitor struct {
	Name    string  `json:"name"`
	Measure Measure `json:"measure"`
	// Model (model measures) is a registered model name; Version pins one
	// version (default: every version the window's predictions came from,
	// against the newest one's reference).
	Model   string `json:"model,omitempty"`
	Version string `json:"version,omitempty"`
	// FeatureSet (feature-set measures) names a feature set.
	FeatureSet string `json:"feature_set,omitempty"`
	// Feature names a model input (feature_drift, missing_share).
	Feature string `json:"feature,omitempty"`
	// Metric names the realized metric (realized_metric).
	Metric string `json:"metric,omitempty"`
	// Method pins the drift test of feature_drift and prediction_drift
	// (default: Evidently's choice).
	Method string `json:"method,omitempty"`
	// Window is how far back from the evaluation the measure looks. Default 24h.
	Window Duration `json:"window"`
	// Comparison and Threshold: the condition is value <Comparison> Threshold.
	// Comparison defaults to ">".
	Comparison string  `json:"comparison"`
	Threshold  float64 `json:"threshold"`
	// Severity: info, warning (default) or critical.
	Severity string `json:"severity"`
	// For is how long the condition must hold before the monitor fires
	// (default 0: at the first evaluation that sees it).
	For Duration `json:"for"`
	// NoData: keep (default), alerting or ok.
	NoData string `json:"no_data"`
	// Labels are copied to every notification of the monitor.
	Labels map[string]string `json:"labels,omitempty"`
	// Notify names the notifiers (default: all of them).
	Notify      []string `json:"notify,omitempty"`
	Description string   `json:"description,omitempty"`
	// Schedule, when set, evaluates the monitor on it (job "monitor:NAME")
	// at the end of each period instead of on the server's
	// monitoring.evaluate_every ticker.
	Schedule *Schedule `json:"schedule,omitempty"`
	Pos      `json:"-"`
}

// Breached reports whether value meets the monitor's condition.
func (m *Monitor) Breached(value float64) bool {
	switch m.Comparison {
	case ">=":
		return value >= m.Threshold
	case "<":
		return value < m.Threshold
	case "<=":
		return value <= m.Threshold
	}
	return value > m.Threshold
}

// Subject names what the monitor watches ("model ranker", "feature set listings").
func (m *Monitor) Subject() string {
	if m.FeatureSet != "" {
		return "feature set " + m.FeatureSet
	}
	s := "model " + m.Model
	if m.Version != "" {
		s += " v" + m.Version
	}
	return s
}

// Notifier formats.
const (
	NotifyJSON  = "json"
	NotifySlack = "slack"
)

// Notifier is a webhook that receives alert transitions.
type Notifier struct {
	Name string `json:"name"`
	// Format: json (the notification as a JSON object, default) or slack
	// ({"text": ...}, Slack's and Mattermost's incoming webhooks).
	Format string `json:"format"`
	// URL, or URLEnv naming the environment variable that holds it (webhook
	// URLs are secrets: keep them out of the repository).
	URL    string `json:"url,omitempty"`
	URLEnv string `json:"url_env,omitempty"`
	Pos    `json:"-"`
}

// Endpoint returns the webhook URL, read from the environment when URLEnv is set.
func (n *Notifier) Endpoint() (string, error) {
	if n.URLEnv == "" {
		return n.URL, nil
	}
	u := os.Getenv(n.URLEnv)
	if u == "" {
		return "", fmt.Errorf("notifier %q: environment variable %s is not set, expected the webhook URL", n.Name, n.URLEnv)
	}
	if err := checkWebhookURL(u); err != nil {
		return "", fmt.Errorf("notifier %q: %s: %w", n.Name, n.URLEnv, err)
	}
	return u, nil
}

func checkWebhookURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("not an http(s) URL, expected https://host/path")
	}
	return nil
}

// Monitor returns the monitor named name, or nil.
func (ms *Monitors) Monitor(name string) *Monitor {
	return find(ms.Monitors, func(m *Monitor) bool { return m.Name == name })
}

// Notifier returns the notifier named name, or nil.
func (ms *Monitors) Notifier(name string) *Notifier {
	return find(ms.Notifiers, func(n *Notifier) bool { return n.Name == name })
}

// LoadMonitors reads and validates every monitors/*.yaml (and *.yml) file of
// the repository at dir, in file-name order. A repository without a monitors
// directory has no monitors (not an error).
func LoadMonitors(dir string) (*Monitors, error) {
	names, srcs, err := readYAMLDir(dir, MonitorsDir)
	if err != nil {
		return nil, err
	}
	ms := &Monitors{}
	var ps Problems
	for _, name := range names {
		decodeMonitors(ms, name, srcs[name], &ps)
	}
	ps = append(ps, ms.Validate()...)
	if err := ps.Err(); err != nil {
		return nil, err
	}
	return ms, nil
}

// ParseMonitors parses and validates one monitors file's content.
func ParseMonitors(file string, data []byte) (*Monitors, error) {
	ms := &Monitors{}
	var ps Problems
	decodeMonitors(ms, file, data, &ps)
	ps = append(ps, ms.Validate()...)
	if err := ps.Err(); err != nil {
		return nil, err
	}
	return ms, nil
}

func decodeMonitors(ms *Monitors, file string, data []byte, ps *Problems) {
	parsed, err := parser.ParseBytes(data, 0)
	if err != nil {
		*ps = append(*ps, yamlProblem(file, err))
		return
	}
	d := &nodeDecoder{file: file, ps: ps}
	for _, doc := range parsed.Docs {
		if doc == nil || isNull(doc.Body) {
			continue
		}
		d.mapping(doc.Body, "monitors file", map[string]func(ast.Node){
			"monitors": func(n ast.Node) {
				d.seq(n, "monitors", func(n ast.Node) { ms.Monitors = append(ms.Monitors, d.monitor(n)) })
			},
			"notifiers": func(n ast.Node) {
				d.seq(n, "notifiers", func(n ast.Node) { ms.Notifiers = append(ms.Notifiers, d.notifier(n)) })
			},
		})
	}
}

func (d *nodeDecoder) monitor(n ast.Node) *Monitor {
	m := &Monitor{}
	lines, _ := d.mapping(n, "monitor", map[string]func(ast.Node){
		"name":        func(v ast.Node) { m.Name = d.str(v, "monitor name") },
		"measure":     func(v ast.Node) { m.Measure = Measure(d.str(v, "monitor measure")) },
		"model":       func(v ast.Node) { m.Model = d.str(v, "monitor model") },
		"version":     func(v ast.Node) { m.Version = d.str(v, "monitor version") },
		"feature_set": func(v ast.Node) { m.FeatureSet = d.str(v, "monitor feature_set") },
		"feature":     func(v ast.Node) { m.Feature = d.str(v, "monitor feature") },
		"metric":      func(v ast.Node) { m.Metric = d.str(v, "monitor metric") },
		"method":      func(v ast.Node) { m.Method = d.str(v, "monitor method") },
		"window":      func(v ast.Node) { m.Window = d.duration(v, "monitor window") },
		"comparison":  func(v ast.Node) { m.Comparison = d.str(v, "monitor comparison") },
		"threshold": func(v ast.Node) {
			if f, ok := d.number(v, "monitor threshold"); ok {
				m.Threshold = f
			}
		},
		"severity": func(v ast.Node) { m.Severity = d.str(v, "monitor severity") },
		"for":      func(v ast.Node) { m.For = d.duration(v, "monitor for") },
		"no_data":  func(v ast.Node) { m.NoData = d.str(v, "monitor no_data") },
		"labels": func(v ast.Node) {
			m.Labels = map[string]string{}
			d.mapping(v, "monitor labels", anyKeys(v, func(k string, val ast.Node) {
				m.Labels[k] = d.str(val, "monitor label "+k)
			}))
		},
		"notify":      func(v ast.Node) { m.Notify = d.strs(v, "monitor notify") },
		"description": func(v ast.Node) { m.Description = d.str(v, "monitor description") },
		"schedule":    func(v ast.Node) { m.Schedule = d.schedule(v, "monitor schedule") },
	})
	m.Pos = d.pos(n, lines)
	if m.Window == 0 && lines["window"] == 0 {
		m.Window = DefaultMonitorWindow
	}
	if m.Comparison == "" {
		m.Comparison = ">"
	}
	if m.Severity == "" {
		m.Severity = SeverityWarning
	}
	if m.NoData == "" {
		m.NoData = NoDataKeep
	}
	return m
}

// anyKeys builds mapping field decoders that accept every key of n (a
// free-form mapping such as labels).
func anyKeys(n ast.Node, fn func(key string, v ast.Node)) map[string]func(ast.Node) {
	fields := map[string]func(ast.Node){}
	if mn, ok := unwrap(n).(ast.MapNode); ok {
		it := mn.MapRange()
		for it.Next() {
			k := scalarText(it.Key())
			fields[k] = func(v ast.Node) { fn(k, v) }
		}
	}
	return fields
}

func (d *nodeDecoder) notifier(n ast.Node) *Notifier {
	nt := &Notifier{}
	lines, _ := d.mapping(n, "notifier", map[string]func(ast.Node){
		"name":    func(v ast.Node) { nt.Name = d.str(v, "notifier name") },
		"format":  func(v ast.Node) { nt.Format = d.str(v, "notifier format") },
		"url":     func(v ast.Node) { nt.URL = d.str(v, "notifier url") },
		"url_env": func(v ast.Node) { nt.URLEnv = d.str(v, "notifier url_env") },
	})
	nt.Pos = d.pos(n, lines)
	if nt.Format == "" {
		nt.Format = NotifyJSON
	}
	return nt
}

// Validate checks every monitor and notifier; whether the models, feature
// sets and features they name exist is checked when they are evaluated
// (the registry and catalog change without the files changing).
func (ms *Monitors) Validate() Problems {
	var ps Problems
	v := &validator{ps: &ps}
	notifiers := map[string]Pos{}
	for _, n := range ms.Notifiers {
		v.name(n.Pos, "notifier", n.Name)
		if prev, dup := notifiers[n.Name]; dup && n.Name != "" {
			ps.Add(n.File, n.Line, "duplicate notifier name %q (first defined at %s:%d), expected unique names", n.Name, prev.File, prev.Line)
		}
		notifiers[n.Name] = n.Pos
		if n.Format != NotifyJSON && n.Format != NotifySlack {
			ps.Add(n.File, n.At("format"), "notifier %q: unknown format %q, expected json or slack", n.Name, n.Format)
		}
		switch {
		case n.URL == "" && n.URLEnv == "":
			ps.Add(n.File, n.Line, "notifier %q: no url, expected url (https://...) or url_env (the environment variable holding it)", n.Name)
		case n.URL != "" && n.URLEnv != "":
			ps.Add(n.File, n.At("url_env"), "notifier %q: both url and url_env given, expected one", n.Name)
		case n.URL != "":
			if err := checkWebhookURL(n.URL); err != nil {
				ps.Add(n.File, n.At("url"), "notifier %q: url %q: %v", n.Name, n.URL, err)
			}
		}
	}
	seen := map[string]Pos{}
	for _, m := range ms.Monitors {
		ms.validateMonitor(m, v, notifiers)
		if prev, dup := seen[m.Name]; dup && m.Name != "" {
			ps.Add(m.File, m.Line, "duplicate monitor name %q (first defined at %s:%d), expected unique names", m.Name, prev.File, prev.Line)
		}
		seen[m.Name] = m.Pos
	}
	return ps
}

func (ms *Monitors) validateMonitor(m *Monitor, v *validator, notifiers map[string]Pos) {
	ps := v.ps
	v.name(m.Pos, "monitor", m.Name)
	where := fmt.Sprintf("monitor %q", m.Name)
	need := func(field, val, hint string) {
		if val == "" {
			ps.Add(m.File, m.Line, "%s: measure %s needs %s, expected %s", where, m.Measure, field, hint)
		}
	}
	refuse := func(field, val string) {
		if val != "" {
			ps.Add(m.File, m.At(field), "%s: measure %s takes no %s", where, m.Measure, field)
		}
	}
	switch {
	case m.Measure == "":
		ps.Add(m.File, m.Line, "%s: no measure, expected one of %s", where, measureList())
	case m.Measure.IsModel():
		need("model", m.Model, "a registered model name")
		refuse("feature_set", m.FeatureSet)
	case m.Measure.IsFeatureSet():
		need("feature_set", m.FeatureSet, "a feature set name")
		for _, f := range []string{"model", "version", "feature", "metric", "method"} {
			refuse(f, map[string]string{"model": m.Model, "version": m.Version, "feature": m.Feature, "metric": m.Metric, "method": m.Method}[f])
		}
	default:
		ps.Add(m.File, m.At("measure"), "%s: unknown measure %q, expected one of %s", where, m.Measure, measureList())
	}
	switch m.Measure {
	case MeasureFeatureDrift:
		need("feature", m.Feature, "the name of one of the model's inputs")
	case MeasureFeatureDriftShare, MeasurePredictionDrift, MeasureVolume:
		refuse("feature", m.Feature)
	}
	if m.Measure == MeasureRealizedMetric {
		need("metric", m.Metric, "one of auc, logloss, mae, rmse, ndcg@k, map@k")
		if m.Metric != "" {
			if _, _, err := ParseRealizedMetric(m.Metric); err != nil {
				ps.Add(m.File, m.At("metric"), "%s: %v", where, err)
			}
		}
	} else if m.Measure.IsModel() {
		refuse("metric", m.Metric)
	}
	if m.Method != "" && !m.Measure.IsFeatureSet() {
		if m.Measure != MeasureFeatureDrift && m.Measure != MeasurePredictionDrift {
			ps.Add(m.File, m.At("method"), "%s: method applies to feature_drift and prediction_drift only", where)
		} else if !contains(driftMethods, m.Method) {
			ps.Add(m.File, m.At("method"), "%s: unknown method %q, expected one of %s", where, m.Method, strings.Join(driftMethods, ", "))
		}
	}
	if m.Window <= 0 {
		ps.Add(m.File, m.At("window"), "%s: window must be positive, e.g. 1h or 24h", where)
	}
	if m.For < 0 {
		ps.Add(m.File, m.At("for"), "%s: for must not be negative", where)
	}
	if m.fields["threshold"] == 0 {
		ps.Add(m.File, m.Line, "%s: no threshold, expected a number the measured value is compared with", where)
	}
	if !contains(comparisons, m.Comparison) {
		ps.Add(m.File, m.At("comparison"), "%s: unknown comparison %q, expected one of %s", where, m.Comparison, strings.Join(comparisons, " "))
	}
	if !contains([]string{SeverityInfo, SeverityWarning, SeverityCritical}, m.Severity) {
		ps.Add(m.File, m.At("severity"), "%s: unknown severity %q, expected info, warning or critical", where, m.Severity)
	}
	if !contains([]string{NoDataKeep, NoDataAlerting, NoDataOK}, m.NoData) {
		ps.Add(m.File, m.At("no_data"), "%s: unknown no_data %q, expected keep, alerting or ok", where, m.NoData)
	}
	for k := range m.Labels {
		if !identRE.MatchString(k) {
			ps.Add(m.File, m.At("labels"), "%s: label name %q, expected letters, digits and underscores", where, k)
		}
	}
	validateJobSchedule(ps, m.Schedule, where+" schedule", "a model monitor waits for its prediction log's period to be flushed")
	for _, n := range m.Notify {
		if _, ok := notifiers[n]; !ok {
			ps.addDangling(m.File, m.At("notify"), "%s: unknown notifier %q, expected one defined under notifiers", where, n)
		}
	}
}

func measureList() string {
	var s []string
	for _, m := range append(append([]Measure(nil), modelMeasures...), setMeasures...) {
		s = append(s, string(m))
	}
	return strings.Join(s, ", ")
}

// ParseRealizedMetric splits a realized metric name into its base and its
// cutoff k ("ndcg@10" -> "ndcg", 10; "auc" -> "auc", 0). Only ndcg and map
// take a cutoff, and they require one.
func ParseRealizedMetric(s string) (name string, k int, err error) {
	base, kText, hasK := strings.Cut(strings.ToLower(s), "@")
	if !contains(realizedMetrics, base) {
		return "", 0, fmt.Errorf("unknown metric %q, expected one of auc, logloss, mae, rmse, ndcg@k, map@k", s)
	}
	ranking := base == "ndcg" || base == "map"
	switch {
	case ranking && !hasK:
		return "", 0, fmt.Errorf("metric %q needs a cutoff, expected %s@k such as %s@10", s, base, base)
	case !ranking && hasK:
		return "", 0, fmt.Errorf("metric %q takes no cutoff, expected %s", s, base)
	case hasK:
		if _, err := fmt.Sscanf(kText, "%d", &k); err != nil || k <= 0 || fmt.Sprint(k) != kText {
			return "", 0, fmt.Errorf("metric %q: cutoff %q, expected a positive whole number", s, kText)
		}
	}
	return base, k, nil
}
