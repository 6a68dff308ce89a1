package embedded

import (
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// Every field of a record but its bodies survives meta, exactly (same
// instants, zones and monotonic readings), and a clone shares no memory
// with the meta or the record it came from.
func TestMetaKeepsEveryField(t *testing.T) {
	t.Parallel()
	r := fullRecord()
	want := r.Clone()
	want.Payload, want.Result = nil, nil

	m := newMeta(r, nil)
	got := m.Clone()
	require.Equal(t, want, got)

	// Writing through the record it came from or through a clone changes
	// nothing in the meta.
	*r.ReadyAt = time.Time{}
	r.DependsOn[0], r.Errors[0].Error, r.Backoff.Base = "x", "x", 0
	*got.LeaseExpiresAt = time.Time{}
	got.Tags[0], got.Progress.Message, got.Lease.Token = "x", "x", "x"
	require.Equal(t, want, m.Clone())

	// A record without rare fields needs none.
	plain := &store.Record{Job: spool.Job{ID: "a", Queue: "q", Type: "t", State: spool.StateReady, DependsOn: []string{}}}
	pm := newMeta(plain, nil)
	require.Nil(t, pm.rare)
	require.Empty(t, pm.orderingKey())
	require.Empty(t, pm.dependsOn())
	c := pm.Clone()
	require.Nil(t, c.DependsOn)
	c.DependsOn = nil
	plain.DependsOn = nil
	require.Equal(t, plain, c)
}

// Records of one write that share a time share one copy of it; others get
// their own.
func TestTimeCopierShares(t *testing.T) {
	t.Parallel()
	at := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	other := at.Add(time.Second)
	var c timeCopier
	a := newMeta(&store.Record{Job: spool.Job{ReadyAt: &at, StartedAt: &at}}, &c)
	b := newMeta(&store.Record{Job: spool.Job{ReadyAt: &at, StartedAt: &other}}, &c)
	require.NotSame(t, &at, a.ReadyAt, "a copy, not the caller's time")
	require.Same(t, a.ReadyAt, b.ReadyAt)
	require.NotSame(t, a.StartedAt, b.StartedAt)
	require.Equal(t, at, *a.StartedAt)
	require.Equal(t, other, *b.StartedAt)
}

// The memory a job not yet finished takes: the job itself must fit the
// 256-byte size class (a store.Record alone is 416 bytes).
func TestJobSize(t *testing.T) {
	t.Parallel()
	require.LessOrEqual(t, unsafe.Sizeof(job{}), uintptr(256))
	require.Less(t, unsafe.Sizeof(meta{}), unsafe.Sizeof(store.Record{}))
	t.Logf("job %d bytes, meta %d, store.Record %d", unsafe.Sizeof(job{}), unsafe.Sizeof(meta{}), unsafe.Sizeof(store.Record{}))
}
