package dashboard_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/dashboard"
	"github.com/spoolq/spool/internal/engine"
	"github.com/spoolq/spool/internal/store/embedded"
)

// BenchmarkPages measures the server time of each page with many jobs
// stored (SPOOL_BENCH_JOBS, default 1,000,000, in one queue, plus a few
// dead ones): pages read a page of jobs, never the whole queue.
//
//	go test ./internal/dashboard -run '^$' -bench Pages -benchtime 50x
func BenchmarkPages(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("SPOOL_BENCH_JOBS"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(b, err)
	}
	st, err := embedded.Open(b.TempDir(), embedded.Options{})
	require.NoError(b, err)
	e, err := engine.New(engine.Config{Store: st})
	require.NoError(b, err)
	b.Cleanup(func() { e.Stop(); require.NoError(b, st.Close()) })
	ctx := context.Background()
	_, err = e.PatchQueue(ctx, "big", spool.QueueConfig{MaxDepth: ptr(int64(n + 1000))})
	require.NoError(b, err)
	reqs := make([]spool.EnqueueRequest, 1000)
	for i := range reqs {
		reqs[i] = spool.EnqueueRequest{Type: "report.build", Payload: []byte(`{"customer":42}`), Tags: []string{"bench"}}
	}
	for done := 0; done < n; done += len(reqs) {
		_, err := e.Enqueue(ctx, "big", reqs[:min(len(reqs), n-done)])
		require.NoError(b, err)
	}
	// A few dead jobs and a running one, for the dead-letter and workers pages.
	jobs, err := e.Lease(ctx, spool.LeaseRequest{Queues: []string{"big"}, Max: 20, Worker: "w1"})
	require.NoError(b, err)
	for _, j := range jobs[1:] {
		_, err := e.Fail(ctx, j.ID, spool.FailRequest{Token: j.Lease.Token, Error: "boom", Final: true})
		require.NoError(b, err)
	}
	d, err := dashboard.New(dashboard.Config{Engine: e})
	require.NoError(b, err)
	mux := http.NewServeMux()
	for _, p := range d.Pages() {
		mux.Handle("GET "+p.Pattern, p.Handler)
	}
	page, err := e.ListJobs(ctx, engine.ListParams{Queue: "big", Limit: 1000})
	require.NoError(b, err)
	for _, p := range []struct{ name, path string }{
		{"overview", "/"},
		{"queue", "/queues/big"},
		{"queue-24h", "/queues/big?range=24h"},
		{"jobs-first-page", "/jobs?queue=big"},
		{"jobs-next-page", "/jobs?queue=big&cursor=" + page.NextCursor},
		{"jobs-by-tag", "/jobs?queue=big&tag=bench"},
		{"jobs-dead", "/jobs?queue=big&state=dead"},
		{"job", "/jobs/" + jobs[0].ID},
		{"dead", "/dead"},
		{"workers", "/workers"},
	} {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				w := httptest.NewRecorder()
				mux.ServeHTTP(w, httptest.NewRequest("GET", p.path, nil))
				if w.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", p.path, w.Code, w.Body.String())
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
