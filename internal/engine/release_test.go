package engine_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
)

func TestReleaseHandsTheJobBackWithoutPenalty(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	j := h.enqueue(t, "q", spool.EnqueueRequest{Type: "t", MaxAttempts: 3})[0]
	first := h.lease(t, 1, time.Minute, "q")
	require.Len(t, first, 1)
	require.Equal(t, 1, first[0].Attempt)
	_, err := h.e.Heartbeat(h.ctx, j.ID, spool.HeartbeatRequest{Token: first[0].Lease.Token,
		Progress: &spool.ProgressUpdate{Percent: 30, Message: "working"}})
	require.NoError(t, err)

	h.clock.Advance(5 * time.Second)
	rel, err := h.e.Release(h.ctx, j.ID, spool.ReleaseRequest{Token: first[0].Lease.Token})
	require.NoError(t, err)
	require.Equal(t, spool.StateReady, rel.State)
	require.Equal(t, 0, rel.Attempt, "the released attempt does not count")
	require.Empty(t, rel.Errors, "a release records no error")
	require.Nil(t, rel.LeaseExpiresAt)
	require.Nil(t, rel.StartedAt)
	require.Nil(t, rel.Progress, "the progress of the undone attempt is dropped")
	require.Equal(t, h.clock.Now(), rel.RunAt)
	require.Equal(t, h.clock.Now(), *rel.ReadyAt)

	// The token is spent.
	_, err = h.e.Complete(h.ctx, j.ID, spool.CompleteRequest{Token: first[0].Lease.Token})
	require.ErrorIs(t, err, spool.ErrLeaseLost)
	_, err = h.e.Release(h.ctx, j.ID, spool.ReleaseRequest{Token: first[0].Lease.Token})
	require.ErrorIs(t, err, spool.ErrLeaseLost)

	// Leasable at once, as attempt 1 again, with a new token.
	again := h.lease(t, 1, time.Minute, "q")
	require.Len(t, again, 1)
	require.Equal(t, j.ID, again[0].ID)
	require.Equal(t, 1, again[0].Attempt)
	require.NotEqual(t, first[0].Lease.Token, again[0].Lease.Token)

	// A release is not a failure in the queue's rates.
	q, err := h.e.Queue(h.ctx, "q")
	require.NoError(t, err)
	require.Zero(t, q.FailRate)
}

func TestReleaseWakesAWaitingLease(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	j := h.enqueue(t, "q", spool.EnqueueRequest{Type: "t"})[0]
	held := h.lease(t, 1, time.Minute, "q")
	require.Len(t, held, 1)

	got := make(chan []*spool.Job, 1)
	go func() {
		jobs, err := h.e.Lease(h.ctx, spool.LeaseRequest{Queues: []string{"q"}, Wait: dur(time.Minute)})
		if err != nil {
			t.Errorf("lease: %v", err)
		}
		got <- jobs
	}()
	_, err := h.e.Release(h.ctx, j.ID, spool.ReleaseRequest{Token: held[0].Lease.Token})
	require.NoError(t, err)
	select {
	case jobs := <-got:
		require.Len(t, jobs, 1)
		require.Equal(t, j.ID, jobs[0].ID)
	case <-time.After(30 * time.Second):
		t.Fatal("the waiting lease was not woken by the release")
	}
}

func TestReleaseOfCancelRequestedJobCancels(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	j := h.enqueue(t, "q", spool.EnqueueRequest{Type: "t"})[0]
	l := h.lease(t, 1, time.Minute, "q")
	_, err := h.e.Cancel(h.ctx, j.ID)
	require.NoError(t, err)
	rel, err := h.e.Release(h.ctx, j.ID, spool.ReleaseRequest{Token: l[0].Lease.Token})
	require.NoError(t, err)
	require.Equal(t, spool.StateCancelled, rel.State)
	require.NotNil(t, rel.FinishedAt)
	require.Empty(t, h.lease(t, 1, time.Minute, "q"))
}

func TestReleaseRefusesWhatItDoesNotHold(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	ready := h.enqueue(t, "q", spool.EnqueueRequest{Type: "t"})[0]
	_, err := h.e.Release(h.ctx, ready.ID, spool.ReleaseRequest{Token: "anything"})
	require.ErrorIs(t, err, spool.ErrLeaseLost, "a ready job is not leased")

	l := h.lease(t, 1, time.Minute, "q")
	_, err = h.e.Release(h.ctx, ready.ID, spool.ReleaseRequest{Token: "wrong"})
	require.ErrorIs(t, err, spool.ErrLeaseLost)
	require.Equal(t, spool.StateActive, h.get(t, ready.ID).State, "a refused release changes nothing")
	require.Equal(t, 1, h.get(t, ready.ID).Attempt)

	_, err = h.e.Release(h.ctx, "0190a7e4-8c1e-7c3a-9d52-5b1f0e2a9c11", spool.ReleaseRequest{Token: l[0].Lease.Token})
	require.ErrorIs(t, err, spool.ErrNotFound)
}

func TestAckBatchReleases(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	h.enqueue(t, "q", spool.EnqueueRequest{Type: "t"}, spool.EnqueueRequest{Type: "t"}, spool.EnqueueRequest{Type: "t"})
	l := h.lease(t, 3, time.Minute, "q")
	require.Len(t, l, 3)
	_, err := h.e.Cancel(h.ctx, l[2].ID)
	require.NoError(t, err)
	res, err := h.e.Ack(h.ctx, []spool.Ack{
		{ID: l[0].ID, Token: l[0].Lease.Token, Outcome: spool.OutcomeRelease},
		{ID: l[1].ID, Token: "stale", Outcome: spool.OutcomeRelease},
		{ID: l[2].ID, Token: l[2].Lease.Token, Outcome: spool.OutcomeRelease},
	})
	require.NoError(t, err)
	require.Equal(t, spool.StateReady, res[0].State)
	require.Nil(t, res[0].Error)
	require.Equal(t, spool.CodeLeaseLost, res[1].Error.Code)
	require.Equal(t, spool.StateCancelled, res[2].State)

	got := h.get(t, l[0].ID)
	require.Equal(t, 0, got.Attempt)
	require.Empty(t, got.Errors)
	again := h.lease(t, 3, time.Minute, "q")
	require.Len(t, again, 1)
	require.Equal(t, l[0].ID, again[0].ID)
	require.Equal(t, 1, again[0].Attempt)
}
