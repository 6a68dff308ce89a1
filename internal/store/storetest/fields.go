package storetest

import (
	"testing"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/jobtest"
	"github.com/spoolq/spool/internal/store"
)

// testEveryField round-trips the shared fixture with every field of
// spool.Job set (jobtest.Full) through Insert, Update and Get: a field a
// backend does not store fails here.
func testEveryField(t *testing.T, newStore NewStore) {
	h := begin(t, newStore)
	full := jobtest.Full()
	jobtest.RequireEveryField(t, full)

	// Inserted ready, with what a producer sets.
	in := &store.Record{Job: store.CloneJob(full)}
	in.ID = newID()
	in.State, in.Attempt, in.Worker, in.CancelRequested = spool.StateReady, 0, "", false
	in.StartedAt, in.LeaseExpiresAt, in.FinishedAt = nil, nil, nil
	in.Result, in.Errors, in.Progress, in.Lease = nil, nil, nil, nil
	rec := h.insert(in)[0]

	// Then active with every field set (the lease is not stored: Token
	// and LeaseExpiresAt are).
	up := &store.Record{Job: store.CloneJob(full), Token: "tok-every-field", Rev: rec.Rev}
	up.ID = rec.ID
	up.Lease = nil
	h.update(up)
	got := h.get(rec.ID)
	requireSameJob(t, up, got)
	if got.Token != up.Token {
		t.Errorf("token %q, want %q", got.Token, up.Token)
	}
}
