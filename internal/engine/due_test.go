package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/engine"
	"github.com/spoolq/spool/internal/store/embedded"
)

// A delayed job and a retry backoff become ready at their time, not at
// the next full maintenance pass: with the passes an hour apart, a job
// delayed by 50ms and a failed job retried 50ms later are both leased
// within the long-poll's wait.
func TestDueJobsReadyOnTimeBetweenMaintenancePasses(t *testing.T) {
	t.Parallel()
	st, err := embedded.Open(t.TempDir(), embedded.Options{})
	require.NoError(t, err)
	e, err := engine.New(engine.Config{Store: st, MaintenanceInterval: time.Hour})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, e.Start(ctx))
	t.Cleanup(func() {
		cancel()
		e.Stop()
		require.NoError(t, st.Close())
	})

	lease := func() []*spool.Job {
		t.Helper()
		jobs, err := e.Lease(ctx, spool.LeaseRequest{Queues: []string{"q"}, Max: 1, Wait: dur(30 * time.Second), Lease: dur(time.Minute)})
		require.NoError(t, err)
		return jobs
	}

	res, err := e.Enqueue(ctx, "q", []spool.EnqueueRequest{{Type: "t", Delay: dur(50 * time.Millisecond)}})
	require.NoError(t, err)
	require.Equal(t, spool.StateScheduled, res[0].Job.State)
	got := lease()
	require.Len(t, got, 1, "the delayed job was not ready before the long-poll ended")
	require.Equal(t, res[0].Job.ID, got[0].ID)

	retryIn := dur(50 * time.Millisecond)
	_, err = e.Fail(ctx, got[0].ID, spool.FailRequest{Token: got[0].Lease.Token, Error: "boom", RetryIn: retryIn})
	require.NoError(t, err)
	again := lease()
	require.Len(t, again, 1, "the retried job was not ready before the long-poll ended")
	require.Equal(t, res[0].Job.ID, again[0].ID)
	require.Equal(t, 2, again[0].Attempt)
}
