package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http/httptest"
	"os"
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
	srv, err := server.New(server.Config{DataDir: dir})
	if err != nil {
		log.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	return ts.URL, func() {
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
