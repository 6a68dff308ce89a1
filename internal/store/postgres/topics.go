package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// PutSubscription creates or replaces a subscription.
func (s *Store) PutSubscription(ctx context.Context, sub store.Subscription) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	if sub.Topic == "" || sub.Queue == "" {
		return spool.Invalidf("a subscription needs a topic and a queue name")
	}
	types := sub.Types
	if types == nil {
		types = []string{}
	}
	err := retry(ctx, func() error {
		_, err := s.pool.Exec(ctx, `INSERT INTO spool_subscriptions (topic, queue, types, created_at) VALUES ($1, $2, $3, $4)
				ON CONFLICT (topic, queue) DO UPDATE SET types = excluded.types, created_at = excluded.created_at`,
			sub.Topic, sub.Queue, types, sub.CreatedAt.UTC())
		return err
	})
	if err != nil {
		return interpretError(fmt.Sprintf("subscribing queue %q to topic %q", sub.Queue, sub.Topic), err)
	}
	return nil
}

// DeleteSubscription removes a subscription.
func (s *Store) DeleteSubscription(ctx context.Context, topic, queue string) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM spool_subscriptions WHERE topic = $1 AND queue = $2`, topic, queue)
	if err != nil {
		return interpretError(fmt.Sprintf("unsubscribing queue %q from topic %q", queue, topic), err)
	}
	if tag.RowsAffected() == 0 {
		return spool.NotFoundf("queue %q is not subscribed to topic %q", queue, topic)
	}
	return nil
}

// Subscriptions lists subscriptions by topic, then queue.
func (s *Store) Subscriptions(ctx context.Context, p store.SubscriptionsParams) ([]store.Subscription, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT topic, queue, types, created_at FROM spool_subscriptions
		WHERE ($1 = '' OR topic = $1) AND ($2 = '' OR cardinality(types) = 0 OR $2 = ANY (types))
		ORDER BY topic COLLATE "C", queue COLLATE "C"`, p.Topic, p.Type)
	if err != nil {
		return nil, interpretError("listing subscriptions", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Subscription, error) {
		var sub store.Subscription
		var created time.Time
		if err := r.Scan(&sub.Topic, &sub.Queue, &sub.Types, &created); err != nil {
			return sub, err
		}
		sub.CreatedAt = created.UTC()
		if len(sub.Types) == 0 {
			sub.Types = nil
		}
		return sub, nil
	})
	if err != nil {
		return nil, interpretError("listing subscriptions", err)
	}
	return out, nil
}
