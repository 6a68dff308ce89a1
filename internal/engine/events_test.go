package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/engine"
	"github.com/spoolq/spool/internal/store/embedded"
)

func TestEventsFollowAJobsLife(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	start := h.e.LastEventID()
	job := h.enqueue(t, "q", spool.EnqueueRequest{Type: "t"})[0]
	h.enqueue(t, "other", spool.EnqueueRequest{Type: "t"})
	leased := h.lease(t, 1, time.Minute, "q")
	_, err := h.e.Complete(h.ctx, job.ID, spool.CompleteRequest{Token: leased[0].Lease.Token})
	require.NoError(t, err)

	p := h.e.EventsAfter(start, engine.EventFilter{Job: job.ID}, 100)
	require.False(t, p.Missed)
	require.Equal(t, h.e.LastEventID(), p.Cursor)
	evs := p.Events
	var states []spool.State
	for i, ev := range evs {
		states = append(states, ev.State)
		require.Equal(t, job.ID, ev.ID)
		if i > 0 {
			require.Greater(t, ev.EventID, evs[i-1].EventID)
		}
	}
	require.Equal(t, []spool.State{spool.StateReady, spool.StateActive, spool.StateSucceeded}, states)
	require.Equal(t, 1, evs[1].Attempt)

	require.Len(t, h.e.EventsAfter(start, engine.EventFilter{Queues: []string{"other"}}, 100).Events, 1)
	p = h.e.EventsAfter(start, engine.EventFilter{}, 2)
	require.Len(t, p.Events, 2)
	require.Equal(t, start+2, p.Cursor)
}

func TestEventsRingReportsMissed(t *testing.T) {
	t.Parallel()
	st, err := embedded.Open(t.TempDir(), embedded.Options{})
	require.NoError(t, err)
	e, err := engine.New(engine.Config{Store: st, EventLog: 3})
	require.NoError(t, err)
	t.Cleanup(func() {
		e.Stop()
		require.NoError(t, st.Close())
	})
	ctx := context.Background()
	for range 5 {
		_, err := e.Enqueue(ctx, "q", []spool.EnqueueRequest{{Type: "t"}})
		require.NoError(t, err)
	}
	require.EqualValues(t, 5, e.LastEventID())
	p := e.EventsAfter(1, engine.EventFilter{}, 10)
	require.True(t, p.Missed)
	require.EqualValues(t, 2, p.ResumedAfter)
	require.EqualValues(t, 5, p.Cursor)
	require.Len(t, p.Events, 3)
	require.EqualValues(t, 3, p.Events[0].EventID)

	p = e.EventsAfter(2, engine.EventFilter{}, 10)
	require.False(t, p.Missed, "event 3 is still held")
	require.Len(t, p.Events, 3)

	// An id from a previous process.
	p = e.EventsAfter(99, engine.EventFilter{}, 10)
	require.True(t, p.Missed)
	require.Empty(t, p.Events)
	require.EqualValues(t, 5, p.Cursor)

	// Waiting: an event wakes, Stop ends the wait.
	woke := make(chan bool, 1)
	go func() { woke <- e.WaitEvents(ctx, 5) }()
	_, err = e.Enqueue(ctx, "q", []spool.EnqueueRequest{{Type: "t"}})
	require.NoError(t, err)
	require.True(t, <-woke)
	go func() { woke <- e.WaitEvents(ctx, 6) }()
	e.Stop()
	require.False(t, <-woke)
}
