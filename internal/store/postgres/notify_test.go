package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
	"github.com/spoolq/spool/internal/store/postgres"
)

func TestPayloadRoundTrip(t *testing.T) {
	t.Parallel()
	var ready, changed, finished []string
	for i := range 400 {
		finished = append(finished, fmt.Sprintf("0190a1b2-c3d4-7e5f-8a9b-%012d", i))
	}
	ready = []string{"mail", "video.encode", "bad\nname"}
	changed = []string{"mail"}
	payloads := postgres.Payloads("nodeA", ready, changed, finished)
	require.Greater(t, len(payloads), 1, "400 ids do not fit one notification")
	var got []store.Event
	for _, p := range payloads {
		require.LessOrEqual(t, len(p), postgres.MaxPayload)
		postgres.ParsePayload(p, "nodeB", func(ev store.Event) { got = append(got, ev) })
	}
	var ids, queues, configs []string
	resyncs := 0
	for _, ev := range got {
		switch ev.Kind {
		case store.EventJobFinished:
			ids = append(ids, ev.JobID)
		case store.EventQueueReady:
			queues = append(queues, ev.Queue)
		case store.EventQueueChanged:
			configs = append(configs, ev.Queue)
		case store.EventResync:
			resyncs++
		}
	}
	slices.Sort(ids)
	slices.Sort(queues)
	require.Equal(t, finished, ids)
	require.Equal(t, []string{"mail", "video.encode"}, queues)
	require.Equal(t, []string{"mail"}, configs)
	require.Equal(t, 1, resyncs, "a name the format cannot carry is sent as a resync")

	// A node skips its own notifications; an unknown format is a resync.
	for _, p := range payloads {
		postgres.ParsePayload(p, "nodeA", func(ev store.Event) { t.Errorf("own notification delivered: %v", ev) })
	}
	var unknown []store.Event
	postgres.ParsePayload("spool9 x\nqmail", "nodeB", func(ev store.Event) { unknown = append(unknown, ev) })
	require.Equal(t, []store.Event{{Kind: store.EventResync}}, unknown)
}

func TestChannelName(t *testing.T) {
	t.Parallel()
	require.Equal(t, "spool:public", postgres.ChannelName("public"))
	long := strings.Repeat("s", 63)
	ch := postgres.ChannelName(long)
	require.LessOrEqual(t, len(ch), 63)
	require.NotEqual(t, ch, postgres.ChannelName(strings.Repeat("s", 62)+"t"))
}

// events collects what a Store's Listen delivers.
type events struct {
	mu  sync.Mutex
	all []store.Event
	ch  chan store.Event
}

