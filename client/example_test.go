package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
	"github.com/spoolq/spool/server"
)

// startServer runs a Spool server in-process for the examples; a real
// program points client.New at its server's URL instead.
func startServer() (url string, stop func()) {
	dir, err := os.MkdirTemp("", "spool-example-")
	if err != nil {
		log.Fatal(err)
	}
	srv, err := server.New(context.Background(), server.Config{DataDir: dir})
	if err != nil {
		log.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	return ts.URL, func() {
		srv.Drain() // end long-polls, so the HTTP server closes at once
		ts.Close()
		_ = srv.Close()
		_ = os.RemoveAll(dir)
	}
}

// A producer enqueues a job and waits for its outcome; a worker leases it,
// does the work and completes it with a result.
func Example() {
	url, stop := startServer()
	defer stop()
	ctx := context.Background()

	c, err := client.New(url)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// Producer: the job is on disk when Enqueue returns.
	job, _, err := c.Enqueue(ctx, "emails", spool.EnqueueRequest{
		Type:    "welcome",
		Payload: json.RawMessage(`{"to":"ada@example.com"}`),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("enqueued:", job.State)

	// Worker: lease, work, complete with the lease token.
	wait := spool.Duration(5 * time.Second)
	jobs, err := c.Lease(ctx, spool.LeaseRequest{Queues: []string{"emails"}, Wait: &wait})
	if err != nil {
		log.Fatal(err)
	}
	for _, j := range jobs {
		fmt.Println("working on:", j.Type, string(j.Payload))
		_, err := c.Complete(ctx, j.ID, spool.CompleteRequest{
			Token:  j.Lease.Token,
			Result: json.RawMessage(`{"sent":true}`),
		})
		if err != nil {
			log.Fatal(err)
		}
	}

	// Producer again: wait up to 30s for the job to finish.
	done, err := c.Get(ctx, job.ID, 30*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("finished:", done.State, string(done.Result))
	// Output:
	// enqueued: ready
	// working on: welcome {"to":"ada@example.com"}
	// finished: succeeded {"sent":true}
}

// A full queue answers with spool.ErrQueueFull and a hint of when to retry.
func ExampleError() {
	url, stop := startServer()
	defer stop()
	ctx := context.Background()
	c, err := client.New(url)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	one := int64(1)
	if _, err := c.UpdateQueue(ctx, "reports", spool.QueueConfig{MaxDepth: &one}); err != nil {
		log.Fatal(err)
	}
	// The second job finds the queue full. Enqueue retries a full queue
	// until its context ends, and then returns the server's answer.
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	for i := 0; i < 2; i++ {
		_, _, err = c.Enqueue(ctx, "reports", spool.EnqueueRequest{Type: "build"})
	}
	var ce *client.Error
	if errors.Is(err, spool.ErrQueueFull) && errors.As(err, &ce) {
		fmt.Println(ce.Status, ce.Code, ce.RetryAfter > 0)
	}
	// Output:
	// 503 queue_full true
}

// A producer enqueues a job and waits for its outcome, which a worker
// (here a goroutine using the low-level calls) records.
func ExampleClient_Wait() {
	url, stop := startServer()
	defer stop()
	ctx := context.Background()
	c, err := client.New(url)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	job, err := c.Push(ctx, "reports", "monthly", map[string]string{"month": "2026-02"},
		client.MaxAttempts(3), client.Tags("finance"))
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		wait := spool.Duration(10 * time.Second)
		jobs, err := c.Lease(ctx, spool.LeaseRequest{Queues: []string{"reports"}, Wait: &wait})
		if err != nil || len(jobs) == 0 {
			log.Fatal("no job to work on: ", err)
		}
		_, err = c.Complete(ctx, jobs[0].ID, spool.CompleteRequest{Token: jobs[0].Lease.Token,
			Result: json.RawMessage(`{"url":"/files/2026-02.pdf"}`)})
		if err != nil {
			log.Fatal(err)
		}
	}()

	// Wait long-polls until the job is finished, however long that takes;
	// give ctx a deadline to bound it.
	done, err := c.Wait(ctx, job.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(done.State, done.Attempt, string(done.Result))
	// Output:
	// succeeded 1 {"url":"/files/2026-02.pdf"}
}

// A worker runs jobs with the handler of their type: it leases in batches,
// heartbeats while the handler runs, acknowledges in batches, and on
// shutdown hands back what it could not finish.
func ExampleWorker() {
	url, stop := startServer()
	defer stop()
	ctx := context.Background()
	c, err := client.New(url)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	w, err := client.NewWorker(c, client.WorkerOptions{Queues: []string{"images"}, Concurrency: 4})
	if err != nil {
		log.Fatal(err)
	}
	w.Handle("resize", func(ctx context.Context, job *client.Job) (any, error) {
		var in struct {
			URL   string `json:"url"`
			Width int    `json:"width"`
		}
		if err := job.Decode(&in); err != nil {
			return nil, client.Permanent(err) // a bad payload stays bad: no retry
		}
		job.Progress(50, "downloaded") // shown in the job's status
		if in.Width <= 0 {
			return nil, client.Permanent(fmt.Errorf("width %d is not positive", in.Width))
		}
		return map[string]any{"thumbnail": fmt.Sprintf("%s?w=%d", in.URL, in.Width)}, nil
	})
	runCtx, shutdown := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(runCtx) }()

	good, err := c.Push(ctx, "images", "resize", map[string]any{"url": "https://example.com/cat.jpg", "width": 320})
	if err != nil {
		log.Fatal(err)
	}
	bad, err := c.Push(ctx, "images", "resize", map[string]any{"url": "https://example.com/dog.jpg", "width": 0})
	if err != nil {
		log.Fatal(err)
	}
	for _, id := range []string{good.ID, bad.ID} {
		j, err := c.Wait(ctx, id)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(strings.TrimSpace(fmt.Sprint(j.State, " ", string(j.Result))))
		for _, e := range j.Errors {
			fmt.Println("  attempt", e.Attempt, "failed:", e.Error)
		}
	}

	shutdown() // stop leasing, let running jobs finish, release the rest
	if err := <-stopped; err != nil {
		log.Fatal(err)
	}
	// Output:
	// succeeded {"thumbnail":"https://example.com/cat.jpg?w=320"}
	// dead
	//   attempt 1 failed: width 0 is not positive
}
