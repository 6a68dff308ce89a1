package engine

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spoolq/spool"
)

// Metrics are the engine's Prometheus collectors. A nil *Metrics records
// nothing.
type Metrics struct {
	enqueuedTotal  *prometheus.CounterVec
	finishedTotal  *prometheus.CounterVec
	retriedTotal   *prometheus.CounterVec
	expiredTotal   *prometheus.CounterVec
	rejectedTotal  *prometheus.CounterVec
	refusedTotal   *prometheus.CounterVec
	purgedTotal    *prometheus.CounterVec
	queueWaitHist  *prometheus.HistogramVec
	runTimeHist    *prometheus.HistogramVec
	registeredWith prometheus.Registerer
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	buckets := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}
	m := &Metrics{
		enqueuedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spool_jobs_enqueued_total", Help: "Jobs accepted, by queue (idempotent repeats excluded).",
		}, []string{"queue"}),
		finishedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spool_jobs_finished_total", Help: "Jobs that reached a terminal state, by queue and state (succeeded, dead, cancelled).",
		}, []string{"queue", "state"}),
		retriedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spool_jobs_failed_attempts_total", Help: "Failed attempts that were scheduled for retry, by queue.",
		}, []string{"queue"}),
		expiredTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spool_leases_expired_total", Help: "Leases that lapsed without an ack (counted as failed attempts), by queue.",
		}, []string{"queue"}),
		rejectedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spool_enqueue_rejected_total", Help: "Enqueue requests refused with 503 because the queue was full, by queue.",
		}, []string{"queue"}),
		refusedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spool_admission_refused_total", Help: "Enqueues and publishes refused by a server-wide limit, by error code (disk_full, ...).",
		}, []string{"code"}),
		purgedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spool_jobs_purged_total", Help: "Terminal jobs deleted after their queue's retention, by queue.",
		}, []string{"queue"}),
		queueWaitHist: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "spool_job_queue_wait_seconds", Help: "Time from ready to leased, by queue.", Buckets: buckets,
		}, []string{"queue"}),
		runTimeHist: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "spool_job_run_seconds", Help: "Time from lease to ack or expiry of an attempt, by queue.", Buckets: buckets,
		}, []string{"queue"}),
		registeredWith: reg,
	}
	for _, c := range []prometheus.Collector{m.enqueuedTotal, m.finishedTotal, m.retriedTotal, m.expiredTotal,
		m.rejectedTotal, m.refusedTotal, m.purgedTotal, m.queueWaitHist, m.runTimeHist} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) enqueued(q string, n int) {
	if m != nil {
		m.enqueuedTotal.WithLabelValues(q).Add(float64(n))
	}
}

func (m *Metrics) finished(q string, s spool.State) {
	if m != nil {
		m.finishedTotal.WithLabelValues(q, string(s)).Inc()
	}
}

func (m *Metrics) retried(q string) {
	if m != nil {
		m.retriedTotal.WithLabelValues(q).Inc()
	}
}

func (m *Metrics) expired(q string) {
	if m != nil {
		m.expiredTotal.WithLabelValues(q).Inc()
	}
}

func (m *Metrics) rejected(q string) {
	if m != nil {
		m.rejectedTotal.WithLabelValues(q).Inc()
	}
}

func (m *Metrics) refused(code string) {
	if m != nil {
		m.refusedTotal.WithLabelValues(code).Inc()
	}
}

func (m *Metrics) purged(q string, n int) {
	if m != nil {
		m.purgedTotal.WithLabelValues(q).Add(float64(n))
	}
}

func (m *Metrics) queueWait(q string, d time.Duration) {
	if m != nil {
		m.queueWaitHist.WithLabelValues(q).Observe(d.Seconds())
	}
}

func (m *Metrics) runTime(q string, d time.Duration) {
	if m != nil {
		m.runTimeHist.WithLabelValues(q).Observe(d.Seconds())
	}
}

// DepthCollector exports the number of jobs per queue and state, read from
// the store at scrape time.
type DepthCollector struct {
	e    *Engine
	desc *prometheus.Desc
}

