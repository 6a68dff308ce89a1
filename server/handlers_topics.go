package server

import (
	"context"
	"net/http"
	"strconv"

	"github.com/spoolq/spool"
)

// subscribeBody is the body of PUT /v1/topics/{topic}/subscriptions/{queue};
// it may be empty (no type filter).
type subscribeBody struct {
	spool.SubscribeRequest
}

func (*subscribeBody) optionalBody() {}

// subscribe: PUT /v1/topics/{topic}/subscriptions/{queue} → 200 and the
// subscription (created or replaced).
func (s *Server) subscribe(ctx context.Context, c *call, req *subscribeBody) (int, *spool.Subscription, error) {
	sub, err := s.engine.Subscribe(ctx, c.r.PathValue("topic"), c.queue, req.Types)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, sub, nil
}

// unsubscribed answers DELETE /v1/topics/{topic}/subscriptions/{queue}.
type unsubscribed struct {
	Topic   string `json:"topic"`
	Queue   string `json:"queue"`
	Deleted bool   `json:"deleted"`
}

// unsubscribe: DELETE /v1/topics/{topic}/subscriptions/{queue} → 200, or
// 404 if the queue was not subscribed. Jobs already published stay.
func (s *Server) unsubscribe(ctx context.Context, c *call, _ *noBody) (int, *unsubscribed, error) {
	topic := c.r.PathValue("topic")
	if err := s.engine.Unsubscribe(ctx, topic, c.queue); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, &unsubscribed{Topic: topic, Queue: c.queue, Deleted: true}, nil
}

// listTopics: GET /v1/topics.
func (s *Server) listTopics(ctx context.Context, c *call, _ *noBody) (int, *spool.TopicsResponse, error) {
	ts, err := s.engine.Topics(ctx)
	if err != nil {
		return 0, nil, err
	}
	ts = filterTopics(c, ts)
	return http.StatusOK, &spool.TopicsResponse{Topics: ts}, nil
}

// publish: POST /v1/topics/{topic}/messages → 202 and {"jobs":[...]}, one
// job per subscribed queue that takes the message; 200 when every job was
// an idempotent repeat.
func (s *Server) publish(ctx context.Context, c *call, req *enqueueBody) (int, *spool.JobsResponse, error) {
	if err := s.checkRunAt(&req.EnqueueRequest, "", -1); err != nil {
		return 0, nil, err
	}
	return s.publishAll(ctx, c, []spool.EnqueueRequest{req.EnqueueRequest})
}

// publishBatchBody is the body of POST /v1/topics/{topic}/messages:batch.
type publishBatchBody struct {
	spool.PublishBatchRequest
}

// bindHeaders makes an Idempotency-Key header cover the whole batch, as
// for a batch enqueue: "<header>#<index>" for each message without a key.
func (b *publishBatchBody) bindHeaders(h http.Header) error {
	key := h.Get(idempotencyHeader)
	if key == "" {
		return nil
	}
	for i := range b.Messages {
		if b.Messages[i].IdempotencyKey == "" {
			b.Messages[i].IdempotencyKey = key + "#" + strconv.Itoa(i)
		}
	}
	return nil
}

// publishBatch: POST /v1/topics/{topic}/messages:batch → every message to
// every subscribed queue that takes it, all or nothing.
func (s *Server) publishBatch(ctx context.Context, c *call, req *publishBatchBody) (int, *spool.JobsResponse, error) {
	for i := range req.Messages {
		if err := s.checkRunAt(&req.Messages[i], "messages", i); err != nil {
			return 0, nil, err
		}
	}
	return s.publishAll(ctx, c, req.Messages)
}

func (s *Server) publishAll(ctx context.Context, c *call, msgs []spool.EnqueueRequest) (int, *spool.JobsResponse, error) {
	if err := s.checkPublishScope(ctx, c, c.r.PathValue("topic")); err != nil {
		return 0, nil, err
	}
	res, err := s.engine.Publish(ctx, c.r.PathValue("topic"), msgs)
	if err != nil {
		return 0, nil, err
	}
	out := &spool.JobsResponse{Jobs: make([]*spool.Job, len(res))}
	status := http.StatusAccepted
	if len(res) > 0 {
		status = http.StatusOK
	}
	for i, r := range res {
		out.Jobs[i] = r.Job
		if !r.Existing {
			status = http.StatusAccepted
		}
	}
	return status, out, nil
}
