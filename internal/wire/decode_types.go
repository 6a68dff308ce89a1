package wire

import (
	"time"

	"github.com/spoolq/spool"
)

// jobBlock holds a decoded job and the values it points to in one
// allocation.
type jobBlock struct {
	job   spool.Job
	lease spool.Lease
	times [4]time.Time
}

// job reads one job of an answer.
func (d *decoder) job() (*spool.Job, bool) {
	if d.next() != '{' {
		return nil, false // null included: encoding/json decides
	}
	blk := new(jobBlock)
	j := &blk.job
	d.startBlock()
	ok := d.members(func(k []byte) (bit uint, ok bool) {
		switch string(k) {
		case "id":
			bit = 0
			ok = d.strLater(&j.ID)
		case "queue":
			bit = 1
			j.Queue, ok = d.str(d.queue)
			d.queue = j.Queue
		case "type":
			bit = 2
			j.Type, ok = d.str(d.typ)
			d.typ = j.Type
		case "payload":
			bit = 3
			j.Payload, ok = d.raw()
		case "priority":
			bit = 4
			j.Priority, ok = d.int()
		case "state":
			bit = 5
			j.State, ok = d.state()
		case "run_at":
			bit = 6
			ok = d.time(&j.RunAt)
		case "attempt":
			bit = 7
			j.Attempt, ok = d.int()
		case "max_attempts":
			bit = 8
			j.MaxAttempts, ok = d.int()
		case "timeout":
			bit = 9
			j.Timeout, ok = d.duration()
		case "backoff":
			bit = 10
			j.Backoff, ok = d.backoff()
		case "idempotency_key":
			bit = 11
			ok = d.strLater(&j.IdempotencyKey)
		case "ordering_key":
			bit = 12
			ok = d.strLater(&j.OrderingKey)
		case "depends_on":
			bit = 13
			j.DependsOn, ok = d.strings(nil)
		case "tags":
			bit = 14
			j.Tags, ok = d.strings(d.tags)
			d.tags = j.Tags
		case "callback_url":
			bit = 15
			ok = d.strLater(&j.CallbackURL)
		case "result":
			bit = 16
			j.Result, ok = d.raw()
		case "errors":
			bit = 17
			j.Errors, ok = d.attemptErrors()
		case "progress":
			bit = 18
			j.Progress, ok = d.progress()
		case "worker":
			bit = 19
			j.Worker, ok = d.str(d.worker)
			d.worker = j.Worker
		case "lease_expires_at":
			bit = 20
			j.LeaseExpiresAt = &blk.times[0]
			ok = d.time(j.LeaseExpiresAt)
		case "cancel_requested":
			bit = 21
			j.CancelRequested, ok = d.bool()
		case "created_at":
			bit = 22
			ok = d.time(&j.CreatedAt)
		case "ready_at":
			bit = 23
			j.ReadyAt = &blk.times[1]
			ok = d.time(j.ReadyAt)
		case "started_at":
			bit = 24
			j.StartedAt = &blk.times[2]
			ok = d.time(j.StartedAt)
		case "finished_at":
			bit = 25
			j.FinishedAt = &blk.times[3]
			ok = d.time(j.FinishedAt)
		case "lease":
			bit = 26
			j.Lease = &blk.lease
			ok = d.lease(j.Lease)
		}
		return
	})
	if ok {
		d.flush()
	}
	return j, ok
}

// state reads a job state, handing out the constants for the known ones.
func (d *decoder) state() (spool.State, bool) {
	b, ok := d.rawString()
	if !ok {
		return "", false
	}
	for _, st := range spool.States {
		if string(b) == string(st) {
			return st, true
		}
	}
	return spool.State(b), true
}

func (d *decoder) lease(l *spool.Lease) bool {
	return d.members(func(k []byte) (bit uint, ok bool) {
		switch string(k) {
		case "token":
			bit = 0
			ok = d.strLater(&l.Token)
		case "expires_at":
			bit = 1
			ok = d.time(&l.ExpiresAt)
		}
		return
	})
}

