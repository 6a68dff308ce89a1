package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/server"
)

// FuzzEnqueueBody posts arbitrary bodies to the enqueue endpoint: the
// answer is never a 5xx (a panic would be a 500), always JSON, and either
// a job of the queue or the error shape with a known code. The seed corpus
// is in testdata/fuzz/FuzzEnqueueBody.
func FuzzEnqueueBody(f *testing.F) {
	for _, seed := range []string{
		`{"type":"t"}`,
		`{"type":"t","payload":{"a":[1,2,{"b":null}]},"priority":-3,"delay":"1.5s","max_attempts":2,"timeout":"1m","backoff":{"base":"1s","max":"1h"},"idempotency_key":"k","tags":["x"]}`,
		`{"type":"t","run_at":"2026-03-01T12:00:00Z"}`,
		`{"type":"t","delay":"5 minutes"}`,
		`{"type":"t","delay":-1}`,
		`{"type":"t"} {}`,
		`{"type":"t","payload":`,
		`[]`,
		`null`,
		``,
		`{"type":"\u0000"}`,
		`{"type":"t","tags":[""]}`,
		`{"TYPE":"t","Payload":1}`,
		`{"type":"t","priority":1e400}`,
	} {
		f.Add([]byte(seed))
	}
	s, err := server.New(context.Background(), server.Config{DataDir: f.TempDir(), Limits: spool.Limits{MaxPayloadBytes: 4096, MaxBodyBytes: 16384}})
	require.NoError(f, err)
	f.Cleanup(func() { require.NoError(f, s.Close()) })
	h := s.Handler()
	codes := map[string]bool{spool.CodeInvalid: true, spool.CodeTooLarge: true}

	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/v1/queues/fuzz/jobs", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Host = "localhost" // a name the server serves (httptest's example.com is not)
		h.ServeHTTP(rec, req)
		require.Less(t, rec.Code, 500, "body %q: %s", body, rec.Body)
		require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
		switch rec.Code {
		case http.StatusAccepted, http.StatusOK:
			var j spool.Job
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &j))
			require.Equal(t, "fuzz", j.Queue)
			require.NotEmpty(t, j.Type)
			require.Equal(t, "/v1/jobs/"+j.ID, rec.Header().Get("Location"))
		default:
			var eb spool.ErrorBody
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &eb), "body %q: %s", body, rec.Body)
			require.True(t, codes[eb.Error.Code], "body %q: code %s", body, eb.Error.Code)
			require.NotEmpty(t, eb.Error.Message)
		}
	})
}
