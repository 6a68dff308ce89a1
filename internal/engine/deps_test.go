package engine_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/engine"
	"github.com/spoolq/spool/internal/store/embedded"
)

// complete leases the one ready job of q, checks it is want, and completes
// it with result.
func (h *harness) completeNext(t *testing.T, q, want, result string) {
	t.Helper()
	got := h.lease(t, 1, time.Minute, q)
	require.Len(t, got, 1)
	require.Equal(t, want, got[0].ID)
	_, err := h.e.Complete(h.ctx, want, spool.CompleteRequest{Token: got[0].Lease.Token, Result: json.RawMessage(result)})
	require.NoError(t, err)
}

func TestDependenciesFanOutThenJoin(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	reqs := []spool.EnqueueRequest{{Type: "split", Ref: "root"}}
	for i := range 3 {
		reqs = append(reqs, spool.EnqueueRequest{Type: "part", Ref: fmt.Sprint("p", i), DependsOn: []string{"root"}})
	}
	reqs = append(reqs, spool.EnqueueRequest{Type: "join", DependsOn: []string{"p0", "p1", "p2"}})
	jobs := h.enqueue(t, "q", reqs...)
	require.Equal(t, spool.StateReady, jobs[0].State)
	for _, j := range jobs[1:] {
		require.Equal(t, spool.StateWaiting, j.State, j.Type)
	}
	require.Equal(t, []string{jobs[0].ID}, jobs[1].DependsOn, "refs become ids")
	require.Equal(t, []string{jobs[1].ID, jobs[2].ID, jobs[3].ID}, jobs[4].DependsOn)

	got := h.lease(t, 10, time.Minute, "q")
	require.Len(t, got, 1, "only the root is ready")
	require.Equal(t, jobs[0].ID, got[0].ID)
	// A failed attempt of the root (a retry is scheduled) keeps its
	// children waiting.
	failed, err := h.e.Fail(h.ctx, jobs[0].ID, spool.FailRequest{Token: got[0].Lease.Token, Error: "flaky", RetryIn: dur(time.Second)})
	require.NoError(t, err)
	require.Equal(t, spool.StateScheduled, failed.State)
	h.maintain(t)
	require.Equal(t, spool.StateWaiting, h.get(t, jobs[1].ID).State)
	h.clock.Advance(time.Second)
	h.maintain(t)
	h.completeNext(t, "q", jobs[0].ID, `{"ok":true}`)
	h.maintain(t)

	for i := 1; i <= 3; i++ {
		require.Equal(t, spool.StateReady, h.get(t, jobs[i].ID).State)
	}
	require.Equal(t, spool.StateWaiting, h.get(t, jobs[4].ID).State)
	for i := 1; i <= 3; i++ {
		h.completeNext(t, "q", jobs[i].ID, fmt.Sprintf(`{"part":%d}`, i))
		h.maintain(t)
		want := spool.StateWaiting
		if i == 3 {
			want = spool.StateReady
		}
		require.Equal(t, want, h.get(t, jobs[4].ID).State, "join after part %d", i)
	}
	parents, err := h.e.Parents(h.ctx, jobs[4].ID)
	require.NoError(t, err)
	require.Len(t, parents, 3)
	for i, p := range parents {
		require.Equal(t, jobs[i+1].ID, p.ID)
		require.JSONEq(t, fmt.Sprintf(`{"part":%d}`, i+1), string(p.Result))
	}
}

