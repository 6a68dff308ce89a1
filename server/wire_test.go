package server

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
)

// The fast decoders of the hot bodies give what encoding/json gives, and
// leave every other body to it.
func TestDecodeFast(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body string
		dst  func() any
		fast bool
	}{
		{`{"jobs":[{"type":"t","payload":{"a": 1},"tags":["x"],"delay":"1s"},{"type":"t"}]}`, func() any { return &batchBody{} }, true},
		{`{"acks":[{"id":"1","token":"t","outcome":"complete","result":[1]}]}`, func() any { return &spool.AcksRequest{} }, true},
		{`{"jobs":[{"Type":"t"}]}`, func() any { return &batchBody{} }, false},
		{`{"acks":[{"id":"1","reason":"x"}]}`, func() any { return &spool.AcksRequest{} }, false},
		{`{"type":"t"}`, func() any { return &enqueueBody{} }, false},
	} {
		t.Run(tc.body, func(t *testing.T) {
			t.Parallel()
			got, want := tc.dst(), tc.dst()
			require.Equal(t, tc.fast, decodeFast([]byte(tc.body), got))
			if !tc.fast {
				return
			}
			dec := json.NewDecoder(bytes.NewReader([]byte(tc.body)))
			dec.DisallowUnknownFields()
			require.NoError(t, dec.Decode(want))
			require.Equal(t, want, got)
		})
	}
}

// writeJSON writes job answers with package wire byte for byte as
// encoding/json would.
func TestWriteJSONFast(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 12, 0, 0, 5, time.UTC)
	job := &spool.Job{ID: "1", Queue: "q", Type: "t\u2028<>", Payload: json.RawMessage(`{ "a" : 1 }`), State: spool.StateActive,
		RunAt: at, CreatedAt: at, StartedAt: &at, Lease: &spool.Lease{Token: "k", ExpiresAt: at}, Tags: []string{}}
	s := &Server{}
	for _, v := range []any{job, (*spool.Job)(nil), &spool.JobsResponse{Jobs: []*spool.Job{job, job}, Existing: []int{1}}, &spool.JobsResponse{}} {
		_, ok := appendFast(nil, v)
		require.True(t, ok)
		w := httptest.NewRecorder()
		s.writeJSON(w, 200, v)
		var want bytes.Buffer
		require.NoError(t, encodeJSON(&want, v))
		require.Equal(t, want.String(), w.Body.String())
	}
}

// A job the fast encoder leaves (a payload nested deeper than it reads)
// goes out through encoding/json, the same bytes; one encoding/json
// cannot write either (a year past 9999) is a 500 with the internal
// error shape.
func TestWriteJSONFallback(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	deep := json.RawMessage(strings.Repeat("[", 1200) + strings.Repeat("]", 1200))
	job := &spool.Job{ID: "1", Queue: "q", Type: "t", Payload: deep, State: spool.StateReady, RunAt: at, CreatedAt: at}
	s := &Server{log: slog.New(slog.DiscardHandler)}
	v := &spool.JobsResponse{Jobs: []*spool.Job{job}}
	_, ok := appendFast(nil, v)
	require.False(t, ok, "the fast path leaves deep payloads")
	w := httptest.NewRecorder()
	s.writeJSON(w, 200, v)
	var want bytes.Buffer
	require.NoError(t, encodeJSON(&want, v))
	require.Equal(t, 200, w.Code)
	require.Equal(t, want.String(), w.Body.String())

	bad := &spool.Job{ID: "2", Queue: "q", Type: "t", State: spool.StateReady, RunAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), CreatedAt: at}
	w = httptest.NewRecorder()
	s.writeJSON(w, 200, bad)
	require.Equal(t, 500, w.Code)
	require.JSONEq(t, `{"error":{"code":"internal","message":"internal error"}}`, w.Body.String())
}
