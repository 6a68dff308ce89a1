package peers

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool/internal/bench"
)

// These tests need the real systems: SPOOL_BENCH_REDIS (host:port) for
// asynq and SPOOL_BENCH_PG (a PostgreSQL URL) for River; without them
// they skip. bench/run starts both.

func TestAsynq(t *testing.T) {
	t.Parallel()
	addr := os.Getenv("SPOOL_BENCH_REDIS")
	if addr == "" {
		t.Skip("SPOOL_BENCH_REDIS is not set")
	}
	ctx := context.Background()
	target, err := NewAsynq(ctx, AsynqConfig{Addr: addr, TaskCheckInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, target.Close()) })
	require.Contains(t, target.Name(), "asynq-redis-")
	require.Contains(t, target.Durability(), "appendonly")
	exerciseTarget(t, target)
}

func TestRiver(t *testing.T) {
	t.Parallel()
	url := os.Getenv("SPOOL_BENCH_PG")
	if url == "" {
		t.Skip("SPOOL_BENCH_PG is not set")
	}
	ctx := context.Background()
	target, err := NewRiver(ctx, RiverConfig{URL: url, FetchCooldown: 5 * time.Millisecond, FetchPollInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, target.Close()) })
	require.Contains(t, target.Name(), "river-postgres")
	require.Contains(t, target.Durability(), "synchronous_commit=")
	exerciseTarget(t, target)
}

// exerciseTarget enqueues single jobs and a batch on a fresh queue, checks
// Pending, works them all off and checks every payload reached the
// handler exactly once, byte for byte.
func exerciseTarget(t *testing.T, target bench.Target) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	queue := fmt.Sprintf("peers-test.%d", time.Now().UnixNano())

	pending, err := target.Pending(ctx, queue)
	require.NoError(t, err)
	require.Zero(t, pending, "a fresh queue has nothing pending")

	payload := func(i int) []byte { return bench.Payload(int64(i), 100) }
	var want [][]byte
	for i := range 3 {
		p := payload(i)
		require.NoError(t, target.Enqueue(ctx, queue, p))
		want = append(want, p)
	}
	var batch [][]byte
	for i := 3; i < 10; i++ {
		batch = append(batch, payload(i))
	}
	require.NoError(t, target.EnqueueBatch(ctx, queue, batch))
	want = append(want, batch...)

	pending, err = target.Pending(ctx, queue)
	require.NoError(t, err)
	require.EqualValues(t, len(want), pending)

	var mu sync.Mutex
	got := map[string]int{}
	all := make(chan struct{})
	closeAll := sync.OnceFunc(func() { close(all) })
	h := func(_ context.Context, p []byte) error {
		mu.Lock()
		defer mu.Unlock()
		got[string(p)]++
		if len(got) == len(want) {
			closeAll()
		}
		return nil
	}
	workCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- target.Work(workCtx, queue, 4, h) }()
	select {
	case <-all:
	case <-ctx.Done():
		t.Fatal("not every job reached the handler")
	}
	stop()
	require.NoError(t, <-done)

	mu.Lock()
	defer mu.Unlock()
	for _, p := range want {
		require.Equal(t, 1, got[string(p)], "payload %s", p)
	}
	// Work returned after the workers stopped, so the completions are
	// stored.
	pending, err = target.Pending(ctx, queue)
	require.NoError(t, err)
	require.Zero(t, pending)
}
