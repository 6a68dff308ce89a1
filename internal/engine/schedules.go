package engine

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // IANA time zones even where the system has none

	"github.com/robfig/cron/v3"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// Scheduler timing.
const (
	// ScheduleGrace is how late a firing may be made: a firing found due
	// more than this long ago (the server was down, or every node was
	// stalled) is missed, reason "server_down", and handled by the
	// schedule's missed policy. Within the grace it fires as usual.
	ScheduleGrace = 5 * time.Second
	// ScheduleTick caps the scheduler's sleep, so that schedules created or
	// changed on other nodes (or by a direct store write) are seen within
	// it.
	ScheduleTick = time.Second
	// maxCatchUp bounds how many missed firings one pass counts one by one;
	// beyond it the schedule jumps to its next firing after now.
	maxCatchUp = 1_000_000
)

// cronParser reads standard five-field expressions, an optional leading
// seconds field, and descriptors (@hourly, @every 10s, ...).
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// cronSpec is a parsed schedule expression in its time zone.
type cronSpec struct {
	sched cron.Schedule
	loc   *time.Location
}

// next returns the first firing strictly after t, in UTC (zero if none).
func (c cronSpec) next(t time.Time) time.Time {
	n := c.sched.Next(t.In(c.loc))
	if n.IsZero() {
		return n
	}
	return n.UTC()
}

// parseCron parses a schedule's expression and time zone ("" is UTC) and
// checks that it fires at all after now.
func parseCron(expr, tz string, now time.Time) (cronSpec, error) {
	if tz == "" {
		tz = "UTC"
	}
	if tz == "Local" {
		return cronSpec{}, spool.Invalidf("timezone %q is not allowed: name an IANA time zone such as \"Europe/Paris\" or \"UTC\"", tz)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return cronSpec{}, spool.Invalidf("unknown timezone %q: name an IANA time zone such as \"Europe/Paris\" or \"UTC\"", cronTruncate(tz, 64))
	}
	trimmed := strings.TrimSpace(expr)
	if strings.HasPrefix(trimmed, "TZ=") || strings.HasPrefix(trimmed, "CRON_TZ=") {
		return cronSpec{}, spool.Invalidf("cron %q: give the time zone in the timezone field, not in the expression", cronTruncate(expr, 80))
	}
	s, err := cronParser.Parse(trimmed)
	if err != nil {
		return cronSpec{}, spool.Invalidf("cron %q is not a valid expression (5 fields \"min hour dom month dow\", 6 with leading seconds, or @hourly, @daily, @every 10s, ...): %v", cronTruncate(expr, 80), err)
	}
	c := cronSpec{sched: s, loc: loc}
	if c.next(now).IsZero() {
		return cronSpec{}, spool.Invalidf("cron %q never fires", cronTruncate(expr, 80))
	}
	return c, nil
}

func cronTruncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// scheduleWake lets a schedule change wake the scheduler loop. The zero
// value is ready to use.
type scheduleWake struct {
	once sync.Once
	ch   chan struct{}
}

func (w *scheduleWake) c() chan struct{} {
	w.once.Do(func() { w.ch = make(chan struct{}, 1) })
	return w.ch
}

func (w *scheduleWake) poke() {
	select {
	case w.c() <- struct{}{}:
	default:
	}
}

// scheduleView is the API view of a stored schedule.
func scheduleView(r *store.ScheduleRecord) *spool.Schedule {
	c := r.Clone()
	return &c.Schedule
}

