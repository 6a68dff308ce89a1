package engine_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/engine"
	"github.com/spoolq/spool/internal/store/embedded"
)

func TestPublishFansOutToSubscribedQueues(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	_, err := h.e.Subscribe(h.ctx, "tweets", "timeline", nil)
	require.NoError(t, err)
	_, err = h.e.Subscribe(h.ctx, "tweets", "followers", []string{"tweet.created"})
	require.NoError(t, err)

	res, err := h.e.Publish(h.ctx, "tweets", []spool.EnqueueRequest{
		{Type: "tweet.created", Payload: json.RawMessage(`{"id":1}`)},
		{Type: "tweet.deleted", Payload: json.RawMessage(`{"id":2}`)},
	})
	require.NoError(t, err)
	var got []string
	for _, r := range res {
		require.False(t, r.Existing)
		got = append(got, r.Job.Queue+":"+r.Job.Type)
		require.Equal(t, spool.StateReady, r.Job.State)
	}
	require.Equal(t, []string{"followers:tweet.created", "timeline:tweet.created", "timeline:tweet.deleted"}, got)

	jobs := h.lease(t, 10, 0, "followers")
	require.Len(t, jobs, 1)
	require.JSONEq(t, `{"id":1}`, string(jobs[0].Payload))

	topics, err := h.e.Topics(h.ctx)
	require.NoError(t, err)
	require.Len(t, topics, 1)
	require.Equal(t, "tweets", topics[0].Name)
	require.Len(t, topics[0].Subscriptions, 2)
	require.Equal(t, "followers", topics[0].Subscriptions[0].Queue)
	require.Equal(t, []string{"tweet.created"}, topics[0].Subscriptions[0].Types)
}

func TestPublishAllOrNothingWhenOneQueueIsFull(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	for _, q := range []string{"a", "b", "c"} {
		_, err := h.e.Subscribe(h.ctx, "news", q, nil)
		require.NoError(t, err)
	}
	_, err := h.e.PatchQueue(h.ctx, "b", spool.QueueConfig{MaxDepth: ptr(int64(1))})
	require.NoError(t, err)
	_, err = h.e.Publish(h.ctx, "news", []spool.EnqueueRequest{{Type: "n"}})
	require.NoError(t, err)

	_, err = h.e.Publish(h.ctx, "news", []spool.EnqueueRequest{{Type: "n"}})
	require.ErrorIs(t, err, spool.ErrQueueFull)
	var qf *spool.QueueFullError
	require.True(t, errors.As(err, &qf))
	require.Equal(t, "b", qf.Queue)
	require.Positive(t, qf.RetryAfter)
	for _, q := range []string{"a", "b", "c"} {
		info, err := h.e.Queue(h.ctx, q)
		require.NoError(t, err)
		require.EqualValues(t, 1, info.Depth, "queue %s holds only the first message", q)
	}
}

func TestPublishIdempotencyKeyPerQueue(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	for _, q := range []string{"a", "b"} {
		_, err := h.e.Subscribe(h.ctx, "news", q, nil)
		require.NoError(t, err)
	}
	msg := []spool.EnqueueRequest{{Type: "n", IdempotencyKey: "k1"}}
	first, err := h.e.Publish(h.ctx, "news", msg)
	require.NoError(t, err)
	again, err := h.e.Publish(h.ctx, "news", msg)
	require.NoError(t, err)
	require.Len(t, again, 2)
	for i := range again {
		require.True(t, again[i].Existing)
		require.Equal(t, first[i].Job.ID, again[i].Job.ID)
	}
}

func TestPublishWithoutSubscribers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	_, err := h.e.Publish(h.ctx, "nobody", []spool.EnqueueRequest{{Type: "n"}})
	require.ErrorIs(t, err, spool.ErrNoSubscribers)
	require.ErrorIs(t, err, spool.ErrNotFound)
	require.Equal(t, spool.CodeNoSubscribers, spool.Code(err))

	_, err = h.e.Subscribe(h.ctx, "filtered", "q", []string{"only.this"})
	require.NoError(t, err)
	_, err = h.e.Publish(h.ctx, "filtered", []spool.EnqueueRequest{{Type: "other"}})
	require.ErrorIs(t, err, spool.ErrNoSubscribers)

	require.NoError(t, h.e.Unsubscribe(h.ctx, "filtered", "q"))
	require.ErrorIs(t, h.e.Unsubscribe(h.ctx, "filtered", "q"), spool.ErrNotFound)

	// Configured to drop: accepted, nothing stored.
	st, err := embedded.Open(t.TempDir(), embedded.Options{})
	require.NoError(t, err)
	e, err := engine.New(engine.Config{Store: st, Defaults: engine.Defaults{DropUnrouted: true}})
	require.NoError(t, err)
	t.Cleanup(func() {
		e.Stop()
		require.NoError(t, st.Close())
	})
	res, err := e.Publish(h.ctx, "nobody", []spool.EnqueueRequest{{Type: "n"}})
	require.NoError(t, err)
	require.Empty(t, res)
}

func TestTopicNamesAreChecked(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	_, err := h.e.Subscribe(h.ctx, "Bad Topic", "q", nil)
	require.ErrorIs(t, err, spool.ErrInvalid)
	_, err = h.e.Subscribe(h.ctx, "t", "_internal", nil)
	require.ErrorIs(t, err, spool.ErrInvalid)
	_, err = h.e.Publish(h.ctx, "_t", []spool.EnqueueRequest{{Type: "n"}})
	require.ErrorIs(t, err, spool.ErrInvalid)
}

func TestFanOutBounds(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	for i := range 3 {
		_, err := h.e.Subscribe(h.ctx, "wide", fmt.Sprint("q", i), nil)
		require.NoError(t, err)
	}
	// 3 queues × 3,334 messages is over MaxFanOut: refused, nothing stored.
	msgs := make([]spool.EnqueueRequest, engine.MaxFanOut/3+1)
	for i := range msgs {
		msgs[i] = spool.EnqueueRequest{Type: "t"}
	}
	_, err := h.e.Publish(h.ctx, "wide", msgs)
	require.ErrorIs(t, err, spool.ErrTooLarge)
	for i := range 3 {
		_, err := h.e.Queue(h.ctx, fmt.Sprint("q", i))
		require.ErrorIs(t, err, spool.ErrNotFound, "nothing was stored")
	}
	res, err := h.e.Publish(h.ctx, "wide", msgs[:engine.MaxFanOut/3])
	require.NoError(t, err)
	require.Len(t, res, engine.MaxFanOut/3*3)
}
