package client

import "github.com/spoolq/spool"

// OrderingKey makes the job wait for every earlier job of its queue with the
// same key: jobs of one key run one at a time, in enqueue order (a job
// waiting for a retry keeps its place); jobs of different keys run in
// parallel.
func OrderingKey(key string) EnqueueOption {
	return func(r *spool.EnqueueRequest) { r.OrderingKey = key }
}
