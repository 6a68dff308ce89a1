package embedded

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

var base = time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)

func rec(id, queue string, st spool.State) *store.Record {
	return &store.Record{Job: spool.Job{
		ID: id, Queue: queue, Type: "t", State: st, RunAt: base, CreatedAt: base,
		Payload: json.RawMessage(`{"id":"` + id + `"}`),
	}}
}

func mustOpen(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func writeRaw(t *testing.T, dir string, kv ...string) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{FS: vfs.Default})
	require.NoError(t, err)
	for i := 0; i < len(kv); i += 2 {
		require.NoError(t, db.Set([]byte(kv[i]), []byte(kv[i+1]), pebble.Sync))
	}
	require.NoError(t, db.Close())
}

func TestOpenRefusesUnknownFormat(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, mustOpen(t, dir, Options{}).Close())
	writeRaw(t, dir, "m/format", "3")
	_, err := Open(dir, Options{})
	require.ErrorContains(t, err, `format version "3"`)
}

func TestOpenRefusesForeignData(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeRaw(t, dir, "something", "else")
	_, err := Open(dir, Options{})
	require.ErrorContains(t, err, "without a format version")
}

func TestOpenRefusesCorruptJob(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, mustOpen(t, dir, Options{}).Close())
	writeRaw(t, dir, "j/abc", "{not json")
	_, err := Open(dir, Options{})
	require.ErrorContains(t, err, `decoding job "abc"`)
}

// isWALSync reports whether op syncs Pebble's write-ahead log.
// faultyFS fails the operations match picks with err while on is set.
func faultyFS(on *atomic.Bool, match func(errorfs.Op) bool, err error) vfs.FS {
	return errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if on.Load() && match(op) {
			return err
		}
		return nil
	}))
}

// isSSTWrite picks the writes of table files (flushes, compactions).
func isSSTWrite(op errorfs.Op) bool {
	return op.Kind == errorfs.OpFileWrite && strings.HasSuffix(op.Path, ".sst")
}

func isWALSync(op errorfs.Op) bool {
	isSync := op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData || op.Kind == errorfs.OpFileSyncTo
	return isSync && strings.HasSuffix(op.Path, ".log")
}

// A failed WAL sync stops the store: memory may be ahead of disk. A reopen
// serves what was synced.
func TestSyncFailureStopsStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var inject atomic.Bool
	fs := faultyFS(&inject, isWALSync, errorfs.ErrInjected)
	s, err := Open(dir, Options{fs: fs})
	require.NoError(t, err)
	ctx := t.Context()
	_, err = s.Insert(ctx, store.InsertParams{Jobs: []*store.Record{rec("a", "q", spool.StateReady)}})
	require.NoError(t, err)

	inject.Store(true)
	_, err = s.Insert(ctx, store.InsertParams{Jobs: []*store.Record{rec("b", "q", spool.StateReady)}})
	require.ErrorIs(t, err, spool.ErrUnavailable)
	require.ErrorContains(t, err, "syncing the WAL")
	_, err = s.Get(ctx, "a")
	require.ErrorIs(t, err, spool.ErrUnavailable, "every later call fails")
	_, err = s.Lease(ctx, store.LeaseParams{Queues: []string{"q"}, Max: 1, Now: base})
	require.ErrorIs(t, err, spool.ErrUnavailable)
	_ = s.Close() // may report the injected error

	s = mustOpen(t, dir, Options{})
	got, err := s.Get(ctx, "a")
	require.NoError(t, err)
	require.JSONEq(t, `{"id":"a"}`, string(got.Payload))
}

