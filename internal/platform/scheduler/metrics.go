package scheduler

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the scheduler's Prometheus metrics: "feature set X is stale"
// is one alert on time() - atrium_job_last_success_timestamp_seconds.
type Metrics struct {
	lastSuccess *prometheus.GaugeVec
	duration    *prometheus.HistogramVec
	failures    *prometheus.CounterVec
	runs        *prometheus.CounterVec
	running     prometheus.Gauge
}

// NewMetrics creates the metrics.
func NewMetrics() *Metrics {
	return &Metrics{
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "atrium_job_last_success_timestamp_seconds",
			Help: "When the job's last successful run finished (Unix seconds), by job.",
		}, []string{"job"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "atrium_job_duration_seconds",
			Help:    "Wall time of the job's attempts, by job.",
			Buckets: prometheus.ExponentialBuckets(0.1, 4, 10), // 100 ms to 7 h
		}, []string{"job"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atrium_job_failures_total",
			Help: "Attempts that failed, timed out or failed a check, by job.",
		}, []string{"job"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atrium_job_runs_total",
			Help: "Attempts finished, by job and state.",
		}, []string{"job", "state"}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "atrium_jobs_running",
			Help: "Attempts this process is running.",
		}),
	}
}

// Collectors lists the metrics for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.lastSuccess, m.duration, m.failures, m.runs, m.running}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.Collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.Collectors() {
		c.Collect(ch)
	}
}
