package retrieval

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/atrium-ml/atrium/internal/data/online"
)

// Metrics are the Prometheus metrics of online retrieval, labelled by feature
// set (request counts and latencies are the HTTP server's, by route).
type Metrics struct {
	lookups *prometheus.CounterVec
	age     *prometheus.HistogramVec
	pushed  *prometheus.CounterVec
	// pushChecks counts the data-quality checks pushes failed, by level:
	// error (the push was refused) or warn (the rows were written).
	pushChecks *prometheus.CounterVec
	deleted    *prometheus.CounterVec
	// onDemandFailed counts on-demand values that could not be computed
	// (answered null), by on-demand set and feature.
	onDemandFailed *prometheus.CounterVec
}

// NewMetrics creates the metrics; register them with Collectors.
func NewMetrics() *Metrics {
	return &Metrics{
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atrium_online_lookups_total",
			Help: "Entity rows looked up in the online store, by feature set and result (found, not_found, outside_max_age).",
		}, []string{"set", "result"}),
		// Feast exports feast_feature_freshness_seconds; this is its distribution
		// over the rows actually served, which shows stale materialization and
		// the share of traffic it affects.
		age: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "atrium_online_feature_age_seconds",
			Help:    "Age (now minus event time) of the feature rows served, by feature set.",
			Buckets: []float64{1, 10, 60, 300, 900, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400, 30 * 86400, 90 * 86400},
		}, []string{"set"}),
		pushed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atrium_online_pushed_rows_total",
			Help: "Rows written through POST /push, by feature set and destination (online, offline).",
		}, []string{"set", "to"}),
		pushChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atrium_push_check_failures_total",
			Help: "Data-quality checks failed by POST /push requests, by feature set, column, check and level (error: refused; warn: written).",
		}, []string{"set", "column", "check", "level"}),
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atrium_online_deleted_keys_total",
			Help: "Entity keys deleted (tombstoned) through POST /delete-online, by feature set.",
		}, []string{"set"}),
		onDemandFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atrium_online_on_demand_failures_total",
			Help: "On-demand values that could not be computed (an int64 division by zero, an overflow, a failed conversion) and were answered null, by on-demand set and feature.",
		}, []string{"set", "feature"}),
	}
}

// Collectors lists the metrics for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.lookups, m.age, m.pushed, m.pushChecks, m.deleted, m.onDemandFailed}
}

func (m *Metrics) observe(set string, ttl time.Duration, res *online.Result, now time.Time) {
	found, stale := 0, 0
	age := m.age.WithLabelValues(set)
	for j, ok := range res.Found {
		if !ok {
			continue
		}
		found++
		d := now.Sub(res.TS[j])
		if ttl > 0 && d > ttl {
			stale++
		}
		age.Observe(d.Seconds())
	}
	if n := found - stale; n > 0 {
		m.lookups.WithLabelValues(set, "found").Add(float64(n))
	}
	if stale > 0 {
		m.lookups.WithLabelValues(set, "outside_max_age").Add(float64(stale))
	}
	if n := len(res.Found) - found; n > 0 {
		m.lookups.WithLabelValues(set, "not_found").Add(float64(n))
	}
}
