package embedded

import (
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// meta is a job's metadata as the indexes keep it: the store.Record without
// payload and result, laid out to take little memory, as every job not yet
// finished has one. A store.Record is 416 bytes; meta keeps what most jobs
// set in 240, and the fields few jobs set (an ordering key, dependencies,
// tags, errors, ...) behind one pointer, nil when none is set. The fields
// the indexes read are named as in spool.Job.
//
// Like the job that holds it, a meta is never changed once indexed. Its
// time pointers and its rare fields may be shared with other versions of
// the job (and a ready time with the other jobs of an insert): they are
// never written through.
type meta struct {
	ID, Queue, Type string
	State           spool.State
	IdempotencyKey  string
	// Token is the current lease token; empty unless the job is active.
	Token  string
	Worker string

	Priority, Attempt, MaxAttempts int
	Timeout                        spool.Duration
	// Rev changes on every write of the job.
	Rev uint64

	RunAt, CreatedAt                               time.Time
	ReadyAt, StartedAt, LeaseExpiresAt, FinishedAt *time.Time

	rare *rareMeta
}

// rareMeta holds the fields of spool.Job that most jobs leave unset.
type rareMeta struct {
	Backoff         *spool.Backoff
	OrderingKey     string
	DependsOn, Tags []string
	CallbackURL     string
	Errors          []spool.AttemptError
	Progress        *spool.Progress
	CancelRequested bool
	Lease           *spool.Lease
}

// timeCopier copies the optional times of the records of one write into
// the store. Records that share a time pointer (the engine gives all the
// jobs of an insert one ready time) share one copy.
type timeCopier struct {
	from [numTimeSlots]*time.Time
	to   [numTimeSlots]*time.Time
}

// The optional times of a job, each with its slot in a timeCopier.
const (
	slotReadyAt = iota
	slotStartedAt
	slotLeaseExpiresAt
	slotFinishedAt
	numTimeSlots
)

func (c *timeCopier) copy(slot int, p *time.Time) *time.Time {
	if p == nil {
		return nil
	}
	if p != c.from[slot] {
		v := *p
		c.from[slot], c.to[slot] = p, &v
	}
	return c.to[slot]
}

// newMeta deep-copies the metadata of r (payload and result excepted); c
// copies its times (nil: a copier of its own).
func newMeta(r *store.Record, c *timeCopier) meta {
	if c == nil {
		c = new(timeCopier)
	}
	j := &r.Job
	m := meta{
		ID: j.ID, Queue: j.Queue, Type: j.Type, State: j.State,
		IdempotencyKey: j.IdempotencyKey, Token: r.Token, Worker: j.Worker,
		Priority: j.Priority, Attempt: j.Attempt, MaxAttempts: j.MaxAttempts,
		Timeout: j.Timeout, Rev: r.Rev,
		RunAt: j.RunAt, CreatedAt: j.CreatedAt,
		ReadyAt:        c.copy(slotReadyAt, j.ReadyAt),
		StartedAt:      c.copy(slotStartedAt, j.StartedAt),
		LeaseExpiresAt: c.copy(slotLeaseExpiresAt, j.LeaseExpiresAt),
		FinishedAt:     c.copy(slotFinishedAt, j.FinishedAt),
	}
	if j.Backoff != nil || j.OrderingKey != "" || len(j.DependsOn) > 0 || len(j.Tags) > 0 ||
		j.CallbackURL != "" || len(j.Errors) > 0 || j.Progress != nil || j.CancelRequested || j.Lease != nil {
		// CloneJob deep-copies what the rare fields point to; given a job
		// of these fields only, it copies no payload or result.
		cl := store.CloneJob(&spool.Job{
			Backoff: j.Backoff, DependsOn: j.DependsOn, Tags: j.Tags, Errors: j.Errors,
			Progress: j.Progress, Lease: j.Lease,
		})
		m.rare = &rareMeta{
			Backoff: cl.Backoff, OrderingKey: j.OrderingKey, DependsOn: cl.DependsOn, Tags: cl.Tags,
			CallbackURL: j.CallbackURL, Errors: cl.Errors, Progress: cl.Progress,
			CancelRequested: j.CancelRequested, Lease: cl.Lease,
		}
	}
	return m
}

// Clone returns the metadata as a new store.Record the caller owns.
func (m *meta) Clone() *store.Record {
	r := &store.Record{Job: spool.Job{
		ID: m.ID, Queue: m.Queue, Type: m.Type, State: m.State,
		IdempotencyKey: m.IdempotencyKey, Worker: m.Worker,
		Priority: m.Priority, Attempt: m.Attempt, MaxAttempts: m.MaxAttempts,
		Timeout: m.Timeout, RunAt: m.RunAt, CreatedAt: m.CreatedAt,
		ReadyAt: m.ReadyAt, StartedAt: m.StartedAt, LeaseExpiresAt: m.LeaseExpiresAt, FinishedAt: m.FinishedAt,
	}, Token: m.Token, Rev: m.Rev}
	if x := m.rare; x != nil {
		r.Backoff, r.OrderingKey, r.DependsOn, r.Tags = x.Backoff, x.OrderingKey, x.DependsOn, x.Tags
		r.CallbackURL, r.Errors, r.Progress = x.CallbackURL, x.Errors, x.Progress
		r.CancelRequested, r.Lease = x.CancelRequested, x.Lease
	}
	// CloneJob copies the times and what the rare fields point to.
	r.Job = store.CloneJob(&r.Job)
	return r
}

// The rare fields, read.
func (m *meta) orderingKey() string {
	if m.rare == nil {
		return ""
	}
	return m.rare.OrderingKey
}

func (m *meta) dependsOn() []string {
	if m.rare == nil {
		return nil
	}
	return m.rare.DependsOn
}

// setRare returns the rare fields to fill in, allocating them; only for a
// meta being built (decoded), never for an indexed one.
func (m *meta) setRare() *rareMeta {
	if m.rare == nil {
		m.rare = new(rareMeta)
	}
	return m.rare
}
