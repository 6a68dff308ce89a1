// Package flow tests flow control end to end, with the real spool binary
// and SDK workers: ordering keys (handlers of one key start in enqueue
// order and never overlap, while keys run in parallel), a queue's
// concurrency limit (never more handlers running than the limit, however
// many workers) and its rate limit (never more starts than the token
// bucket allows). Each test runs on one node with the embedded store and,
// when SPOOL_TEST_POSTGRES_URL is set (scripts/with-postgres), on three
// nodes sharing one PostgreSQL schema, the workers spread over the nodes.
// Everything is skipped with -short.
package flow
