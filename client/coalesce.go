package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/spoolq/spool"
)

// DefaultCoalesce is the most jobs that concurrent Enqueue and Push calls
// share in one request (see WithCoalescing).
const DefaultCoalesce = 256

// coalesceLanes is how many requests to one queue a Client has in flight
// at once before calls wait to share the next. One measured best (two
// lanes: more requests, smaller batches, more CPU per job and lower
// throughput, with 8 producers and with 64).
const coalesceLanes = 1

// maxCoalescedPayload is the largest payload an Enqueue shares a request
// with others; a larger one goes on its own.
const maxCoalescedPayload = 64 << 10

// maxCoalescedBody bounds the payloads of one coalesced request, well
// under the server's default 16 MiB request limit.
const maxCoalescedBody = 4 << 20

// WithCoalescing sets how many concurrent Enqueue (and Push) calls to one
// queue may share one batch request (default DefaultCoalesce); max <= 1
// sends each call in a request of its own.
//
// Coalescing is a group commit in the client. A call made while no request
// to its queue is in flight is sent at once, on its own, exactly as without
// coalescing: it adds no latency. Calls made while a request is in flight
// wait for it to end and then go together, up to max per request, in one
// POST /v1/queues/{queue}/jobs:batch, whose jobs share one fsync on the
// server. Each call still returns its own job (or its own error) and keeps
// its idempotency key, and the batch is retried as Enqueue retries, so a
// retry never stores a job twice. A failure of the whole request (a full
// queue, a server out of reach) is the error of every call in it. A job
// the server refuses (a batch is all or nothing) must not sink the others:
// a call whose request fails with spool.ErrInvalid or spool.ErrTooLarge is
// sent again on its own, so only the bad job fails, with the message it
// would have got alone. Jobs that fail the client's own check against
// spool.DefaultLimits, and payloads over 64 KiB, are always sent alone.
// Against a server whose batch limit is below max, keep max at or under it:
// a batch over it is refused and its calls sent one by one.
func WithCoalescing(max int) Option {
	return func(c *Client) error {
		c.coalesce = nil
		if max > 1 {
			c.coalesce = &coalescer{c: c, max: min(max, spool.DefaultLimits.MaxBatch), lanes: coalesceLanes,
				maxBody: maxCoalescedBody, queues: make(map[string]*queueBatch)}
		}
		return nil
	}
}

// coalescer gathers concurrent enqueues per queue into batch requests.
type coalescer struct {
	c   *Client
	max int
	// lanes is how many requests to one queue may be in flight at once;
	// calls made while all are busy wait for one and go in its next batch.
	lanes int
	// maxBody bounds the payloads of one batch (maxCoalescedBody).
	maxBody int

	mu     sync.Mutex
	queues map[string]*queueBatch
}

// queueBatch is a queue's requests in flight and the calls waiting for one.
type queueBatch struct {
	inflight int
	pending  []*pendingEnqueue
}

// pendingEnqueue is one Enqueue call waiting for its answer.
type pendingEnqueue struct {
	ctx  context.Context
	req  spool.EnqueueRequest
	done chan struct{}
	// Set before done is closed.
	job      *spool.Job
	existing bool
	err      error
	// alone says the batch was refused as a whole: send the job on its own.
	alone bool
}

// coalescible reports whether a request may share a batch: it passes the
// default limits (so a bad job rarely sinks a batch) and is not large.
func coalescible(queue string, req *spool.EnqueueRequest) bool {
	return len(req.Payload) <= maxCoalescedPayload &&
		spool.ValidateQueueName(queue) == nil &&
		req.Validate(spool.DefaultLimits) == nil
}

// enqueue sends req at once on its own when fewer than co.lanes requests
// to the queue are in flight, or else in the queue's next batch, and waits
// for its answer.
func (co *coalescer) enqueue(ctx context.Context, queue string, req spool.EnqueueRequest) (*spool.Job, bool, error) {
	co.mu.Lock()
	qb := co.queues[queue]
	if qb == nil {
		qb = &queueBatch{}
		co.queues[queue] = qb
	}
	if qb.inflight < co.lanes {
		// A lane is free: go at once, alone, and let calls that come
		// meanwhile gather behind this one.
		qb.inflight++
		co.mu.Unlock()
		job, existing, err := co.c.enqueueOne(ctx, queue, req)
		if co.next(queue, qb) {
			go co.run(queue, qb)
		}
		return job, existing, err
	}
	p := &pendingEnqueue{ctx: ctx, req: req, done: make(chan struct{})}
	qb.pending = append(qb.pending, p)
	co.mu.Unlock()
	select {
	case <-p.done:
	case <-ctx.Done():
		select {
		case <-p.done:
		default:
			// The job may still be stored by a batch in flight, as with
			// a request cut short.
			return nil, false, &TransportError{Method: http.MethodPost, URL: co.c.batchURL(queue), Err: ctx.Err()}
		}
	}
	if p.alone {
		return co.c.enqueueOne(ctx, queue, p.req)
	}
	return p.job, p.existing, p.err
}