// listen runs s.Listen until the test ends and waits for its first
// Resync (it is listening).
func listen(t *testing.T, s *postgres.Store) *events {
	t.Helper()
	ev := &events{ch: make(chan store.Event, 1024)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.Listen(ctx, func(e store.Event) {
			ev.mu.Lock()
			ev.all = append(ev.all, e)
			ev.mu.Unlock()
			select {
			case ev.ch <- e:
			default:
				t.Errorf("event channel full")
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	ev.await(t, func(e store.Event) bool { return e.Kind == store.EventResync })
	return ev
}

// await waits for an event that match accepts, and returns it.
func (ev *events) await(t *testing.T, match func(store.Event) bool) store.Event {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case e := <-ev.ch:
			if match(e) {
				return e
			}
		case <-timeout:
			t.Fatal("no matching event within 20s")
		}
	}
}

// awaitAll waits until every matcher has matched an event, in any order.
func (ev *events) awaitAll(t *testing.T, matchers ...func(store.Event) bool) {
	t.Helper()
	left := slices.Clone(matchers)
	ev.await(t, func(e store.Event) bool {
		left = slices.DeleteFunc(left, func(m func(store.Event) bool) bool { return m(e) })
		return len(left) == 0
	})
}

func (ev *events) count(kind store.EventKind, key string) int {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	n := 0
	for _, e := range ev.all {
		if e.Kind == kind && (e.Queue == key || e.JobID == key) {
			n++
		}
	}
	return n
}

func isEvent(kind store.EventKind, key string) func(store.Event) bool {
	return func(e store.Event) bool { return e.Kind == kind && (e.Queue == key || e.JobID == key) }
}

// TestListenHearsOtherStores: writes on one Store reach the Listen of
// another on the same schema, coalesced (one wake-up per queue for a batch)
// and without echo (a Store does not hear itself); other schemas are not
// heard.
func TestListenHearsOtherStores(t *testing.T) {
	t.Parallel()
	schema := freshSchema(t)
	a, b, c := open(t, schema), open(t, schema), open(t, schema)
	other := open(t, freshSchema(t))
	evA, evB, evOther := listen(t, a), listen(t, b), listen(t, other)
	ctx := t.Context()

	// A batch of 50 ready jobs: one wake-up of its queue.
	batch := make([]*store.Record, 50)
	for i := range batch {
		batch[i] = job("mail")
	}
	insert(t, a, batch...)
	evB.await(t, isEvent(store.EventQueueReady, "mail"))

	// Notifications reach every listener in one order: a's are queued
	// ahead of the one c sends now, so once that one arrives, a's have all
	// been delivered (or skipped).
	require.NoError(t, c.SetQueueConfig(ctx, "marker", spool.QueueConfig{}))
	evB.await(t, isEvent(store.EventQueueChanged, "marker"))
	evA.await(t, isEvent(store.EventQueueChanged, "marker"))
	require.Equal(t, 1, evB.count(store.EventQueueReady, "mail"), "one wake-up per queue for the batch")
	require.Zero(t, evA.count(store.EventQueueReady, "mail"), "a does not hear its own writes")

	// Lease (no event), complete (job finished), retry now (queue ready).
	now := time.Date(2032, time.January, 1, 0, 0, 0, 0, time.UTC) // after job's run_at
	leased, err := a.Lease(ctx, store.LeaseParams{Queues: []string{"mail"}, Max: 2, Now: now, ExpiresAt: now.Add(time.Minute)})
	require.NoError(t, err)
	require.Len(t, leased, 2)
	done, again := leased[0], leased[1]
	done.State, done.Token, done.LeaseExpiresAt, done.FinishedAt = spool.StateSucceeded, "", nil, &now
	again.State, again.Token, again.LeaseExpiresAt, again.ReadyAt = spool.StateReady, "", nil, &now
	_, errs, err := a.Update(ctx, []store.Change{{Record: done}, {Record: again}})
	require.NoError(t, err)
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	evB.awaitAll(t, isEvent(store.EventJobFinished, done.ID), isEvent(store.EventQueueReady, "mail"))

	// A due scheduled job promoted by a wakes its queue too.
	s := job("later")
	s.State, s.ReadyAt, s.RunAt = spool.StateScheduled, nil, now.Add(time.Second)
	insert(t, b, s)
	qs, err := a.PromoteDue(ctx, now.Add(2*time.Second), 10)
	require.NoError(t, err)
	require.Equal(t, []string{"later"}, qs)
	evB.await(t, isEvent(store.EventQueueReady, "later"))

	require.NoError(t, a.SetQueueConfig(ctx, "marker2", spool.QueueConfig{}))
	evOther.mu.Lock()
	defer evOther.mu.Unlock()
	for _, e := range evOther.all {
		require.Equal(t, store.EventResync, e.Kind, "a store on another schema heard %v", e)
	}
}

// terminateListener ends the listening connection of the stores of schema
// from the server side, as a database restart or a network failure would.
func terminateListener(t *testing.T, schema string) {
	t.Helper()
	var n int
	err := admin.get(t).QueryRow(t.Context(), `
		SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND query = 'LISTEN "' || $2 || '"'`,
		postgres.ListenApplicationName, postgres.ChannelName(schema)).Scan(&n)
	require.NoError(t, err)
	require.Positive(t, n, "no listening connection found for schema %s", schema)
}

// TestListenReconnects: when the listening connection is cut, Listen
// connects again by itself and sends a Resync (notifications sent in
// between are lost), then hears the other store again.
func TestListenReconnects(t *testing.T) {
	t.Parallel()
	schema := freshSchema(t)
	a, b := open(t, schema), open(t, schema)
	evB := listen(t, b)
	terminateListener(t, schema)
	evB.await(t, func(e store.Event) bool { return e.Kind == store.EventResync })
	insert(t, a, job("after"))
	evB.await(t, isEvent(store.EventQueueReady, "after"))
}

func TestListenEndsWithTheStore(t *testing.T) {
	t.Parallel()
	s, err := postgres.Open(t.Context(), testURL(t), postgres.Options{Schema: freshSchema(t), MaxConns: 2})
	require.NoError(t, err)
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		var once sync.Once
		done <- s.Listen(context.Background(), func(store.Event) { once.Do(func() { close(started) }) })
	}()
	<-started
	require.NoError(t, s.Close())
	select {
	case err := <-done:
		require.ErrorIs(t, err, spool.ErrUnavailable)
	case <-time.After(10 * time.Second):
		t.Fatal("Listen did not return after Close")
	}
	require.ErrorIs(t, s.Listen(context.Background(), func(store.Event) {}), spool.ErrUnavailable)
}

// TestNextDue: NextDue knows this store's scheduled jobs at once, and the
// other stores' after a PromoteDue.
func TestNextDue(t *testing.T) {
	t.Parallel()
	schema := freshSchema(t)
	a, b := open(t, schema), open(t, schema)
	ctx := t.Context()
	_, ok := a.NextDue()
	require.False(t, ok, "nothing scheduled")
	base := time.Date(2031, time.March, 4, 5, 6, 7, 0, time.UTC)

	s1 := job("q")
	s1.State, s1.ReadyAt, s1.RunAt = spool.StateScheduled, nil, base.Add(10*time.Second)
	insert(t, a, s1)
	at, ok := a.NextDue()
	require.True(t, ok)
	require.Equal(t, s1.RunAt, at, "a's own write")

	s2 := job("q")
	s2.State, s2.ReadyAt, s2.RunAt = spool.StateScheduled, nil, base.Add(5*time.Second)
	insert(t, b, s2)
	at, _ = a.NextDue()
	require.Equal(t, s1.RunAt, at, "b's write is not known to a yet")
	_, err := a.PromoteDue(ctx, base, 10)
	require.NoError(t, err)
	at, _ = a.NextDue()
	require.Equal(t, s2.RunAt, at, "a PromoteDue reads the earliest scheduled job")

	qs, err := a.PromoteDue(ctx, base.Add(5*time.Second), 10)
	require.NoError(t, err)
	require.Equal(t, []string{"q"}, qs)
	at, _ = a.NextDue()
	require.Equal(t, s1.RunAt, at)
	_, err = a.PromoteDue(ctx, base.Add(time.Minute), 10)
	require.NoError(t, err)
	_, ok = a.NextDue()
	require.False(t, ok, "nothing scheduled any more")
}

func jobEvents(n int) []spool.JobEvent {
	at := time.Date(2032, time.January, 1, 0, 0, 0, 0, time.UTC)
	states := []spool.State{spool.StateReady, spool.StateActive, spool.StateSucceeded}
	evs := make([]spool.JobEvent, n)
	for i := range evs {
		evs[i] = spool.JobEvent{ID: fmt.Sprintf("0190a1b2-c3d4-7e5f-8a9b-%012d", i/3), Queue: "mail", Type: "email.send",
			State: states[i%3], Attempt: 1, At: at.Add(time.Duration(i) * time.Microsecond)}
	}
	return evs
}

func TestEventPayloadRoundTrip(t *testing.T) {
	t.Parallel()
	evs := jobEvents(300)
	evs = append(evs, spool.JobEvent{ID: "x", Queue: "mail", Type: "bad\ttype", State: spool.StateReady})
	payloads := postgres.EventPayloads("nodeA", evs)
	require.Greater(t, len(payloads), 1)
	var got []spool.JobEvent
	for _, p := range payloads {
		require.LessOrEqual(t, len(p), postgres.MaxPayload)
		postgres.ParsePayload(p, "nodeB", func(ev store.Event) {
			require.Equal(t, store.EventJobState, ev.Kind)
			got = append(got, *ev.Job)
		})
	}
	require.Equal(t, evs[:300], got, "in order, every field kept; a field the format cannot carry is not sent")
}

// TestJobEventsReachOtherStores: job events published by one store arrive,
// in order, at the listeners of the other stores on the schema.
func TestJobEventsReachOtherStores(t *testing.T) {
	t.Parallel()
	schema := freshSchema(t)
	a, b := open(t, schema), open(t, schema)
	evA, evB := listen(t, a), listen(t, b)
	sent := jobEvents(600)
	for i := 0; i < len(sent); i += 50 {
		a.PublishJobEvents(sent[i : i+50])
	}
	last := sent[len(sent)-1]
	evB.await(t, func(e store.Event) bool {
		return e.Kind == store.EventJobState && e.Job.ID == last.ID && e.Job.State == last.State
	})
	evB.mu.Lock()
	var got []spool.JobEvent
	for _, e := range evB.all {
		if e.Kind == store.EventJobState {
			got = append(got, *e.Job)
		}
	}
	evB.mu.Unlock()
	require.Equal(t, sent, got)
	require.Zero(t, evA.count(store.EventJobState, ""), "a store does not hear its own events")
}
