package serving

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus metrics of served models, by model and version
// (the HTTP server counts requests by route; these count the model calls
// behind them, whichever route made them: OIP infer, predict, rank).
type Metrics struct {
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	rows     *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	loads    *prometheus.CounterVec
	failures *prometheus.CounterVec
	loadTime *prometheus.HistogramVec
	info     *prometheus.GaugeVec
	swaps    *prometheus.CounterVec
	shadow   *prometheus.CounterVec
}

// NewMetrics creates the metrics; register them with Collectors (the
// Service does it through its Describe and Collect).
func NewMetrics() *Metrics {
	return &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atrium_model_requests_total",
			Help: "Predict calls of served models (one per request and model), by model and version.",
		}, []string{"model", "version"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atrium_model_errors_total",
			Help: "Predict calls that failed, by model and version.",
		}, []string{"model", "version"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atrium_model_rows_total",
			Help: "Rows scored by served models, by model and version.",
		}, []string{"model", "version"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "atrium_model_predict_seconds",
			Help:    "Model time of a predict call (features already built), by model and version.",
			Buckets: []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1},
		}, []string{"model", "version"}),
		loads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atrium_model_loads_total",
			Help: "Model versions loaded from the registry, by model.",
		}, []string{"model"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atrium_model_load_failures_total",
			Help: "Model versions that failed to load (the previous version keeps serving), by model.",
		}, []string{"model"}),
		loadTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "atrium_model_load_seconds",
			Help:    "Time to read and parse a model version, by model.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"model"}),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "atrium_model_serving_info",
			Help: "1 for the version each followed alias of a model serves (canary and shadow aliases included).",
		}, []string{"model", "alias", "version"}),
		swaps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atrium_model_swaps_total",
			Help: "Times a moved alias was followed: the new version swapped in, by model and alias.",
		}, []string{"model", "alias"}),
		shadow: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atrium_model_shadow_total",
			Help: "Shadow scorings, by model and result (scored, failed, dropped: the queue was full).",
		}, []string{"model", "result"}),
	}
}

// Collectors lists the metrics for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.errors, m.rows, m.latency, m.loads, m.failures, m.loadTime, m.info, m.swaps, m.shadow}
}

// versionMetrics are one version's series, looked up once when the version
// loads so that a predict call does no label hashing.
type versionMetrics struct {
	requests, errors, rows prometheus.Counter
	latency                prometheus.Observer
}

func (m *Metrics) forVersion(name, version string) *versionMetrics {
	return &versionMetrics{
		requests: m.requests.WithLabelValues(name, version),
		errors:   m.errors.WithLabelValues(name, version),
		rows:     m.rows.WithLabelValues(name, version),
		latency:  m.latency.WithLabelValues(name, version),
	}
}

func (v *versionMetrics) observe(rows int, start time.Time, err error) {
	v.requests.Inc()
	if err != nil {
		v.errors.Inc()
		return
	}
	v.rows.Add(float64(rows))
	v.latency.Observe(time.Since(start).Seconds())
}
