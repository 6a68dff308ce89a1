package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testServer is a real server on a temp dir, served over HTTP.
type testServer struct {
	t   *testing.T
	s   *server.Server
	url string
	hc  *http.Client
}

// newTestServer starts a server on t.TempDir(); opts adjust its config.
// wrap, if set, wraps its handler (to observe requests).
func newTestServer(t *testing.T, opts ...func(*server.Config)) *testServer {
	return newWrappedServer(t, nil, opts...)
}

func newWrappedServer(t *testing.T, wrap func(http.Handler) http.Handler, opts ...func(*server.Config)) *testServer {
	t.Helper()
	cfg := server.Config{DataDir: t.TempDir()}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := server.New(context.Background(), cfg)
	require.NoError(t, err)
	h := s.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(func() {
		s.Drain() // wake long-polls so Close does not wait for them
		hs.Close()
		require.NoError(t, s.Close())
	})
	return &testServer{t: t, s: s, url: hs.URL, hc: hs.Client()}
}

// resp is an answer, read whole.
type resp struct {
	code int
	h    http.Header
	body []byte
}

// do sends a request. body is nil (no body), a string or []byte (sent as
// is), or a value (sent as JSON). hdr are header name, value pairs.
func (ts *testServer) do(method, path string, body any, hdr ...string) *resp {
	ts.t.Helper()
	r, err := ts.send(method, path, body, hdr...)
	require.NoError(ts.t, err)
	return r
}

// send is do for other goroutines: it reports errors instead of failing.
func (ts *testServer) send(method, path string, body any, hdr ...string) (*resp, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, ts.url+path, rd)
	if err != nil {
		return nil, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := ts.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	return &resp{code: res.StatusCode, h: res.Header, body: data}, nil
}

// ok checks the status and decodes the JSON answer into v (if not nil).
func (r *resp) ok(t *testing.T, status int, v any) {
	t.Helper()
	require.Equal(t, status, r.code, "body: %s", r.body)
	require.Equal(t, "application/json", r.h.Get("Content-Type"))
	if v != nil {
		require.NoError(t, json.Unmarshal(r.body, v), "body: %s", r.body)
	}
}

// fails checks an error answer: status, the error shape and its code.
func (r *resp) fails(t *testing.T, status int, code string) spool.ErrorDetail {
	t.Helper()
	require.Equal(t, status, r.code, "body: %s", r.body)
	require.Equal(t, "application/json", r.h.Get("Content-Type"))
	var eb spool.ErrorBody
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&eb), "body: %s", r.body)
	require.Equal(t, code, eb.Error.Code, "message: %s", eb.Error.Message)
	require.NotEmpty(t, eb.Error.Message)
	return eb.Error
}

func (ts *testServer) enqueue(queue string, req spool.EnqueueRequest) *spool.Job {
	ts.t.Helper()
	var j spool.Job
	ts.do("POST", "/v1/queues/"+queue+"/jobs", req).ok(ts.t, http.StatusAccepted, &j)
	return &j
}

func (ts *testServer) lease(req spool.LeaseRequest) []*spool.Job {
	ts.t.Helper()
	var out spool.JobsResponse
	ts.do("POST", "/v1/leases", req).ok(ts.t, http.StatusOK, &out)
	require.NotNil(ts.t, out.Jobs, "jobs must be a list, not null")
	return out.Jobs
}

func (ts *testServer) leaseOne(queue string) *spool.Job {
	ts.t.Helper()
	jobs := ts.lease(spool.LeaseRequest{Queues: []string{queue}})
	require.Len(ts.t, jobs, 1)
	require.NotNil(ts.t, jobs[0].Lease)
	return jobs[0]
}

func (ts *testServer) get(id string) *spool.Job {
	ts.t.Helper()
	var j spool.Job
	ts.do("GET", "/v1/jobs/"+id, nil).ok(ts.t, http.StatusOK, &j)
	return &j
}

func (ts *testServer) queue(name string) *spool.QueueInfo {
	ts.t.Helper()
	var q spool.QueueInfo
	ts.do("GET", "/v1/queues/"+name, nil).ok(ts.t, http.StatusOK, &q)
	return &q
}

func (ts *testServer) patch(name string, cfg any) *spool.QueueInfo {
	ts.t.Helper()
	var q spool.QueueInfo
	ts.do("PATCH", "/v1/queues/"+name, cfg).ok(ts.t, http.StatusOK, &q)
	return &q
}

func dur(d time.Duration) *spool.Duration { v := spool.Duration(d); return &v }

func ptr[T any](v T) *T { return &v }