// NewDepthCollector returns a collector of spool_queue_jobs{queue,state}.
func NewDepthCollector(e *Engine) *DepthCollector {
	return &DepthCollector{e: e, desc: prometheus.NewDesc("spool_queue_jobs",
		"Jobs in each queue by state (terminal states until purged).", []string{"queue", "state"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *DepthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *DepthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	qs, err := c.e.st.Queues(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, q := range qs {
		for _, s := range spool.States {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(q.Counts[s]), q.Name, string(s))
		}
	}
}

// TelemetryCollector exports each queue's telemetry (see telemetry.go),
// cluster-wide, computed at scrape time: rates, wait and run quantiles,
// Little's law, busy and needed workers, drain time.
type TelemetryCollector struct {
	e                                        *Engine
	arrival, throughput, failure             *prometheus.Desc
	wait, run, littleL, littleLW             *prometheus.Desc
	busy, offered, minWorkers, needed, drain *prometheus.Desc
}

// NewTelemetryCollector returns the collector of the spool_queue_*
// telemetry gauges.
func NewTelemetryCollector(e *Engine) *TelemetryCollector {
	w := []string{"queue", "window"}
	q := []string{"queue"}
	return &TelemetryCollector{
		e:          e,
		arrival:    prometheus.NewDesc("spool_queue_arrival_rate", "Jobs enqueued per second over the window (λ), cluster-wide.", w, nil),
		throughput: prometheus.NewDesc("spool_queue_throughput", "Jobs finished per second over the window (X), by outcome, cluster-wide.", append(w, "state"), nil),
		failure:    prometheus.NewDesc("spool_queue_failure_rate", "Failed attempts (retried or dead) per second over the window.", w, nil),
		wait:       prometheus.NewDesc("spool_queue_wait_seconds", "Time from ready to started over the window: mean and quantiles.", append(w, "quantile"), nil),
		run:        prometheus.NewDesc("spool_queue_run_seconds", "Time from started to finished over the window: mean and quantiles.", append(w, "quantile"), nil),
		littleL:    prometheus.NewDesc("spool_queue_in_system_avg", "Little's law L: time-averaged jobs ready or active over the window.", w, nil),
		littleLW:   prometheus.NewDesc("spool_queue_lambda_w", "Little's law λ·W: attempts started per second times mean wait plus run.", w, nil),
		busy:       prometheus.NewDesc("spool_queue_busy_workers", "Active jobs now: the leases workers hold.", q, nil),
		offered:    prometheus.NewDesc("spool_queue_offered_load", "Workers busy on average at the last 5 minutes' rate and service time.", q, nil),
		minWorkers: prometheus.NewDesc("spool_queue_min_workers", "Fewest workers that keep up with the last 5 minutes' load.", q, nil),
		needed:     prometheus.NewDesc("spool_queue_workers_needed", "Workers needed for the queue's target_wait (M/M/c, Erlang C); only for queues with a target.", q, nil),
		drain:      prometheus.NewDesc("spool_queue_drain_seconds", "Time to drain the backlog at the current net rate; only while it shrinks.", q, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *TelemetryCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.arrival, c.throughput, c.failure, c.wait, c.run, c.littleL, c.littleLW,
		c.busy, c.offered, c.minWorkers, c.needed, c.drain} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *TelemetryCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	all, err := c.e.AllQueueStats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.arrival, err)
		return
	}
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, st := range all {
		q := st.Queue
		for _, w := range st.Windows {
			win := w.Window.D().String()
			g(c.arrival, w.ArrivalRate, q, win)
			for _, s := range []spool.State{spool.StateSucceeded, spool.StateDead, spool.StateCancelled} {
				g(c.throughput, w.ThroughputByOutcome[s], q, win, string(s))
			}
			g(c.failure, w.FailureRate, q, win)
			for _, t := range []struct {
				d *prometheus.Desc
				v spool.Timing
			}{{c.wait, w.Wait}, {c.run, w.Run}} {
				g(t.d, t.v.Mean, q, win, "mean")
				g(t.d, t.v.P50, q, win, "0.5")
				g(t.d, t.v.P95, q, win, "0.95")
				g(t.d, t.v.P99, q, win, "0.99")
			}
			g(c.littleL, w.LittlesLaw.L, q, win)
			g(c.littleLW, w.LittlesLaw.LambdaW, q, win)
		}
		s := st.Sizing
		g(c.busy, float64(s.Busy), q)
		g(c.offered, s.OfferedLoad, q)
		if s.MinWorkers != nil {
			g(c.minWorkers, float64(*s.MinWorkers), q)
		}
		if s.WorkersNeeded != nil {
			g(c.needed, float64(*s.WorkersNeeded), q)
		}
		if s.DrainTime != nil {
			g(c.drain, *s.DrainTime, q)
		}
	}
}

// BudgetCollector exports the server-wide budget: what the store holds
// (read at scrape time) and the caps.
type BudgetCollector struct {
	e           *Engine
	used, limit *prometheus.Desc
}

// NewBudgetCollector returns a collector of spool_budget_used{resource}
// and spool_budget_limit{resource} (resource: queues, jobs,
// payload_bytes).
func NewBudgetCollector(e *Engine) *BudgetCollector {
	return &BudgetCollector{e: e,
		used: prometheus.NewDesc("spool_budget_used", "What the server holds against its budget: queues, jobs not yet finished (all queues; cluster-wide).",
			[]string{"resource"}, nil),
		limit: prometheus.NewDesc("spool_budget_limit", "The server's budget: most queues, most jobs not yet finished across all queues (0: no cap).",
			[]string{"resource"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *BudgetCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.used; ch <- c.limit }

// Collect implements prometheus.Collector.
func (c *BudgetCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u, b, err := c.e.Usage(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.used, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.used, prometheus.GaugeValue, float64(u.Queues), "queues")
	ch <- prometheus.MustNewConstMetric(c.used, prometheus.GaugeValue, float64(u.Unfinished), "jobs")
	ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(b.MaxQueues), "queues")
	ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(b.MaxJobs), "jobs")
	ch <- prometheus.MustNewConstMetric(c.used, prometheus.GaugeValue, float64(u.PayloadBytes), "payload_bytes")
	ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(b.MaxPayloadBytes), "payload_bytes")
}