// PutSchedule creates or replaces a schedule. req must have passed
// Validate. The counters of an existing schedule are kept, and so is its
// next firing unless the expression, the time zone or the paused state
// changed (then it is the first firing after now). It reports whether the
// schedule was created.
func (e *Engine) PutSchedule(ctx context.Context, name string, req spool.ScheduleRequest) (*spool.Schedule, bool, error) {
	if err := spool.ValidateScheduleName(name); err != nil {
		return nil, false, err
	}
	if err := spool.ValidateQueueName(req.Job.Queue); err != nil {
		return nil, false, fmt.Errorf("job.queue: %w", err)
	}
	if req.Timezone == "" {
		req.Timezone = "UTC"
	}
	if req.Missed == "" {
		req.Missed = spool.MissedSkip
	}
	now := e.clock.Now().UTC()
	spec, err := parseCron(req.Cron, req.Timezone, now)
	if err != nil {
		return nil, false, err
	}
	for try := 0; ; try++ {
		cur, err := e.st.GetSchedule(ctx, name)
		if err != nil && !errors.Is(err, spool.ErrNotFound) {
			return nil, false, fmt.Errorf("reading schedule %q: %w", name, err)
		}
		rec := &store.ScheduleRecord{Schedule: spool.Schedule{
			Name: name, Cron: req.Cron, Timezone: req.Timezone, Missed: req.Missed, Paused: req.Paused,
			Job: req.Job, CreatedAt: now, UpdatedAt: now,
		}}
		if cur != nil {
			rec.Rev = cur.Rev
			rec.CreatedAt = cur.CreatedAt
			rec.FiredCount, rec.MissedCount = cur.FiredCount, cur.MissedCount
			rec.LastFireAt, rec.LastJobID = cur.LastFireAt, cur.LastJobID
			rec.LastMissedAt, rec.LastMissedReason = cur.LastMissedAt, cur.LastMissedReason
		}
		if !req.Paused {
			if cur != nil && !cur.Paused && cur.NextFireAt != nil && cur.Cron == req.Cron && cur.Timezone == req.Timezone {
				rec.NextFireAt = cur.NextFireAt
			} else {
				next := spec.next(now)
				rec.NextFireAt = &next
			}
		}
		out, err := e.st.PutSchedule(ctx, rec)
		if errors.Is(err, spool.ErrConflict) && try < 8 {
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("storing schedule %q: %w", name, err)
		}
		e.sched.poke()
		return scheduleView(out), cur == nil, nil
	}
}

// GetSchedule returns one schedule.
func (e *Engine) GetSchedule(ctx context.Context, name string) (*spool.Schedule, error) {
	if err := spool.ValidateScheduleName(name); err != nil {
		return nil, err
	}
	r, err := e.st.GetSchedule(ctx, name)
	if err != nil {
		return nil, e.scheduleNotFound(name, err)
	}
	return scheduleView(r), nil
}

// RunSchedule enqueues a schedule's job now, as a firing would, without
// changing its next firing or its counters (the dashboard's "run now").
// Each call makes a job, unless the schedule's job names an idempotency
// key, which then returns the job it named.
func (e *Engine) RunSchedule(ctx context.Context, name string) (*spool.Job, error) {
	sc, err := e.GetSchedule(ctx, name)
	if err != nil {
		return nil, err
	}
	res, err := e.Enqueue(ctx, sc.Job.Queue, []spool.EnqueueRequest{sc.Job.EnqueueRequest})
	if err != nil {
		return nil, err
	}
	return res[0].Job, nil
}

// Schedules lists every schedule by name.
func (e *Engine) Schedules(ctx context.Context) ([]*spool.Schedule, error) {
	recs, err := e.st.ListSchedules(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing schedules: %w", err)
	}
	out := make([]*spool.Schedule, len(recs))
	for i, r := range recs {
		out[i] = scheduleView(r)
	}
	return out, nil
}

// DeleteSchedule removes a schedule; jobs it enqueued stay.
func (e *Engine) DeleteSchedule(ctx context.Context, name string) error {
	if err := spool.ValidateScheduleName(name); err != nil {
		return err
	}
	if err := e.st.DeleteSchedule(ctx, name); err != nil {
		return e.scheduleNotFound(name, err)
	}
	return nil
}

// PauseSchedule stops a schedule from firing until ResumeSchedule.
func (e *Engine) PauseSchedule(ctx context.Context, name string) (*spool.Schedule, error) {
	return e.mutateSchedule(ctx, name, func(r *store.ScheduleRecord, _ cronSpec, _ time.Time) bool {
		if r.Paused {
			return false
		}
		r.Paused, r.NextFireAt = true, nil
		return true
	})
}

// ResumeSchedule lets a paused schedule fire again, from its first firing
// after now: the firings that fell while it was paused are not made.
func (e *Engine) ResumeSchedule(ctx context.Context, name string) (*spool.Schedule, error) {
	return e.mutateSchedule(ctx, name, func(r *store.ScheduleRecord, spec cronSpec, now time.Time) bool {
		if !r.Paused && r.NextFireAt != nil {
			return false
		}
		next := spec.next(now)
		r.Paused, r.NextFireAt = false, &next
		return true
	})
}

