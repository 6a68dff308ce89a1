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
		m.rejectedTotal, m.purgedTotal, m.queueWaitHist, m.runTimeHist} {
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