// next is called when a request to queue ends. It reports whether calls
// gathered meanwhile, to be sent by the caller (keeping the lane); if
// none did, the lane is freed.
func (co *coalescer) next(queue string, qb *queueBatch) bool {
	co.mu.Lock()
	defer co.mu.Unlock()
	if len(qb.pending) > 0 {
		return true
	}
	qb.inflight--
	if qb.inflight == 0 {
		delete(co.queues, queue)
	}
	return false
}

// run sends the queue's pending calls, batch after batch, in one lane,
// until none is left; it ends then.
func (co *coalescer) run(queue string, qb *queueBatch) {
	for {
		co.mu.Lock()
		var batch []*pendingEnqueue
		n, size := 0, 0
		for _, p := range qb.pending {
			if len(batch) == co.max || len(batch) > 0 && size+len(p.req.Payload) > co.maxBody {
				break
			}
			n++
			if p.ctx.Err() == nil {
				batch = append(batch, p)
				size += len(p.req.Payload)
			} // else its caller has gone: drop it
		}
		qb.pending = qb.pending[n:]
		if len(qb.pending) == 0 {
			qb.pending = nil
		}
		if len(batch) == 0 {
			qb.inflight--
			if qb.inflight == 0 {
				delete(co.queues, queue)
			}
			co.mu.Unlock()
			return
		}
		co.mu.Unlock()
		co.send(queue, batch)
		co.linger(qb, len(batch))
	}
}

// lingerYields bounds how many times the run loop yields, after answering
// a batch, for its callers to come back with their next calls.
const lingerYields = 16

// linger gives the callers just answered (answered of them) a moment to
// make their next call before the next batch goes, without a timer: it
// yields the processor at most lingerYields times, and stops as soon as
// as many calls wait as there were answered, or pending could fill a
// batch. Producers that call in a loop then share every request instead
// of splitting into two groups that take turns (one in flight, one
// waiting); a caller that does not come back costs a few yields.
func (co *coalescer) linger(qb *queueBatch, answered int) {
	co.mu.Lock()
	want := min(co.max, len(qb.pending)+answered)
	co.mu.Unlock()
	for range lingerYields {
		co.mu.Lock()
		n := len(qb.pending)
		co.mu.Unlock()
		if n >= want {
			return
		}
		runtime.Gosched()
	}
}

// send delivers one batch and hands each call its answer.
func (co *coalescer) send(queue string, batch []*pendingEnqueue) {
	defer func() {
		for _, p := range batch {
			close(p.done)
		}
	}()
	if len(batch) == 1 {
		p := batch[0]
		p.job, p.existing, p.err = co.c.enqueueOne(p.ctx, queue, p.req)
		return
	}
	// The request serves every caller in it: it ends with the last of
	// their deadlines, or takes the Client's default timeout if one of
	// them has none. A caller that gives up earlier stops waiting for it.
	ctx := context.Background()
	var last time.Time
	for _, p := range batch {
		dl, ok := p.ctx.Deadline()
		if !ok {
			last = time.Time{}
			break
		}
		if dl.After(last) {
			last = dl
		}
	}
	if !last.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, last)
		defer cancel()
	}
	reqs := make([]spool.EnqueueRequest, len(batch))
	for i, p := range batch {
		reqs[i] = p.req
	}
	out := spool.JobsResponse{Jobs: make([]*spool.Job, 0, len(batch))}
	cl := call{method: http.MethodPost, path: batchPath(queue), body: spool.BatchEnqueueRequest{Jobs: reqs}, repeat: repeatSafe}
	_, err := co.c.do(ctx, cl, &out)
	if err == nil && len(out.Jobs) != len(batch) {
		err = &TransportError{Method: http.MethodPost, URL: co.c.batchURL(queue),
			Err: fmt.Errorf("the answer has %d jobs for %d sent", len(out.Jobs), len(batch))}
	}
	if err != nil {
		alone := errors.Is(err, spool.ErrInvalid) || errors.Is(err, spool.ErrTooLarge)
		for _, p := range batch {
			p.err, p.alone = err, alone
		}
		return
	}
	for i, p := range batch {
		p.job = out.Jobs[i]
	}
	for _, i := range out.Existing {
		if i >= 0 && i < len(batch) {
			batch[i].existing = true
		}
	}
}

func batchPath(queue string) string { return "/v1/queues/" + pathEscape(queue) + "/jobs:batch" }

// batchURL is the URL of a queue's batch endpoint, for errors.
func (c *Client) batchURL(queue string) string {
	u := *c.base
	u.Path += "/v1/queues/" + queue + "/jobs:batch"
	u.RawPath = ""
	return u.Redacted()
}
