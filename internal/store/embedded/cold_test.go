package embedded

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// countKeys counts the keys under prefix.
func countKeys(t *testing.T, s *Store, prefix string) int {
	t.Helper()
	n := 0
	s.mu.RLock()
	defer s.mu.RUnlock()
	require.NoError(t, s.scan(prefix, func(string, []byte) error { n++; return nil }))
	return n
}

// requireKeyHeldBy inserts a job with queue's idempotency key and requires
// the answer to be job id, already stored.
func requireKeyHeldBy(t *testing.T, s *Store, queue, key, id string) {
	t.Helper()
	dup := rec("new-"+key, queue, spool.StateReady)
	dup.IdempotencyKey = key
	res, err := s.Insert(t.Context(), store.InsertParams{Jobs: []*store.Record{dup}})
	require.NoError(t, err)
	require.True(t, res[0].Existing)
	require.Equal(t, id, res[0].Record.ID)
}

// finishAll leases every ready job of queue q and moves it to st.
func finishAll(t *testing.T, s *Store, q string, st spool.State, at time.Time) {
	t.Helper()
	ctx := t.Context()
	recs, err := s.Lease(ctx, store.LeaseParams{Queues: []string{q}, Max: 1000, Now: at, ExpiresAt: at.Add(time.Minute)})
	require.NoError(t, err)
	changes := make([]store.Change, len(recs))
	for i, r := range recs {
		r.State, r.FinishedAt, r.Token, r.LeaseExpiresAt = st, &at, "", nil
		changes[i] = store.Change{Record: r, NoBodies: true}
	}
	_, errs, err := s.Update(ctx, changes)
	require.NoError(t, err)
	for _, e := range errs {
		require.NoError(t, e)
	}
}

// Finished jobs leave memory: only their counts stay, and everything else
// about them is read from Pebble, before and after a restart, until Purge
// deletes them with their index keys.
func TestFinishedJobsLeaveMemory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	ctx := t.Context()
	var jobs []*store.Record
	for i := range 50 {
		r := rec(fmt.Sprintf("j%03d", i), "q", spool.StateReady)
		r.IdempotencyKey = fmt.Sprintf("k%d", i)
		jobs = append(jobs, r)
	}
	_, err := s.Insert(ctx, store.InsertParams{Jobs: jobs})
	require.NoError(t, err)
	require.Len(t, s.x.jobs, 50)
	finishAll(t, s, "q", spool.StateSucceeded, base)

	check := func(s *Store) {
		t.Helper()
		s.mu.RLock()
		hot, idem, all := len(s.x.jobs), len(s.x.idem), s.x.queues["q"].depth()
		s.mu.RUnlock()
		require.Zero(t, hot, "no finished job in memory")
		require.Zero(t, idem)
		require.Zero(t, all)
		q, err := s.Queue(ctx, "q")
		require.NoError(t, err)
		require.Equal(t, int64(50), q.Counts[spool.StateSucceeded])
		page, next, err := s.ListJobs(ctx, store.ListJobsParams{Queue: "q", State: spool.StateSucceeded, Limit: 20, After: "j009"})
		require.NoError(t, err)
		require.Equal(t, "j010", page[0].ID)
		require.Equal(t, "j029", next)
		require.Equal(t, spool.StateSucceeded, page[0].State)
		got, err := s.Get(ctx, "j042")
		require.NoError(t, err)
		require.JSONEq(t, `{"id":"j042"}`, string(got.Payload))
		requireKeyHeldBy(t, s, "q", "k7", "j007")
		_, err = s.Insert(ctx, store.InsertParams{Jobs: []*store.Record{rec("j001", "q", spool.StateReady)}})
		require.ErrorIs(t, err, spool.ErrConflict, "a finished job's id is still taken")
	}
	check(s)
	require.NoError(t, s.Close())
	s = mustOpen(t, dir, Options{})
	check(s)

	n, err := s.Purge(ctx, "q", base.Add(time.Second), 1000)
	require.NoError(t, err)
	require.Equal(t, 50, n)
	for _, p := range []string{prefixJob, prefixColdJob, prefixPayload, prefixStateIdx, prefixFinishedIdx, prefixIdemIdx} {
		require.Zero(t, countKeys(t, s, p), "keys under %s after the purge", p)
	}
	q, err := s.Queue(ctx, "q")
	require.NoError(t, err)
	require.Zero(t, q.Counts[spool.StateSucceeded])
}

