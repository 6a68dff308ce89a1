package engine_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/engine"
	"github.com/spoolq/spool/internal/store/embedded"
)

// TestDeadLetterQueue: a job that goes dead in a queue with a
// dead_letter_queue is copied there, ready, in the same store write that
// makes it dead, whichever way it dies: a final fail, attempts spent by a
// batch ack, or a lapsed lease (whose record is read without payload).
func TestDeadLetterQueue(t *testing.T) {
	t.Parallel()
	st, err := embedded.Open(t.TempDir(), embedded.Options{})
	require.NoError(t, err)
	rs := &recordingStore{Store: st}
	clock := engine.NewManualClock(t0)
	e, err := engine.New(engine.Config{Store: rs, Clock: clock})
	require.NoError(t, err)
	t.Cleanup(func() {
		e.Stop()
		require.NoError(t, st.Close())
	})
	h := &harness{e: e, clock: clock, ctx: t.Context()}
	_, err = e.PatchQueue(h.ctx, "work", spool.QueueConfig{DeadLetterQueue: ptr("work-dead"), MaxAttempts: ptr(1)})
	require.NoError(t, err)
	info, err := e.Queue(h.ctx, "work")
	require.NoError(t, err)
	require.Equal(t, "work-dead", *info.Config.DeadLetterQueue)
	_, err = e.PatchQueue(h.ctx, "work", spool.QueueConfig{DeadLetterQueue: ptr("work")})
	require.ErrorIs(t, err, spool.ErrInvalid)
	_, err = e.PatchQueue(h.ctx, "work", spool.QueueConfig{DeadLetterQueue: ptr("Not A Name")})
	require.ErrorIs(t, err, spool.ErrInvalid)

	jobs := h.enqueue(t, "work",
		spool.EnqueueRequest{Type: "a", Payload: json.RawMessage(`{"n":1}`), Priority: 3, Tags: []string{"x"}},
		spool.EnqueueRequest{Type: "b", Payload: json.RawMessage(`{"n":2}`)},
		spool.EnqueueRequest{Type: "c", Payload: json.RawMessage(`{"n":3}`)},
	)
	got := h.lease(t, 3, time.Minute, "work")
	require.Len(t, got, 3)

	// A final fail: one update holds the dead state and the copy.
	rs.mu.Lock()
	rs.updates = nil
	rs.mu.Unlock()
	_, err = e.Fail(h.ctx, jobs[0].ID, spool.FailRequest{Token: got[0].Lease.Token, Error: "bad", Final: true})
	require.NoError(t, err)
	rs.mu.Lock()
	require.Len(t, rs.updates, 1)
	require.Len(t, rs.updates[0], 1)
	require.Len(t, rs.updates[0][0].Then, 1)
	require.Equal(t, "work-dead", rs.updates[0][0].Then[0].Queue)
	rs.mu.Unlock()

	// Attempts spent through a batch ack.
	res, err := e.Ack(h.ctx, []spool.Ack{{ID: jobs[1].ID, Token: got[1].Lease.Token, Outcome: spool.OutcomeFail, Error: "bad"}})
	require.NoError(t, err)
	require.Nil(t, res[0].Error)
	require.Equal(t, spool.StateDead, res[0].State)

	// A lapsed lease.
	clock.Advance(2 * time.Minute)
	require.NoError(t, e.Maintain(h.ctx))
	require.Equal(t, spool.StateDead, h.get(t, jobs[2].ID).State)

	dead := h.lease(t, 10, time.Minute, "work-dead")
	require.Len(t, dead, 3)
	byType := map[string]*spool.Job{}
	for _, d := range dead {
		byType[d.Type] = d
		require.Equal(t, 1, d.Attempt)
		require.Equal(t, "work-dead", d.Queue)
	}
	for i, typ := range []string{"a", "b", "c"} {
		d := byType[typ]
		require.NotNil(t, d, typ)
		require.JSONEq(t, string(jobs[i].Payload), string(d.Payload))
		require.Equal(t, jobs[i].ID, engine.DeadLetterSource(d))
		require.Equal(t, spool.StateDead, h.get(t, jobs[i].ID).State)
	}
	require.Equal(t, 3, byType["a"].Priority)
	require.Equal(t, []string{"x"}, byType["a"].Tags)

	// The setting removed: a dead job stays where it died.
	_, err = e.PatchQueue(h.ctx, "work", spool.QueueConfig{DeadLetterQueue: ptr("")})
	require.NoError(t, err)
	j := h.enqueue(t, "work", spool.EnqueueRequest{Type: "d"})[0]
	l := h.lease(t, 1, time.Minute, "work")
	_, err = e.Fail(h.ctx, j.ID, spool.FailRequest{Token: l[0].Lease.Token, Error: "bad", Final: true})
	require.NoError(t, err)
	require.Empty(t, h.lease(t, 10, time.Minute, "work-dead"))
}
