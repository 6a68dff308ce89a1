package spool

import "time"

// QueueStats answers GET /v1/queues/{queue}/stats: a queue's telemetry,
// cluster-wide (every node that shares the store reports the same
// figures). See docs/telemetry.md for the model behind each figure.
type QueueStats struct {
	Queue string `json:"queue"`
	// At is the end of every window: the start of the telemetry bucket in
	// progress (windows hold whole buckets only).
	At time.Time `json:"at"`
	// BucketWidth is the width of the telemetry buckets the windows are
	// made of.
	BucketWidth Duration `json:"bucket_width"`
	Now         StatsNow `json:"now"`
	// Windows are the last 1 minute, 5 minutes and 1 hour, in that order.
	Windows []WindowStats `json:"windows"`
	Sizing  Sizing        `json:"sizing"`
	// History is a series over a longer span, when asked for.
	History *StatsHistory `json:"history,omitempty"`
}

// StatsNow is the state of a queue now.
type StatsNow struct {
	Counts map[State]int64 `json:"counts"`
	// Depth counts jobs not yet terminal.
	Depth int64 `json:"depth"`
	// Busy counts active jobs: the leases workers hold, so the workers busy
	// with this queue.
	Busy           int64    `json:"busy"`
	OldestReadyAge Duration `json:"oldest_ready_age"`
}

// WindowStats are a queue's figures over one window.
type WindowStats struct {
	Window Duration `json:"window"`
	// Arrivals counts jobs enqueued; ArrivalRate is λ, per second.
	Arrivals    int64   `json:"arrivals"`
	ArrivalRate float64 `json:"arrival_rate"`
	// Finished counts jobs that reached a terminal state, by state;
	// Throughput is X, all of them per second.
	Finished            map[State]int64   `json:"finished"`
	Throughput          float64           `json:"throughput"`
	ThroughputByOutcome map[State]float64 `json:"throughput_by_outcome"`
	// Retries counts failed attempts that were scheduled for another try;
	// FailureRate is failed attempts (retried or dead) per second.
	Retries     int64   `json:"retries"`
	FailureRate float64 `json:"failure_rate"`
	// Wait is the time from ready to started (per attempt); Run the time
	// from started to finished (per attempt, an expired lease included).
	Wait Timing `json:"wait"`
	Run  Timing `json:"run"`
	// AvgDepth, AvgReady and AvgBusy are time averages of the jobs not
	// terminal, ready and active, sampled every few seconds.
	AvgDepth float64 `json:"avg_depth"`
	AvgReady float64 `json:"avg_ready"`
	AvgBusy  float64 `json:"avg_busy"`
	// LittlesLaw sets the measured L next to λ·W.
	LittlesLaw LittlesLaw `json:"littles_law"`
}

// Timing summarises durations, in seconds. The quantiles are estimated from
// fixed histogram buckets (linear within a bucket); all are 0 when Count
// is.
type Timing struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_seconds"`
	P50   float64 `json:"p50_seconds"`
	P95   float64 `json:"p95_seconds"`
	P99   float64 `json:"p99_seconds"`
}

// LittlesLaw checks L = λ·W over a window, for the jobs in the system
// (ready or active): L is their measured time-averaged number, Lambda the
// rate at which attempts start (λ), W the mean time an attempt spends
// waiting plus running. In a steady state L and LambdaW agree.
type LittlesLaw struct {
	L       float64 `json:"l"`
	Lambda  float64 `json:"lambda"`
	W       float64 `json:"w_seconds"`
	LambdaW float64 `json:"lambda_w"`
}

// Sizing is what the figures of the last 5 minutes say about the workers
// a queue needs and its backlog.
type Sizing struct {
	Window Duration `json:"window"`
	// ArrivalRate is the rate attempts start at when any started (retries
	// count, as they need a worker too), else the arrival rate.
	ArrivalRate float64 `json:"arrival_rate"`
	// ServiceTime is the mean run time, in seconds.
	ServiceTime float64 `json:"service_time_seconds"`
	// OfferedLoad is ArrivalRate × ServiceTime: the workers busy on
	// average; fewer workers than this cannot keep up.
	OfferedLoad float64 `json:"offered_load"`
	Busy        int64   `json:"busy"`
	// MinWorkers is the smallest number of workers that keeps up (more
	// than OfferedLoad); absent without a measured service time.
	MinWorkers *int `json:"min_workers,omitempty"`
	// TargetWait is the queue's target_wait (0: none set).
	TargetWait Duration `json:"target_wait"`
	// WorkersNeeded is the smallest number of workers whose mean wait
	// stays within TargetWait by the M/M/c (Erlang C) model; absent
	// without a target or without a measured service time.
	WorkersNeeded *int `json:"workers_needed,omitempty"`
	// NetRate is throughput minus arrival rate: how fast the backlog
	// shrinks (negative: grows).
	NetRate float64 `json:"net_rate"`
	// DrainTime is the backlog (the jobs not terminal) over NetRate, in
	// seconds: 0 for an empty queue, absent when it is not shrinking.
	DrainTime *float64 `json:"drain_time_seconds,omitempty"`
}

// StatsHistory is a series of points at a fixed step, oldest first.
type StatsHistory struct {
	Span   Duration     `json:"span"`
	Step   Duration     `json:"step"`
	Points []StatsPoint `json:"points"`
}

// StatsPoint is one step of a StatsHistory; steps without data are
// points of zeros.
type StatsPoint struct {
	At          time.Time `json:"at"`
	Arrivals    int64     `json:"arrivals"`
	Succeeded   int64     `json:"succeeded"`
	Dead        int64     `json:"dead"`
	Cancelled   int64     `json:"cancelled"`
	Retries     int64     `json:"retries"`
	WaitMean    float64   `json:"wait_mean_seconds"`
	WaitP95     float64   `json:"wait_p95_seconds"`
	RunMean     float64   `json:"run_mean_seconds"`
	AvgDepth    float64   `json:"avg_depth"`
	AvgBusy     float64   `json:"avg_busy"`
	ArrivalRate float64   `json:"arrival_rate"`
	Throughput  float64   `json:"throughput"`
}
