package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/servertest"
	"github.com/spoolq/spool/internal/wire"
	"github.com/spoolq/spool/server"
)

// Payloads and results with invalid UTF-8 or lone surrogates are refused,
// so the answer of a lease, which carries every leased job's payload, is
// always JSON that any worker's parser reads.
func TestLeaseAnswerIsValidUTF8(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, store func(*server.Config)) {
		ts := newTestServer(t, store)
		bad := []string{
			"{\"type\":\"t\",\"payload\":\"\xff\"}",
			"{\"type\":\"t\",\"payload\":{\"k\":\"\xed\xa0\x80\"}}",
			`{"type":"t","payload":["\ud800"]}`,
			`{"type":"t","payload":"\udc00\ud800"}`,
		}
		for _, body := range bad {
			ts.do("POST", "/v1/queues/u/jobs", body).fails(t, http.StatusBadRequest, spool.CodeInvalid)
			ts.do("POST", "/v1/queues/u/jobs:batch", `{"jobs":[{"type":"ok"},`+body+`]}`).fails(t, http.StatusBadRequest, spool.CodeInvalid)
		}
		good := []string{
			`{"type":"t","payload":"\ud83c\udf89 é \u2028 \u0000"}`,
			`{"type":"t","payload":{"\u00e9":"🎉"}}`,
		}
		for _, body := range good {
			ts.do("POST", "/v1/queues/u/jobs", body).ok(t, http.StatusAccepted, nil)
		}
		ts.do("POST", "/v1/queues/u/jobs:batch", `{"jobs":[`+good[0]+`,`+good[1]+`]}`).ok(t, http.StatusAccepted, nil)

		r := ts.do("POST", "/v1/leases", spool.LeaseRequest{Queues: []string{"u"}, Max: 10})
		var out spool.JobsResponse
		r.ok(t, http.StatusOK, &out)
		require.Len(t, out.Jobs, 4, "only the good jobs were stored")
		require.True(t, utf8.Valid(r.body), "the lease answer is not valid UTF-8: %q", r.body)
		require.True(t, json.Valid(r.body))
		require.NoError(t, wire.Strict(r.body, nil), "the lease answer holds a lone surrogate: %s", r.body)

		j := out.Jobs[0]
		ts.do("POST", "/v1/jobs/"+j.ID+"/complete", "{\"token\":\""+j.Lease.Token+"\",\"result\":\"\xff\"}").fails(t, http.StatusBadRequest, spool.CodeInvalid)
		ts.do("POST", "/v1/jobs/"+j.ID+"/complete", `{"token":"`+j.Lease.Token+`","result":"\ud800"}`).fails(t, http.StatusBadRequest, spool.CodeInvalid)
		require.Equal(t, spool.StateActive, ts.get(j.ID).State, "a refused result changes nothing")
		ts.do("POST", "/v1/jobs/"+j.ID+"/complete", `{"token":"`+j.Lease.Token+`","result":"\ud83c\udf89"}`).ok(t, http.StatusOK, nil)
		g := ts.do("GET", "/v1/jobs/"+j.ID, nil)
		require.True(t, utf8.Valid(g.body) && json.Valid(g.body), "%q", g.body)
	})
}

// A payload stored with invalid UTF-8 (before input was checked for it, or
// through the engine directly) still goes out as valid UTF-8, so the lease
// that carries it does not strand its jobs.
func TestStoredInvalidUTF8IsAnsweredValid(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, store func(*server.Config)) {
		ts := newTestServer(t, store)
		_, err := servertest.Engine(ts.s).Enqueue(context.Background(), "u", []spool.EnqueueRequest{
			{Type: "t", Payload: json.RawMessage("{\"s\":\"a\xffb\"}")},
			{Type: "t", Payload: json.RawMessage(`{"s":"ok"}`)},
		})
		require.NoError(t, err)
		r := ts.do("POST", "/v1/leases", spool.LeaseRequest{Queues: []string{"u"}, Max: 10})
		var out spool.JobsResponse
		r.ok(t, http.StatusOK, &out)
		require.Len(t, out.Jobs, 2)
		require.True(t, utf8.Valid(r.body), "%q", r.body)
		require.JSONEq(t, `{"s":"a\ufffdb"}`, string(out.Jobs[0].Payload))
	})
}
