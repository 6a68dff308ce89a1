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
	var seen uint32
	ok := d.object(func(k []byte) bool {
		var ok bool
		switch string(k) {
		case "id":
			if !first(&seen, 0) {
				return false
			}
			ok = d.strLater(&j.ID)
		case "queue":
			if !first(&seen, 1) {
				return false
			}
			j.Queue, ok = d.str(d.queue)
			d.queue = j.Queue
		case "type":
			if !first(&seen, 2) {
				return false
			}
			j.Type, ok = d.str(d.typ)
			d.typ = j.Type
		case "payload":
			if !first(&seen, 3) {
				return false
			}
			j.Payload, ok = d.raw()
		case "priority":
			if !first(&seen, 4) {
				return false
			}
			j.Priority, ok = d.int()
		case "state":
			if !first(&seen, 5) {
				return false
			}
			j.State, ok = d.state()
		case "run_at":
			if !first(&seen, 6) {
				return false
			}
			ok = d.time(&j.RunAt)
		case "attempt":
			if !first(&seen, 7) {
				return false
			}
			j.Attempt, ok = d.int()
		case "max_attempts":
			if !first(&seen, 8) {
				return false
			}
			j.MaxAttempts, ok = d.int()
		case "timeout":
			if !first(&seen, 9) {
				return false
			}
			j.Timeout, ok = d.duration()
		case "backoff":
			if !first(&seen, 10) {
				return false
			}
			j.Backoff, ok = d.backoff()
		case "idempotency_key":
			if !first(&seen, 11) {
				return false
			}
			ok = d.strLater(&j.IdempotencyKey)
		case "ordering_key":
			if !first(&seen, 12) {
				return false
			}
			ok = d.strLater(&j.OrderingKey)
		case "depends_on":
			if !first(&seen, 13) {
				return false
			}
			j.DependsOn, ok = d.strings(nil)
		case "tags":
			if !first(&seen, 14) {
				return false
			}
			j.Tags, ok = d.strings(d.tags)
			d.tags = j.Tags
		case "callback_url":
			if !first(&seen, 15) {
				return false
			}
			ok = d.strLater(&j.CallbackURL)
		case "result":
			if !first(&seen, 16) {
				return false
			}
			j.Result, ok = d.raw()
		case "errors":
			if !first(&seen, 17) {
				return false
			}
			j.Errors, ok = d.attemptErrors()
		case "progress":
			if !first(&seen, 18) {
				return false
			}
			j.Progress, ok = d.progress()
		case "worker":
			if !first(&seen, 19) {
				return false
			}
			j.Worker, ok = d.str(d.worker)
			d.worker = j.Worker
		case "lease_expires_at":
			if !first(&seen, 20) {
				return false
			}
			j.LeaseExpiresAt = &blk.times[0]
			ok = d.time(j.LeaseExpiresAt)
		case "cancel_requested":
			if !first(&seen, 21) {
				return false
			}
			j.CancelRequested, ok = d.bool()
		case "created_at":
			if !first(&seen, 22) {
				return false
			}
			ok = d.time(&j.CreatedAt)
		case "ready_at":
			if !first(&seen, 23) {
				return false
			}
			j.ReadyAt = &blk.times[1]
			ok = d.time(j.ReadyAt)
		case "started_at":
			if !first(&seen, 24) {
				return false
			}
			j.StartedAt = &blk.times[2]
			ok = d.time(j.StartedAt)
		case "finished_at":
			if !first(&seen, 25) {
				return false
			}
			j.FinishedAt = &blk.times[3]
			ok = d.time(j.FinishedAt)
		case "lease":
			if !first(&seen, 26) {
				return false
			}
			j.Lease = &blk.lease
			ok = d.lease(j.Lease)
		}
		return ok
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
	var seen uint32
	return d.object(func(k []byte) bool {
		var ok bool
		switch string(k) {
		case "token":
			if !first(&seen, 0) {
				return false
			}
			ok = d.strLater(&l.Token)
		case "expires_at":
			if !first(&seen, 1) {
				return false
			}
			ok = d.time(&l.ExpiresAt)
		}
		return ok
	})
}

func (d *decoder) attemptErrors() ([]spool.AttemptError, bool) {
	errs := []spool.AttemptError{}
	ok := d.array(func() bool {
		errs = append(errs, spool.AttemptError{})
		e := &errs[len(errs)-1]
		var seen uint32
		return d.object(func(k []byte) bool {
			var ok bool
			switch string(k) {
			case "attempt":
				if !first(&seen, 0) {
					return false
				}
				e.Attempt, ok = d.int()
			case "error":
				if !first(&seen, 1) {
					return false
				}
				e.Error, ok = d.str("")
			case "at":
				if !first(&seen, 2) {
					return false
				}
				ok = d.time(&e.At)
			}
			return ok
		})
	})
	return errs, ok
}

func (d *decoder) progress() (*spool.Progress, bool) {
	p := new(spool.Progress)
	var seen uint32
	ok := d.object(func(k []byte) bool {
		var ok bool
		switch string(k) {
		case "percent":
			if !first(&seen, 0) {
				return false
			}
			p.Percent, ok = d.float()
		case "message":
			if !first(&seen, 1) {
				return false
			}
			p.Message, ok = d.str("")
		case "updated_at":
			if !first(&seen, 2) {
				return false
			}
			ok = d.time(&p.UpdatedAt)
		}
		return ok
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
	var seen uint32
	ok := d.object(func(k []byte) bool {
		var ok bool
		switch string(k) {
		case "type":
			if !first(&seen, 0) {
				return false
			}
			r.Type, ok = d.str(prevType)
		case "payload":
			if !first(&seen, 1) {
				return false
			}
			r.Payload, ok = d.raw()
		case "priority":
			if !first(&seen, 2) {
				return false
			}
			r.Priority, ok = d.int()
		case "delay":
			if !first(&seen, 3) {
				return false
			}
			r.Delay, ok = d.durationPtr()
		case "run_at":
			if !first(&seen, 4) {
				return false
			}
			r.RunAt, ok = d.timePtr()
		case "max_attempts":
			if !first(&seen, 5) {
				return false
			}
			r.MaxAttempts, ok = d.int()
		case "timeout":
			if !first(&seen, 6) {
				return false
			}
			r.Timeout, ok = d.durationPtr()
		case "backoff":
			if !first(&seen, 7) {
				return false
			}
			r.Backoff, ok = d.backoff()
		case "idempotency_key":
			if !first(&seen, 8) {
				return false
			}
			ok = d.strLater(&r.IdempotencyKey)
		case "ordering_key":
			if !first(&seen, 9) {
				return false
			}
			ok = d.strLater(&r.OrderingKey)
		case "depends_on":
			if !first(&seen, 10) {
				return false
			}
			r.DependsOn, ok = d.strings(nil)
		case "ref":
			if !first(&seen, 11) {
				return false
			}
			ok = d.strLater(&r.Ref)
		case "tags":
			if !first(&seen, 12) {
				return false
			}
			r.Tags, ok = d.strings(prevTags)
		case "callback_url":
			if !first(&seen, 13) {
				return false
			}
			ok = d.strLater(&r.CallbackURL)
		}
		return ok
	})
	if ok {
		d.flush()
	}
	return ok
}

// ack reads one ack of an acks request.
func (d *decoder) ack(a *spool.Ack) bool {
	d.startBlock()
	var seen uint32
	ok := d.object(func(k []byte) bool {
		var ok bool
		switch string(k) {
		case "id":
			if !first(&seen, 0) {
				return false
			}
			ok = d.strLater(&a.ID)
		case "token":
			if !first(&seen, 1) {
				return false
			}
			ok = d.strLater(&a.Token)
		case "outcome":
			a.Outcome, ok = d.outcome(&seen)
		case "result":
			if !first(&seen, 3) {
				return false
			}
			a.Result, ok = d.raw()
		case "error":
			if !first(&seen, 4) {
				return false
			}
			ok = d.strLater(&a.Error)
		case "retry_in":
			if !first(&seen, 5) {
				return false
			}
			a.RetryIn, ok = d.durationPtr()
		case "final":
			if !first(&seen, 6) {
				return false
			}
			a.Final, ok = d.bool()
		}
		return ok
	})
	if ok {
		d.flush()
	}
	return ok
}

// outcome reads an ack's outcome, handing out the constants.
func (d *decoder) outcome(seen *uint32) (string, bool) {
	if !first(seen, 2) {
		return "", false
	}
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