func TestDependencyFailureCancelsTheSubtree(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	jobs := h.enqueue(t, "q",
		spool.EnqueueRequest{Type: "a", Ref: "a", MaxAttempts: 1},
		spool.EnqueueRequest{Type: "b", Ref: "b", DependsOn: []string{"a"}},
		spool.EnqueueRequest{Type: "c", DependsOn: []string{"b"}},
	)
	got := h.lease(t, 1, time.Minute, "q")
	require.Len(t, got, 1)
	_, err := h.e.Fail(h.ctx, jobs[0].ID, spool.FailRequest{Token: got[0].Lease.Token, Error: "broken"})
	require.NoError(t, err)
	require.Equal(t, spool.StateDead, h.get(t, jobs[0].ID).State)
	// Each Maintain resolves one generation.
	h.maintain(t)
	h.maintain(t)
	for _, j := range jobs[1:] {
		got := h.get(t, j.ID)
		require.Equal(t, spool.StateCancelled, got.State, j.Type)
		require.NotEmpty(t, got.Errors)
	}
	require.Contains(t, h.get(t, jobs[1].ID).Errors[0].Error, "parent job "+jobs[0].ID+" ended dead")
	require.Contains(t, h.get(t, jobs[2].ID).Errors[0].Error, "parent job "+jobs[1].ID+" ended cancelled")

	// The child cannot be retried while its parent is dead; once the parent
	// is retried, the child waits again.
	_, err = h.e.Retry(h.ctx, jobs[1].ID)
	require.ErrorIs(t, err, spool.ErrConflict)
	_, err = h.e.Retry(h.ctx, jobs[0].ID)
	require.NoError(t, err)
	b, err := h.e.Retry(h.ctx, jobs[1].ID)
	require.NoError(t, err)
	require.Equal(t, spool.StateWaiting, b.State)
	h.completeNext(t, "q", jobs[0].ID, `{}`)
	h.maintain(t)
	require.Equal(t, spool.StateReady, h.get(t, jobs[1].ID).State)
}

func TestDependenciesOnFinishedParentsAtEnqueue(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	done := h.enqueue(t, "q", spool.EnqueueRequest{Type: "done"})[0]
	h.completeNext(t, "q", done.ID, `{}`)
	gone := h.enqueue(t, "q", spool.EnqueueRequest{Type: "gone"})[0]
	_, err := h.e.Cancel(h.ctx, gone.ID)
	require.NoError(t, err)
	open := h.enqueue(t, "other", spool.EnqueueRequest{Type: "open"})[0]

	jobs := h.enqueue(t, "q",
		spool.EnqueueRequest{Type: "after-done", DependsOn: []string{done.ID}},
		spool.EnqueueRequest{Type: "after-gone", DependsOn: []string{done.ID, gone.ID}},
		spool.EnqueueRequest{Type: "after-open", DependsOn: []string{open.ID}, Delay: dur(time.Hour)},
	)
	require.Equal(t, spool.StateReady, jobs[0].State)
	require.Equal(t, spool.StateCancelled, jobs[1].State)
	require.Contains(t, jobs[1].Errors[0].Error, gone.ID)
	require.Equal(t, spool.StateWaiting, jobs[2].State, "a parent in another queue")

	// A delayed child whose parent finishes early waits for its run_at.
	h.completeNext(t, "other", open.ID, `{}`)
	h.maintain(t)
	require.Equal(t, spool.StateScheduled, h.get(t, jobs[2].ID).State)
}

func TestDependencyRefusals(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	cases := map[string][]spool.EnqueueRequest{
		"unknown parent": {{Type: "t", DependsOn: []string{"nope"}}},
		"self":           {{Type: "t", Ref: "x", DependsOn: []string{"x"}}},
		"cycle":          {{Type: "t", Ref: "x", DependsOn: []string{"y"}}, {Type: "t", Ref: "y", DependsOn: []string{"x"}}},
		"duplicate ref":  {{Type: "t", Ref: "x"}, {Type: "t", Ref: "x"}},
	}
	for name, reqs := range cases {
		_, err := h.e.Enqueue(h.ctx, "q", reqs)
		require.ErrorIs(t, err, spool.ErrInvalid, name)
	}
	_, err := h.e.Publish(h.ctx, "topic", []spool.EnqueueRequest{{Type: "t", DependsOn: []string{"x"}}})
	require.ErrorIs(t, err, spool.ErrInvalid)
	q, err := h.e.Queue(h.ctx, "q")
	if err == nil {
		require.Zero(t, q.Depth, "refused enqueues store nothing")
	}
}

func TestDependencySweepAfterRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := embedded.Open(dir, embedded.Options{})
	require.NoError(t, err)
	clock := engine.NewManualClock(t0)
	e, err := engine.New(engine.Config{Store: st, Clock: clock})
	require.NoError(t, err)
	h := &harness{e: e, clock: clock, ctx: t.Context()}
	jobs := h.enqueue(t, "q",
		spool.EnqueueRequest{Type: "parent", Ref: "p"},
		spool.EnqueueRequest{Type: "child", DependsOn: []string{"p"}},
	)
	// The parent completes but the process stops before its children are
	// resolved (no Maintain, no dependency loop).
	h.completeNext(t, "q", jobs[0].ID, `{}`)
	require.Equal(t, spool.StateWaiting, h.get(t, jobs[1].ID).State)
	require.NoError(t, st.Close())

	st, err = embedded.Open(dir, embedded.Options{})
	require.NoError(t, err)
	e, err = engine.New(engine.Config{Store: st, Clock: clock})
	require.NoError(t, err)
	require.NoError(t, e.Start(t.Context()))
	t.Cleanup(func() {
		e.Stop()
		require.NoError(t, st.Close())
	})
	require.Eventually(t, func() bool {
		j, err := e.Get(t.Context(), jobs[1].ID, 0)
		return err == nil && j.State == spool.StateReady
	}, 10*time.Second, 10*time.Millisecond, "the start sweep releases the child")
}

func TestDependencyOnARepeatedJob(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	first := h.enqueue(t, "q", spool.EnqueueRequest{Type: "parent", IdempotencyKey: "p-1"})[0]
	// A new batch repeats the parent (same key) and adds a child by ref:
	// the child must wait on the job that exists.
	res, err := h.e.Enqueue(h.ctx, "q", []spool.EnqueueRequest{
		{Type: "parent", IdempotencyKey: "p-1", Ref: "p"},
		{Type: "child", DependsOn: []string{"p"}},
	})
	require.NoError(t, err)
	require.True(t, res[0].Existing)
	require.Equal(t, first.ID, res[0].Job.ID)
	require.Equal(t, []string{first.ID}, res[1].Job.DependsOn)
	require.Equal(t, []string{first.ID}, h.get(t, res[1].Job.ID).DependsOn)

	h.completeNext(t, "q", first.ID, `{}`)
	h.maintain(t)
	require.Equal(t, spool.StateReady, h.get(t, res[1].Job.ID).State)

	// Repeating the whole batch stores nothing new.
	again, err := h.e.Enqueue(h.ctx, "q", []spool.EnqueueRequest{
		{Type: "parent", IdempotencyKey: "p-1", Ref: "p"},
		{Type: "child", IdempotencyKey: "c-1", DependsOn: []string{"p"}},
	})
	require.NoError(t, err)
	twice, err := h.e.Enqueue(h.ctx, "q", []spool.EnqueueRequest{
		{Type: "parent", IdempotencyKey: "p-1", Ref: "p"},
		{Type: "child", IdempotencyKey: "c-1", DependsOn: []string{"p"}},
	})
	require.NoError(t, err)
	require.True(t, twice[0].Existing && twice[1].Existing)
	require.Equal(t, again[1].Job.ID, twice[1].Job.ID)
}

// TestWaitingJobHoldsItsOrderingKey: a job that waits for a parent keeps
// its place in its ordering key, so a later job of the key waits too.
func TestWaitingJobHoldsItsOrderingKey(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	parent := h.enqueue(t, "other", spool.EnqueueRequest{Type: "parent"})[0]
	jobs := h.enqueue(t, "q",
		spool.EnqueueRequest{Type: "first", OrderingKey: "acct-1", DependsOn: []string{parent.ID}},
		spool.EnqueueRequest{Type: "second", OrderingKey: "acct-1"},
		spool.EnqueueRequest{Type: "free", OrderingKey: "acct-2"},
	)
	got := h.lease(t, 10, time.Minute, "q")
	require.Len(t, got, 1, "only the job of the other key runs")
	require.Equal(t, jobs[2].ID, got[0].ID)

	h.completeNext(t, "other", parent.ID, `{}`)
	h.maintain(t)
	h.completeNext(t, "q", jobs[0].ID, `{}`)
	h.completeNext(t, "q", jobs[1].ID, `{}`)
}