// A directory written in format 1 (no cold index keys) is upgraded at
// Open: its finished jobs are listed, counted, purged and keep their
// idempotency keys, and the version on disk becomes the current one.
func TestUpgradeFromFormat1(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, err := pebble.Open(dir, &pebble.Options{FS: vfs.Default})
	require.NoError(t, err)
	finished := base.Add(-time.Hour)
	var kv [][2][]byte
	kv = append(kv, [2][]byte{formatKey, []byte("1")}, [2][]byte{queueKey("q"), []byte("{}")})
	for i, st := range []spool.State{spool.StateReady, spool.StateSucceeded, spool.StateDead, spool.StateCancelled} {
		j := &job{rec: newMeta(rec(fmt.Sprintf("j%d", i), "q", st), nil), seq: uint64(i + 1)}
		j.rec.IdempotencyKey = fmt.Sprintf("k%d", i)
		if st.Terminal() {
			j.rec.FinishedAt = &finished
		}
		kv = append(kv, [2][]byte{jobKey(j.rec.ID), appendJob(nil, j)})
	}
	for _, e := range kv {
		require.NoError(t, db.Set(e[0], e[1], pebble.Sync))
	}
	require.NoError(t, db.Close())

	s := mustOpen(t, dir, Options{})
	ctx := t.Context()
	q, err := s.Queue(ctx, "q")
	require.NoError(t, err)
	for _, st := range []spool.State{spool.StateReady, spool.StateSucceeded, spool.StateDead, spool.StateCancelled} {
		require.Equal(t, int64(1), q.Counts[st], "%s", st)
	}
	recs, _, err := s.ListJobs(ctx, store.ListJobsParams{Queue: "q", State: spool.StateDead, Limit: 10})
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, "j2", recs[0].ID)
	requireKeyHeldBy(t, s, "q", "k3", "j3")
	v, closer, err := s.db.Get(formatKey)
	require.NoError(t, err)
	require.Equal(t, formatVersion, string(v))
	require.NoError(t, closer.Close())
	require.Equal(t, 1, countKeys(t, s, prefixJob), "the ready job stays under j/")
	require.Equal(t, 3, countKeys(t, s, prefixColdJob), "the finished ones moved to c/")
	n, err := s.Purge(ctx, "q", base, 10)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.Equal(t, 1, countKeys(t, s, prefixJob))
	require.Zero(t, countKeys(t, s, prefixColdJob))
}

// Open does not read finished jobs, so it does not know their insert
// sequence numbers and may give one of them again; a finished job put
// back takes a new one, so two ready jobs never share a place in the
// leasing order.
func TestRetriedJobAfterReopenTakesNewPlace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	ctx := t.Context()
	a, b := rec("a", "q", spool.StateReady), rec("b", "q", spool.StateReady)
	b.Priority = 5
	_, err := s.Insert(ctx, store.InsertParams{Jobs: []*store.Record{a, b}})
	require.NoError(t, err)
	leased, err := s.Lease(ctx, store.LeaseParams{Queues: []string{"q"}, Max: 1, Now: base, ExpiresAt: base.Add(time.Minute)})
	require.NoError(t, err)
	require.Equal(t, "b", leased[0].ID)
	leased[0].State, leased[0].FinishedAt, leased[0].Token, leased[0].LeaseExpiresAt = spool.StateDead, &base, "", nil
	_, errs, err := s.Update(ctx, []store.Change{{Record: leased[0]}})
	require.NoError(t, err)
	require.NoError(t, errs[0])
	require.NoError(t, s.Close())

	// After the reopen, c gets the sequence number b had.
	s = mustOpen(t, dir, Options{})
	c := rec("c", "q", spool.StateReady)
	c.Priority = 5
	_, err = s.Insert(ctx, store.InsertParams{Jobs: []*store.Record{c}})
	require.NoError(t, err)
	dead, err := s.Get(ctx, "b")
	require.NoError(t, err)
	dead.State, dead.FinishedAt, dead.ReadyAt = spool.StateReady, nil, &base
	_, errs, err = s.Update(ctx, []store.Change{{Record: dead}})
	require.NoError(t, err)
	require.NoError(t, errs[0])
	got, err := s.Lease(ctx, store.LeaseParams{Queues: []string{"q"}, Max: 10, Now: base, ExpiresAt: base.Add(time.Minute)})
	require.NoError(t, err)
	var order []string
	for _, r := range got {
		order = append(order, r.ID)
	}
	require.Equal(t, []string{"c", "b", "a"}, order, "every ready job is leased, the retried one after c")
}

