package engine_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/engine"
	"github.com/spoolq/spool/internal/store"
	"github.com/spoolq/spool/internal/store/embedded"
)

// sharedStore is one real embedded store as a node of a cluster sees it:
// two engines on the same *embedded.Store are two nodes sharing a store,
// and the events the test sends stand for the other node's notifications
// (the embedded store has none: each engine hears only its own writes).
type sharedStore struct {
	*embedded.Store
	events chan store.Event
	// looked receives the number of jobs of each store Lease call, so a
	// test knows a long-poll has looked and is waiting.
	looked chan int
	// failFirst makes the first Listen fail at once.
	failFirst atomic.Bool
	listens   atomic.Int32
}

func (s *sharedStore) Listen(ctx context.Context, fn func(store.Event)) error {
	if s.listens.Add(1) == 1 && s.failFirst.Load() {
		return errors.New("listen: connection refused")
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-s.events:
			fn(ev)
		}
	}
}

func (s *sharedStore) Lease(ctx context.Context, p store.LeaseParams) ([]*store.Record, error) {
	recs, err := s.Store.Lease(ctx, p)
	if s.looked != nil {
		select {
		case s.looked <- len(recs):
		default:
		}
	}
	return recs, err
}

var _ store.Notifier = (*sharedStore)(nil)

type cluster struct {
	a, b  *engine.Engine
	bSt   *sharedStore
	clock *engine.ManualClock
}

// newCluster builds node a (plain store: no notifications) and node b
// (notified by the test) on one embedded store, both started.
func newCluster(t *testing.T, recheck time.Duration, failFirstListen bool) *cluster {
	t.Helper()
	st, err := embedded.Open(t.TempDir(), embedded.Options{})
	require.NoError(t, err)
	clock := engine.NewManualClock(t0)
	bSt := &sharedStore{Store: st, events: make(chan store.Event), looked: make(chan int, 16)}
	bSt.failFirst.Store(failFirstListen)
	a, err := engine.New(engine.Config{Store: st, Clock: clock})
	require.NoError(t, err)
	b, err := engine.New(engine.Config{Store: bSt, Clock: clock, RecheckInterval: recheck})
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	require.NoError(t, b.Start(context.Background()))
	t.Cleanup(func() {
		a.Stop()
		b.Stop()
		require.NoError(t, st.Close())
	})
	return &cluster{a: a, b: b, bSt: bSt, clock: clock}
}

// send delivers an event to node b, as its store's listener would.
func (c *cluster) send(t *testing.T, ev store.Event) {
	t.Helper()
	select {
	case c.bSt.events <- ev:
	case <-time.After(10 * time.Second):
		t.Fatal("node b does not listen")
	}
}

// leaseOnB starts a long-poll on node b and returns its answer channel
// once it has looked at the store and found nothing.
func (c *cluster) leaseOnB(t *testing.T, queue string) <-chan []*spool.Job {
	t.Helper()
	out := make(chan []*spool.Job, 1)
	go func() {
		jobs, err := c.b.Lease(context.Background(), spool.LeaseRequest{Queues: []string{queue}, Max: 1, Wait: dur(30 * time.Second), Worker: "b"})
		if err != nil {
			t.Errorf("lease on b: %v", err)
		}
		out <- jobs
	}()
	select {
	case n := <-c.bSt.looked:
		require.Zero(t, n, "nothing is ready yet")
	case <-time.After(10 * time.Second):
		t.Fatal("the long-poll on b did not look at the store")
	}
	return out
}

func waitJobs(t *testing.T, ch <-chan []*spool.Job) []*spool.Job {
	t.Helper()
	select {
	case jobs := <-ch:
		return jobs
	case <-time.After(20 * time.Second):
		t.Fatal("the long-poll was not woken")
		return nil
	}
}

func TestRemoteQueueReadyWakesLongPoll(t *testing.T) {
	t.Parallel()
	c := newCluster(t, time.Hour, false)
	got := c.leaseOnB(t, "q")
	res, err := c.a.Enqueue(context.Background(), "q", []spool.EnqueueRequest{{Type: "t"}})
	require.NoError(t, err)
	// a's own hub woke nobody on b: the store's event does.
	c.send(t, store.Event{Kind: store.EventQueueReady, Queue: "q"})
	jobs := waitJobs(t, got)
	require.Len(t, jobs, 1)
	require.Equal(t, res[0].Job.ID, jobs[0].ID)
}

