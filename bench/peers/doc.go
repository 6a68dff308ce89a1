// Package peers supplies bench.Target implementations for queue systems
// that Spool is compared with in `spool bench --compare`: asynq on Redis
// and River on PostgreSQL.
//
// It is a Go module of its own (github.com/spoolq/spool/bench/peers) so
// that the spool module never depends on asynq, River or their drivers.
// Every target runs the very scenario code of internal/bench, with the same
// payload bytes and the same no-op handler as Spool; the command in
// cmd/peers runs them, and bench/run starts the servers and runs all
// systems back to back.
//
// What each target does, and where it cannot match Spool one to one:
//
//   - asynq: Enqueue is Client.EnqueueContext of one task. asynq has no
//     batch insert, so EnqueueBatch issues the batch's enqueues
//     concurrently over the client's connection pool (at most
//     AsynqConfig.BatchInFlight at a time); it is not one request. Work is
//     an asynq.Server with Concurrency workers on the queue; Pending is the
//     Inspector's pending+active+scheduled+retry count.
//   - River: Enqueue is Client.Insert; EnqueueBatch is InsertManyFast (one
//     COPY FROM in one transaction). Work is a River client with
//     MaxWorkers workers on the queue. River stores job args as jsonb, so
//     the payload must be JSON; the harness's payloads are JSON strings,
//     which jsonb hands back byte for byte (other JSON may come back with
//     different whitespace). River queue names allow no '.', so dots in a
//     queue name become '_'. Pending counts the queue's jobs in river_job
//     that are not completed, cancelled or discarded.
//
// Neither system bounds a queue, so neither implements bench.Bounded and
// the back-pressure scenario is skipped for them.
package peers
