package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/server"
)

// newServingServer runs a server the way spool serve does (Serve on a
// listener on port 0, with its own timeouts), not behind httptest.
func newServingServer(t *testing.T, opts ...func(*server.Config)) *testServer {
	t.Helper()
	cfg := server.Config{DataDir: t.TempDir()}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := server.New(context.Background(), cfg)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		hc.CloseIdleConnections()
		require.NoError(t, s.Close())
	})
	return &testServer{t: t, s: s, url: "http://" + ln.Addr().String(), hc: hc}
}

// metric reads one unlabelled sample from /metrics (-1 if absent).
func (ts *testServer) metric(name string) float64 {
	ts.t.Helper()
	r := ts.do("GET", "/metrics", nil)
	require.Equal(ts.t, http.StatusOK, r.code)
	for _, line := range strings.Split(string(r.body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(ts.t, err)
			return f
		}
	}
	return -1
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// hostileBody opens a connection that declares a body of length bytes
// and sends only its first byte. The connection is closed when the test
// ends.
func hostileBody(t *testing.T, ts *testServer, length int) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	_, err = fmt.Fprintf(conn, "POST /v1/queues/q/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", length)
	require.NoError(t, err)
	return conn
}

// readAnswer reads the HTTP answer on conn and decodes its error shape.
func readAnswer(t *testing.T, conn net.Conn) (*http.Response, spool.ErrorDetail) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer res.Body.Close()
	var eb spool.ErrorBody
	require.NoError(t, json.NewDecoder(res.Body).Decode(&eb))
	return res, eb.Error
}

// A hundred connections that each declare a 16 MiB body and send one
// byte do not make the server allocate 16 MiB each, and other clients are
// served meanwhile. Not parallel: it measures the heap of the process.
func TestHostileContentLengthAllocatesLittle(t *testing.T) {
	const conns = 100
	ts := newServingServer(t, func(c *server.Config) { c.BodyReadTimeout = time.Minute })
	ts.enqueue("q", spool.EnqueueRequest{Type: "warm-up"})
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	for range conns {
		hostileBody(t, ts, 16<<20)
	}
	// Every hostile request is being read (the /metrics request itself
	// is in flight too).
	waitFor(t, "the hostile requests to be read", 20*time.Second, func() bool {
		return ts.metric("spool_http_requests_in_flight") >= conns+1 &&
			ts.metric("spool_http_body_bytes_in_flight") >= conns*(64<<10)
	})
	runtime.GC()
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	grown := int64(during.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap grew by %.1f MiB with %d hostile bodies in flight", float64(grown)/(1<<20), conns)
	require.Less(t, grown, int64(32<<20), "the server sized buffers from the declared Content-Length")

	// Other clients are served meanwhile.
	j := ts.enqueue("q", spool.EnqueueRequest{Type: "normal"})
	leased := ts.lease(spool.LeaseRequest{Queues: []string{"q"}, Max: 2})
	require.Len(t, leased, 2)
	for _, l := range leased {
		ts.do("POST", "/v1/jobs/"+l.ID+"/complete", spool.CompleteRequest{Token: l.Lease.Token}).ok(t, http.StatusOK, nil)
	}
	require.Equal(t, spool.StateSucceeded, ts.get(j.ID).State)
}

// A body that does not arrive within BodyReadTimeout is answered 408 in
// the error shape; a long-poll outlasts that timeout all the same.
func TestSlowBodyTimesOut(t *testing.T) {
	t.Parallel()
	ts := newServingServer(t, func(c *server.Config) { c.BodyReadTimeout = 300 * time.Millisecond })
	conn := hostileBody(t, ts, 100)
	res, e := readAnswer(t, conn)
	require.Equal(t, http.StatusRequestTimeout, res.StatusCode)
	require.Equal(t, spool.CodeRequestTimeout, e.Code)
	require.Contains(t, e.Message, "300ms")

	// The connection's read deadline goes back to the long one once the
	// body is in: a lease that waits 1s ends empty, not cancelled.
	start := time.Now()
	jobs := ts.lease(spool.LeaseRequest{Queues: []string{"empty"}, Wait: dur(time.Second)})
	require.Empty(t, jobs)
	require.GreaterOrEqual(t, time.Since(start), time.Second)
	ts.do("GET", "/v1/queues/q", nil).fails(t, http.StatusNotFound, spool.CodeNotFound) // nothing enqueued
}

// Bodies being read share one memory budget: beyond it a request is
// refused with 503 server_busy and Retry-After, and served again once
// memory is released.
func TestBodyMemoryBudget(t *testing.T) {
	t.Parallel()
	ts := newServingServer(t, func(c *server.Config) {
		c.Limits = spool.Limits{MaxPayloadBytes: 64 << 10, MaxBodyBytes: 128 << 10}
		c.MaxBodyMemory = 192 << 10
		c.BodyReadTimeout = time.Minute
	})
	var hostile []net.Conn
	for range 3 {
		hostile = append(hostile, hostileBody(t, ts, 100_000))
	}
	waitFor(t, "three bodies of 64 KiB to be held", 20*time.Second, func() bool {
		return ts.metric("spool_http_body_bytes_in_flight") == 192<<10
	})
	r := ts.do("POST", "/v1/queues/q/jobs", spool.EnqueueRequest{Type: "t"})
	e := r.fails(t, http.StatusServiceUnavailable, spool.CodeServerBusy)
	require.Contains(t, e.Message, "retry")
	require.Equal(t, "1", r.h.Get("Retry-After"))
	// A request without a body is not refused.
	ts.do("GET", "/v1/queues", nil).ok(t, http.StatusOK, nil)

	require.NoError(t, hostile[0].Close())
	waitFor(t, "a body's memory to be released", 20*time.Second, func() bool {
		return ts.metric("spool_http_body_bytes_in_flight") == 128<<10
	})
	ts.enqueue("q", spool.EnqueueRequest{Type: "t"})
}
