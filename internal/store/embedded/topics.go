package embedded

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// subscriptionKey keys subscriptions: t/<topic>\x00<queue>. Names never
// contain a NUL, so the key sorts by topic, then queue.
func subscriptionKey(topic, queue string) []byte {
	return key(prefixTopic, topic+"\x00"+queue)
}

// subscriptionValue is the stored value of a subscription key.
type subscriptionValue struct {
	Types     []string  `json:"types,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// PutSubscription creates or replaces a subscription.
func (s *Store) PutSubscription(ctx context.Context, sub store.Subscription) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if sub.Topic == "" || sub.Queue == "" || strings.ContainsRune(sub.Topic, 0) || strings.ContainsRune(sub.Queue, 0) {
		return spool.Invalidf("a subscription needs a topic and a queue name")
	}
	enc, err := json.Marshal(subscriptionValue{Types: sub.Types, CreatedAt: sub.CreatedAt.UTC()})
	if err != nil {
		return spool.Invalidf("subscription cannot be stored: %v", err)
	}
	a, err := s.writeKey(subscriptionKey(sub.Topic, sub.Queue), enc, "storing subscription")
	if err != nil {
		return err
	}
	return s.finish(&a)
}

// DeleteSubscription removes a subscription.
func (s *Store) DeleteSubscription(ctx context.Context, topic, queue string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	a, err := s.deleteSubscription(topic, queue)
	if err != nil {
		return err
	}
	return s.finish(&a)
}

func (s *Store) deleteSubscription(topic, queue string) (a after, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return a, err
	}
	k := subscriptionKey(topic, queue)
	_, closer, err := s.db.Get(k)
	if err != nil {
		if errors.Is(err, pebble.ErrNotFound) {
			return a, spool.NotFoundf("queue %q is not subscribed to topic %q", queue, topic)
		}
		return a, translate("reading subscription", err)
	}
	_ = closer.Close()
	t := s.begin()
	t.delete(k)
	a.commit, err = s.apply(t, "deleting subscription")
	return a, err
}

// writeKey writes one key in its own batch. Subscriptions have no
// in-memory index: they are few and read from Pebble.
func (s *Store) writeKey(k, v []byte, op string) (a after, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return a, err
	}
	t := s.begin()
	t.set(k, v)
	a.commit, err = s.apply(t, op)
	return a, err
}

// Subscriptions lists subscriptions by topic, then queue.
func (s *Store) Subscriptions(ctx context.Context, p store.SubscriptionsParams) ([]store.Subscription, error) {
	prefix := prefixTopic
	if p.Topic != "" {
		prefix += p.Topic + "\x00"
	}
	var out []store.Subscription
	scan := func(rest string, v []byte) error {
		name := strings.TrimPrefix(string(key(prefix, rest)), prefixTopic)
		topic, queue, ok := bytes.Cut([]byte(name), []byte{0})
		if !ok {
			return fmt.Errorf("embedded store: malformed subscription key %q", name)
		}
		var sv subscriptionValue
		if err := json.Unmarshal(v, &sv); err != nil {
			return fmt.Errorf("embedded store: decoding subscription %q: %w", name, err)
		}
		sub := store.Subscription{Topic: string(topic), Queue: string(queue), Types: sv.Types, CreatedAt: sv.CreatedAt}
		if store.SubscriptionMatches(&sub, p.Type) {
			out = append(out, sub)
		}
		return nil
	}
	if err := s.readPebble(ctx, func() error { return s.scan(prefix, scan) }); err != nil {
		return nil, err
	}
	return out, nil
}
