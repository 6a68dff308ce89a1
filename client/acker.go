package client

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/spoolq/spool"
)

// ackItem is one outcome waiting to be sent.
type ackItem struct {
	ack spool.Ack
	// until is when the job's lease runs out: an outcome that cannot be
	// sent by then is given up (the job runs again elsewhere).
	until time.Time
}

// size estimates the bytes an ack adds to a request body.
func (it ackItem) size() int {
	return len(it.ack.Result) + len(it.ack.Error) + 160
}

// maxAckBody bounds the estimated body of one acks request, well under the
// server's default 16 MiB request limit.
const maxAckBody = 8 << 20

// ackTimeout bounds one acks request.
const ackTimeout = 15 * time.Second

// acker sends a Worker's outcomes through POST /v1/acks, many per request.
// One request is in flight at a time; outcomes that arrive meanwhile queue
// up and go together in the next, so batches grow with the load (as
// group commit does) and an outcome on an idle worker goes at once. While
// handlers are running, a batch that is not full waits up to delay for
// company.
type acker struct {
	c     *Client
	log   *slog.Logger
	max   int
	delay time.Duration
	busy  func() bool
	in    chan ackItem
	done  chan struct{}
	// carry is an item that did not fit the previous batch.
	carry *ackItem
	// buf holds the batch being gathered, reused from one to the next
	// (send keeps nothing of it).
	buf []ackItem
}

func newAcker(c *Client, log *slog.Logger, max int, delay time.Duration, busy func() bool) *acker {
	return &acker{c: c, log: log, max: max, delay: delay, busy: busy,
		in: make(chan ackItem, max), done: make(chan struct{})}
}

// add queues an outcome; it blocks while the queue is full, which holds
// the worker's slot and so slows leasing to what the server acknowledges.
func (a *acker) add(it ackItem) { a.in <- it }

// close sends what is queued and stops; no add may follow.
func (a *acker) close() {
	close(a.in)
	<-a.done
}

func (a *acker) run() {
	defer close(a.done)
	for {
		batch, open := a.next()
		if len(batch) > 0 {
			a.send(batch)
		}
		if !open {
			return
		}
	}
}

// next collects the next batch; open is false once the input is closed
// and drained.
func (a *acker) next() (batch []ackItem, open bool) {
	batch = a.buf[:0]
	defer func() { a.buf = batch }()
	size := 0
	push := func(it ackItem) bool {
		if len(batch) > 0 && (len(batch) == a.max || size+it.size() > maxAckBody) {
			a.carry = &it
			return false
		}
		batch = append(batch, it)
		size += it.size()
		return true
	}
	if a.carry != nil {
		it := *a.carry
		a.carry = nil
		push(it)
	} else {
		it, ok := <-a.in
		if !ok {
			return nil, false
		}
		push(it)
	}
	// Take what is already waiting.
	for a.carry == nil {
		select {
		case it, ok := <-a.in:
			if !ok {
				return batch, false
			}
			if !push(it) {
				return batch, true
			}
			continue
		default:
		}
		break
	}
	if a.carry != nil || a.delay <= 0 || !a.busy() {
		return batch, true
	}
	// Jobs are running: their outcomes may follow within the delay.
	t := time.NewTimer(a.delay)
	defer t.Stop()
	for {
		select {
		case it, ok := <-a.in:
			if !ok {
				return batch, false
			}
			if !push(it) {
				return batch, true
			}
		case <-t.C:
			return batch, true
		}
	}
}

// send delivers a batch, retrying temporary failures until the leases of
// its jobs run out.
func (a *acker) send(batch []ackItem) {
	acks := make([]spool.Ack, len(batch))
	until := batch[0].until
	for i, it := range batch {
		acks[i] = it.ack
		if it.until.After(until) {
			until = it.until
		}
	}
	for n := 1; ; n++ {
		ctx, cancel := context.WithTimeout(context.Background(), ackTimeout)
		res, err := a.c.Ack(ctx, acks)
		cancel()
		if err == nil {
			a.report(acks, res)
			return
		}
		var ce *Error
		if errors.As(err, &ce) && !ce.Temporary() {
			if len(batch) > 1 {
				// One bad ack (say, a result over the size limit) must
				// not sink the others: send each on its own.
				for _, it := range batch {
					a.send([]ackItem{it})
				}
				return
			}
			a.log.Error("the server refused a job outcome", "job_id", acks[0].ID, "outcome", acks[0].Outcome, "error", err)
			return
		}
		d := pauseFor(n, 100*time.Millisecond, 2*time.Second, a.c.rand())
		if time.Now().Add(d).After(until) {
			a.log.Error("could not send job outcomes before their leases ran out; the jobs will run again",
				"jobs", len(acks), "error", err)
			return
		}
		a.log.Warn("sending job outcomes failed; retrying", "jobs", len(acks), "error", err, "retry_in", d)
		time.Sleep(d)
	}
}

// report logs the acks the server did not apply.
func (a *acker) report(acks []spool.Ack, res []spool.AckResult) {
	for i, r := range res {
		if r.Error == nil || i >= len(acks) {
			continue
		}
		if r.Error.Code == spool.CodeLeaseLost {
			a.log.Warn("job outcome not recorded: the lease was lost (the job ran past its lease or was cancelled)",
				"job_id", r.ID, "outcome", acks[i].Outcome, "error", r.Error.Message)
			continue
		}
		a.log.Error("job outcome not recorded", "job_id", r.ID, "outcome", acks[i].Outcome, "code", r.Error.Code, "error", r.Error.Message)
	}
}
