package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// Fan-out bounds. A topic has at most MaxSubscriptions queues, and one
// publish request writes at most MaxFanOut jobs (messages × the queues
// that take them), so a publish stays one bounded atomic write.
const (
	MaxSubscriptions = 1000
	MaxFanOut        = 10_000
)

// Subscribe binds queue to topic (creating or replacing the binding). With
// types, only messages of those types reach the queue.
func (e *Engine) Subscribe(ctx context.Context, topic, queue string, types []string) (*spool.Subscription, error) {
	if err := validateTopicName(topic); err != nil {
		return nil, err
	}
	if err := spool.ValidateQueueName(queue); err != nil {
		return nil, err
	}
	subs, err := e.st.Subscriptions(ctx, store.SubscriptionsParams{Topic: topic})
	if err != nil {
		return nil, fmt.Errorf("reading subscriptions of topic %q: %w", topic, err)
	}
	if len(subs) >= MaxSubscriptions && !slices.ContainsFunc(subs, func(s store.Subscription) bool { return s.Queue == queue }) {
		return nil, spool.Conflictf("topic %q already has %d subscriptions, the limit", topic, MaxSubscriptions)
	}
	types = slices.Compact(slices.Sorted(slices.Values(types)))
	sub := store.Subscription{Topic: topic, Queue: queue, Types: types, CreatedAt: e.clock.Now().UTC().Truncate(time.Microsecond)}
	if err := e.st.PutSubscription(ctx, sub); err != nil {
		return nil, fmt.Errorf("subscribing queue %q to topic %q: %w", queue, topic, err)
	}
	return subscriptionView(&sub), nil
}

// Unsubscribe removes the binding of queue to topic; spool.ErrNotFound if
// there is none.
func (e *Engine) Unsubscribe(ctx context.Context, topic, queue string) error {
	if err := validateTopicName(topic); err != nil {
		return err
	}
	if err := spool.ValidateQueueName(queue); err != nil {
		return err
	}
	if err := e.st.DeleteSubscription(ctx, topic, queue); err != nil {
		return fmt.Errorf("unsubscribing queue %q from topic %q: %w", queue, topic, err)
	}
	return nil
}

// Topics lists every topic with at least one subscription, by name.
func (e *Engine) Topics(ctx context.Context) ([]spool.TopicInfo, error) {
	subs, err := e.st.Subscriptions(ctx, store.SubscriptionsParams{})
	if err != nil {
		return nil, fmt.Errorf("listing topics: %w", err)
	}
	out := []spool.TopicInfo{}
	for i := range subs {
		if len(out) == 0 || out[len(out)-1].Name != subs[i].Topic {
			out = append(out, spool.TopicInfo{Name: subs[i].Topic, Subscriptions: []spool.Subscription{}})
		}
		t := &out[len(out)-1]
		t.Subscriptions = append(t.Subscriptions, *subscriptionView(&subs[i]))
	}
	return out, nil
}

// Publish fans messages out to the queues subscribed to topic: one job per
// message and subscribed queue whose filter takes its type, all stored in
// one atomic insert. If any of those queues is full, nothing is stored and
// a *spool.QueueFullError names it. Idempotency keys apply per queue, so a
// retried publish returns the jobs of the first one. The results are in
// message order, then queue name order. A publish that no subscription
// takes returns spool.ErrNoSubscribers, or, with Defaults.DropUnrouted, no
// results and no error. The messages must have passed Validate.
func (e *Engine) Publish(ctx context.Context, topic string, msgs []spool.EnqueueRequest) ([]EnqueueResult, error) {
	if err := validateTopicName(topic); err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		return nil, spool.Invalidf("no messages to publish")
	}
	if err := e.admitDisk(); err != nil {
		return nil, err
	}
	subs, err := e.st.Subscriptions(ctx, store.SubscriptionsParams{Topic: topic})
	if err != nil {
		return nil, fmt.Errorf("reading subscriptions of topic %q: %w", topic, err)
	}
	for i := range msgs {
		if len(msgs[i].DependsOn) > 0 || msgs[i].Ref != "" {
			return nil, spool.Invalidf("messages[%d]: depends_on and ref are for jobs enqueued into a queue, not for published messages", i)
		}
	}
	now := e.clock.Now()
	configs := make(map[string]spool.QueueConfig)
	depth := make(map[string]int64)
	var recs []*store.Record
	for i := range msgs {
		for j := range subs {
			if !store.SubscriptionMatches(&subs[j], msgs[i].Type) {
				continue
			}
			q := subs[j].Queue
			qc, ok := configs[q]
			if !ok {
				if qc, err = e.queueConfig(ctx, q); err != nil {
					return nil, err
				}
				configs[q] = qc
				depth[q] = *qc.MaxDepth
			}
			recs = append(recs, e.newRecord(q, &msgs[i], qc, now))
			if len(recs) > MaxFanOut {
				return nil, spool.TooLargef("this publish would write more than %d jobs (messages × subscribed queues): nothing was stored; publish fewer messages per request", MaxFanOut)
			}
		}
	}
	if len(recs) == 0 {
		if e.cfg.Defaults.DropUnrouted {
			return []EnqueueResult{}, nil
		}
		if len(subs) == 0 {
			return nil, spool.NoSubscribersf("topic %q has no subscriptions: nothing was stored; subscribe a queue with PUT /v1/topics/%s/subscriptions/{queue}", topic, topic)
		}
		return nil, spool.NoSubscribersf("no subscription of topic %q takes messages of these types: nothing was stored", topic)
	}
	queues := slices.Collect(maps.Keys(depth))
	fresh := e.newQueues(queues...)
	var bytes int64
	for _, r := range recs {
		bytes += int64(len(r.Payload))
	}
	if err := e.admitBudget(ctx, len(recs), bytes, fresh); err != nil {
		return nil, err
	}
	out, err := e.insert(ctx, recs, depth, now)
	if err == nil {
		e.admitted(len(out), bytes, fresh)
		e.queuesExist(queues...)
	}
	return out, err
}

// validateTopicName checks a topic name: the rules of queue names.
func validateTopicName(name string) error {
	if err := spool.ValidateQueueName(name); err != nil {
		return spool.Invalidf("topic name %q is not allowed: use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit, at most %d characters", truncateName(name), spool.MaxNameLen)
	}
	return nil
}

func truncateName(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func subscriptionView(s *store.Subscription) *spool.Subscription {
	return &spool.Subscription{
		Topic:     s.Topic,
		Queue:     s.Queue,
		Types:     slices.Clone(s.Types),
		CreatedAt: s.CreatedAt,
	}
}