func (d *decoder) attemptErrors() ([]spool.AttemptError, bool) {
	errs := []spool.AttemptError{}
	ok := d.array(func() bool {
		errs = append(errs, spool.AttemptError{})
		e := &errs[len(errs)-1]
		return d.members(func(k []byte) (bit uint, ok bool) {
			switch string(k) {
			case "attempt":
				bit = 0
				e.Attempt, ok = d.int()
			case "error":
				bit = 1
				e.Error, ok = d.str("")
			case "at":
				bit = 2
				ok = d.time(&e.At)
			}
			return
		})
	})
	return errs, ok
}

func (d *decoder) progress() (*spool.Progress, bool) {
	p := new(spool.Progress)
	ok := d.members(func(k []byte) (bit uint, ok bool) {
		switch string(k) {
		case "percent":
			bit = 0
			p.Percent, ok = d.float()
		case "message":
			bit = 1
			p.Message, ok = d.str("")
		case "updated_at":
			bit = 2
			ok = d.time(&p.UpdatedAt)
		}
		return
	})
	return p, ok
}

// enqueueRequest reads one job of a batch enqueue request; prev, the job
// before it, lends its strings when they repeat.
func (d *decoder) enqueueRequest(r, prev *spool.EnqueueRequest) bool {
	var (
		prevType string
		prevTags []string
	)
	if prev != nil {
		prevType, prevTags = prev.Type, prev.Tags
	}
	d.startBlock()
	ok := d.members(func(k []byte) (bit uint, ok bool) {
		switch string(k) {
		case "type":
			bit = 0
			r.Type, ok = d.str(prevType)
		case "payload":
			bit = 1
			r.Payload, ok = d.raw()
		case "priority":
			bit = 2
			r.Priority, ok = d.int()
		case "delay":
			bit = 3
			r.Delay, ok = d.durationPtr()
		case "run_at":
			bit = 4
			r.RunAt, ok = d.timePtr()
		case "max_attempts":
			bit = 5
			r.MaxAttempts, ok = d.int()
		case "timeout":
			bit = 6
			r.Timeout, ok = d.durationPtr()
		case "backoff":
			bit = 7
			r.Backoff, ok = d.backoff()
		case "idempotency_key":
			bit = 8
			ok = d.strLater(&r.IdempotencyKey)
		case "ordering_key":
			bit = 9
			ok = d.strLater(&r.OrderingKey)
		case "depends_on":
			bit = 10
			r.DependsOn, ok = d.strings(nil)
		case "ref":
			bit = 11
			ok = d.strLater(&r.Ref)
		case "tags":
			bit = 12
			r.Tags, ok = d.strings(prevTags)
		case "callback_url":
			bit = 13
			ok = d.strLater(&r.CallbackURL)
		}
		return
	})
	if ok {
		d.flush()
	}
	return ok
}

// ack reads one ack of an acks request.
func (d *decoder) ack(a *spool.Ack) bool {
	d.startBlock()
	ok := d.members(func(k []byte) (bit uint, ok bool) {
		switch string(k) {
		case "id":
			bit = 0
			ok = d.strLater(&a.ID)
		case "token":
			bit = 1
			ok = d.strLater(&a.Token)
		case "outcome":
			bit = 2
			a.Outcome, ok = d.outcome()
		case "result":
			bit = 3
			a.Result, ok = d.raw()
		case "error":
			bit = 4
			ok = d.strLater(&a.Error)
		case "retry_in":
			bit = 5
			a.RetryIn, ok = d.durationPtr()
		case "final":
			bit = 6
			a.Final, ok = d.bool()
		}
		return
	})
	if ok {
		d.flush()
	}
	return ok
}

// outcome reads an ack's outcome, handing out the constants.
func (d *decoder) outcome() (string, bool) {
	b, ok := d.rawString()
	if !ok {
		return "", false
	}
	switch string(b) {
	case spool.OutcomeComplete:
		return spool.OutcomeComplete, true
	case spool.OutcomeFail:
		return spool.OutcomeFail, true
	case spool.OutcomeRelease:
		return spool.OutcomeRelease, true
	}
	return string(b), true
}
