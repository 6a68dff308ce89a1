// Package storetest is the conformance suite of store.Store: every backend
// (embedded Pebble, PostgreSQL) runs it against a real instance, never a
// mock. It tests the contract written in package store and nothing of a
// backend's internals.
//
// Run covers every method; RunReopen adds the durability checks for a
// backend whose state survives Close and a new open on the same directory.
//
// Times in the suite are whole microseconds (PostgreSQL's precision) and
// compared with Equal; payloads and results are compared as JSON, so a
// backend may store them as jsonb.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// NewStore returns a fresh, empty store for one test. It should register the
// store's Close with t.Cleanup; Close must be idempotent, since some tests
// close the store themselves.
type NewStore = func(t *testing.T) store.Store

// Run runs the conformance suite. Each subtest gets its own store from
// newStore and most run in parallel.
func Run(t *testing.T, newStore NewStore) {
	t.Run("Insert", func(t *testing.T) { testInsert(t, newStore) })
	t.Run("Lease", func(t *testing.T) { testLease(t, newStore) })
	t.Run("Update", func(t *testing.T) { testUpdate(t, newStore) })
	t.Run("UpdateThen", func(t *testing.T) { testUpdateThen(t, newStore) })
	t.Run("ListJobs", func(t *testing.T) { testListJobs(t, newStore) })
	t.Run("ListJobsFiltered", func(t *testing.T) { testListFiltered(t, newStore) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, newStore) })
	t.Run("EveryField", func(t *testing.T) { testEveryField(t, newStore) })
	t.Run("Maintenance", func(t *testing.T) { testMaintenance(t, newStore) })
	t.Run("Queues", func(t *testing.T) { testQueues(t, newStore) })
	t.Run("Topics", func(t *testing.T) { testTopics(t, newStore) })
	t.Run("Dependencies", func(t *testing.T) { testDependencies(t, newStore) })
	t.Run("Schedules", func(t *testing.T) { testSchedules(t, newStore) })
	t.Run("Flow", func(t *testing.T) { testFlow(t, newStore) })
	t.Run("Keys", func(t *testing.T) { testKeys(t, newStore) })
	t.Run("Telemetry", func(t *testing.T) { testTelemetry(t, newStore) })
	t.Run("Close", func(t *testing.T) { testClose(t, newStore) })
}

// t0 is the suite's "now"; at(d) is t0+d.
var t0 = time.Date(2031, time.March, 4, 5, 6, 7, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func ptr[T any](v T) *T { return &v }

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// h is a test's harness: its store and helpers that fail the test on any
// unexpected error.
type h struct {
	t   *testing.T
	s   store.Store
	ctx context.Context
}

// begin marks t parallel and gives it a fresh store.
func begin(t *testing.T, newStore NewStore) *h {
	t.Helper()
	t.Parallel()
	return &h{t: t, s: newStore(t), ctx: t.Context()}
}

// job builds a ready job of queue, created and ready at t0, then applies
// the modifiers.
func job(queue string, mods ...func(r *store.Record)) *store.Record {
	r := &store.Record{Job: spool.Job{
		ID:          newID(),
		Queue:       queue,
		Type:        "email.send",
		Payload:     json.RawMessage(`{"to":"ada@example.com"}`),
		State:       spool.StateReady,
		RunAt:       t0,
		MaxAttempts: 3,
		CreatedAt:   t0,
		ReadyAt:     ptr(t0),
	}}
	for _, m := range mods {
		m(r)
	}
	return r
}

func priority(p int) func(r *store.Record) { return func(r *store.Record) { r.Priority = p } }

func key(k string) func(r *store.Record) { return func(r *store.Record) { r.IdempotencyKey = k } }

func payload(s string) func(r *store.Record) {
	return func(r *store.Record) { r.Payload = json.RawMessage(s) }
}

func scheduled(runAt time.Time) func(r *store.Record) {
	return func(r *store.Record) { r.State, r.RunAt, r.ReadyAt = spool.StateScheduled, runAt, nil }
}

func readyAt(ts time.Time) func(r *store.Record) {
	return func(r *store.Record) { r.ReadyAt = ptr(ts) }
}

func state(s spool.State) func(r *store.Record) {
	return func(r *store.Record) {
		r.State = s
		if s != spool.StateReady {
			r.ReadyAt = nil
		}
	}
}

// insert stores new jobs (no idempotent duplicates expected) and returns
// the stored records.
func (h *h) insert(recs ...*store.Record) []*store.Record {
	h.t.Helper()
	res, err := h.s.Insert(h.ctx, store.InsertParams{Jobs: recs})
	require.NoError(h.t, err)
	require.Len(h.t, res, len(recs))
	out := make([]*store.Record, len(res))
	for i, r := range res {
		require.False(h.t, r.Existing, "job %d of the insert", i)
		require.NotNil(h.t, r.Record)
		out[i] = r.Record
	}
	return out
}

func (h *h) get(id string) *store.Record {
	h.t.Helper()
	r, err := h.s.Get(h.ctx, id)
	require.NoError(h.t, err, "get %s", id)
	return r
}

func (h *h) requireGone(id string) {
	h.t.Helper()
	_, err := h.s.Get(h.ctx, id)
	require.ErrorIs(h.t, err, spool.ErrNotFound, "get %s", id)
}

// lease leases as worker "w1" at now for 30 seconds, with unique tokens.
func (h *h) lease(queues []string, max int, now time.Time) []*store.Record {
	h.t.Helper()
	recs, err := h.s.Lease(h.ctx, store.LeaseParams{
		Queues: queues, Max: max, Worker: "w1", Now: now, ExpiresAt: now.Add(30 * time.Second), NewToken: newToken,
	})
	require.NoError(h.t, err)
	require.LessOrEqual(h.t, len(recs), max)
	return recs
}

func newToken() string { return "tok-" + uuid.NewString() }

// update writes every record with a compare-and-set and requires success.
func (h *h) update(recs ...*store.Record) []*store.Record {
	h.t.Helper()
	changes := make([]store.Change, len(recs))
	for i, r := range recs {
		changes[i] = store.Change{Record: r}
	}
	out, errs, err := h.s.Update(h.ctx, changes)
	require.NoError(h.t, err)
	require.Len(h.t, out, len(recs))
	require.Len(h.t, errs, len(recs))
	for i := range recs {
		require.NoError(h.t, errs[i], "change %d", i)
		require.NotNil(h.t, out[i], "change %d", i)
	}
	return out
}

// finish moves a job to a terminal state, finished at ts.
func (h *h) finish(id string, s spool.State, ts time.Time) *store.Record {
	h.t.Helper()
	r := h.get(id)
	r.State, r.FinishedAt, r.Token, r.LeaseExpiresAt = s, ptr(ts), "", nil
	return h.update(r)[0]
}

// counts returns a queue's counts with every state present.
func (h *h) counts(queue string) map[spool.State]int64 {
	h.t.Helper()
	q, err := h.s.Queue(h.ctx, queue)
	require.NoError(h.t, err)
	return fullCounts(q.Counts)
}

func fullCounts(c map[spool.State]int64) map[spool.State]int64 {
	out := make(map[spool.State]int64, len(spool.States))
	for _, s := range spool.States {
		out[s] = c[s]
	}
	return out
}

// want builds an expected counts map.
func want(kv ...any) map[spool.State]int64 {
	out := fullCounts(nil)
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(spool.State)] = int64(kv[i+1].(int))
	}
	return out
}

