package client_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
)

func TestTopics(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	ctx := context.Background()

	_, err := c.Publish(ctx, "tweets", spool.EnqueueRequest{Type: "tweet.created"})
	require.ErrorIs(t, err, spool.ErrNoSubscribers)

	sub, err := c.Subscribe(ctx, "tweets", "timeline")
	require.NoError(t, err)
	require.Equal(t, "timeline", sub.Queue)
	_, err = c.Subscribe(ctx, "tweets", "followers", "tweet.created")
	require.NoError(t, err)

	topics, err := c.Topics(ctx)
	require.NoError(t, err)
	require.Len(t, topics, 1)
	require.Len(t, topics[0].Subscriptions, 2)

	jobs, err := c.Publish(ctx, "tweets", spool.EnqueueRequest{Type: "tweet.created", Payload: []byte(`{"id":1}`)})
	require.NoError(t, err)
	require.Len(t, jobs, 2)
	require.Equal(t, "followers", jobs[0].Queue)
	require.Equal(t, "timeline", jobs[1].Queue)

	jobs, err = c.PublishBatch(ctx, "tweets", []spool.EnqueueRequest{{Type: "tweet.deleted"}, {Type: "tweet.created"}})
	require.NoError(t, err)
	require.Len(t, jobs, 3)

	require.NoError(t, c.Unsubscribe(ctx, "tweets", "followers"))
	require.ErrorIs(t, c.Unsubscribe(ctx, "tweets", "followers"), spool.ErrNotFound)
}
