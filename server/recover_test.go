package server

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/auth"
)

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

// lockedBuffer is a log sink safe for the store's and engine's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A panic in a handler becomes a 500 with the error shape and a logged
// stack; the server goes on serving.
func TestRecoverFromPanic(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	s := newInternalServer(t, Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	s.routes = append(s.routes, route{perm: auth.Public, method: "POST", pattern: "/boom", serve: endpoint(
		func(_ context.Context, _ *call, req *spool.CompleteRequest) (int, *spool.Job, error) {
			panic("kaboom: " + req.Token)
		})})
	h := s.newRoot(newHTTPMetrics())

	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/boom", bytes.NewReader([]byte(`{"token":"t1"}`)))
	req.Header.Set("Content-Type", "application/json")
	req.Host = "localhost"
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusInternalServerError, rec.Code)
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var eb spool.ErrorBody
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &eb))
	require.Equal(t, spool.ErrorDetail{Code: spool.CodeInternal, Message: "internal error"}, eb.Error)
	require.NotContains(t, rec.Body.String(), "kaboom", "the cause stays in the log")
	require.Contains(t, logs.String(), "kaboom: t1")
	require.Contains(t, logs.String(), `"stack"`)

	rec = httptest.NewRecorder()
	req = httptest.NewRequest("GET", "/healthz", nil)
	req.Host = "localhost" // a name the server serves (httptest's example.com is not)
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, "the server keeps serving")
}
