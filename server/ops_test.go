package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/server"
)

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	r := ts.do("GET", "/healthz", nil)
	r.ok(t, http.StatusOK, nil)
	require.JSONEq(t, `{"status":"ok"}`, string(r.body))
	r = ts.do("GET", "/readyz", nil)
	r.ok(t, http.StatusOK, nil)
	require.JSONEq(t, `{"status":"ready"}`, string(r.body))
	require.Equal(t, http.StatusOK, ts.do("HEAD", "/healthz", nil).code)

	// Once the server is closed it is no longer ready, but still alive.
	require.NoError(t, ts.s.Close())
	require.NoError(t, ts.s.Close(), "Close is idempotent")
	ts.do("GET", "/readyz", nil).fails(t, http.StatusServiceUnavailable, spool.CodeUnavailable)
	ts.do("GET", "/healthz", nil).ok(t, http.StatusOK, nil)
	// The closed store refuses work: 503, its cause kept in the log.
	e := ts.do("POST", "/v1/queues/q/jobs", `{"type":"t"}`).fails(t, http.StatusServiceUnavailable, spool.CodeUnavailable)
	require.NotContains(t, e.Message, "embedded")
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.patch("m", spool.QueueConfig{MaxDepth: ptr[int64](1)})
	ts.enqueue("m", spool.EnqueueRequest{Type: "t"})
	ts.do("POST", "/v1/queues/m/jobs", `{"type":"t"}`).fails(t, http.StatusServiceUnavailable, spool.CodeQueueFull)
	ts.leaseOne("m")

	r := ts.do("GET", "/metrics", nil)
	require.Equal(t, http.StatusOK, r.code)
	require.Contains(t, r.h.Get("Content-Type"), "text/plain")
	body := string(r.body)
	for _, want := range []string{
		`spool_jobs_enqueued_total{queue="m"} 1`,
		`spool_queue_jobs{queue="m",state="active"} 1`,
		`spool_job_queue_wait_seconds_count{queue="m"} 1`,
		`spool_enqueue_rejected_total{queue="m"} 1`,
		`spool_queue_arrival_rate{queue="m",window="1m0s"} 0.016666666666666666`,
		`spool_queue_busy_workers{queue="m"} 1`,
		`spool_queue_wait_seconds{quantile="0.99",queue="m",window="5m0s"}`,
		`spool_queue_throughput{queue="m",state="succeeded",window="1m0s"} 0`,
		`spool_http_requests_total{code="202",route="POST /v1/queues/{queue}/jobs"} 1`,
		`spool_http_request_duration_seconds_count{code="503",route="POST /v1/queues/{queue}/jobs"} 1`,
		"go_goroutines",
		"process_",
	} {
		require.Contains(t, body, want)
	}
}

func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	var doc map[string]any
	ts.do("GET", "/v1/openapi.json", nil).ok(t, http.StatusOK, &doc)
	require.Equal(t, "3.1.0", doc["openapi"])
	require.Contains(t, doc["paths"], "/v1/leases")
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		cfg   server.Config
		field string
	}{
		{"payload over body", server.Config{Limits: spool.Limits{MaxPayloadBytes: 2 << 20, MaxBodyBytes: 1 << 20}}, "Limits.MaxPayloadBytes"},
		{"negative body", server.Config{Limits: spool.Limits{MaxBodyBytes: -1}}, "Limits.MaxBodyBytes"},
		{"bad addr", server.Config{Addr: "nowhere"}, "Addr"},
		{"negative shutdown", server.Config{ShutdownTimeout: -time.Second}, "ShutdownTimeout"},
		{"short lease", server.Config{Defaults: server.QueueDefaults{Lease: time.Millisecond}}, "Defaults.Lease"},
		{"backoff order", server.Config{Defaults: server.QueueDefaults{BackoffBase: time.Hour, BackoffMax: time.Second}}, "Defaults.BackoffBase"},
		{"negative depth", server.Config{Defaults: server.QueueDefaults{MaxDepth: -1}}, "Defaults.MaxDepth"},
		{"negative payload", server.Config{Limits: spool.Limits{MaxPayloadBytes: -1}}, "Limits.MaxPayloadBytes"},
		{"negative batch", server.Config{Limits: spool.Limits{MaxBatch: -1}}, "Limits.MaxBatch"},
		{"negative lease limit", server.Config{Limits: spool.Limits{MaxLease: -1}}, "Limits.MaxLease"},
		{"negative request timeout", server.Config{RequestTimeout: -time.Second}, "RequestTimeout"},
		{"negative body read timeout", server.Config{BodyReadTimeout: -time.Second}, "BodyReadTimeout"},
		{"negative header timeout", server.Config{ReadHeaderTimeout: -time.Second}, "ReadHeaderTimeout"},
		{"negative idle timeout", server.Config{IdleTimeout: -time.Second}, "IdleTimeout"},
		{"negative audit retention", server.Config{AuditRetention: -time.Hour}, "AuditRetention"},
		{"negative webhook timeout", server.Config{WebhookTimeout: -time.Second}, "WebhookTimeout"},
		{"negative connections", server.Config{MaxConnections: -1}, "MaxConnections"},
		{"negative waits", server.Config{MaxWaitsPerKey: -1}, "MaxWaitsPerKey"},
		{"negative auth failures", server.Config{AuthFailures: -1}, "AuthFailures"},
		{"negative queues", server.Config{MaxQueues: -1}, "MaxQueues"},
		{"negative jobs", server.Config{MaxJobs: -1}, "MaxJobs"},
		{"negative payload stored", server.Config{MaxPayloadStored: -1}, "MaxPayloadStored"},
		{"small header limit", server.Config{MaxHeaderBytes: 100}, "MaxHeaderBytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.cfg.DataDir = t.TempDir()
			s, err := server.New(context.Background(), tc.cfg)
			require.Error(t, err)
			require.Nil(t, s)
			require.Contains(t, err.Error(), tc.field)
			var fields []string
			for _, ce := range server.ConfigErrors(err) {
				fields = append(fields, ce.Field)
			}
			require.Contains(t, fields, tc.field, "the error is a *server.ConfigError naming the field")
		})
	}
}