// A lease is answered once the writes it saw are synced, without waiting
// for its own write; a write applied before it (an insert whose caller is
// still waiting for the fsync) holds it back.
func TestLeaseWaitsForWritesItSawNotForItself(t *testing.T) {
	t.Parallel()
	var held atomic.Bool
	gate := make(chan struct{})
	fs := errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if held.Load() && isWALSync(op) {
			<-gate
		}
		return nil
	}))
	s, err := Open(t.TempDir(), Options{fs: fs})
	require.NoError(t, err)
	ctx := t.Context()
	lease := func(q string) <-chan []*store.Record {
		out := make(chan []*store.Record, 1)
		go func() {
			l, err := s.Lease(ctx, store.LeaseParams{Queues: []string{q}, Max: 1, Now: base, ExpiresAt: base.Add(time.Minute)})
			assert.NoError(t, err)
			out <- l
		}()
		return out
	}
	_, err = s.Insert(ctx, store.InsertParams{Jobs: []*store.Record{rec("a", "q", spool.StateReady)}})
	require.NoError(t, err)

	held.Store(true) // from now on every WAL sync waits for the gate
	select {
	case l := <-lease("q"):
		require.Len(t, l, 1)
		require.Equal(t, "a", l[0].ID)
		require.Equal(t, spool.StateActive, l[0].State)
	case <-time.After(10 * time.Second):
		t.Fatal("a lease of a synced job waited for its own sync")
	}

	inserted := make(chan error, 1)
	go func() {
		_, err := s.Insert(ctx, store.InsertParams{Jobs: []*store.Record{rec("b", "r", spool.StateReady)}})
		inserted <- err
	}()
	// The insert is applied (the job can be leased) before its sync.
	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		j, err := s.job(nil, "b")
		return err == nil && j != nil
	}, 10*time.Second, time.Millisecond)
	got := lease("r")
	select {
	case <-got:
		t.Fatal("a lease was answered before the insert it saw was synced")
	case <-time.After(200 * time.Millisecond):
	}
	held.Store(false)
	close(gate)
	require.NoError(t, <-inserted)
	l := <-got
	require.Len(t, l, 1)
	require.Equal(t, "b", l[0].ID)
	require.NoError(t, s.Close())
}

// dump renders every index in a comparable form.
func (x *index) dump() map[string]any {
	out := map[string]any{}
	jobs := map[string]*job{}
	for id, j := range x.jobs {
		jobs[id] = j
	}
	out["jobs"] = jobs
	idem := map[idemKey]string{}
	for k, v := range x.idem {
		idem[k] = v
	}
	out["idem"] = idem
	var sched, active []timeItem
	x.scheduled.Ascend(func(it timeItem) bool { sched = append(sched, it); return true })
	x.active.Ascend(func(it timeItem) bool { active = append(active, it); return true })
	out["scheduled"], out["active"] = sched, active
	for name, q := range x.queues {
		by := map[spool.State][]string{}
		for st, tr := range q.byState {
			tr.Ascend(func(id string) bool { by[st] = append(by[st], id); return true })
		}
		var ready []readyItem
		q.ready.Ascend(func(it readyItem) bool { ready = append(ready, it); return true })
		var since []timeItem
		q.readySince.Ascend(func(it timeItem) bool { since = append(since, it); return true })
		out["queue/"+name] = []any{q.cfg, by, ready, since, q.cold}
	}
	return out
}

// A write whose batch cannot be applied leaves the indexes as they were.
func TestRollbackRestoresIndexes(t *testing.T) {
	t.Parallel()
	s := mustOpen(t, t.TempDir(), Options{})
	ctx := t.Context()
	jobs := []*store.Record{
		rec("r1", "q", spool.StateReady), rec("r2", "q", spool.StateReady), rec("s1", "q", spool.StateScheduled),
		rec("w1", "q", spool.StateWaiting), rec("d1", "q", spool.StateDead),
	}
	jobs[0].IdempotencyKey = "k1"
	jobs[4].IdempotencyKey = "k4"
	jobs[4].FinishedAt = &base
	_, err := s.Insert(ctx, store.InsertParams{Jobs: jobs})
	require.NoError(t, err)
	_, err = s.Lease(ctx, store.LeaseParams{Queues: []string{"q"}, Max: 1, Now: base, ExpiresAt: base.Add(time.Minute)})
	require.NoError(t, err)

	s.mu.Lock()
	defer s.mu.Unlock()
	before := s.x.dump()
	nextSeq := s.nextSeq

	tx := s.begin()
	// Every kind of change: state moves, a key change, a delete, a new job
	// in a new queue.
	for _, id := range []string{"r1", "r2", "s1", "w1"} {
		old := s.x.jobs[id]
		nj := *old
		nj.rec.State = spool.StateActive
		nj.rec.IdempotencyKey = "new-" + id
		nj.rec.LeaseExpiresAt = &base
		nj.rec.Rev++
		tx.put(old, &nj)
	}
	d1, err := s.job(tx, "d1")
	require.NoError(t, err)
	tx.put(d1, nil)
	tx.put(nil, &job{rec: newMeta(rec("n1", "fresh", spool.StateReady), nil), seq: 99})
	tx.err = errors.New("injected batch failure")
	_, err = s.apply(tx, "testing")
	require.ErrorIs(t, err, spool.ErrUnavailable)
	require.Equal(t, before, s.x.dump())
	require.Equal(t, nextSeq, s.nextSeq)
	_, ok := s.x.queues["fresh"]
	require.False(t, ok)
}

