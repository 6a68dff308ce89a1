package spool

import (
	"fmt"
	"time"
)

// SubscribeRequest is the body of PUT /v1/topics/{topic}/subscriptions/{queue}.
// An empty body subscribes the queue to every message of the topic.
type SubscribeRequest struct {
	// Types, when not empty, limits the subscription to messages whose type
	// is one of these.
	Types []string `json:"types,omitempty"`
}

// MaxSubscriptionTypes bounds SubscribeRequest.Types.
const MaxSubscriptionTypes = 64

// Validate checks a subscribe request.
func (r *SubscribeRequest) Validate() error {
	if len(r.Types) > MaxSubscriptionTypes {
		return Invalidf("%d types; a subscription takes at most %d", len(r.Types), MaxSubscriptionTypes)
	}
	for i, t := range r.Types {
		if err := validText(fmt.Sprintf("types[%d]", i), t, MaxTypeLen, true); err != nil {
			return err
		}
	}
	return nil
}

// Subscription binds a queue to a topic: the answer to a subscribe, and an
// element of TopicInfo.
type Subscription struct {
	Topic string `json:"topic"`
	Queue string `json:"queue"`
	// Types filters the topic's messages; absent: every message.
	Types     []string  `json:"types,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// TopicInfo describes a topic: its subscriptions, sorted by queue.
type TopicInfo struct {
	Name          string         `json:"name"`
	Subscriptions []Subscription `json:"subscriptions"`
}

// TopicsResponse answers GET /v1/topics: every topic with at least one
// subscription, sorted by name.
type TopicsResponse struct {
	Topics []TopicInfo `json:"topics"`
}

// PublishBatchRequest is the body of POST /v1/topics/{topic}/messages:batch.
// Each message has the shape of an enqueue request; all of them are
// published in one atomic write, or none is.
type PublishBatchRequest struct {
	Messages []EnqueueRequest `json:"messages"`
}

// Validate checks a batch publish.
func (r *PublishBatchRequest) Validate(l Limits) error {
	l = l.WithDefaults()
	if len(r.Messages) == 0 {
		return Invalidf("messages is empty")
	}
	if len(r.Messages) > l.MaxBatch {
		return Invalidf("%d messages in one batch; the limit is %d", len(r.Messages), l.MaxBatch)
	}
	for i := range r.Messages {
		if err := r.Messages[i].Validate(l); err != nil {
			return wrapIndex("messages", i, err)
		}
	}
	return nil
}
