package crash

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
	"github.com/spoolq/spool/internal/testproc"
)

const (
	queue     = "crash"
	producers = 6
	workers   = 2
	rounds    = 3
	// leaseFor is short so jobs left active come back soon after restart.
	leaseFor = 2 * time.Second
	// abandonOdds is the share of leased jobs the worker leaves active.
	abandonOdds = 0.3
)

// history is what the clients saw before the crash.
type history struct {
	mu sync.Mutex
	// acked: enqueues answered 202.
	acked map[string]bool
	// completed: completes answered 200 (the job is succeeded for good).
	completed map[string]bool
	// abandoned: leased and deliberately left active.
	abandoned map[string]bool
	// delivered counts leases per job.
	delivered map[string]int
}

func newHistory() *history {
	return &history{acked: map[string]bool{}, completed: map[string]bool{}, abandoned: map[string]bool{}, delivered: map[string]int{}}
}

func (h *history) add(m map[string]bool, id string) {
	h.mu.Lock()
	m[id] = true
	h.mu.Unlock()
}

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test builds and kills the real binary; skipped with -short")
	}
	seed := time.Now().UnixNano()
	if s := os.Getenv("SPOOL_CRASH_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("SPOOL_CRASH_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with SPOOL_CRASH_SEED=%d)", seed, seed)
	for r := 0; r < rounds; r++ {
		t.Run(fmt.Sprintf("round%d", r+1), func(t *testing.T) {
			crashRound(t, rand.New(rand.NewPCG(uint64(seed), uint64(r))))
		})
	}
}

func crashRound(t *testing.T, rng *rand.Rand) {
	dataDir := t.TempDir()
	killAfter := 300*time.Millisecond + time.Duration(rng.Int64N(int64(1200*time.Millisecond)))
	workerSeed := rng.Uint64()
	t.Logf("kill -9 after %s of load", killAfter)

	// Phase 1: load, then SIGKILL.
	p := startServer(t, dataDir)
	h := newHistory()
	loadUntilKill(t, p, h, killAfter, workerSeed)
	t.Logf("before the crash: %d enqueues acked, %d completes acked, %d jobs left active",
		len(h.acked), len(h.completed), len(h.abandoned))
	if len(h.acked) == 0 {
		t.Fatalf("no enqueue was acknowledged in %s: the test proves nothing", killAfter)
	}

	// Phase 2: restart on the same data directory.
	p2 := startServer(t, dataDir)
	c := newClient(t, p2.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()

	// Every acknowledged job exists; every acknowledged completion stuck.
	for id := range h.acked {
		j, err := c.Get(ctx, id, 0)
		if err != nil {
			t.Fatalf("acked job %s after restart: %v", id, err)
		}
		if h.completed[id] && j.State != spool.StateSucceeded {
			t.Errorf("job %s was completed (acked) before the crash, but is %s after restart", id, j.State)
		}
	}

	// Drain: lease everything, including jobs whose leases lapse.
	redelivered := drain(t, ctx, c, h)

	// Every acked job is succeeded; jobs left active came back once their
	// lease lapsed, with the expiry recorded as a failed attempt, or at
	// once if the crash undid their lease (a lease is answered before its
	// own write is synced, by the next group commit: only leases of the
	// last moment before the kill can be undone).
	undone := 0
	for id := range h.acked {
		j, err := c.Get(ctx, id, 0)
		if err != nil {
			t.Fatalf("job %s: %v", id, err)
		}
		if j.State != spool.StateSucceeded {
			t.Errorf("job %s is %s after the drain, want succeeded", id, j.State)
			continue
		}
		if h.abandoned[id] {
			if h.delivered[id] < 2 {
				t.Errorf("job %s was left active before the crash but was not delivered again", id)
			}
			switch {
			case j.Attempt == 1 && len(j.Errors) == 0:
				undone++
			case j.Attempt < 2 || len(j.Errors) == 0:
				t.Errorf("job %s was left active before the crash but shows attempt %d and %d errors", id, j.Attempt, len(j.Errors))
			}
		}
	}
	if len(h.abandoned) >= 5 && undone == len(h.abandoned) {
		t.Errorf("the crash undid all %d leases of the jobs left active: leases are not being synced", undone)
	}
	q, err := c.Queue(ctx, queue)
	if err != nil {
		t.Fatal(err)
	}
	stored := q.Counts[spool.StateSucceeded]
	if n := q.Counts[spool.StateDead] + q.Counts[spool.StateCancelled]; n > 0 {
		t.Errorf("%d jobs ended dead or cancelled; every job should succeed (%v)", n, q.Counts)
	}
	if stored < int64(len(h.acked)) {
		t.Errorf("%d jobs succeeded, fewer than the %d acked", stored, len(h.acked))
	}
	dups := 0
	for _, n := range h.delivered {
		if n > 1 {
			dups++
		}
	}
	t.Logf("after restart: %d jobs delivered (%d had been left active, %d of those leases undone by the crash), "+
		"%d jobs delivered more than once in all, %d stored but never acked (in flight at the kill), queue depth %d",
		redelivered, len(h.abandoned), undone, dups, stored-int64(len(h.acked)), q.Depth)
	p2.Stop(t, 20*time.Second)
}

func newClient(t *testing.T, addr string) *client.Client {
	t.Helper()
	c, err := client.New("http://"+addr, client.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// loadUntilKill runs producers and workers against p, kills p with SIGKILL
// after killAfter, and returns once every client goroutine has stopped.
func loadUntilKill(t *testing.T, p *testproc.Server, h *history, killAfter time.Duration, workerSeed uint64) {
	c := newClient(t, p.Addr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		killed atomic.Bool
		wg     sync.WaitGroup
	)
	// unexpected reports an error seen before the kill; after it, every
	// request may fail and the goroutine just stops.
	unexpected := func(what string, err error) bool {
		if killed.Load() || ctx.Err() != nil {
			return true
		}
		t.Errorf("%s before the kill: %v", what, err)
		return true
	}
	backoff := spool.Backoff{Base: spool.Duration(50 * time.Millisecond), Max: spool.Duration(200 * time.Millisecond)}
	for i := 0; i < producers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				job, _, err := c.Enqueue(ctx, queue, spool.EnqueueRequest{
					Type:    "crash",
					Payload: []byte(fmt.Sprintf(`{"producer":%d,"n":%d}`, i, n)),
					Backoff: &backoff,
				})
				if err != nil {
					unexpected("enqueue", err)
					return
				}
				h.add(h.acked, job.ID)
			}
		}()
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(workerSeed, uint64(w)))
			lease := spool.Duration(leaseFor)
			wait := spool.Duration(500 * time.Millisecond)
			for ctx.Err() == nil {
				jobs, err := c.Lease(ctx, spool.LeaseRequest{Queues: []string{queue}, Max: 10, Wait: &wait, Lease: &lease, Worker: fmt.Sprintf("crash-worker-%d", w)})
				if err != nil {
					unexpected("lease", err)
					return
				}
				for _, j := range jobs {
					h.mu.Lock()
					h.delivered[j.ID]++
					h.mu.Unlock()
					if rng.Float64() < abandonOdds {
						h.add(h.abandoned, j.ID)
						continue
					}
					if _, err := c.Complete(ctx, j.ID, spool.CompleteRequest{Token: j.Lease.Token, Result: []byte(`{"ok":true}`)}); err != nil {
						unexpected("complete", err)
						return
					}
					h.add(h.completed, j.ID)
				}
			}
		}()
	}
	select {
	case <-time.After(killAfter):
	case <-p.Done():
		t.Fatalf("spool serve exited under load: %v", p.Err())
	}
	killed.Store(true)
	p.Kill()
	cancel()
	wg.Wait()
}