// mutateSchedule reads a schedule, lets fn change it (fn reports whether
// it did) and writes it back with a compare-and-set, retrying on conflict.
func (e *Engine) mutateSchedule(ctx context.Context, name string, fn func(r *store.ScheduleRecord, spec cronSpec, now time.Time) bool) (*spool.Schedule, error) {
	if err := spool.ValidateScheduleName(name); err != nil {
		return nil, err
	}
	for try := 0; ; try++ {
		r, err := e.st.GetSchedule(ctx, name)
		if err != nil {
			return nil, e.scheduleNotFound(name, err)
		}
		now := e.clock.Now().UTC()
		spec, err := parseCron(r.Cron, r.Timezone, now)
		if err != nil {
			return nil, fmt.Errorf("schedule %q as stored: %w", name, err)
		}
		if !fn(r, spec, now) {
			return scheduleView(r), nil
		}
		r.UpdatedAt = now
		out, err := e.st.PutSchedule(ctx, r)
		if errors.Is(err, spool.ErrConflict) && try < 8 {
			continue
		}
		if err != nil {
			return nil, e.scheduleNotFound(name, err)
		}
		e.sched.poke()
		return scheduleView(out), nil
	}
}

func (e *Engine) scheduleNotFound(name string, err error) error {
	if errors.Is(err, spool.ErrNotFound) {
		return spool.NotFoundf("no schedule named %q", name)
	}
	return fmt.Errorf("schedule %q: %w", name, err)
}

// scheduleLoop fires due schedules: it runs a pass, then sleeps until the
// earliest next firing, at most ScheduleTick (so that other nodes' changes
// are seen), or until a schedule changes on this node.
func (e *Engine) scheduleLoop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	failed := 0
	for {
		next, err := e.runSchedules(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && failed == 0:
			failed++
			e.log.Warn("scheduler pass failed; retrying (further failures are logged at debug level)", "error", err)
		case err != nil:
			failed++
			e.log.Debug("scheduler pass failed", "error", err, "failures", failed)
		case failed > 0:
			e.log.Info("scheduler passes succeed again", "failed_passes", failed)
			failed = 0
		}
		d := ScheduleTick
		if !next.IsZero() {
			if until := next.Sub(e.clock.Now()); until < d {
				d = max(until, time.Millisecond)
			}
		}
		timer.Reset(d)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-e.sched.c():
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
	}
}

// RunSchedules makes every firing due at the clock's now, once: the pass
// the scheduler loop runs. Several nodes may run it at once; each firing
// is made by one of them.
func (e *Engine) RunSchedules(ctx context.Context) error {
	_, err := e.runSchedules(ctx)
	return err
}

// runSchedules runs one pass and returns the earliest next firing of the
// schedules that are not paused (zero if none).
func (e *Engine) runSchedules(ctx context.Context) (time.Time, error) {
	recs, err := e.st.ListSchedules(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("listing schedules: %w", err)
	}
	now := e.clock.Now().UTC()
	var (
		earliest time.Time
		errs     []error
	)
	// Nodes sharing a store walk the schedules in different orders, so
	// that when many are due at once each node makes different firings
	// instead of all queueing for the same one.
	mrand.Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
	for _, r := range recs {
		if ctx.Err() != nil {
			break
		}
		if r.Paused || r.NextFireAt == nil {
			continue
		}
		next := *r.NextFireAt
		if !next.After(now) {
			n, err := e.fireDue(ctx, r, now)
			if err != nil {
				errs = append(errs, fmt.Errorf("schedule %q: %w", r.Name, err))
				continue
			}
			if n.IsZero() {
				continue // another node fired it, or it is gone: seen next pass
			}
			next = n
		}
		if earliest.IsZero() || next.Before(earliest) {
			earliest = next
		}
	}
	return earliest, errors.Join(errs...)
}

// firing is one FireSchedule call of a pass.
type firing struct {
	skipped     int64
	skippedLast time.Time
	at          time.Time
	job         bool
}

