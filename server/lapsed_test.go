package server_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/engine"
	"github.com/spoolq/spool/server"
)

// A lease is over at the instant it expires, by the engine's clock: a
// heartbeat, complete, fail, release or ack then is 409 lease_lost, not
// accepted until the next maintenance pass notices.
func TestLapsedLeaseIsRefusedAtOnce(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, store func(*server.Config)) {
		clock := engine.NewManualClock(time.Now())
		ts := newTestServer(t, store, func(c *server.Config) { c.Clock = clock })
		for range 6 {
			ts.enqueue("lapse", spool.EnqueueRequest{Type: "t"})
		}
		jobs := ts.lease(spool.LeaseRequest{Queues: []string{"lapse"}, Max: 6, Lease: dur(10 * time.Second)})
		require.Len(t, jobs, 6)
		tok := func(i int) string { return jobs[i].Lease.Token }
		path := func(i int, op string) string { return "/v1/jobs/" + jobs[i].ID + "/" + op }

		// Just before the instant, the lease holds.
		clock.Advance(10*time.Second - time.Millisecond)
		ts.do("POST", path(0, "complete"), spool.CompleteRequest{Token: tok(0)}).ok(t, http.StatusOK, nil)

		// At the instant, it does not.
		clock.Advance(time.Millisecond)
		lost := func(r *resp) {
			t.Helper()
			e := r.fails(t, http.StatusConflict, spool.CodeLeaseLost)
			require.Contains(t, e.Message, "lease")
		}
		lost(ts.do("POST", path(1, "heartbeat"), spool.HeartbeatRequest{Token: tok(1)}))
		lost(ts.do("POST", path(2, "complete"), spool.CompleteRequest{Token: tok(2)}))
		lost(ts.do("POST", path(3, "fail"), spool.FailRequest{Token: tok(3), Error: "boom"}))
		lost(ts.do("POST", path(4, "release"), spool.ReleaseRequest{Token: tok(4)}))
		var acks spool.AcksResponse
		ts.do("POST", "/v1/acks", spool.AcksRequest{Acks: []spool.Ack{
			{ID: jobs[5].ID, Token: tok(5), Outcome: spool.OutcomeComplete},
		}}).ok(t, http.StatusOK, &acks)
		require.Len(t, acks.Results, 1)
		require.NotNil(t, acks.Results[0].Error)
		require.Equal(t, spool.CodeLeaseLost, acks.Results[0].Error.Code)

		// None of them finished the job: the lapsed leases are delivered
		// again, as attempts that failed.
		for i := 1; i < 6; i++ {
			j := ts.get(jobs[i].ID)
			require.NotEqual(t, spool.StateSucceeded, j.State, "job %d", i)
			require.Empty(t, j.Result)
		}
		require.Equal(t, spool.StateSucceeded, ts.get(jobs[0].ID).State)
	})
}
