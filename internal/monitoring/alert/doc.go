// Package alert evaluates the monitoring rules of monitors/*.yaml and
// notifies their transitions.
//
// # States
//
// Each evaluation measures a monitor (a Measurer reads the prediction log,
// the labels or the pipeline runs) and compares the value with its
// threshold. A monitor whose condition holds is pending, and firing once it
// has held for the monitor's `for` (at once when `for` is 0); one whose
// condition no longer holds is inactive. Going to firing notifies "firing";
// leaving firing notifies "resolved"; a pending monitor that recovers
// notifies nothing. A window without data follows the monitor's no_data:
// keep the state (default), count as breached, or as not breached.
//
// # Exactly one notification per transition
//
// States live in the metadata database (component "monitoring_alerts"),
// with the last transition notified beside the status: a firing monitor
// whose firing was notified does not notify again after a restart. Every
// write is a compare-and-set on a sequence number, and a notification is
// claimed in the database before it is sent, so that several servers
// evaluating the same rules send it once. A delivery that fails on every
// notifier gives the claim back and is retried at the next evaluation; a
// process that dies between claim and delivery loses that notification
// (at most once: a duplicate page after every restart is worse).
//
// # Metrics
//
// The Evaluator is a prometheus.Collector: atrium_monitor_value{monitor},
// atrium_alert_firing{monitor,severity},
// atrium_monitor_evaluations_total{monitor,result} and
// atrium_alert_notifications_total{notifier,state,result}, so Prometheus
// and Alertmanager can alert without Atrium's notifier.
package alert
