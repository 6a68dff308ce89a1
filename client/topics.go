package client

import (
	"context"
	"errors"
	"net/http"

	"github.com/spoolq/spool"
)

// Subscribe binds queue to topic, creating or replacing the subscription:
// every message published to the topic then becomes a job in queue. With
// types, only messages of those types do.
func (c *Client) Subscribe(ctx context.Context, topic, queue string, types ...string) (*spool.Subscription, error) {
	if topic == "" || queue == "" {
		return nil, errors.New("client: Subscribe: empty topic or queue name")
	}
	out := new(spool.Subscription)
	cl := call{
		method: http.MethodPut,
		path:   "/v1/topics/" + pathEscape(topic) + "/subscriptions/" + pathEscape(queue),
		body:   spool.SubscribeRequest{Types: types},
		repeat: repeatSafe,
	}
	if _, err := c.do(ctx, cl, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Unsubscribe removes the subscription of queue to topic. Jobs already
// published stay in the queue. A queue that was not subscribed is an error
// that unwraps to spool.ErrNotFound (also after a retry whose first try
// did unsubscribe it but whose answer was lost).
func (c *Client) Unsubscribe(ctx context.Context, topic, queue string) error {
	if topic == "" || queue == "" {
		return errors.New("client: Unsubscribe: empty topic or queue name")
	}
	cl := call{
		method: http.MethodDelete,
		path:   "/v1/topics/" + pathEscape(topic) + "/subscriptions/" + pathEscape(queue),
		repeat: repeatSafe,
	}
	_, err := c.do(ctx, cl, nil)
	return err
}

// Topics lists every topic with at least one subscription.
func (c *Client) Topics(ctx context.Context) ([]spool.TopicInfo, error) {
	var out spool.TopicsResponse
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/topics", repeat: repeatSafe}, &out); err != nil {
		return nil, err
	}
	return out.Topics, nil
}

// Publish publishes one message to topic: the server writes one job into
// every subscribed queue that takes the message's type, all or none, and
// Publish returns those jobs (by queue name). Retries are those of Enqueue,
// with one idempotency key for every try (made up when req has none), so a
// retried publish never stores a message twice in a queue.
//
// A topic that no subscription takes the message from is an error that
// unwraps to spool.ErrNoSubscribers (unless the server is configured to
// drop such messages: then no jobs and no error). One full subscribed
// queue refuses the whole publish with an error that unwraps to
// spool.ErrQueueFull.
func (c *Client) Publish(ctx context.Context, topic string, req spool.EnqueueRequest) ([]*spool.Job, error) {
	if topic == "" {
		return nil, errors.New("client: Publish: empty topic name")
	}
	if req.IdempotencyKey == "" && c.retry.MaxRetries > 0 {
		req.IdempotencyKey = newIdempotencyKey()
	}
	cl := call{
		method: http.MethodPost,
		path:   "/v1/topics/" + pathEscape(topic) + "/messages",
		body:   req,
		repeat: repeatSafe,
	}
	if req.IdempotencyKey != "" {
		cl.header = http.Header{idempotencyHeader: {req.IdempotencyKey}}
	}
	var out spool.JobsResponse
	if _, err := c.do(ctx, cl, &out); err != nil {
		return nil, err
	}
	return out.Jobs, nil
}

// PublishBatch publishes many messages to topic in one atomic write and
// returns the jobs in message order, then by queue name. Retries are those
// of EnqueueBatch.
func (c *Client) PublishBatch(ctx context.Context, topic string, reqs []spool.EnqueueRequest) ([]*spool.Job, error) {
	if topic == "" {
		return nil, errors.New("client: PublishBatch: empty topic name")
	}
	return c.postBatch(ctx, "/v1/topics/"+pathEscape(topic)+"/messages:batch", spool.PublishBatchRequest{Messages: reqs}, len(reqs))
}
