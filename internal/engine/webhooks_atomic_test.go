package engine_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/engine"
	"github.com/spoolq/spool/internal/store"
	"github.com/spoolq/spool/internal/store/embedded"
)

// recordingStore is a real embedded store that records the writes it is
// asked for.
type recordingStore struct {
	store.Store
	mu      sync.Mutex
	updates [][]store.Change
	inserts int
}

func (s *recordingStore) Update(ctx context.Context, changes []store.Change) ([]*store.Record, []error, error) {
	s.mu.Lock()
	s.updates = append(s.updates, changes)
	s.mu.Unlock()
	return s.Store.Update(ctx, changes)
}

func (s *recordingStore) Insert(ctx context.Context, p store.InsertParams) ([]store.InsertResult, error) {
	s.mu.Lock()
	s.inserts++
	s.mu.Unlock()
	return s.Store.Insert(ctx, p)
}

// TestWebhookDeliveryIsWrittenWithTheTerminalState: finishing a job with a
// callback_url is one store write that holds both the job's terminal state
// and its delivery job, so no crash can keep one without the other.
func TestWebhookDeliveryIsWrittenWithTheTerminalState(t *testing.T) {
	t.Parallel()
	st, err := embedded.Open(t.TempDir(), embedded.Options{})
	require.NoError(t, err)
	rs := &recordingStore{Store: st}
	e, err := engine.New(engine.Config{Store: rs, Clock: engine.NewManualClock(t0)})
	require.NoError(t, err)
	t.Cleanup(func() {
		e.Stop()
		require.NoError(t, st.Close())
	})
	h := &harness{e: e, clock: engine.NewManualClock(t0), ctx: t.Context()}
	j := h.enqueue(t, "q", spool.EnqueueRequest{Type: "t", CallbackURL: "https://hooks.example.com/done"})[0]
	got := h.lease(t, 1, time.Minute, "q")
	require.Len(t, got, 1)

	rs.mu.Lock()
	rs.updates, rs.inserts = nil, 0
	rs.mu.Unlock()
	_, err = e.Complete(h.ctx, j.ID, spool.CompleteRequest{Token: got[0].Lease.Token})
	require.NoError(t, err)

	rs.mu.Lock()
	require.Len(t, rs.updates, 1, "one write")
	require.Zero(t, rs.inserts, "no separate insert")
	c := rs.updates[0][0]
	rs.mu.Unlock()
	require.Equal(t, spool.StateSucceeded, c.Record.State)
	require.Len(t, c.Then, 1)
	require.Equal(t, engine.WebhookQueue, c.Then[0].Queue)

	info, err := e.Queue(h.ctx, engine.WebhookQueue)
	require.NoError(t, err)
	require.Equal(t, int64(1), info.Counts[spool.StateReady], "the delivery is stored")

	// A job without callback_url writes nothing more.
	plain := h.enqueue(t, "q", spool.EnqueueRequest{Type: "t"})[0]
	got = h.lease(t, 1, time.Minute, "q")
	_, err = e.Complete(h.ctx, plain.ID, spool.CompleteRequest{Token: got[0].Lease.Token})
	require.NoError(t, err)
	rs.mu.Lock()
	require.Empty(t, rs.updates[len(rs.updates)-1][0].Then)
	rs.mu.Unlock()
}
