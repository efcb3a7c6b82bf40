package predlog

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the prediction log's Prometheus metrics, shared by the Writers
// of a process; register them with Collectors.
type Metrics struct {
	dropped       *prometheus.CounterVec
	rows          *prometheus.CounterVec
	files         prometheus.Counter
	flushDuration prometheus.Histogram
	buffered      prometheus.Gauge
	capacity      prometheus.Gauge
}

// NewMetrics creates the metrics.
func NewMetrics() *Metrics {
	return &Metrics{
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atrium_prediction_log_dropped_rows_total",
			Help: "Scored rows not written to the prediction log, by model and reason (buffer_full, invalid, write_error, closed); rows left out by sampling are not counted.",
		}, []string{"model", "reason"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atrium_prediction_log_rows_total",
			Help: "Scored rows written to the prediction log, by model.",
		}, []string{"model"}),
		files: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "atrium_prediction_log_files_total",
			Help: "Parquet files published to the prediction log.",
		}),
		flushDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "atrium_prediction_log_flush_duration_seconds",
			Help:    "Time to write one flush of the prediction log's buffer to Parquet.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9), // 1 ms to 65 s
		}),
		buffered: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "atrium_prediction_log_buffer_rows",
			Help: "Rows held by the prediction log, waiting or being written.",
		}),
		capacity: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "atrium_prediction_log_buffer_capacity_rows",
			Help: "Rows the prediction log's buffers can hold; beyond, rows are dropped.",
		}),
	}
}

// Collectors lists the metrics for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.dropped, m.rows, m.files, m.flushDuration, m.buffered, m.capacity}
}
