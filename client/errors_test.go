package client

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
)

func TestDecodeError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		retryAfter string
		body       string
		want       error
		code       string
		msg        string
		wait       time.Duration
	}{
		{"queue full", 503, "3", `{"error":{"code":"queue_full","message":"queue \"x\" is full: 10 of 10 jobs not yet finished"}}`,
			spool.ErrQueueFull, spool.CodeQueueFull, `queue "x" is full: 10 of 10 jobs not yet finished (retry after 3s)`, 3 * time.Second},
		{"disk full", 503, "10", `{"error":{"code":"disk_full","message":"nearly full"}}`,
			spool.ErrDiskFull, spool.CodeDiskFull, "nearly full (retry after 10s)", 10 * time.Second},
		{"not found", 404, "", `{"error":{"code":"not_found","message":"no job with id \"x\""}}`,
			spool.ErrNotFound, spool.CodeNotFound, `no job with id "x"`, 0},
		{"lease lost", 409, "", `{"error":{"code":"lease_lost","message":"stale"}}`, spool.ErrLeaseLost, spool.CodeLeaseLost, "stale", 0},
		{"conflict", 409, "", `{"error":{"code":"conflict","message":"done"}}`, spool.ErrConflict, spool.CodeConflict, "done", 0},
		{"too large", 413, "", `{"error":{"code":"too_large","message":"big"}}`, spool.ErrTooLarge, spool.CodeTooLarge, "big", 0},
		{"invalid", 400, "", `{"error":{"code":"invalid_request","message":"bad"}}`, spool.ErrInvalid, spool.CodeInvalid, "bad", 0},
		{"unauthorized", 401, "", `{"error":{"code":"unauthorized","message":"who"}}`, spool.ErrUnauthorized, spool.CodeUnauthorized, "who", 0},
		{"proxy page", 502, "", `<html>Bad Gateway</html>`, spool.ErrUnavailable, "", "server answered 502 Bad Gateway: <html>Bad Gateway</html>", 0},
		{"empty 404", 404, "", ``, spool.ErrNotFound, "", "server answered 404 Not Found", 0},
		{"negative retry-after", 503, "-5", ``, spool.ErrUnavailable, "", "server answered 503 Service Unavailable", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.retryAfter != "" {
				h.Set("Retry-After", tt.retryAfter)
			}
			e := decodeError(tt.status, h, []byte(tt.body))
			require.ErrorIs(t, e, tt.want)
			require.Equal(t, tt.status, e.Status)
			require.Equal(t, tt.code, e.Code)
			require.Equal(t, tt.msg, e.Error())
			require.Equal(t, tt.wait, e.RetryAfter)
		})
	}
	internal := decodeError(500, http.Header{}, []byte(`{"error":{"code":"internal","message":"internal error"}}`))
	require.Nil(t, errors.Unwrap(internal))
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	require.Equal(t, 7*time.Second, parseRetryAfter("7"))
	require.Equal(t, time.Duration(0), parseRetryAfter("soon"))
	require.Equal(t, 24*time.Hour, parseRetryAfter("999999999"))
	future := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	require.InDelta(t, float64(time.Hour), float64(parseRetryAfter(future)), float64(5*time.Second))
}

// FuzzDecodeError feeds arbitrary server answers to the error decoder: it
// must never panic, and always yield a printable error.
func FuzzDecodeError(f *testing.F) {
	f.Add(503, "3", []byte(`{"error":{"code":"queue_full","message":"full"}}`))
	f.Add(404, "", []byte(`{"error":{"code":"not_found","message":""}}`))
	f.Add(502, "Wed, 21 Oct 2015 07:28:00 GMT", []byte(`<html>`))
	f.Add(400, "", []byte(`{"error":null}`))
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		h := http.Header{}
		h.Set("Retry-After", retryAfter)
		e := decodeError(status, h, body)
		if e.Error() == "" {
			t.Fatal("empty error text")
		}
		if e.RetryAfter < 0 {
			t.Fatalf("negative RetryAfter %v", e.RetryAfter)
		}
		_ = e.Unwrap()
	})
}