// Serve ends on ctx: a waiting long-poll is answered at once (not after
// its wait), and Serve returns.
func TestServeShutsDownGracefully(t *testing.T) {
	t.Parallel()
	s, err := server.New(context.Background(), server.Config{DataDir: t.TempDir()})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()

	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

	type result struct {
		body    string
		code    int
		err     error
		elapsed time.Duration
	}
	leased := make(chan result, 1)
	go func() {
		start := time.Now()
		res, err := hc.Post(base+"/v1/leases", "application/json", strings.NewReader(`{"queues":["q"],"wait":"5m"}`))
		if err != nil {
			leased <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		leased <- result{string(b), res.StatusCode, err, time.Since(start)}
	}()
	// Wait until the lease is being served: in flight with this scrape.
	deadline := time.Now().Add(time.Minute)
	for {
		res, err := hc.Get(base + "/metrics")
		require.NoError(t, err)
		b, err := io.ReadAll(res.Body)
		_ = res.Body.Close()
		require.NoError(t, err)
		if strings.Contains(string(b), "\nspool_http_requests_in_flight 2\n") {
			break
		}
		require.True(t, time.Now().Before(deadline), "the lease request never arrived")
		runtime.Gosched()
	}
	cancel()

	select {
	case err := <-served:
		require.NoError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("Serve did not return after its context ended")
	}
	select {
	case r := <-leased:
		require.NoError(t, r.err)
		require.Equal(t, http.StatusOK, r.code, r.body)
		var out spool.JobsResponse
		require.NoError(t, json.Unmarshal([]byte(r.body), &out))
		require.Empty(t, out.Jobs)
		require.Less(t, r.elapsed, time.Minute)
	case <-time.After(time.Minute):
		t.Fatal("the long-poll was not answered at shutdown")
	}
	require.Error(t, s.Serve(context.Background(), mustListen(t)), "a stopped server does not serve again")
}

func mustListen(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return ln
}

// Drain ends a waiting long-poll at once and makes the server not ready.
func TestDrainEndsLongPolls(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	done := make(chan *resp, 1)
	go func() {
		r, err := ts.send("POST", "/v1/leases", spool.LeaseRequest{Queues: []string{"q"}, Wait: dur(time.Minute)})
		if err != nil {
			r = &resp{code: -1, body: []byte(err.Error())}
		}
		done <- r
	}()
	// The lease waits once two requests are in flight: it and /metrics.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(string(ts.do("GET", "/metrics", nil).body), "spool_http_requests_in_flight 2") {
		require.True(t, time.Now().Before(deadline), "the lease never started waiting")
		time.Sleep(time.Millisecond)
	}
	ts.s.Drain()
	select {
	case r := <-done:
		var out spool.JobsResponse
		r.ok(t, http.StatusOK, &out)
		require.Empty(t, out.Jobs)
	case <-time.After(10 * time.Second):
		t.Fatal("the long-poll did not end after Drain")
	}
	ts.do("GET", "/readyz", nil).fails(t, http.StatusServiceUnavailable, spool.CodeUnavailable)
	ts.s.Drain() // idempotent
}
