package client_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
)

// TestEventsFollowAJob reads a job's whole life from the stream: enqueue,
// lease, complete.
func TestEventsFollowAJob(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	job, err := c.Push(ctx, "ev", "t", nil)
	require.NoError(t, err)
	leased, err := c.Lease(ctx, spool.LeaseRequest{Queues: []string{"ev"}, Max: 1})
	require.NoError(t, err)
	require.Len(t, leased, 1)
	_, err = c.Complete(ctx, job.ID, spool.CompleteRequest{Token: leased[0].Lease.Token})
	require.NoError(t, err)

	// Resuming after event 1 (the enqueue) replays the rest of its life.
	var states []spool.State
	for ev, err := range c.Events(ctx, client.EventsOptions{Job: job.ID, Stats: -1, LastEventID: 1}) {
		require.NoError(t, err)
		if ev.Name == spool.EventMissed {
			continue
		}
		require.Equal(t, spool.EventJob, ev.Name)
		require.Equal(t, job.ID, ev.Job.ID)
		require.NotZero(t, ev.ID)
		states = append(states, ev.Job.State)
		if ev.Job.State.Terminal() {
			break
		}
	}
	require.Equal(t, []spool.State{spool.StateActive, spool.StateSucceeded}, states)
}

// TestEventsResumeAfterADroppedConnection cuts the stream after the first
// event: the reader reconnects with Last-Event-ID and sees the next event
// once, with no gap and no repeat.
func TestEventsResumeAfterADroppedConnection(t *testing.T) {
	t.Parallel()
	var streams atomic.Int32
	var mu sync.Mutex
	var lastIDs []string
	c, _ := newServerWith(t, serverSetup{wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/events" {
				h.ServeHTTP(w, r)
				return
			}
			mu.Lock()
			lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
			mu.Unlock()
			if streams.Add(1) == 1 {
				// The first stream ends after a short while.
				ctx, cancel := context.WithTimeout(r.Context(), 300*time.Millisecond)
				defer cancel()
				r = r.WithContext(ctx)
			}
			h.ServeHTTP(w, r)
		})
	}})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err := c.Push(ctx, "rs", "t", nil)
	require.NoError(t, err)
	first, err := c.Push(ctx, "rs", "t", nil)
	require.NoError(t, err)

	var seen []string
	var ids []uint64
	for ev, err := range c.Events(ctx, client.EventsOptions{Queues: []string{"rs"}, Stats: -1, LastEventID: 1}) {
		require.NoError(t, err)
		if ev.Name != spool.EventJob {
			continue
		}
		seen = append(seen, ev.Job.ID)
		ids = append(ids, ev.ID)
		if len(seen) == 1 {
			// Wait for the first stream to be cut, then make the next event.
			time.Sleep(500 * time.Millisecond)
			_, err := c.Push(ctx, "rs", "t", nil)
			require.NoError(t, err)
		}
		if len(seen) == 2 {
			break
		}
	}
	require.Equal(t, first.ID, seen[0])
	require.NotEqual(t, seen[0], seen[1])
	require.Equal(t, ids[0]+1, ids[1], "no event lost or repeated")
	require.GreaterOrEqual(t, streams.Load(), int32(2), "the stream was reopened")
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"1", "2"}, lastIDs[:2], "the second stream resumed after the event seen")
}

// TestEventsBadFilterEndsTheStream: a 400 is yielded once and ends it.
func TestEventsBadFilterEndsTheStream(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	n := 0
	for _, err := range c.Events(t.Context(), client.EventsOptions{Queues: []string{"_internal"}}) {
		n++
		var apiErr *client.Error
		require.ErrorAs(t, err, &apiErr)
		require.Equal(t, http.StatusBadRequest, apiErr.Status)
	}
	require.Equal(t, 1, n)
}
