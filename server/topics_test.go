package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/server"
)

func TestTopicsSubscribePublishUnsubscribe(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)

	var topics spool.TopicsResponse
	ts.do("GET", "/v1/topics", nil).ok(t, http.StatusOK, &topics)
	require.Empty(t, topics.Topics)

	var sub spool.Subscription
	ts.do("PUT", "/v1/topics/tweets/subscriptions/timeline", nil).ok(t, http.StatusOK, &sub)
	require.Equal(t, "tweets", sub.Topic)
	require.Equal(t, "timeline", sub.Queue)
	require.Empty(t, sub.Types)
	ts.do("PUT", "/v1/topics/tweets/subscriptions/followers", spool.SubscribeRequest{Types: []string{"tweet.created"}}).ok(t, http.StatusOK, &sub)
	require.Equal(t, []string{"tweet.created"}, sub.Types)

	ts.do("GET", "/v1/topics", nil).ok(t, http.StatusOK, &topics)
	require.Len(t, topics.Topics, 1)
	require.Len(t, topics.Topics[0].Subscriptions, 2)

	var out spool.JobsResponse
	ts.do("POST", "/v1/topics/tweets/messages", spool.EnqueueRequest{Type: "tweet.created", Payload: []byte(`{"id":7}`)}).ok(t, http.StatusAccepted, &out)
	require.Len(t, out.Jobs, 2)
	require.Equal(t, "followers", out.Jobs[0].Queue)
	require.Equal(t, "timeline", out.Jobs[1].Queue)
	require.JSONEq(t, `{"id":7}`, string(ts.leaseOne("followers").Payload))

	// A filtered subscription skips other types.
	ts.do("POST", "/v1/topics/tweets/messages", spool.EnqueueRequest{Type: "tweet.deleted"}).ok(t, http.StatusAccepted, &out)
	require.Len(t, out.Jobs, 1)
	require.Equal(t, "timeline", out.Jobs[0].Queue)

	// Batch, with an Idempotency-Key header: a retry returns the same jobs.
	batch := spool.PublishBatchRequest{Messages: []spool.EnqueueRequest{{Type: "tweet.created"}, {Type: "tweet.liked"}}}
	ts.do("POST", "/v1/topics/tweets/messages:batch", batch, "Idempotency-Key", "b1").ok(t, http.StatusAccepted, &out)
	require.Len(t, out.Jobs, 3)
	var again spool.JobsResponse
	ts.do("POST", "/v1/topics/tweets/messages:batch", batch, "Idempotency-Key", "b1").ok(t, http.StatusOK, &again)
	require.Equal(t, out.Jobs[0].ID, again.Jobs[0].ID)
	require.Equal(t, out.Jobs[2].ID, again.Jobs[2].ID)

	ts.do("DELETE", "/v1/topics/tweets/subscriptions/followers", nil).ok(t, http.StatusOK, nil)
	ts.do("DELETE", "/v1/topics/tweets/subscriptions/followers", nil).fails(t, http.StatusNotFound, spool.CodeNotFound)
	ts.do("POST", "/v1/topics/tweets/messages", spool.EnqueueRequest{Type: "tweet.created"}).ok(t, http.StatusAccepted, &out)
	require.Len(t, out.Jobs, 1)
}

func TestPublishRefusals(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)

	e := ts.do("POST", "/v1/topics/nobody/messages", spool.EnqueueRequest{Type: "x"}).fails(t, http.StatusNotFound, spool.CodeNoSubscribers)
	require.Contains(t, e.Message, "nobody")
	ts.do("POST", "/v1/topics/Bad/messages", spool.EnqueueRequest{Type: "x"}).fails(t, http.StatusBadRequest, spool.CodeInvalid)
	ts.do("PUT", "/v1/topics/t/subscriptions/_x", nil).fails(t, http.StatusBadRequest, spool.CodeInvalid)
	ts.do("PUT", "/v1/topics/t/subscriptions/q", `{"types":[""]}`).fails(t, http.StatusBadRequest, spool.CodeInvalid)
	ts.do("PUT", "/v1/topics/t/subscriptions/q", `{"typos":["a"]}`).fails(t, http.StatusBadRequest, spool.CodeInvalid)
	ts.do("POST", "/v1/topics/t/messages:batch", `{"messages":[]}`).fails(t, http.StatusBadRequest, spool.CodeInvalid)

	// One full subscriber refuses the whole publish.
	for _, q := range []string{"a", "b", "c"} {
		ts.do("PUT", "/v1/topics/news/subscriptions/"+q, nil).ok(t, http.StatusOK, nil)
	}
	ts.patch("b", spool.QueueConfig{MaxDepth: ptr[int64](1)})
	ts.do("POST", "/v1/topics/news/messages", spool.EnqueueRequest{Type: "n"}).ok(t, http.StatusAccepted, nil)
	r := ts.do("POST", "/v1/topics/news/messages", spool.EnqueueRequest{Type: "n"})
	r.fails(t, http.StatusServiceUnavailable, spool.CodeQueueFull)
	require.NotEmpty(t, r.h.Get("Retry-After"))
	for _, q := range []string{"a", "b", "c"} {
		require.EqualValues(t, 1, ts.queue(q).Depth, q)
	}
}

func TestPublishDropUnrouted(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *server.Config) { c.Defaults.DropUnrouted = true })
	var out spool.JobsResponse
	ts.do("POST", "/v1/topics/nobody/messages", spool.EnqueueRequest{Type: "x"}).ok(t, http.StatusAccepted, &out)
	require.Empty(t, out.Jobs)
}
