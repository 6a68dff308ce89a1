// Package client is the Go SDK of Spool: a typed client for the HTTP API v1
// that enqueues jobs, waits for them, inspects and configures queues, and a
// Worker that runs jobs with handlers.
//
// A Client is safe for concurrent use and shares one keep-alive connection
// pool; create one per server and reuse it.
//
// # Producers
//
//	c, err := client.New("http://127.0.0.1:7077")
//	job, err := c.Push(ctx, "emails", "welcome", map[string]string{"to": "ada@example.com"},
//		client.Delay(time.Minute), client.MaxAttempts(5))
//	done, err := c.Wait(ctx, job.ID) // long-polls until succeeded, dead or cancelled
//
// Push takes the payload as any value encoding/json can marshal (or raw
// JSON) and options; Enqueue takes a whole spool.EnqueueRequest, and
// EnqueueBatch many, all or none. Concurrent Push and Enqueue calls to one
// queue share batch requests, and so fsyncs, without delaying a call made
// while nothing is in flight; each still gets its own job or error (see
// WithCoalescing).
//
// # Back pressure and retries
//
// A full queue answers 503 with Retry-After. The Client retries it, as it
// retries 429, 502, 504, other 503s, broken connections and timeouts, with
// capped exponential backoff and full jitter, waiting at least the server's
// Retry-After, and never past the context's deadline (or the default
// timeout, when the context has none): see RetryPolicy and
// WithRetryPolicy. An enqueue keeps one idempotency key across its retries
// (it makes one up when the request has none), so a retried enqueue never
// creates a second job. Calls that are not safe to repeat are retried only
// when the server surely did not act.
//
// # Errors
//
// Errors the server answers with are *Error values. They unwrap to the
// sentinels of package spool, so callers test them with errors.Is:
//
//	if errors.Is(err, spool.ErrQueueFull) { ... wait err.(*client.Error).RetryAfter ... }
//
// Requests that got no answer are *TransportError values.
//
// # Workers
//
//	w, err := client.NewWorker(c, client.WorkerOptions{Queues: []string{"emails"}, Concurrency: 8})
//	w.Handle("welcome", func(ctx context.Context, job *client.Job) (any, error) {
//		var in struct{ To string }
//		if err := job.Decode(&in); err != nil {
//			return nil, client.Permanent(err)
//		}
//		job.Progress(50, "rendering")
//		return map[string]bool{"sent": true}, send(ctx, in.To)
//	})
//	err = w.Run(ctx) // until ctx is done, then a graceful shutdown
//
// The Worker leases up to its free slots (running and prefetched, see
// WorkerOptions.Prefetch) in one long-polled request,
// heartbeats each running job before its lease runs out (carrying its
// progress), cancels a handler's context when the job is cancelled, its
// lease is lost or its timeout passes, turns a panic into a failed attempt,
// and acknowledges outcomes in batches. Permanent and RetryIn shape a
// failure. On shutdown it stops leasing, lets running jobs finish within
// WorkerOptions.ShutdownGrace, and releases the rest to other workers
// without counting their attempt.
//
// Every method takes a context first. WithTimeout sets a default per-call
// timeout that applies only when the context has no deadline; long-polls
// (Get with a wait, Wait, Lease with a wait) get the wait on top of it.
package client
