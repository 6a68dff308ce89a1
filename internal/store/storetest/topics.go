package storetest

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

func testTopics(t *testing.T, newStore NewStore) {
	t.Run("EmptyStoreHasNone", func(t *testing.T) {
		h := begin(t, newStore)
		subs, err := h.s.Subscriptions(h.ctx, store.SubscriptionsParams{})
		require.NoError(t, err)
		require.Empty(t, subs)
		err = h.s.DeleteSubscription(h.ctx, "news", "q")
		require.ErrorIs(t, err, spool.ErrNotFound)
	})

	t.Run("PutListReplaceDelete", func(t *testing.T) {
		h := begin(t, newStore)
		put := func(topic, queue string, types ...string) {
			t.Helper()
			require.NoError(t, h.s.PutSubscription(h.ctx, store.Subscription{Topic: topic, Queue: queue, Types: types, CreatedAt: t0}))
		}
		put("tweets", "timeline")
		put("tweets", "fanout", "tweet.created")
		put("reports", "mail", "report.ready", "report.failed")
		put("tweets-archive", "cold")

		list := func(p store.SubscriptionsParams) []string {
			t.Helper()
			subs, err := h.s.Subscriptions(h.ctx, p)
			require.NoError(t, err)
			var out []string
			for _, s := range subs {
				require.Equal(t, t0, s.CreatedAt)
				out = append(out, s.Topic+"/"+s.Queue)
			}
			return out
		}
		require.Equal(t, []string{"reports/mail", "tweets/fanout", "tweets/timeline", "tweets-archive/cold"}, list(store.SubscriptionsParams{}))
		require.Equal(t, []string{"tweets/fanout", "tweets/timeline"}, list(store.SubscriptionsParams{Topic: "tweets"}))
		require.Equal(t, []string{"tweets/timeline"}, list(store.SubscriptionsParams{Topic: "tweets", Type: "tweet.deleted"}))
		require.Equal(t, []string{"tweets/fanout", "tweets/timeline"}, list(store.SubscriptionsParams{Topic: "tweets", Type: "tweet.created"}))
		require.Equal(t, []string{"reports/mail"}, list(store.SubscriptionsParams{Topic: "reports", Type: "report.failed"}))
		require.Empty(t, list(store.SubscriptionsParams{Topic: "nobody"}))

		subs, err := h.s.Subscriptions(h.ctx, store.SubscriptionsParams{Topic: "reports"})
		require.NoError(t, err)
		require.Equal(t, []string{"report.ready", "report.failed"}, subs[0].Types)

		// Put replaces the filter.
		put("tweets", "fanout")
		require.Equal(t, []string{"tweets/fanout", "tweets/timeline"}, list(store.SubscriptionsParams{Topic: "tweets", Type: "tweet.deleted"}))

		require.NoError(t, h.s.DeleteSubscription(h.ctx, "tweets", "fanout"))
		require.ErrorIs(t, h.s.DeleteSubscription(h.ctx, "tweets", "fanout"), spool.ErrNotFound)
		require.Equal(t, []string{"tweets/timeline"}, list(store.SubscriptionsParams{Topic: "tweets"}))
	})

	// Fan-out is one Insert over the subscribed queues: one full queue
	// refuses the whole publish and nothing is stored anywhere.
	t.Run("FanOutAllOrNothing", func(t *testing.T) {
		h := begin(t, newStore)
		h.insert(job("full"), job("full"))
		a, b, c := job("roomy"), job("full"), job("other")
		_, err := h.s.Insert(h.ctx, store.InsertParams{
			Jobs:     []*store.Record{a, b, c},
			MaxDepth: map[string]int64{"roomy": 10, "full": 2, "other": 10},
		})
		require.ErrorIs(t, err, spool.ErrQueueFull)
		var qf *spool.QueueFullError
		require.True(t, errors.As(err, &qf))
		require.Equal(t, "full", qf.Queue)
		for _, r := range []*store.Record{a, b, c} {
			h.requireGone(r.ID)
		}
		require.Equal(t, want(spool.StateReady, 2), h.counts("full"))
		_, err = h.s.Queue(h.ctx, "roomy")
		if err == nil {
			require.Equal(t, want(), h.counts("roomy"))
		}
	})
}
