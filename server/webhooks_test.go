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

// Callback URLs the webhook allowlist refuses are refused at enqueue
// (400), in every way a job can be enqueued; the allowlist lets them in.
func TestUndeliverableCallbackURLsAreRefused(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *server.Config) { c.WebhookSecret = "s" })
	for _, u := range []string{
		"http://127.0.0.1:8080/hook", "http://[::1]/", "http://169.254.169.254/latest/meta-data/",
		"http://10.0.0.7/", "http://192.168.0.1/", "http://metadata.google.internal/computeMetadata/v1/",
		"http://localhost/", "http://internal-service/", "http://2130706433/",
	} {
		d := ts.do("POST", "/v1/queues/q/jobs", spool.EnqueueRequest{Type: "t", CallbackURL: u}).fails(t, 400, spool.CodeInvalid)
		require.Contains(t, d.Message, "callback_url", u)
		require.Contains(t, d.Message, "allowlist", u)
		d = ts.do("POST", "/v1/queues/q/jobs:batch", spool.BatchEnqueueRequest{Jobs: []spool.EnqueueRequest{{Type: "t"}, {Type: "t", CallbackURL: u}}}).fails(t, 400, spool.CodeInvalid)
		require.Contains(t, d.Message, "jobs[1]: callback_url", u)
		ts.do("PUT", "/v1/schedules/s1", `{"cron":"* * * * *","queue":"q","job":{"type":"t","callback_url":"`+u+`"}}`).fails(t, 400, spool.CodeInvalid)
	}
	ts.do("GET", "/v1/queues/q", nil).fails(t, 404, spool.CodeNotFound) // nothing stored

	allowed := newTestServer(t, func(c *server.Config) {
		c.WebhookSecret = "s"
		c.WebhookAllow = []string{"10.0.0.0/8", "metadata.google.internal"}
	})
	allowed.enqueue("q", spool.EnqueueRequest{Type: "t", CallbackURL: "http://10.0.0.7/"})
	allowed.enqueue("q", spool.EnqueueRequest{Type: "t", CallbackURL: "http://metadata.google.internal/x"})
	allowed.do("POST", "/v1/queues/q/jobs", spool.EnqueueRequest{Type: "t", CallbackURL: "http://127.0.0.1/"}).fails(t, 400, spool.CodeInvalid)
}

// Webhook deliveries are the server's: a client can neither cancel, nor
// retry, nor delete one before it has finished (a retry would send a
// freshly signed callback).
func TestWebhookDeliveriesAreNotForClients(t *testing.T) {
	t.Parallel()
	hits := make(chan struct{}, 16)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		hits <- struct{}{}
	}))
	t.Cleanup(recv.Close)
	clock := engine.NewManualClock(time.Now())
	ts := newTestServer(t, func(c *server.Config) {
		c.WebhookSecret = "s"
		c.WebhookAllow = []string{"127.0.0.1"}
		c.Clock = clock
	})
	j := ts.enqueue("q", spool.EnqueueRequest{Type: "t", CallbackURL: recv.URL + "/done"})
	l := ts.leaseOne("q")
	ts.do("POST", "/v1/jobs/"+l.ID+"/complete", spool.CompleteRequest{Token: l.Lease.Token}).ok(t, 200, nil)
	select {
	case <-hits:
	case <-time.After(20 * time.Second):
		t.Fatal("no webhook delivery attempt")
	}
	delivery := func(want spool.State) *spool.Job {
		t.Helper()
		var d *spool.Job
		waitFor(t, "a delivery "+string(want), 20*time.Second, func() bool {
			var list spool.JobList
			ts.do("GET", "/v1/queues/"+engine.WebhookQueue+"/jobs", nil).ok(t, 200, &list)
			if len(list.Jobs) == 1 && list.Jobs[0].State == want {
				d = list.Jobs[0]
			}
			return d != nil
		})
		return d
	}
	d := delivery(spool.StateScheduled) // its first attempt failed (500)
	e := ts.do("DELETE", "/v1/jobs/"+d.ID, nil).fails(t, 409, spool.CodeConflict)
	require.Contains(t, e.Message, "webhook deliveries")
	ts.do("POST", "/v1/jobs/"+d.ID+"/delete", nil).fails(t, 409, spool.CodeConflict)

	// The job it reports on goes away: the next attempt fails for good.
	ts.do("POST", "/v1/jobs/"+j.ID+"/delete", nil).ok(t, 200, nil)
	clock.Advance(time.Hour)
	d = delivery(spool.StateDead)
	e = ts.do("POST", "/v1/jobs/"+d.ID+"/retry", nil).fails(t, 409, spool.CodeConflict)
	require.Contains(t, e.Message, "webhook deliveries")
	require.Equal(t, spool.StateDead, ts.get(d.ID).State)
	// A finished delivery may be deleted.
	ts.do("POST", "/v1/jobs/"+d.ID+"/delete", nil).ok(t, 200, nil)
}