// drain leases and completes jobs on the restarted server until the queue
// is empty, failing the test if a job whose completion was acknowledged
// before the crash is delivered again, or if the queue does not empty in
// time. It returns the number of jobs delivered.
func drain(t *testing.T, ctx context.Context, c *client.Client, h *history) int {
	t.Helper()
	lease := spool.Duration(30 * time.Second)
	wait := spool.Duration(500 * time.Millisecond)
	delivered := 0
	for {
		q, err := c.Queue(ctx, queue)
		if err != nil {
			t.Fatalf("queue after restart: %v", err)
		}
		if q.Depth == 0 {
			return delivered
		}
		if ctx.Err() != nil {
			t.Fatalf("the queue did not drain in time: %d jobs not finished (%v)", q.Depth, q.Counts)
		}
		jobs, err := c.Lease(ctx, spool.LeaseRequest{Queues: []string{queue}, Max: 500, Wait: &wait, Lease: &lease, Worker: "drain"})
		if err != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				t.Fatalf("the queue did not drain in time: %d jobs not finished (%v)", q.Depth, q.Counts)
			}
			t.Fatalf("lease after restart: %v", err)
		}
		if len(jobs) == 0 {
			continue
		}
		acks := make([]spool.Ack, len(jobs))
		for i, j := range jobs {
			h.mu.Lock()
			h.delivered[j.ID]++
			done := h.completed[j.ID]
			h.mu.Unlock()
			if done {
				t.Errorf("job %s was completed (acked) before the crash, yet delivered again", j.ID)
			}
			acks[i] = spool.Ack{ID: j.ID, Token: j.Lease.Token, Outcome: spool.OutcomeComplete, Result: []byte(`{"ok":true}`)}
		}
		delivered += len(jobs)
		results, err := c.Ack(ctx, acks)
		if err != nil {
			t.Fatalf("acking %d jobs after restart: %v", len(acks), err)
		}
		for _, r := range results {
			if r.Error != nil {
				t.Errorf("ack of %s after restart: %s: %s", r.ID, r.Error.Code, r.Error.Message)
			}
		}
	}
}
