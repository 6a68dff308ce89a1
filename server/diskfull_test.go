package server_test

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/diskspace"
	"github.com/spoolq/spool/server"
)

// volume is a data volume whose free space the test sets.
type volume struct{ free atomic.Uint64 }

func (v *volume) stat(string) (diskspace.Usage, error) {
	return diskspace.Usage{Free: v.free.Load(), Total: 100 << 30}, nil
}

// Below the free-space mark, enqueues and publishes are refused with 503
// disk_full and a Retry-After, and change nothing; reads, leases, acks,
// cancels keep working; once space is back, enqueues are accepted again
// without a restart.
func TestDiskBelowMarkRefusesOnlyNewWork(t *testing.T) {
	t.Parallel()
	var v volume
	v.free.Store(10 << 30)
	ts := newTestServer(t, func(c *server.Config) {
		c.DiskStat = v.stat
		c.MinFreeSpace = "2GiB"
	})
	ts.do("PUT", "/v1/topics/news/subscriptions/q", nil).ok(t, http.StatusOK, nil)
	a := ts.enqueue("q", spool.EnqueueRequest{Type: "t"})
	b := ts.enqueue("q", spool.EnqueueRequest{Type: "t"})
	c := ts.enqueue("q", spool.EnqueueRequest{Type: "t"})

	v.free.Store(1 << 30)
	var r *resp
	require.Eventually(t, func() bool { // the guard reads the volume once a second
		r = ts.do("POST", "/v1/queues/q/jobs", spool.EnqueueRequest{Type: "t"})
		return r.code != http.StatusAccepted
	}, 10*time.Second, 20*time.Millisecond)
	e := r.fails(t, http.StatusServiceUnavailable, spool.CodeDiskFull)
	require.Contains(t, e.Message, "below the mark of 2048.0 MiB")
	ra, err := strconv.Atoi(r.h.Get("Retry-After"))
	require.NoError(t, err, "Retry-After: %q", r.h.Get("Retry-After"))
	require.Positive(t, ra)
	before := ts.queue("q").Counts // the accepted ones the poll enqueued included
	ts.do("POST", "/v1/queues/q/jobs", spool.EnqueueRequest{Type: "t"}).fails(t, http.StatusServiceUnavailable, spool.CodeDiskFull)
	ts.do("POST", "/v1/queues/q/jobs:batch", map[string]any{"jobs": []spool.EnqueueRequest{{Type: "t"}, {Type: "t"}}}).
		fails(t, http.StatusServiceUnavailable, spool.CodeDiskFull)
	ts.do("POST", "/v1/topics/news/messages", spool.EnqueueRequest{Type: "t"}).
		fails(t, http.StatusServiceUnavailable, spool.CodeDiskFull)
	ts.do("POST", "/v1/queues/fresh/jobs", spool.EnqueueRequest{Type: "t"}).
		fails(t, http.StatusServiceUnavailable, spool.CodeDiskFull)
	require.Equal(t, before, ts.queue("q").Counts, "refusals stored nothing")

	// What frees space goes on.
	require.Equal(t, a.ID, ts.get(a.ID).ID)
	j := ts.leaseOne("q")
	require.Equal(t, a.ID, j.ID)
	ts.do("POST", "/v1/jobs/"+j.ID+"/complete", map[string]any{"token": j.Lease.Token}).ok(t, http.StatusOK, nil)
	ts.do("DELETE", "/v1/jobs/"+b.ID, nil).ok(t, http.StatusOK, nil)
	ts.do("GET", "/v1/queues", nil).ok(t, http.StatusOK, nil)
	ts.do("GET", "/healthz", nil).ok(t, http.StatusOK, nil)
	require.Equal(t, spool.StateSucceeded, ts.get(a.ID).State)
	require.Equal(t, spool.StateCancelled, ts.get(b.ID).State)
	require.Equal(t, spool.StateReady, ts.get(c.ID).State)

	m := ts.do("GET", "/metrics", nil)
	require.Contains(t, string(m.body), `spool_admission_refused_total{code="disk_full"} 5`)
	require.Contains(t, string(m.body), "spool_disk_free_bytes 1.073741824e+09")
	require.Contains(t, string(m.body), "spool_disk_free_mark_bytes 2.147483648e+09")

	v.free.Store(3 << 30)
	require.Eventually(t, func() bool {
		return ts.do("POST", "/v1/queues/q/jobs", spool.EnqueueRequest{Type: "t"}).code == http.StatusAccepted
	}, 10*time.Second, 20*time.Millisecond, "enqueues are accepted again once space is back")
}

func TestMinFreeSpaceIsValidated(t *testing.T) {
	t.Parallel()
	_, err := server.New(t.Context(), server.Config{DataDir: t.TempDir(), MinFreeSpace: "lots"})
	require.ErrorContains(t, err, "MinFreeSpace")
}