// planFirings lists the calls that bring schedule r up to now: the
// firings due more than ScheduleGrace ago are missed (MissedOnce: the
// latest of them still fires), the others fire. It returns the calls and
// the next firing after now.
func planFirings(r *store.ScheduleRecord, spec cronSpec, now time.Time) ([]firing, time.Time) {
	var (
		late            int64
		lastLate, prior time.Time
		onTime          []time.Time
	)
	t := *r.NextFireAt
	for n := 0; !t.IsZero() && !t.After(now); n++ {
		if n >= maxCatchUp {
			t = spec.next(now)
			break
		}
		if now.Sub(t) > ScheduleGrace {
			late++
			prior, lastLate = lastLate, t
		} else {
			onTime = append(onTime, t)
		}
		t = spec.next(t)
	}
	var calls []firing
	if late > 0 {
		if r.Missed == spool.MissedOnce {
			calls = append(calls, firing{skipped: late - 1, skippedLast: prior, at: lastLate, job: true})
		} else {
			calls = append(calls, firing{skipped: late, skippedLast: lastLate})
		}
	}
	for _, at := range onTime {
		if len(calls) == 1 && !calls[0].job {
			calls[0].at, calls[0].job = at, true
			continue
		}
		calls = append(calls, firing{at: at, job: true})
	}
	return calls, t
}

// fireDue makes the due firings of r and returns its next firing, or zero
// when another node got there first or the schedule is gone.
func (e *Engine) fireDue(ctx context.Context, r *store.ScheduleRecord, now time.Time) (time.Time, error) {
	spec, err := parseCron(r.Cron, r.Timezone, now)
	if err != nil {
		return time.Time{}, fmt.Errorf("schedule as stored: %w", err)
	}
	calls, next := planFirings(r, spec, now)
	if next.IsZero() {
		// The expression fires no more: park the schedule far ahead.
		next = now.AddDate(100, 0, 0)
	}
	rev := r.Rev
	for i, c := range calls {
		p := store.FireParams{
			Name: r.Name, Rev: rev,
			Skipped: c.skipped, SkippedLast: c.skippedLast, SkipReason: spool.MissedServerDown,
			FireAt: c.at, NextFireAt: next, Now: now,
		}
		if i+1 < len(calls) {
			p.NextFireAt = calls[i+1].at
		}
		var qc spool.QueueConfig
		if c.job {
			qc, err = e.queueConfig(ctx, r.Job.Queue)
			if err != nil {
				return time.Time{}, err
			}
			req := r.Job.EnqueueRequest
			req.IdempotencyKey = fireKey(r.Name, c.at)
			p.Job = e.newRecord(r.Job.Queue, &req, qc, now)
			p.MaxDepth = *qc.MaxDepth
		}
		res, err := e.st.FireSchedule(ctx, p)
		if errors.Is(err, spool.ErrConflict) || errors.Is(err, spool.ErrNotFound) {
			return time.Time{}, nil
		}
		if err != nil {
			return time.Time{}, err
		}
		rev = res.Schedule.Rev
		if c.skipped > 0 {
			e.log.Warn("schedule missed firings", "schedule", r.Name, "missed", c.skipped,
				"last_missed_at", c.skippedLast, "reason", spool.MissedServerDown)
		}
		switch {
		case res.Full != nil:
			e.m.rejected(res.Full.Queue)
			e.log.Warn("schedule missed a firing: queue full", "schedule", r.Name, "fire_at", c.at,
				"queue", res.Full.Queue, "depth", res.Full.Depth, "max_depth", res.Full.MaxDepth)
		case res.Job != nil && !res.Existing:
			e.scheduledJobStored(res.Job, now)
			e.log.Debug("schedule fired", "schedule", r.Name, "fire_at", c.at, "job_id", res.Job.ID)
		}
	}
	return next, nil
}

// fireKey is the idempotency key of a schedule's job for one fire time:
// a second guard, after the schedule's revision, against two jobs for one
// firing.
func fireKey(name string, at time.Time) string {
	return "spool-schedule:" + name + ":" + at.UTC().Format(time.RFC3339Nano)
}

// scheduledJobStored does what follows an insert (as Enqueue does): the
// job event, rates, metrics, wake-ups.
func (e *Engine) scheduledJobStored(r *store.Record, now time.Time) {
	e.events.add(jobEventOf(r, now))
	e.tele.arrived(r.Queue, now, 1)
	e.m.enqueued(r.Queue, 1)
	switch r.State {
	case spool.StateReady:
		e.hub.queueReady(r.Queue)
	case spool.StateScheduled:
		e.poke()
	}
}
