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

// The trees' 8-byte times keep the order of the times they stand for;
// those an int64 of nanoseconds cannot hold clamp to its bounds, in order,
// and the zero time (an active job without an expiry) sorts first.
func TestNanosKeepOrder(t *testing.T) {
	t.Parallel()
	times := []time.Time{
		{},
		time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1700, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 6, 15, 0, 0, 0, time.FixedZone("X", 3600)),
		time.Date(2026, 12, 6, 15, 0, 0, 1, time.UTC),
		time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for i := 1; i < len(times); i++ {
		require.LessOrEqual(t, nanos(times[i-1]), nanos(times[i]), "%s then %s", times[i-1], times[i])
	}
	require.Less(t, nanos(times[2]), nanos(times[3]))
	require.Equal(t, nanos(times[0]), nanos(times[1]), "both below the range: clamped alike")
	now := time.Now() // with a monotonic reading, which must not matter
	require.Equal(t, now.UnixNano(), nanos(now))
	require.Equal(t, nanos(now), nanos(now.Round(0)))
}
