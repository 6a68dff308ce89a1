package embedded

import (
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// A WAL sync that fails on a full disk stops the store with an error that
// says so (spool.ErrDiskFull, code disk_full), and tells its owner
// (Failed, Err) so that it restarts; a reopen serves what was synced.
func TestFullDiskOnWALSyncFailsTheStoreVisibly(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var full atomic.Bool
	fs := faultyFS(&full, isWALSync, syscall.ENOSPC)
	s, err := Open(dir, Options{fs: fs})
	require.NoError(t, err)
	ctx := t.Context()
	_, err = s.Insert(ctx, store.InsertParams{Jobs: []*store.Record{rec("a", "q", spool.StateReady)}})
	require.NoError(t, err)
	require.NoError(t, s.Err())
	select {
	case <-s.Failed():
		t.Fatal("Failed is closed while the store serves")
	default:
	}

	full.Store(true)
	_, err = s.Insert(ctx, store.InsertParams{Jobs: []*store.Record{rec("b", "q", spool.StateReady)}})
	require.ErrorIs(t, err, spool.ErrDiskFull)
	require.ErrorIs(t, err, spool.ErrUnavailable)
	require.Equal(t, spool.CodeDiskFull, spool.Code(err))
	select {
	case <-s.Failed():
	case <-time.After(10 * time.Second):
		t.Fatal("Failed was not closed after the failed sync")
	}
	require.ErrorIs(t, s.Err(), spool.ErrDiskFull)
	_, err = s.Get(ctx, "a")
	require.ErrorIs(t, err, spool.ErrDiskFull, "later calls say why the store stopped")
	_ = s.Close()

	full.Store(false)
	s = mustOpen(t, dir, Options{})
	got, err := s.Get(ctx, "a")
	require.NoError(t, err)
	require.JSONEq(t, `{"id":"a"}`, string(got.Payload))
}

// Opening on a disk too full to flush the jobs recovered from the WAL
// fails at once with one clear error, where Pebble alone would retry the
// flush forever.
func TestOpenOnFullDiskFailsFast(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	_, err := s.Insert(t.Context(), store.InsertParams{Jobs: []*store.Record{rec("a", "q", spool.StateReady)}})
	require.NoError(t, err)
	require.NoError(t, s.Close()) // the job stays in the WAL, not yet in a table

	var full atomic.Bool
	full.Store(true)
	var failedWrites atomic.Int64
	fs := errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if full.Load() && isSSTWrite(op) {
			failedWrites.Add(1)
			return syscall.ENOSPC
		}
		return nil
	}))
	// Space comes back when the test ends: the abandoned Open then
	// finishes and is closed.
	t.Cleanup(func() {
		full.Store(false)
		abandoned.Wait()
	})
	done := make(chan error, 1)
	go func() {
		s, err := Open(dir, Options{fs: fs})
		if err == nil {
			_ = s.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		require.ErrorIs(t, err, spool.ErrDiskFull)
		require.ErrorContains(t, err, "is full")
		require.ErrorContains(t, err, "free some space and start again")
	case <-time.After(30 * time.Second):
		t.Fatalf("Open on a full disk did not return (%d failed writes so far)", failedWrites.Load())
	}
}

func TestLogLimiter(t *testing.T) {
	t.Parallel()
	var l logLimiter
	now := time.Unix(1000, 0)
	for i := range logBurst {
		ok, dropped := l.allow(now)
		require.True(t, ok, "message %d", i)
		require.Zero(t, dropped)
	}
	for range 100 {
		ok, _ := l.allow(now.Add(time.Second))
		require.False(t, ok)
	}
	ok, dropped := l.allow(now.Add(logWindow))
	require.True(t, ok)
	require.Equal(t, 100, dropped, "the next message let through counts those dropped")
}

// The payload bytes of the jobs not yet finished survive a reopen (the
// job record keeps the payload's length).
func TestUsagePayloadBytesAfterReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	_, err := s.Insert(t.Context(), store.InsertParams{Jobs: []*store.Record{rec("a", "q", spool.StateReady), rec("bb", "q", spool.StateReady)}})
	require.NoError(t, err)
	u, err := s.Usage(t.Context())
	require.NoError(t, err)
	require.Equal(t, store.Usage{Queues: 1, Unfinished: 2, PayloadBytes: int64(len(`{"id":"a"}`) + len(`{"id":"bb"}`))}, u)
	require.NoError(t, s.Close())
	s = mustOpen(t, dir, Options{})
	again, err := s.Usage(t.Context())
	require.NoError(t, err)
	require.Equal(t, u, again)
}

// A flush that cannot write for a full disk fails the store (its owner
// restarts it) instead of letting writes stall once the memtables fill.
func TestFullDiskOnFlushFailsTheStore(t *testing.T) {
	t.Parallel()
	var full atomic.Bool
	fs := faultyFS(&full, isSSTWrite, syscall.ENOSPC)
	s, err := Open(t.TempDir(), Options{fs: fs})
	require.NoError(t, err)
	t.Cleanup(func() {
		full.Store(false) // lets Pebble's retried flush end, so Close returns
		_ = s.Close()
	})
	_, err = s.Insert(t.Context(), store.InsertParams{Jobs: []*store.Record{rec("a", "q", spool.StateReady)}})
	require.NoError(t, err)
	full.Store(true)
	_, err = s.db.AsyncFlush()
	require.NoError(t, err)
	select {
	case <-s.Failed():
	case <-time.After(30 * time.Second):
		t.Fatal("a flush that failed for a full disk did not fail the store")
	}
	require.ErrorIs(t, s.Err(), spool.ErrDiskFull)
	require.ErrorContains(t, s.Err(), "flush or compaction")
	_, err = s.Insert(t.Context(), store.InsertParams{Jobs: []*store.Record{rec("b", "q", spool.StateReady)}})
	require.ErrorIs(t, err, spool.ErrDiskFull)
}
