package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/server"
)

// TestPayloadFilter lists jobs by a payload field and acts on those only,
// on both stores.
func TestPayloadFilter(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, store func(*server.Config)) {
		ts := newTestServer(t, store)
		payloads := []string{`{"customer":42}`, `{"customer":"42"}`, `{"customer":42.0,"x":1}`, `[42]`, `{"other":42}`, `{"customer":7}`}
		ids := map[string]string{}
		for _, p := range payloads {
			ids[p] = ts.enqueue("q", spool.EnqueueRequest{Type: "t", Payload: json.RawMessage(p)}).ID
		}
		ts.enqueue("q", spool.EnqueueRequest{Type: "t"})

		list := func(value string) []string {
			t.Helper()
			var page spool.JobList
			ts.do("GET", "/v1/queues/q/jobs?payload_field=customer&payload_value="+url.QueryEscape(value), nil).ok(t, http.StatusOK, &page)
			require.Empty(t, page.NextCursor)
			var out []string
			for _, j := range page.Jobs {
				require.Empty(t, j.Payload, "a listing carries no payload")
				out = append(out, j.ID)
			}
			return out
		}
		require.Equal(t, []string{ids[payloads[0]], ids[payloads[2]]}, list("42"))
		require.Equal(t, []string{ids[payloads[1]]}, list(`"42"`))
		require.Empty(t, list("43"))

		// A bulk action with the filter applies to the matching jobs only.
		var out spool.BulkResponse
		ts.do("POST", "/v1/queues/q/jobs:cancel", map[string]any{"payload_field": "customer", "payload_value": "42", "dry_run": true}).ok(t, http.StatusOK, &out)
		require.Equal(t, spool.BulkResponse{Count: 2, DryRun: true}, out)
		require.EqualValues(t, 2, ts.bulk("q", "cancel", map[string]any{"payload_field": "customer", "payload_value": "42.00"}))
		for p, id := range ids {
			want := spool.StateReady
			if p == payloads[0] || p == payloads[2] {
				want = spool.StateCancelled
			}
			require.Equal(t, want, ts.get(id).State, fmt.Sprint("payload ", p))
		}
	})
}
