package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/spoolq/spool/client"
	"github.com/spoolq/spool/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// spoolServer runs a real Spool server in-process and returns its URL.
func spoolServer(t *testing.T) string {
	t.Helper()
	srv, err := server.New(context.Background(), server.Config{DataDir: t.TempDir()})
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		srv.Drain()
		ts.Close()
		require.NoError(t, srv.Close())
	})
	return ts.URL
}

// call sends a request to the app and decodes its JSON answer into out.
func call(t *testing.T, method, u, contentType, body string, out any) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil {
		require.NoError(t, json.Unmarshal(b, out), "body: %s", b)
	}
	return resp
}

// pollStatus polls a report's status until cond holds, for up to 30s.
func pollStatus(t *testing.T, u string, what string, cond func(Status) bool) Status {
	t.Helper()
	var s Status
	require.Eventually(t, func() bool {
		s = Status{}
		call(t, "GET", u, "", "", &s)
		return cond(s)
	}, 30*time.Second, 10*time.Millisecond, "the report never %s; last status %+v", what, s)
	return s
}

// The whole program, as the README runs it: web app and worker in one
// process against a Spool server.
func TestEndToEnd(t *testing.T) {
	spool := spoolServer(t)
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-server", spool, "-addr", "127.0.0.1:0", "-step", "20ms"}, &logs)
	}()
	var app string
	listening := regexp.MustCompile(`reports web app listening"? url=(\S+)`)
	require.Eventually(t, func() bool {
		m := listening.FindStringSubmatch(logs.String())
		if m != nil {
			app = m[1]
		}
		return m != nil
	}, 30*time.Second, 10*time.Millisecond, "no listening line in:\n%s", logs.String())

	page := call(t, "GET", app+"/", "", "", nil)
	require.Equal(t, http.StatusOK, page.StatusCode)

	var accepted Status
	resp := call(t, "POST", app+"/reports", "application/json", `{"kind":"sales","months":12,"request_id":"r-1"}`, &accepted)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Equal(t, "/reports/"+accepted.ID, resp.Header.Get("Location"))
	require.Equal(t, resp.Header.Get("Location"), accepted.StatusURL)
	require.Equal(t, "queued", accepted.State)

	// The same request id (a double submit) is the same report.
	var again Status
	call(t, "POST", app+"/reports", "application/json", `{"kind":"sales","months":12,"request_id":"r-1"}`, &again)
	require.Equal(t, accepted.ID, again.ID)

	s := pollStatus(t, app+accepted.StatusURL, "finished", func(s Status) bool { return s.State == "done" || s.State == "failed" })
	require.Equal(t, "done", s.State, "error: %s", s.Error)
	require.Equal(t, 100.0, s.Percent)
	var rep Report
	require.NoError(t, json.Unmarshal(s.Report, &rep))
	require.Equal(t, "sales", rep.Kind)
	require.Len(t, rep.Rows, 12)
	total := 0
	for _, r := range rep.Rows {
		total += r.Amount
	}
	require.Equal(t, total, rep.Total)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the program did not stop after its context ended")
	}
}

// The page sees the report's progress while the worker builds it.
func TestProgressIsShown(t *testing.T) {
	t.Parallel()
	c, err := client.New(spoolServer(t))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	log := slog.New(slog.DiscardHandler)
	app := httptest.NewServer((&App{c: c, queue: "reports", log: log}).Handler())
	t.Cleanup(app.Close)

	// The builder stops before month 3 until the test has seen month 2.
	gate := make(chan struct{})
	b := &Builder{stepHook: func(ctx context.Context, month int) error {
		if month == 2 {
			select {
			case <-gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}}
	w, err := newWorker(c, config{queue: "reports", concurrency: 1}, log, b)
	require.NoError(t, err)
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- w.Run(ctx) }()
	defer func() {
		stop()
		require.NoError(t, <-ran)
	}()

	// A plain form post works too, and links to the status.
	form := url.Values{"kind": {"returns"}, "months": {"4"}}.Encode()
	req, err := http.NewRequest("POST", app.URL+"/reports", strings.NewReader(form))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	statusURL := resp.Header.Get("Location")
	require.Contains(t, string(body), statusURL)

	s := pollStatus(t, app.URL+statusURL, "showed month 2", func(s Status) bool { return s.State == "running" && s.Percent >= 50 })
	require.Equal(t, 50.0, s.Percent)
	require.Equal(t, "month 2 of 4", s.Message[:len("month 2 of 4")])
	close(gate)
	s = pollStatus(t, app.URL+statusURL, "finished", func(s Status) bool { return s.State == "done" })
	var rep Report
	require.NoError(t, json.Unmarshal(s.Report, &rep))
	require.Equal(t, "returns", rep.Kind)
	require.Len(t, rep.Rows, 4)
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	c, err := client.New(spoolServer(t))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	app := httptest.NewServer((&App{c: c, queue: "reports", log: slog.New(slog.DiscardHandler)}).Handler())
	t.Cleanup(app.Close)
	for _, body := range []string{`{"kind":"profit","months":3}`, `{"kind":"sales","months":0}`, `{"kind":"sales"`, `{"kind":"sales","months":3,"x":1}`} {
		var out map[string]string
		resp := call(t, "POST", app.URL+"/reports", "application/json", body, &out)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
		require.NotEmpty(t, out["error"])
	}
	resp := call(t, "GET", app.URL+"/reports/0190a7e4-8c1e-7c3a-9d52-5b1f0e2a9c11", "", "", nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp = call(t, "GET", app.URL+"/reports/not-an-id", "", "", nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	_, err = parse([]string{"sideways"}, io.Discard)
	require.ErrorContains(t, err, "unknown mode")
	cfg, err := parse([]string{"worker", "-concurrency", "3"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, "worker", cfg.mode)
	require.Equal(t, 3, cfg.concurrency)
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
