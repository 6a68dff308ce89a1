package client_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
)

func TestPushEncodesPayloadAndOptions(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	ctx := context.Background()

	type report struct {
		Month string `json:"month"`
		Rows  int    `json:"rows"`
	}
	runAt := time.Now().Add(2 * time.Hour).UTC().Truncate(time.Second)
	job, err := c.Push(ctx, "reports", "build", report{Month: "2026-02", Rows: 12},
		client.Priority(7), client.MaxAttempts(3), client.JobTimeout(time.Minute), client.RunAt(runAt),
		client.IdempotencyKey("feb"), client.Tags("monthly", "finance"), client.RetryBackoff(time.Second, time.Minute))
	require.NoError(t, err)
	require.JSONEq(t, `{"month":"2026-02","rows":12}`, string(job.Payload))
	require.Equal(t, spool.StateScheduled, job.State)
	require.True(t, runAt.Equal(job.RunAt))
	require.Equal(t, 7, job.Priority)
	require.Equal(t, 3, job.MaxAttempts)
	require.Equal(t, time.Minute, job.Timeout.D())
	require.Equal(t, "feb", job.IdempotencyKey)
	require.Equal(t, []string{"monthly", "finance"}, job.Tags)
	require.Equal(t, &spool.Backoff{Base: spool.Duration(time.Second), Max: spool.Duration(time.Minute)}, job.Backoff)

	again, err := c.Push(ctx, "reports", "build", report{}, client.IdempotencyKey("feb"))
	require.NoError(t, err)
	require.Equal(t, job.ID, again.ID)

	delayed, err := c.Push(ctx, "reports", "raw", json.RawMessage(`[1,2]`), client.Delay(time.Hour))
	require.NoError(t, err)
	require.JSONEq(t, `[1,2]`, string(delayed.Payload))
	require.WithinDuration(t, time.Now().Add(time.Hour), delayed.RunAt, time.Minute)

	bytesPayload, err := c.Push(ctx, "reports", "raw", []byte(`"text"`))
	require.NoError(t, err)
	require.Equal(t, `"text"`, string(bytesPayload.Payload))
	str, err := c.Push(ctx, "reports", "str", "not raw JSON: a string value")
	require.NoError(t, err)
	require.Equal(t, `"not raw JSON: a string value"`, string(str.Payload))
	none, err := c.Push(ctx, "reports", "none", nil)
	require.NoError(t, err)
	require.Empty(t, none.Payload)

	_, err = c.Push(ctx, "reports", "bad", []byte(`{oops`))
	require.ErrorContains(t, err, "not valid JSON")
	_, err = c.Push(ctx, "reports", "", nil)
	require.Error(t, err)
	_, err = c.Push(ctx, "reports", "bad", func() {})
	require.Error(t, err)

	reqs := make([]spool.EnqueueRequest, 3)
	for i := range reqs {
		reqs[i], err = client.NewRequest("row", map[string]int{"i": i}, client.Priority(i))
		require.NoError(t, err)
	}
	jobs, err := c.EnqueueBatch(ctx, "rows", reqs)
	require.NoError(t, err)
	require.Len(t, jobs, 3)
	require.Equal(t, 2, jobs[2].Priority)
	require.JSONEq(t, `{"i":2}`, string(jobs[2].Payload))
}

func TestWaitReturnsWhenTheJobFinishes(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	job, err := c.Push(ctx, "q", "t", nil)
	require.NoError(t, err)

	type result struct {
		job *spool.Job
		err error
	}
	done := make(chan result, 1)
	go func() {
		j, err := c.Wait(ctx, job.ID)
		done <- result{j, err}
	}()
	jobs, err := c.Lease(ctx, spool.LeaseRequest{Queues: []string{"q"}})
	require.NoError(t, err)
	_, err = c.Complete(ctx, job.ID, spool.CompleteRequest{Token: jobs[0].Lease.Token, Result: json.RawMessage(`{"ok":1}`)})
	require.NoError(t, err)
	r := <-done
	require.NoError(t, r.err)
	require.Equal(t, spool.StateSucceeded, r.job.State)
	require.JSONEq(t, `{"ok":1}`, string(r.job.Result))

	// A finished job is returned at once.
	j, err := c.Wait(ctx, job.ID)
	require.NoError(t, err)
	require.Equal(t, spool.StateSucceeded, j.State)

	// A dead job is a finished job: no error, the state says it.
	dead, err := c.Push(ctx, "q", "t", nil, client.MaxAttempts(1))
	require.NoError(t, err)
	jobs, err = c.Lease(ctx, spool.LeaseRequest{Queues: []string{"q"}})
	require.NoError(t, err)
	_, err = c.Fail(ctx, dead.ID, spool.FailRequest{Token: jobs[0].Lease.Token, Error: "no"})
	require.NoError(t, err)
	j, err = c.Wait(ctx, dead.ID)
	require.NoError(t, err)
	require.Equal(t, spool.StateDead, j.State)
}

func TestWaitEndsWithTheContext(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	job, err := c.Push(context.Background(), "q", "t", nil, client.Delay(time.Hour))
	require.NoError(t, err)
	// Long enough for the first look at the job to come back on a busy
	// machine (Wait returns the job as last seen, nil before any look),
	// far shorter than the job's delay.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	last, err := c.Wait(ctx, job.ID)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotNil(t, last, "the job as last seen")
	require.Equal(t, spool.StateScheduled, last.State)

	_, err = c.Wait(context.Background(), "0190a7e4-8c1e-7c3a-9d52-5b1f0e2a9c11")
	require.ErrorIs(t, err, spool.ErrNotFound)
}

func TestQueueConfigAndStats(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	ctx := context.Background()
	info, err := c.UpdateQueue(ctx, "cfg", spool.QueueConfig{Paused: ptr(true), MaxAttempts: ptr(4),
		Retention: ptr(spool.Duration(time.Hour)), Backoff: &spool.Backoff{Base: spool.Duration(time.Second)}})
	require.NoError(t, err)
	require.True(t, *info.Config.Paused)
	require.Equal(t, 4, *info.Config.MaxAttempts)
	require.Equal(t, time.Hour, info.Config.Retention.D())
	require.Equal(t, time.Second, info.Config.Backoff.Base.D())

	_, err = c.Push(ctx, "cfg", "t", nil)
	require.NoError(t, err)
	jobs, err := c.Lease(ctx, spool.LeaseRequest{Queues: []string{"cfg"}})
	require.NoError(t, err)
	require.Empty(t, jobs, "a paused queue hands out nothing")
	info, err = c.UpdateQueue(ctx, "cfg", spool.QueueConfig{Paused: ptr(false)})
	require.NoError(t, err)
	require.False(t, *info.Config.Paused)
	require.Equal(t, 4, *info.Config.MaxAttempts, "a patch changes only what it names")
	q, err := c.Queue(ctx, "cfg")
	require.NoError(t, err)
	require.Equal(t, int64(1), q.Counts[spool.StateReady])
	require.Positive(t, q.EnqueueRate)

	_, err = c.UpdateQueue(ctx, "cfg", spool.QueueConfig{MaxDepth: ptr(int64(0))})
	require.ErrorIs(t, err, spool.ErrInvalid)
}

func TestPushDependsOn(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	ctx := context.Background()
	parent, err := c.Push(ctx, "q", "render", nil)
	require.NoError(t, err)
	child, err := c.Push(ctx, "q", "publish", nil, client.DependsOn(parent.ID))
	require.NoError(t, err)
	require.Equal(t, []string{parent.ID}, child.DependsOn)
	require.Equal(t, spool.StateWaiting, child.State)
}