func TestSyncTracker(t *testing.T) {
	t.Parallel()
	var tr syncTracker
	tr.cond.L = &tr.mu
	done := make(chan error)
	go func() { done <- tr.wait(2) }()
	tr.done(1) // not enough for wait(2)
	tr.done(3) // syncs complete in order: 3 covers 2
	require.NoError(t, <-done)
	require.NoError(t, tr.wait(3))

	go func() { done <- tr.wait(4) }()
	tr.fail(errors.New("disk gone"))
	require.ErrorContains(t, <-done, "disk gone")
}

// TestCrashKeepsAcknowledgedWrites takes crash images of the file system
// (only what was fsynced survives, plus a random part of what was not) while
// writers run, and checks that every write acknowledged before the image
// was taken is in the store rebuilt from it.
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	t.Parallel()
	fs := vfs.NewCrashableMem()
	s, err := Open("db", Options{fs: fs})
	require.NoError(t, err)
	ctx := t.Context()

	// stage[id]: 1 inserted, 2 leased, 3 completed, as answered.
	var mu sync.Mutex
	stage := map[string]int{}
	ack := func(id string, st int) {
		mu.Lock()
		stage[id] = max(stage[id], st)
		mu.Unlock()
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%06d", w, i)
				q := fmt.Sprintf("q%d", w)
				// Two producers race with one idempotency key: the one told
				// "existing" must not be answered before the job is synced.
				var ins sync.WaitGroup
				for _, jid := range []string{id, id + "-dup"} {
					ins.Go(func() {
						r := rec(jid, q, spool.StateReady)
						r.IdempotencyKey = id
						r.Payload = json.RawMessage(`{"id":"` + id + `"}`)
						res, err := s.Insert(ctx, store.InsertParams{Jobs: []*store.Record{r}})
						if assert.NoError(t, err) {
							ack(res[0].Record.ID, 1)
						}
					})
				}
				ins.Wait()
				l, err := s.Lease(ctx, store.LeaseParams{Queues: []string{q}, Max: 1, Now: base, ExpiresAt: base.Add(time.Minute)})
				if !assert.NoError(t, err) || !assert.Len(t, l, 1) {
					return
				}
				ack(l[0].ID, 2)
				l[0].State, l[0].Result, l[0].FinishedAt = spool.StateSucceeded, json.RawMessage(`{"ok":true}`), &base
				_, errs, err := s.Update(ctx, []store.Change{{Record: l[0]}})
				if !assert.NoError(t, err) || !assert.NoError(t, errs[0]) {
					return
				}
				ack(l[0].ID, 3)
			}
		})
	}

	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 4 {
		// Let some writes happen, then take the image.
		for {
			mu.Lock()
			n := len(stage)
			mu.Unlock()
			if n >= 50*(round+1) {
				break
			}
			runtime.Gosched()
		}
		mu.Lock()
		acked := maps.Clone(stage)
		mu.Unlock()
		img := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rng})

		r, err := Open("db", Options{fs: img})
		require.NoError(t, err, "round %d", round)
		for id, st := range acked {
			got, err := r.Get(ctx, id)
			require.NoError(t, err, "round %d: acknowledged job %s lost", round, id)
			switch st {
			case 2:
				// A lease is answered before its own write is synced: a
				// crash may undo it (the job is ready again), never the
				// insert before it.
				require.Contains(t, []spool.State{spool.StateReady, spool.StateActive, spool.StateSucceeded}, got.State, "job %s", id)
			case 3:
				require.Equal(t, spool.StateSucceeded, got.State, "job %s", id)
				require.JSONEq(t, `{"ok":true}`, string(got.Result))
			}
			require.JSONEq(t, `{"id":"`+strings.TrimSuffix(id, "-dup")+`"}`, string(got.Payload))
		}
		require.NoError(t, r.Close())
	}
	close(stop)
	wg.Wait()
	require.NoError(t, s.Close())
}