func (h *h) listAll(queue string, st spool.State) []string {
	h.t.Helper()
	recs, next, err := h.s.ListJobs(h.ctx, store.ListJobsParams{Queue: queue, State: st, Limit: 1000})
	require.NoError(h.t, err)
	require.Empty(h.t, next)
	return ids(recs)
}

func ids(recs []*store.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

// requireSameJob compares two jobs field by field: times with Equal,
// payload and result as JSON, nil and empty slices alike.
func requireSameJob(t *testing.T, want, got *store.Record, msgAndArgs ...any) {
	t.Helper()
	require.NotNil(t, got, msgAndArgs...)
	requireJSON(t, want.Payload, got.Payload, append([]any{"payload"}, msgAndArgs...)...)
	requireJSON(t, want.Result, got.Result, append([]any{"result"}, msgAndArgs...)...)
	require.Equal(t, normalize(want.Job), normalize(got.Job), msgAndArgs...)
}

func requireJSON(t *testing.T, want, got json.RawMessage, msgAndArgs ...any) {
	t.Helper()
	if len(want) == 0 {
		require.Empty(t, got, msgAndArgs...)
		return
	}
	require.JSONEq(t, string(want), string(got), msgAndArgs...)
}

// normalize makes a job comparable with require.Equal: times in UTC
// without monotonic readings, empty slices nil, no payload or result.
func normalize(j spool.Job) spool.Job {
	c := store.CloneJob(&j)
	c.Payload, c.Result = nil, nil
	c.RunAt, c.CreatedAt = utc(c.RunAt), utc(c.CreatedAt)
	for _, p := range []**time.Time{&c.LeaseExpiresAt, &c.ReadyAt, &c.StartedAt, &c.FinishedAt} {
		if *p != nil {
			*p = ptr(utc(**p))
		}
	}
	for i := range c.Errors {
		c.Errors[i].At = utc(c.Errors[i].At)
	}
	if c.Progress != nil {
		c.Progress.UpdatedAt = utc(c.Progress.UpdatedAt)
	}
	if c.Lease != nil {
		c.Lease.ExpiresAt = utc(c.Lease.ExpiresAt)
	}
	if len(c.DependsOn) == 0 {
		c.DependsOn = nil
	}
	if len(c.Tags) == 0 {
		c.Tags = nil
	}
	if len(c.Errors) == 0 {
		c.Errors = nil
	}
	return c
}

func utc(t time.Time) time.Time { return t.UTC().Round(0) }

func requireTime(t *testing.T, want time.Time, got *time.Time, msgAndArgs ...any) {
	t.Helper()
	require.NotNil(t, got, msgAndArgs...)
	require.True(t, want.Equal(*got), "want %v, got %v %s", want, *got, fmt.Sprint(msgAndArgs...))
}

func testClose(t *testing.T, newStore NewStore) {
	t.Run("IdempotentAndUnavailableAfter", func(t *testing.T) {
		h := begin(t, newStore)
		r := h.insert(job("q"))[0]
		require.NoError(t, h.s.Close())
		require.NoError(t, h.s.Close())
		_, err := h.s.Get(h.ctx, r.ID)
		require.ErrorIs(t, err, spool.ErrUnavailable)
		_, err = h.s.Insert(h.ctx, store.InsertParams{Jobs: []*store.Record{job("q")}})
		require.ErrorIs(t, err, spool.ErrUnavailable)
		_, err = h.s.Queues(h.ctx)
		require.ErrorIs(t, err, spool.ErrUnavailable)
	})
}
