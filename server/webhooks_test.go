package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
	"github.com/spoolq/spool/internal/engine"
	"github.com/spoolq/spool/server"
)

func TestCallbackURLNeedsAWebhookSecret(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	d := ts.do("POST", "/v1/queues/q/jobs", spool.EnqueueRequest{Type: "t", CallbackURL: "https://example.com/hook"}).fails(t, 400, spool.CodeInvalid)
	require.Contains(t, d.Message, "webhook secret")
	d = ts.do("POST", "/v1/queues/q/jobs:batch", spool.BatchEnqueueRequest{Jobs: []spool.EnqueueRequest{{Type: "t"}, {Type: "t", CallbackURL: "https://example.com/hook"}}}).fails(t, 400, spool.CodeInvalid)
	require.Contains(t, d.Message, "jobs[1]: callback_url")
}

func TestCallbackURLIsValidated(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *server.Config) { c.WebhookSecret = "s" })
	for _, u := range []string{"ftp://example.com/x", "/relative", "https://", "https://user:pw@example.com/", "https://example.com/" + strings.Repeat("a", 2048)} {
		ts.do("POST", "/v1/queues/q/jobs", spool.EnqueueRequest{Type: "t", CallbackURL: u}).fails(t, 400, spool.CodeInvalid)
	}
	j := ts.enqueue("q", spool.EnqueueRequest{Type: "t", CallbackURL: "https://example.com/hook?x=1"})
	require.Equal(t, "https://example.com/hook?x=1", ts.get(j.ID).CallbackURL)
}

func TestInternalQueuesAreNotForUsers(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.do("POST", "/v1/queues/"+engine.WebhookQueue+"/jobs", spool.EnqueueRequest{Type: "webhook"}).fails(t, 400, spool.CodeInvalid)
	d := ts.do("POST", "/v1/leases", spool.LeaseRequest{Queues: []string{"q", engine.WebhookQueue}}).fails(t, 400, spool.CodeInvalid)
	require.Contains(t, d.Message, "reserved")
	ts.do("PATCH", "/v1/queues/"+engine.WebhookQueue, spool.QueueConfig{Paused: ptr(true)}).fails(t, 400, spool.CodeInvalid)
	// Deliveries are visible: the queue and its jobs may be read.
	ts.do("GET", "/v1/queues/"+engine.WebhookQueue+"/jobs", nil).ok(t, 200, nil)
}

func TestWebhookDeliveredEndToEnd(t *testing.T) {
	t.Parallel()
	type hit struct {
		sig  string
		body []byte
	}
	hits := make(chan hit, 4)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusOK)
		hits <- hit{r.Header.Get(spool.WebhookSignatureHeader), b}
	}))
	t.Cleanup(recv.Close)
	ts := newTestServer(t, func(c *server.Config) {
		c.WebhookSecret = "topsecret"
		c.WebhookAllow = []string{"127.0.0.1"}
	})
	j := ts.enqueue("q", spool.EnqueueRequest{Type: "t", CallbackURL: recv.URL + "/done"})
	l := ts.leaseOne("q")
	require.Equal(t, j.ID, l.ID)
	ts.do("POST", "/v1/jobs/"+l.ID+"/fail", spool.FailRequest{Token: l.Lease.Token, Error: "boom", Final: true}).ok(t, 200, nil)

	var h hit
	select {
	case h = <-hits:
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook delivery")
	}
	require.NoError(t, client.VerifyWebhook("topsecret", h.sig, h.body, time.Minute))
	var got spool.Job
	require.NoError(t, json.Unmarshal(h.body, &got))
	require.Equal(t, j.ID, got.ID)
	require.Equal(t, spool.StateDead, got.State)
	require.Len(t, got.Errors, 1)
	require.Equal(t, "boom", got.Errors[0].Error)
}
