package spool

import (
	"fmt"
	"time"
)

// Missed-firing policies of a schedule: what happens to the firings that
// fell while no server was running (or further back than the scheduler's
// grace).
const (
	// MissedSkip (the default) counts them as missed and goes on with the
	// next firing after now.
	MissedSkip = "skip"
	// MissedOnce enqueues one job for the latest of them, counts the
	// others as missed, and goes on.
	MissedOnce = "once"
)

// Reasons a firing was missed (Schedule.LastMissedReason).
const (
	// MissedServerDown: the firing was due while no node ran the
	// scheduler (or further back than the scheduler's grace).
	MissedServerDown = "server_down"
	// MissedQueueFull: the job's queue was at its max_depth at the firing;
	// the firing is not retried.
	MissedQueueFull = "queue_full"
)

// Limits of a schedule request.
const (
	MaxCronLen     = 256
	MaxTimezoneLen = 64
)

// ScheduleJob is the job a schedule enqueues at each firing: the queue and
// the fields of an enqueue request. run_at, idempotency_key and depends_on
// are refused: each firing has its own run time and idempotency key.
type ScheduleJob struct {
	Queue string `json:"queue"`
	EnqueueRequest
}

// ScheduleRequest is the body of PUT /v1/schedules/{name}.
type ScheduleRequest struct {
	// Cron is a cron expression: five fields (minute hour day-of-month
	// month day-of-week), or six with a leading seconds field, or a
	// descriptor (@hourly, @daily, @weekly, @monthly, @yearly, @every 10s).
	Cron string `json:"cron"`
	// Timezone is the IANA time zone the expression is read in (default
	// UTC).
	Timezone string `json:"timezone,omitempty"`
	// Missed is the missed-firing policy: "skip" (default) or "once".
	Missed string `json:"missed,omitempty"`
	// Paused stores the schedule without letting it fire.
	Paused bool        `json:"paused,omitempty"`
	Job    ScheduleJob `json:"job"`
}

// Validate checks what can be checked without parsing the expression and
// the time zone (the engine does that).
func (r *ScheduleRequest) Validate(l Limits) error {
	if err := validText("cron", r.Cron, MaxCronLen, true); err != nil {
		return err
	}
	if err := validText("timezone", r.Timezone, MaxTimezoneLen, false); err != nil {
		return err
	}
	switch r.Missed {
	case "", MissedSkip, MissedOnce:
	default:
		return Invalidf("missed must be %q or %q, not %q", MissedSkip, MissedOnce, truncate(r.Missed, 40))
	}
	if r.Job.Queue == "" {
		return Invalidf("job.queue is required")
	}
	if err := ValidateQueueName(r.Job.Queue); err != nil {
		return fmt.Errorf("job.queue: %w", err)
	}
	if r.Job.RunAt != nil {
		return Invalidf("job.run_at is not allowed in a schedule: each firing runs at its fire time (use job.delay to run later)")
	}
	if r.Job.IdempotencyKey != "" {
		return Invalidf("job.idempotency_key is not allowed in a schedule: each firing gets its own key")
	}
	if len(r.Job.DependsOn) > 0 {
		return Invalidf("job.depends_on is not allowed in a schedule")
	}
	if err := r.Job.EnqueueRequest.Validate(l); err != nil {
		return fmt.Errorf("job.%w", err)
	}
	return nil
}

// ValidateScheduleName checks a schedule name; the rule is the one for
// queue names: [a-z0-9][a-z0-9._-]{0,127}.
func ValidateScheduleName(name string) error {
	if err := ValidateQueueName(name); err != nil {
		return Invalidf("schedule name %q is not allowed: use 1 to %d lower-case letters, digits, '.', '_' and '-', starting with a letter or digit", truncate(name, 40), MaxNameLen)
	}
	return nil
}

// Schedule is a schedule as the API shows it: its definition and what it
// has done.
type Schedule struct {
	Name     string      `json:"name"`
	Cron     string      `json:"cron"`
	Timezone string      `json:"timezone"`
	Missed   string      `json:"missed"`
	Paused   bool        `json:"paused"`
	Job      ScheduleJob `json:"job"`
	// NextFireAt is the next firing (absent while paused).
	NextFireAt *time.Time `json:"next_fire_at,omitempty"`
	// LastFireAt is the fire time of the last job enqueued, LastJobID its id.
	LastFireAt *time.Time `json:"last_fire_at,omitempty"`
	LastJobID  string     `json:"last_job_id,omitempty"`
	// FiredCount counts the firings that enqueued a job; MissedCount those
	// that did not (see LastMissedReason).
	FiredCount  int64 `json:"fired_count"`
	MissedCount int64 `json:"missed_count"`
	// LastMissedAt is the fire time of the last missed firing, and
	// LastMissedReason why: "server_down" or "queue_full".
	LastMissedAt     *time.Time `json:"last_missed_at,omitempty"`
	LastMissedReason string     `json:"last_missed_reason,omitempty"`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
}

// SchedulesResponse answers GET /v1/schedules: every schedule, by name.
type SchedulesResponse struct {
	Schedules []*Schedule `json:"schedules"`
}

// ScheduleDeleted answers DELETE /v1/schedules/{name}.
type ScheduleDeleted struct {
	Name    string `json:"name"`
	Deleted bool   `json:"deleted"`
}
