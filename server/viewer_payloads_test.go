package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/auth"
)

// No GET answer shows a viewer a payload or a result unless its key may
// see them: every GET route of the route table (API and dashboard pages)
// is read with a viewer key about a job whose payload and result hold
// marker strings, and with a viewer key that may see payloads, as a check
// that the markers would show. A new route that hands out jobs is checked
// as soon as it exists.
func TestViewerSeesNoPayloadOnAnyRoute(t *testing.T) {
	t.Parallel()
	a := newAuthServer(t, Config{})
	admin := a.key(auth.CreateParams{Roles: []string{"admin"}})
	viewer := a.key(auth.CreateParams{Roles: []string{"viewer"}})
	peeker := a.key(auth.CreateParams{Roles: []string{"viewer"}, CanViewPayloads: true})
	const payloadMark, resultMark = "payload-4111-marker", "result-9999-marker"

	r := a.send("POST", "/v1/queues/q/jobs", admin, spool.EnqueueRequest{Type: "t", Payload: json.RawMessage(`{"card":"` + payloadMark + `"}`)})
	require.Equal(t, http.StatusAccepted, r.code, "%s", r.body)
	var parent spool.Job
	require.NoError(t, json.Unmarshal(r.body, &parent))
	r = a.send("POST", "/v1/queues/q/jobs", admin, spool.EnqueueRequest{Type: "child", Payload: json.RawMessage(`{"card":"` + payloadMark + `"}`), DependsOn: []string{parent.ID}})
	require.Equal(t, http.StatusAccepted, r.code, "%s", r.body)
	var child spool.Job
	require.NoError(t, json.Unmarshal(r.body, &child))
	r = a.send("POST", "/v1/leases", admin, spool.LeaseRequest{Queues: []string{"q"}, Max: 1})
	require.Equal(t, http.StatusOK, r.code, "%s", r.body)
	var leased spool.JobsResponse
	require.NoError(t, json.Unmarshal(r.body, &leased))
	require.Len(t, leased.Jobs, 1)
	r = a.send("POST", "/v1/jobs/"+parent.ID+"/complete", admin, spool.CompleteRequest{Token: leased.Jobs[0].Lease.Token, Result: json.RawMessage(`{"pin":"` + resultMark + `"}`)})
	require.Equal(t, http.StatusOK, r.code, "%s", r.body)
	r = a.send("PUT", "/v1/schedules/sched", admin, map[string]any{"cron": "@hourly", "job": map[string]any{"queue": "q", "type": "t", "payload": map[string]string{"card": payloadMark}}})
	require.Contains(t, []int{http.StatusOK, http.StatusCreated}, r.code, "%s", r.body)

	fill := strings.NewReplacer("{$}", "", "{queue}", "q", "{topic}", "t", "{id}", parent.ID, "{name}", "sched", "{key}", "00000000000000ff")
	shown := 0
	for _, rt := range a.s.routes {
		if rt.method != http.MethodGet || !auth.Grants(auth.RoleViewer, rt.perm) || strings.HasSuffix(rt.pattern, "/v1/events") {
			continue
		}
		path := fill.Replace(rt.pattern)
		if strings.HasSuffix(rt.pattern, "/parents") {
			// The child's parents are the job with the payload and result.
			path = strings.Replace(path, parent.ID, child.ID, 1)
		}
		for _, secret := range []string{viewer, peeker} {
			res := a.send("GET", path, secret, nil)
			if res.code != http.StatusOK {
				continue
			}
			body := string(res.body)
			if secret == viewer {
				require.NotContains(t, body, payloadMark, "GET %s shows a viewer a payload", rt.pattern)
				require.NotContains(t, body, resultMark, "GET %s shows a viewer a result", rt.pattern)
			} else if strings.Contains(body, payloadMark) || strings.Contains(body, resultMark) {
				shown++
			}
		}
	}
	require.GreaterOrEqual(t, shown, 3, "the markers show to a key that may see payloads (job, list, schedule at least)")
}
