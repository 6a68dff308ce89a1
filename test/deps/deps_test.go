// Package deps tests job dependencies end to end: the real spool binary on
// its embedded store, workers through the SDK.
package deps

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
	"github.com/spoolq/spool/internal/testproc"
)

var spoolBin string

func TestMain(m *testing.M) { testproc.Main(m, "deps", &spoolBin) }

// TestFanOutAndJoin submits a DAG of 1 → 50 → 1 jobs in one batch request
// and runs it with several SDK workers: every part runs after the root,
// and the join runs last and reads all 50 results through Parents.
func TestFanOutAndJoin(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary; skipped with -short")
	}
	const parts = 50
	srv := testproc.Start(t, spoolBin, "spool serve", 20*time.Second, "--data", t.TempDir())
	c, err := client.New(srv.URL())
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	reqs := []spool.EnqueueRequest{{Type: "root", Ref: "root", Payload: json.RawMessage(`{"n":50}`)}}
	var partRefs []string
	for i := range parts {
		ref := fmt.Sprint("part-", i)
		partRefs = append(partRefs, ref)
		reqs = append(reqs, spool.EnqueueRequest{Type: "part", Ref: ref, DependsOn: []string{"root"},
			Payload: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
	}
	reqs = append(reqs, spool.EnqueueRequest{Type: "join", DependsOn: partRefs})
	jobs, err := c.EnqueueBatch(ctx, "dag", reqs)
	require.NoError(t, err)
	require.Len(t, jobs, parts+2)
	join := jobs[parts+1]
	require.Equal(t, spool.StateWaiting, join.State)

	var (
		mu       sync.Mutex
		rootDone time.Time
		partsRan int
		lateRuns []string
		joinSum  = -1
		joinErr  error
	)
	w, err := client.NewWorker(c, client.WorkerOptions{Queues: []string{"dag"}, Concurrency: 8})
	require.NoError(t, err)
	w.Handle("root", func(ctx context.Context, j *client.Job) (any, error) {
		mu.Lock()
		defer mu.Unlock()
		rootDone = time.Now()
		return map[string]int{"parts": parts}, nil
	})
	w.Handle("part", func(ctx context.Context, j *client.Job) (any, error) {
		var in struct{ I int }
		if err := json.Unmarshal(j.Payload, &in); err != nil {
			return nil, client.Permanent(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if rootDone.IsZero() {
			lateRuns = append(lateRuns, j.ID)
		}
		partsRan++
		return map[string]int{"square": in.I * in.I}, nil
	})
	w.Handle("join", func(ctx context.Context, j *client.Job) (any, error) {
		ps, err := c.Parents(ctx, j.ID)
		sum := 0
		for _, p := range ps {
			var out struct{ Square int }
			if err == nil && p.State == spool.StateSucceeded {
				err = json.Unmarshal(p.Result, &out)
			} else if err == nil {
				err = fmt.Errorf("parent %s is %s", p.ID, p.State)
			}
			sum += out.Square
		}
		if err == nil && len(ps) != parts {
			err = fmt.Errorf("join saw %d parents", len(ps))
		}
		mu.Lock()
		joinSum, joinErr = sum, err
		mu.Unlock()
		return map[string]int{"sum": sum}, err
	})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()

	final, err := c.Wait(ctx, join.ID)
	stop()
	require.NoError(t, <-done)
	require.NoError(t, err)
	require.Equal(t, spool.StateSucceeded, final.State, "join: %+v", final.Errors)
	want := 0
	for i := range parts {
		want += i * i
	}
	mu.Lock()
	defer mu.Unlock()
	require.NoError(t, joinErr)
	require.Equal(t, want, joinSum, "the join saw every part's result")
	require.Equal(t, parts, partsRan)
	require.Empty(t, lateRuns, "no part ran before the root completed")
	require.JSONEq(t, fmt.Sprintf(`{"sum":%d}`, want), string(final.Result))
}

// TestFailedRootCancelsTheDAG: a root that fails for good cancels its 50
// children and the join, each with a reason naming its parent.
func TestFailedRootCancelsTheDAG(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary; skipped with -short")
	}
	srv := testproc.Start(t, spoolBin, "spool serve", 20*time.Second, "--data", t.TempDir())
	c, err := client.New(srv.URL())
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	reqs := []spool.EnqueueRequest{{Type: "root", Ref: "root", MaxAttempts: 1}}
	var refs []string
	for i := range 50 {
		refs = append(refs, fmt.Sprint("p", i))
		reqs = append(reqs, spool.EnqueueRequest{Type: "part", Ref: refs[i], DependsOn: []string{"root"}})
	}
	reqs = append(reqs, spool.EnqueueRequest{Type: "join", DependsOn: refs})
	jobs, err := c.EnqueueBatch(ctx, "dag", reqs)
	require.NoError(t, err)

	leased, err := c.Lease(ctx, spool.LeaseRequest{Queues: []string{"dag"}, Max: 10})
	require.NoError(t, err)
	require.Len(t, leased, 1, "only the root is ready")
	_, err = c.Fail(ctx, leased[0].ID, spool.FailRequest{Token: leased[0].Lease.Token, Error: "no input"})
	require.NoError(t, err)

	final, err := c.Wait(ctx, jobs[51].ID)
	require.NoError(t, err)
	require.Equal(t, spool.StateCancelled, final.State)
	require.Contains(t, final.Errors[len(final.Errors)-1].Error, "ended cancelled")
	for _, j := range jobs[1:51] {
		got, err := c.Get(ctx, j.ID, 0)
		require.NoError(t, err)
		require.Equal(t, spool.StateCancelled, got.State)
		require.Contains(t, got.Errors[0].Error, "parent job "+jobs[0].ID+" ended dead")
	}
}
