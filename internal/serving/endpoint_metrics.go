package serving

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// endpointMetrics are the metrics of the feature-aware endpoints (predict,
// rank, rankers), by model and version: what the model metrics (Metrics)
// cannot see, the feature fetch and the request as a whole.
type endpointMetrics struct {
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	fetch    *prometheus.HistogramVec
	missing  *prometheus.CounterVec
}

// Latency buckets: a rank request is a few milliseconds; the tail matters.
var requestBuckets = []float64{100e-6, 250e-6, 500e-6, 1e-3, 2e-3, 3e-3, 5e-3, 7.5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1}

func newEndpointMetrics() *endpointMetrics {
	return &endpointMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atrium_model_endpoint_requests_total",
			Help: "Requests scored by the feature-aware endpoints, by route (predict, rank, ranker), model (or ranker) and version.",
		}, []string{"route", "model", "version"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atrium_model_endpoint_errors_total",
			Help: "Requests of the feature-aware endpoints that failed, by route, model (or ranker) and reason (input, not_found, unavailable, internal).",
		}, []string{"route", "model", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "atrium_model_endpoint_seconds",
			Help:    "Time of a scored request of the feature-aware endpoints, features and model, by route, model (or ranker) and version.",
			Buckets: requestBuckets,
		}, []string{"route", "model", "version"}),
		fetch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "atrium_model_feature_fetch_seconds",
			Help:    "Time to fetch a request's features (online store read and on-demand features), by model and version.",
			Buckets: requestBuckets,
		}, []string{"model", "version"}),
		missing: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atrium_model_missing_values_total",
			Help: "Missing values in the rows scored by the feature-aware endpoints (an entity or feature not found, a null), by model, version and feature.",
		}, []string{"model", "version", "feature"}),
	}
}

func (m *endpointMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.errors, m.latency, m.fetch, m.missing}
}

// scored records a request that was answered.
func (m *endpointMetrics) scored(route, model, version string, start time.Time) {
	m.requests.WithLabelValues(route, model, version).Inc()
	m.latency.WithLabelValues(route, model, version).Observe(time.Since(start).Seconds())
}
