package postgres_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/engine"
)

// TestPublishOnTwoNodes: a subscription made through one node routes the
// messages published through the other, and one full subscribed queue
// refuses the whole publish.
func TestPublishOnTwoNodes(t *testing.T) {
	t.Parallel()
	schema := freshSchema(t)
	var nodes []*engine.Engine
	for range 2 {
		e, err := engine.New(engine.Config{Store: open(t, schema)})
		require.NoError(t, err)
		t.Cleanup(e.Stop)
		nodes = append(nodes, e)
	}
	a, b := nodes[0], nodes[1]
	ctx := t.Context()

	for _, q := range []string{"timeline", "followers", "search"} {
		_, err := a.Subscribe(ctx, "tweets", q, nil)
		require.NoError(t, err)
	}
	_, err := a.PatchQueue(ctx, "search", spool.QueueConfig{MaxDepth: ptr(int64(1))})
	require.NoError(t, err)

	res, err := b.Publish(ctx, "tweets", []spool.EnqueueRequest{{Type: "tweet.created", IdempotencyKey: "t1"}})
	require.NoError(t, err)
	require.Len(t, res, 3)
	again, err := a.Publish(ctx, "tweets", []spool.EnqueueRequest{{Type: "tweet.created", IdempotencyKey: "t1"}})
	require.NoError(t, err)
	for i := range again {
		require.True(t, again[i].Existing)
		require.Equal(t, res[i].Job.ID, again[i].Job.ID)
	}

	_, err = b.Publish(ctx, "tweets", []spool.EnqueueRequest{{Type: "tweet.created"}})
	require.ErrorIs(t, err, spool.ErrQueueFull)
	for _, q := range []string{"timeline", "followers", "search"} {
		info, err := b.Queue(ctx, q)
		require.NoError(t, err)
		require.EqualValues(t, 1, info.Depth, "queue %s got nothing from the refused publish", q)
	}

	require.NoError(t, b.Unsubscribe(ctx, "tweets", "search"))
	topics, err := a.Topics(ctx)
	require.NoError(t, err)
	require.Len(t, topics, 1)
	require.Len(t, topics[0].Subscriptions, 2)
	_, err = a.Publish(ctx, "nobody", []spool.EnqueueRequest{{Type: "x"}})
	require.ErrorIs(t, err, spool.ErrNoSubscribers)
}
