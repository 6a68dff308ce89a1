// Package client is the Go SDK of Spool: a typed client for the HTTP API v1
// that enqueues jobs, reads their status, inspects queues and, for workers,
// leases jobs and records their outcome.
//
// A Client is safe for concurrent use and shares one keep-alive connection
// pool; create one per server and reuse it.
//
//	c, err := client.New("http://127.0.0.1:7077")
//	job, _, err := c.Enqueue(ctx, "emails", spool.EnqueueRequest{
//		Type:    "welcome",
//		Payload: json.RawMessage(`{"to":"ada@example.com"}`),
//	})
//	done, err := c.Get(ctx, job.ID, 30*time.Second) // long-poll until finished
//
// Errors the server answers with are *Error values. They unwrap to the
// sentinels of package spool, so callers test them with errors.Is:
//
//	if errors.Is(err, spool.ErrQueueFull) { ... wait err.(*client.Error).RetryAfter ... }
//
// Every method takes a context first. WithTimeout sets a default per-call
// timeout that applies only when the context has no deadline of its own;
// long-polls (Get with a wait, Lease with a wait) get the wait on top of it.
package client