// A write whose batch cannot be applied leaves the cold counts and the
// cold jobs as they were.
func TestRollbackRestoresColdJobs(t *testing.T) {
	t.Parallel()
	s := mustOpen(t, t.TempDir(), Options{})
	ctx := t.Context()
	d := rec("d1", "q", spool.StateDead)
	d.IdempotencyKey, d.FinishedAt = "kd", &base
	_, err := s.Insert(ctx, store.InsertParams{Jobs: []*store.Record{d, rec("r1", "q", spool.StateReady)}})
	require.NoError(t, err)

	s.mu.Lock()
	before := s.x.dump()
	tx := s.begin()
	// Hot to cold, cold to hot.
	r1 := s.x.jobs["r1"]
	done := *r1
	done.rec.State, done.rec.FinishedAt = spool.StateSucceeded, &base
	tx.put(r1, &done)
	d1, err := s.job(tx, "d1")
	require.NoError(t, err)
	back := *d1
	back.rec.State, back.rec.FinishedAt = spool.StateReady, nil
	tx.put(d1, &back)
	tx.err = fmt.Errorf("injected batch failure")
	_, err = s.apply(tx, "testing")
	after := s.x.dump()
	s.mu.Unlock()
	require.ErrorIs(t, err, spool.ErrUnavailable)
	require.Equal(t, before, after)

	got, err := s.Get(ctx, "d1")
	require.NoError(t, err)
	require.Equal(t, spool.StateDead, got.State)
	recs, _, err := s.ListJobs(ctx, store.ListJobsParams{Queue: "q", State: spool.StateSucceeded, Limit: 10})
	require.NoError(t, err)
	require.Empty(t, recs)
}

// No key prefix is another's prefix: a scan of one never meets the keys
// of another.
func TestKeyPrefixesDiffer(t *testing.T) {
	t.Parallel()
	for i, a := range prefixes {
		for j, b := range prefixes {
			if i != j && strings.HasPrefix(a, b) {
				t.Errorf("key prefix %q starts with prefix %q", a, b)
			}
		}
	}
}

// Schedules and subscriptions, which are read by scanning their prefixes,
// live beside finished jobs' index keys.
func TestSchedulesBesideFinishedJobs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	ctx := t.Context()
	r := rec("j1", "q", spool.StateReady)
	r.IdempotencyKey = "k"
	_, err := s.Insert(ctx, store.InsertParams{Jobs: []*store.Record{r}})
	require.NoError(t, err)
	finishAll(t, s, "q", spool.StateDead, base)
	next := base.Add(time.Hour)
	_, err = s.PutSchedule(ctx, &store.ScheduleRecord{Schedule: spool.Schedule{
		Name: "nightly", Cron: "0 3 * * *", Timezone: "UTC", Missed: spool.MissedSkip,
		Job:        spool.ScheduleJob{Queue: "q", EnqueueRequest: spool.EnqueueRequest{Type: "t"}},
		NextFireAt: &next, CreatedAt: base, UpdatedAt: base,
	}})
	require.NoError(t, err)
	require.NoError(t, s.PutSubscription(ctx, store.Subscription{Topic: "news", Queue: "q", CreatedAt: base}))
	for range 2 {
		scheds, err := s.ListSchedules(ctx)
		require.NoError(t, err)
		require.Len(t, scheds, 1)
		subs, err := s.Subscriptions(ctx, store.SubscriptionsParams{})
		require.NoError(t, err)
		require.Len(t, subs, 1)
		require.NoError(t, s.Close())
		s = mustOpen(t, dir, Options{})
	}
}

// Damaged finished-job keys are refused with the key named: at Open for
// an index key, at the read for a record that is not a finished job's.
func TestDamagedColdKeys(t *testing.T) {
	t.Parallel()
	for name, key := range map[string]string{
		"no length":       "d/",
		"length too long": "d/\x09q",
		"no separator":    "d/\x01qdead",
		"not terminal":    "d/\x01qready\x00j1",
		"no id":           "d/\x01qdead\x00",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			require.NoError(t, mustOpen(t, dir, Options{}).Close())
			writeRaw(t, dir, key, "")
			_, err := Open(dir, Options{})
			require.ErrorContains(t, err, "malformed index key")
		})
	}

	t.Run("record of a job not finished", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		require.NoError(t, mustOpen(t, dir, Options{}).Close())
		j := &job{rec: newMeta(rec("j1", "q", spool.StateReady), nil), seq: 1}
		writeRaw(t, dir, "c/j1", string(appendJob(nil, j)))
		s := mustOpen(t, dir, Options{})
		s.mu.Lock()
		s.x.maxCold = "j1" // as if j1 had finished in this process
		s.mu.Unlock()
		_, err := s.Get(t.Context(), "j1")
		require.ErrorIs(t, err, spool.ErrUnavailable)
		require.ErrorContains(t, err, `job "j1" is ready under the prefix of finished jobs`)
	})
}