func TestRemoteJobFinishedWakesStatusWait(t *testing.T) {
	t.Parallel()
	c := newCluster(t, time.Hour, false)
	ctx := context.Background()
	res, err := c.a.Enqueue(ctx, "q", []spool.EnqueueRequest{{Type: "t"}})
	require.NoError(t, err)
	id := res[0].Job.ID
	leased, err := c.a.Lease(ctx, spool.LeaseRequest{Queues: []string{"q"}, Max: 1, Worker: "a"})
	require.NoError(t, err)
	require.Len(t, leased, 1)

	got := make(chan *spool.Job, 1)
	go func() {
		j, err := c.b.Get(ctx, id, 30*time.Second)
		if err != nil {
			t.Errorf("get on b: %v", err)
		}
		got <- j
	}()
	// The status wait may look before or after the completion; either
	// way the event makes it look again and answer.
	_, err = c.a.Complete(ctx, id, spool.CompleteRequest{Token: leased[0].Lease.Token})
	require.NoError(t, err)
	c.send(t, store.Event{Kind: store.EventJobFinished, JobID: id})
	select {
	case j := <-got:
		require.Equal(t, spool.StateSucceeded, j.State)
	case <-time.After(20 * time.Second):
		t.Fatal("the status wait on b was not woken")
	}
}

func TestRemoteQueueChangedDropsCachedConfig(t *testing.T) {
	t.Parallel()
	c := newCluster(t, time.Hour, false)
	ctx := context.Background()
	_, err := c.a.Enqueue(ctx, "q", []spool.EnqueueRequest{{Type: "t"}, {Type: "t"}})
	require.NoError(t, err)
	jobs, err := c.b.Lease(ctx, spool.LeaseRequest{Queues: []string{"q"}, Max: 1, Worker: "b"})
	require.NoError(t, err)
	require.Len(t, jobs, 1, "b caches q's config: not paused")

	_, err = c.a.PatchQueue(ctx, "q", spool.QueueConfig{Paused: ptr(true)})
	require.NoError(t, err)
	// The manual clock never lets b's cached config age out: only the
	// event tells b that q is paused now.
	c.send(t, store.Event{Kind: store.EventQueueChanged, Queue: "q"})
	// Events are applied in order: once a later one is taken, the change
	// has been applied.
	c.send(t, store.Event{Kind: store.EventQueueReady, Queue: "other"})
	jobs, err = c.b.Lease(ctx, spool.LeaseRequest{Queues: []string{"q"}, Max: 1, Worker: "b"})
	require.NoError(t, err)
	require.Empty(t, jobs, "q is paused cluster-wide")
}

func TestResyncWakesEveryWaiter(t *testing.T) {
	t.Parallel()
	c := newCluster(t, time.Hour, false)
	got := c.leaseOnB(t, "q")
	_, err := c.a.Enqueue(context.Background(), "q", []spool.EnqueueRequest{{Type: "t"}})
	require.NoError(t, err)
	// A resync (the listener reconnected: events may have been lost)
	// names no queue and wakes every waiter.
	c.send(t, store.Event{Kind: store.EventResync})
	require.Len(t, waitJobs(t, got), 1)
}

func TestRecheckCoversLostWakeUps(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 20*time.Millisecond, false)
	got := c.leaseOnB(t, "q")
	_, err := c.a.Enqueue(context.Background(), "q", []spool.EnqueueRequest{{Type: "t"}})
	require.NoError(t, err)
	// No event at all: the recheck interval makes b look again.
	require.Len(t, waitJobs(t, got), 1)
}

func TestListenIsRetriedAfterFailure(t *testing.T) {
	t.Parallel()
	c := newCluster(t, time.Hour, true)
	got := c.leaseOnB(t, "q")
	_, err := c.a.Enqueue(context.Background(), "q", []spool.EnqueueRequest{{Type: "t"}})
	require.NoError(t, err)
	// Delivered once the engine has subscribed again.
	c.send(t, store.Event{Kind: store.EventQueueReady, Queue: "q"})
	require.Len(t, waitJobs(t, got), 1)
	require.GreaterOrEqual(t, c.bSt.listens.Load(), int32(2))
}

// TestRemoteJobEventsJoinTheStream: job events of another node go into this
// node's event stream, numbered by this node, and wake its readers.
func TestRemoteJobEventsJoinTheStream(t *testing.T) {
	t.Parallel()
	c := newCluster(t, time.Hour, false)
	before := c.b.LastEventID()
	woke := make(chan bool, 1)
	go func() { woke <- c.b.WaitEvents(context.Background(), before) }()
	ev := spool.JobEvent{ID: "0190a1b2-c3d4-7e5f-8a9b-000000000001", Queue: "mail", Type: "email.send",
		State: spool.StateSucceeded, Attempt: 1, At: t0}
	c.send(t, store.Event{Kind: store.EventJobState, Job: &ev})
	select {
	case ok := <-woke:
		require.True(t, ok)
	case <-time.After(10 * time.Second):
		t.Fatal("a remote event did not wake the stream's reader")
	}
	page := c.b.EventsAfter(before, engine.EventFilter{Queues: []string{"mail"}}, 10)
	require.Len(t, page.Events, 1)
	got := page.Events[0]
	require.Equal(t, before+1, got.EventID, "numbered by this node")
	got.EventID = 0
	require.Equal(t, ev, got)
}
