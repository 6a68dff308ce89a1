package multinode

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
)

// outage counts what clients saw while the database was away.
type outage struct {
	unavailable atomic.Int64 // 503 unavailable answers
	transport   atomic.Int64 // no answer
	repeats     atomic.Int64 // enqueues answered 200: a retry of an enqueue that had been stored
	staleAcks   atomic.Int64
	// itemUnavailable counts elements of a batch ack answered
	// "unavailable" (the batch itself answered 200).
	itemUnavailable atomic.Int64
}

// classify counts a failed call; it reports false for an error no outage
// explains.
func (o *outage) classify(err error) bool {
	var ce *client.Error
	var te *client.TransportError
	switch {
	case errors.As(err, &ce) && ce.Status == http.StatusServiceUnavailable && ce.Code == spool.CodeUnavailable:
		o.unavailable.Add(1)
	case errors.As(err, &te):
		o.transport.Add(1)
	default:
		return false
	}
	return true
}

// pause is the client-side backoff after a failed call.
func pause(ctx context.Context, n int) {
	d := min(20*time.Millisecond<<min(n, 5), 500*time.Millisecond)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// TestPostgresRestart stops and starts PostgreSQL, then restarts it, under
// load from producers on node a and workers on node b. While it is down,
// requests fail with 503 unavailable and /readyz answers 503; the nodes
// recover by themselves (connection pool, listening connection); every
// enqueue answered 202 ends succeeded.
func TestPostgresRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("the multi-node tests run real processes on PostgreSQL; skipped with -short")
	}
	pg := startPostgres(t)
	storeURL := pg.url + "&search_path=restart"
	a := startNode(t, "a", "--store", storeURL)
	b := startNode(t, "b", "--store", storeURL)
	const queue = "rs"
	var o outage
	l := newLedger()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopProducing := make(chan struct{})
	var prod, work sync.WaitGroup

	// Producers on a retry each job under its own idempotency key until
	// it is acknowledged.
	ca := newClient(t, a, client.WithRetryPolicy(client.NoRetry), client.WithTimeout(5*time.Second))
	for p := range 3 {
		prod.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-stopProducing:
					return
				default:
				}
				req := spool.EnqueueRequest{Type: "rs", Backoff: quickBackoff, IdempotencyKey: fmt.Sprintf("p%d-%d", p, k)}
				for try := 0; ; try++ {
					j, existing, err := ca.Enqueue(ctx, queue, req)
					if err == nil {
						if existing {
							o.repeats.Add(1)
						}
						l.ack(j.ID)
						break
					}
					if ctx.Err() != nil {
						return
					}
					if !o.classify(err) {
						t.Errorf("enqueue: %v", err)
						return
					}
					pause(ctx, try)
				}
			}
		})
	}
	// Workers on b retry their acks with the same tokens.
	cb := newClient(t, b, client.WithRetryPolicy(client.NoRetry), client.WithTimeout(5*time.Second))
	for w := range 2 {
		work.Go(func() {
			lease, wait := spool.Duration(10*time.Second), spool.Duration(time.Second)
			for try := 0; ctx.Err() == nil; {
				jobs, err := cb.Lease(ctx, spool.LeaseRequest{Queues: []string{queue}, Max: 20, Wait: &wait, Lease: &lease, Worker: fmt.Sprintf("b-w%d", w)})
				if err != nil {
					if ctx.Err() == nil && !o.classify(err) {
						t.Errorf("lease: %v", err)
						return
					}
					pause(ctx, try)
					try++
					continue
				}
				try = 0
				l.leased("b", jobs)
				acks := make([]spool.Ack, len(jobs))
				for i, j := range jobs {
					acks[i] = spool.Ack{ID: j.ID, Token: j.Lease.Token, Outcome: spool.OutcomeComplete}
				}
				for len(acks) > 0 && ctx.Err() == nil {
					res, err := cb.Ack(ctx, acks)
					if err != nil {
						if ctx.Err() == nil && !o.classify(err) {
							t.Errorf("ack: %v", err)
							return
						}
						pause(ctx, try)
						try++
						continue
					}
					var again []spool.Ack
					for i, r := range res {
						switch {
						case r.Error == nil:
							l.done(r.ID)
						case r.Error.Code == spool.CodeLeaseLost:
							o.staleAcks.Add(1) // the lease lapsed during the outage: redelivered
						case r.Error.Code == spool.CodeUnavailable:
							// The batch was answered, this element not
							// applied: the store failed reading the job.
							o.itemUnavailable.Add(1)
							again = append(again, acks[i])
						default:
							t.Errorf("ack of %s: %s: %s", r.ID, r.Error.Code, r.Error.Message)
						}
					}
					if acks = again; len(acks) > 0 {
						pause(ctx, try)
						try++
					} else {
						try = 0
					}
				}
			}
		})
	}

	grow := func(n int, what string) {
		t.Helper()
		from := l.numAcked()
		eventually(t, 30*time.Second, what, func() bool { return l.numAcked() >= from+n })
	}
	grow(200, "200 enqueues acknowledged before the outage")

	// PostgreSQL goes away.
	pg.stop(t)
	down := time.Now()
	for _, n := range []*node{a, b} {
		eventually(t, 10*time.Second, "/readyz of "+n.Name+" answers 503 while PostgreSQL is down", func() bool {
			return status(n, "/readyz") == http.StatusServiceUnavailable
		})
	}
	if s := status(a, "/healthz"); s != http.StatusOK {
		t.Errorf("/healthz answers %d while PostgreSQL is down; the process is alive: want 200", s)
	}
	_, _, err := ca.Enqueue(context.Background(), queue, spool.EnqueueRequest{Type: "rs"})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusServiceUnavailable || ce.Code != spool.CodeUnavailable {
		t.Errorf("an enqueue while PostgreSQL is down answered %v; want 503 %s", err, spool.CodeUnavailable)
	}
	eventually(t, 10*time.Second, "producers and workers see the outage", func() bool { return o.unavailable.Load() >= 5 })
	for _, n := range []*node{a, b} {
		eventually(t, 10*time.Second, "a maintenance pass of "+n.Name+" fails", func() bool {
			return n.CountLogs("maintenance pass failed") > 0
		})
	}
	ackedDown := l.numAcked()

	// It comes back: the nodes recover without a restart.
	pg.start(t)
	up := time.Now()
	for _, n := range []*node{a, b} {
		eventually(t, 30*time.Second, "/readyz of "+n.Name+" answers 200 after PostgreSQL is back", func() bool {
			return status(n, "/readyz") == http.StatusOK
		})
	}
	recovered := time.Since(up)
	grow(200, "200 more enqueues acknowledged after the outage")
	for _, n := range []*node{a, b} {
		eventually(t, 10*time.Second, "maintenance passes of "+n.Name+" succeed again", func() bool {
			return n.CountLogs("maintenance passes succeed again") > 0
		})
	}
	t.Logf("PostgreSQL down for %s: %d enqueues acknowledged before; nodes ready %s after it was back",
		up.Sub(down).Round(time.Millisecond), ackedDown, recovered.Round(time.Millisecond))

	// pg_ctl restart, under load.
	pg.restart(t)
	for _, n := range []*node{a, b} {
		eventually(t, 30*time.Second, "/readyz of "+n.Name+" after pg_ctl restart", func() bool {
			return status(n, "/readyz") == http.StatusOK
		})
	}
	grow(200, "200 more enqueues acknowledged after pg_ctl restart")

	// Both nodes listen again, and a long-poll on b wakes at an enqueue
	// on a.
	eventually(t, 30*time.Second, "both nodes' listening connections are back", func() bool {
		return pg.queryInt(t, `SELECT count(*)::int FROM pg_stat_activity WHERE application_name = 'spool-listener'`) == 2
	})
	for _, n := range []*node{a, b} {
		if n.CountLogs("listening for other nodes' wake-ups again") == 0 {
			t.Errorf("node %s did not log that its listener reconnected", n.Name)
		}
	}
	wakeUpLatency(t, a, b)

	// Drain.
	close(stopProducing)
	prod.Wait()
	total := l.numAcked()
	c := newClient(t, a)
	var q *spool.QueueInfo
	eventually(t, 45*time.Second, "the queue drains", func() bool {
		var err error
		q, err = c.Queue(context.Background(), queue)
		return err == nil && q.Depth == 0
	})
	cancel()
	work.Wait()

	lost := 0
	for id := range l.acked {
		j, err := c.Get(context.Background(), id, 0)
		if err != nil || j.State != spool.StateSucceeded {
			t.Errorf("acked job %s after the restarts: %v %v", id, j, err)
			lost++
		}
	}
	dups := 0
	for _, n := range l.delivered {
		if n > 1 {
			dups++
		}
	}
	t.Logf("%d jobs acknowledged (%d of them on a retry that found the job stored), %d lost, %d succeeded in all; "+
		"clients saw %d 503 unavailable, %d transport errors and %d batch-ack elements unavailable; %d stale acks, %d jobs delivered more than once",
		total, o.repeats.Load(), lost, q.Counts[spool.StateSucceeded], o.unavailable.Load(), o.transport.Load(), o.itemUnavailable.Load(),
		o.staleAcks.Load(), dups)
	if int64(total) != q.Counts[spool.StateSucceeded] {
		t.Errorf("%d jobs succeeded, %d acknowledged: every stored job was acknowledged (idempotency keys)", q.Counts[spool.StateSucceeded], total)
	}
	a.Stop(t, 30*time.Second)
	b.Stop(t, 30*time.Second)
}
