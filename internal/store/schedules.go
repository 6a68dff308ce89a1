package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/spoolq/spool"
)

// ScheduleRecord is a schedule as stored: the API view (definition,
// next_fire_at and counters) and a revision.
type ScheduleRecord struct {
	spool.Schedule
	// Rev changes on every write of the schedule; PutSchedule and
	// FireSchedule compare it.
	Rev uint64
}

// Clone returns a deep copy.
func (r *ScheduleRecord) Clone() *ScheduleRecord {
	if r == nil {
		return nil
	}
	c := *r
	c.Job.Payload = append(json.RawMessage(nil), r.Job.Payload...)
	if r.Job.Payload == nil {
		c.Job.Payload = nil
	}
	c.Job.Tags = append([]string(nil), r.Job.Tags...)
	c.Job.DependsOn = append([]string(nil), r.Job.DependsOn...)
	if r.Job.Delay != nil {
		d := *r.Job.Delay
		c.Job.Delay = &d
	}
	if r.Job.Timeout != nil {
		d := *r.Job.Timeout
		c.Job.Timeout = &d
	}
	if r.Job.Backoff != nil {
		b := *r.Job.Backoff
		c.Job.Backoff = &b
	}
	c.Job.RunAt = cloneTime(r.Job.RunAt)
	c.NextFireAt = cloneTime(r.NextFireAt)
	c.LastFireAt = cloneTime(r.LastFireAt)
	c.LastMissedAt = cloneTime(r.LastMissedAt)
	return &c
}

// FireParams asks to make one firing of a schedule, atomically: insert the
// job (or record a miss when its queue is full), count the firings skipped
// before it, and advance next_fire_at, all in one write, and only if the
// schedule's Rev is still Rev. Several nodes may try the same firing; one
// wins, the others get spool.ErrConflict and must do nothing.
type FireParams struct {
	Name string
	// Rev is the revision the caller read; a different stored Rev fails
	// with spool.ErrConflict and changes nothing. A deleted schedule fails
	// with spool.ErrNotFound.
	Rev uint64
	// Skipped firings, before FireAt, are counted as missed with
	// SkipReason; SkippedLast is the latest of them.
	Skipped     int64
	SkippedLast time.Time
	SkipReason  string
	// FireAt is the fire time of Job.
	FireAt time.Time
	// Job is the job of the firing (nil: the call only counts skipped
	// firings and advances). Its IdempotencyKey should be derived from
	// (schedule, FireAt): if the key already names a job, that job counts
	// as this firing's and nothing new is stored.
	Job *Record
	// MaxDepth of Job's queue (0: unbounded), enforced as Insert does; a
	// full queue records the firing as missed (spool.MissedQueueFull)
	// instead of failing.
	MaxDepth int64
	// NextFireAt is the schedule's next firing after this call.
	NextFireAt time.Time
	// Now is the schedule's updated_at.
	Now time.Time
}

// FireResult is the outcome of FireSchedule.
type FireResult struct {
	// Schedule is the stored schedule after the firing.
	Schedule *ScheduleRecord
	// Job is the job of the firing (with its payload), nil when no job was
	// stored: Job was nil or the queue was full.
	Job *Record
	// Existing is true when Job's idempotency key already named a job,
	// which is then Job.
	Existing bool
	// Full says the firing was missed because the queue was full.
	Full *spool.QueueFullError
}

// ApplyFire is the one rule every backend applies to a schedule's state in
// FireSchedule: count the skipped firings, then the firing (fired with
// jobID, or missed because the queue was full), then advance.
func ApplyFire(s *ScheduleRecord, p *FireParams, jobID string, full bool) {
	if p.Skipped > 0 {
		s.MissedCount += p.Skipped
		s.LastMissedAt = cloneTime(&p.SkippedLast)
		s.LastMissedReason = p.SkipReason
	}
	if p.Job != nil {
		at := p.FireAt.UTC()
		if full {
			s.MissedCount++
			s.LastMissedAt = &at
			s.LastMissedReason = spool.MissedQueueFull
		} else {
			s.FiredCount++
			s.LastFireAt = &at
			s.LastJobID = jobID
		}
	}
	next := p.NextFireAt.UTC()
	s.NextFireAt = &next
	s.UpdatedAt = p.Now.UTC()
	s.Rev++
}

// Schedules is the part of the seam that stores cron schedules.
type Schedules interface {
	// PutSchedule creates or replaces a schedule, compare-and-set: rec.Rev
	// must be the stored Rev, or 0 to create one that does not exist;
	// otherwise spool.ErrConflict. It returns the stored record (Rev
	// advanced).
	PutSchedule(ctx context.Context, rec *ScheduleRecord) (*ScheduleRecord, error)
	// GetSchedule returns a schedule, or spool.ErrNotFound.
	GetSchedule(ctx context.Context, name string) (*ScheduleRecord, error)
	// ListSchedules returns every schedule, sorted by name.
	ListSchedules(ctx context.Context) ([]*ScheduleRecord, error)
	// DeleteSchedule removes a schedule, or returns spool.ErrNotFound.
	// Jobs it enqueued stay.
	DeleteSchedule(ctx context.Context, name string) error
	// FireSchedule makes one firing (see FireParams) in one atomic write.
	FireSchedule(ctx context.Context, p FireParams) (*FireResult, error)
}
