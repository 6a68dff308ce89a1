// Package postgres is the store of Spool for several nodes: any number of
// `spool serve` processes share one PostgreSQL database (pgx v5, pgxpool).
// PostgreSQL provides durability, replication and failover; every method
// is one transaction that has committed (with synchronous_commit on, which
// each connection enforces) before it returns.
//
// # Schema (version 1, migrations/0001_init.sql)
//
// The tables live in Options.Schema, else the schema the connection URL's
// search_path parameter names (postgres://host/db?search_path=spool: how
// `spool serve --store` and `spool migrate` choose it), else "public"; the
// pool sets search_path to it, so one database can hold several stores, as
// the tests do with a schema each. Numbered migrations are embedded and applied at Open
// inside one transaction holding pg_advisory_xact_lock on the schema's
// name, so nodes starting together apply each migration once;
// spool_migrations records them, and a schema newer than the build is
// refused. Options.SkipMigrations leaves migrating to Migrate (a `spool
// migrate` command).
//
//	spool_jobs          one row per job. Every spool.Job field has a column
//	                    (not a jsonb blob): the fields the store filters or
//	                    orders on must be columns anyway (queue, state,
//	                    priority, run_at, ready_at, lease_expires_at,
//	                    finished_at, idempotency_key), and the others are
//	                    typed, readable and indexable from psql (tags, type,
//	                    worker). PostgreSQL rewrites a whole row on update,
//	                    so one blob would not make writes cheaper. The price:
//	                    a new Job field needs a migration and a line in
//	                    codec.go; TestEveryJobFieldIsStored fails until it
//	                    has them. payload and result are bytea, kept byte
//	                    for byte (jsonb would reorder keys and refuse
//	                    \u0000); errors and progress are json (text, never
//	                    queried). seq (identity) is the insert order for
//	                    FIFO within a priority; rev is the compare-and-set
//	                    revision. id, queue and idempotency_key use the "C"
//	                    collation: ids and names sort bytewise, as in Go.
//	spool_queues        name and config (jsonb spool.QueueConfig); a row is
//	                    created by the first job of a queue or its first
//	                    config, and outlives the queue's jobs.
//	spool_queue_counts  jobs per (queue, state), in 32 shards per pair.
//	spool_queue_buckets the token bucket of each rate-limited queue
//	                    (migration 6; see flow.go).
//
// Partial indexes serve each access path, so a queue of millions of jobs
// costs each call what it returns: ready jobs by (queue, priority desc, seq)
// for Lease; ready jobs by (queue, ready_at) for OldestReady; scheduled by
// run_at for PromoteDue; active by lease expiry for ExpiredLeases; terminal
// by (queue, finished_at) for Purge; a unique (queue, idempotency_key); and
// (queue, state, id) for ListJobs, which for all states merges the seven
// state ranges (Merge Append) rather than keep an eighth index.
//
// # Counters
//
// Admission (max_depth) and Queue/Queues need per-queue counts; counting
// rows would cost O(jobs) per enqueue. Statement-level AFTER triggers with
// transition tables keep spool_queue_counts in the same transaction as
// every INSERT, UPDATE or DELETE of jobs, whoever issues it (a manual fix in
// psql included): one upsert per statement, of the net change per (queue,
// state), in (queue, state) order so that concurrent statements take the
// counter rows in one order, and nothing for writes that change no state
// (heartbeats). A counter row stays locked until its transaction commits,
// so every writer of a queue would wait in turn on the same row; instead
// each statement adds to one of 32 shards chosen at random and readers sum
// them (a few hundred rows per queue at most).
//
// # Operations
//
//   - Insert of a few jobs is one round trip, one implicit transaction,
//     with or without idempotency keys: a pipeline of the ordering
//     keys' locks (if any), spool_check_depth on the gains counted from
//     the batch, and a plain INSERT from unnest() arrays (one plan whatever
//     the batch size), which fails if an idempotency key is taken. A batch
//     of fresh jobs (as an enqueue makes them) sends 18 arrays, the
//     columns such a job sets; any other batch all 30. Only a unique
//     violation, or a refusal, with keys in the batch (a repeated request)
//     runs the careful path: in an explicit transaction, INSERT ... ON
//     CONFLICT DO NOTHING on the idempotency index, then spool_check_depth
//     on what was actually inserted, then, when a job was skipped, a read
//     of the job holding each key. ON CONFLICT on every insert cost
//     PostgreSQL a pre-check of the idempotency index and a speculative
//     lock per row, and its RETURNING and admission join materialized the
//     rows; with keys it also needed BEGIN and COMMIT round trips. A batch
//     of 8 or more fresh jobs is sent with COPY instead of the INSERT, in
//     binary format encoded by hand (copyData): BEGIN, the locks and
//     spool_check_depth in one pipeline, then the COPY, then COMMIT. Two
//     more round trips, paid back by PostgreSQL's multi-row insert (one
//     heap WAL record per page instead of per row) and no decoding and
//     unnest of the arrays. A unique violation of the COPY takes the
//     careful path below as the INSERT's does. Duplicates within a batch
//     are resolved before sending (first wins).
//   - Admission is exact under concurrent producers on any number of nodes,
//     with per-queue transaction-scoped advisory locks (see
//     spool_check_depth in the migration): a queue far from its limit
//     admits up to 32 concurrent inserts of up to 128 jobs, each holding one
//     of 32 "tickets", which keeps PostgreSQL's group commit; near the limit
//     (or for larger batches) an insert holds all 32 and counts exactly.
//     The simpler designs (one advisory lock per queue taken before
//     counting, or a depth row updated in the insert) serialize every
//     enqueue into a queue, commit fsync included, capping a queue at about
//     one enqueue per WAL flush however many nodes there are.
//   - Lease is one statement: per queue in the caller's order, a LATERAL
//     subquery walks the ready index with FOR UPDATE SKIP LOCKED, the outer
//     LIMIT stops the walk (later queues are not read once earlier ones
//     filled it), and an UPDATE sets the lease fields. Tokens come from
//     LeaseParams.NewToken, made before the statement: at most 64 for a
//     first round, the rest in a second round only if the first was filled.
//   - Ordering keys and per-queue concurrency and rate limits: see
//     flow.go. A lease that names no limited queue is the statement
//     above; one that does runs in a transaction holding the limited
//     queues' advisory locks. An insert of jobs with ordering keys first
//     locks each (queue, key), in the same round trip.
//   - Update is one statement per round of changes (a job named twice in
//     one call takes two rounds in one transaction): it locks every named
//     job in id order (no deadlock between overlapping updates, e.g. two
//     nodes expiring the same leases), then updates those whose rev
//     matches, and reports per change whether the job was missing or
//     changed.
//   - PromoteDue and Purge lock their rows with SKIP LOCKED, so nodes
//     running them at once take different rows; ExpiredLeases only reads
//     (the engine's compare-and-set decides).
//   - Transient failures (deadlock, serialization failure, and the store's
//     own retry signals) are retried a few times.
//   - A new table gets planner statistics before autovacuum comes by (see
//     analyze.go): without them Lease sorts a queue's ready jobs in every
//     call (5x fewer leases per second in the benchmark of
//     test/multinode).
//
// # Errors
//
// interpretError translates: pgx.ErrNoRows to spool.ErrNotFound, unique
// violations to spool.ErrConflict, data and integrity errors (a NUL byte in
// a string, say) to spool.ErrInvalid, connection failures, shutdowns,
// timeouts and resource exhaustion to spool.ErrUnavailable. Causes are kept
// as text only: no pgx type crosses the store seam.
//
// Times are stored with PostgreSQL's microsecond precision and read back in
// UTC; Insert returns its records so truncated, as a later Get would.
//
// # Wake-ups across nodes (store.Notifier)
//
// A long-poll waits in the engine of its node, which wakes it when that
// node writes. The Store tells the other nodes with NOTIFY, on a channel
// per schema ("spool:<schema>"), and hears them with LISTEN (Listen):
//
//   - What: after a write commits, the Store records its wake-ups: the
//     queues that received ready jobs (Insert; Update to ready: a retry
//     now, a release, a dead job retried; PromoteDue), the jobs that
//     finished (Update to a terminal state), and queues whose config
//     changed (SetQueueConfig: other nodes drop their cached copy, so a
//     pause or a new max_depth takes effect cluster-wide at once). Lease,
//     heartbeats and Purge wake nobody and send nothing.
//   - When: right after the commit, from one goroutine per Store (the
//     sender), one transaction at a time: everything committed while a
//     NOTIFY is in flight goes in the next, so a node sends one line per
//     queue per round trip however many jobs and transactions it carried,
//     and a write never waits for it. The NOTIFY transaction commits with
//     synchronous_commit off: the data it points to was flushed before.
//     Not inside the writing transaction: a transaction that notifies
//     takes a database-wide lock at commit and holds it through its WAL
//     flush, so every enqueue of every node would commit one after the
//     other. Measured on the test VM (2 vCPUs, 32 connections, one-row
//     inserts): 13,000-16,000 commits/s without NOTIFY, 3,800-4,200 with
//     pg_notify in the same transaction, 7,000 with a NOTIFY transaction
//     after each write, 12,000 with the coalescing sender. The price: a
//     node that dies between a commit and its NOTIFY loses that wake-up,
//     which the engine covers by looking again at its RecheckInterval (5s).
//   - Format: "spool1 <node id>" then one line per wake-up ("q<queue>",
//     "j<job id>", "c<queue>", "*" for a resync), split into notifications
//     of at most 7,900 bytes. The node id is random per Store: Listen
//     skips its own Store's notifications, whose waiters its engine has
//     already woken. When the sender cannot send (the database is away),
//     it keeps retrying, and what piled up is replaced by one "*".
//   - Listen holds one connection of its own, outside the pool
//     (application_name spool-listener), checks it when idle for 15s, and
//     reconnects after any failure with a jittered backoff from 50ms to
//     2s. Each time LISTEN takes effect it reports a Resync (the engine
//     wakes every waiter once, and drops its cached queue configs):
//     notifications sent while it was not listening are lost.
//
// # Promoting scheduled jobs on time (NextDue)
//
// The engine's maintenance loop asks the store's optional NextDue when the
// next scheduled job is due and promotes it then, instead of at its next
// pass (every second). NextDue costs no query: each PromoteDue reads the
// earliest run_at left, in the same round trip (one probe of
// spool_jobs_scheduled), and the Store's own writes of scheduled jobs
// (delayed enqueues, retries after a backoff) lower it at once. A job
// scheduled through another node is promoted by that node on time; if that
// node is gone, by any node at its next maintenance pass (within the
// maintenance interval). A shorter maintenance interval would do the same
// at the price of a whole pass (expire, purge: several queries) per
// interval on every node, and still add up to an interval of latency.
//
// # Losing the database
//
// Every method fails with an error wrapping spool.ErrUnavailable while the
// database cannot be reached (connection refused, reset, shutting down,
// connection attempts bounded by connect_timeout, default 5s): the HTTP
// layer answers 503 and /readyz answers 503. Nothing is retried blindly: a
// write whose outcome is unknown is left to the client, whose retries carry
// an idempotency key. pgxpool discards broken connections and pings those
// idle for more than a second before use, so the node recovers by itself
// when the database is back; the listening connection reconnects (and
// resyncs) and the sender delivers what it kept. test/multinode stops,
// starts and restarts PostgreSQL under load to check all of it.
//
// # How exact max_depth is across nodes
//
// Inserts are admitted exactly (see Operations): committed jobs not yet
// terminal plus every insert in flight, on any node, never exceed the
// max_depth the inserts were given. What each node gives is its engine's
// cached copy of the queue's config: after a PATCH on one node, the others
// use the new max_depth once the queue-changed notification arrives
// (milliseconds), or after the config cache's TTL (2s) if it was lost. And
// Engine.Retry of a dead job checks the depth without the admission locks,
// so concurrent retries may overshoot by their number. Both are bounded
// and short-lived, and max_depth is back pressure, not an invariant that
// something else relies on: good enough, and far cheaper than one lock per
// queue (see Operations).
//
// # What is left
//
// Lease's plan no longer rests on the planner's statistics: migration 3
// gives spool_jobs_ready_since a predicate only OldestReady's query
// states, so Lease cannot read it and sort (without statistics the planner
// used to prefer that smaller index). analyze.go still gives a new table
// statistics early, for the other queries. Left: with statistics, for a
// queue of tens of thousands of ready jobs, the planner was seen to choose
// a bitmap scan of spool_jobs_ready plus a top-N sort over a plain index
// walk (plan_test.go logs it); Lease at millions of jobs is not yet
// measured. Lease walks past ready jobs blocked behind their ordering
// key's head, one probe of spool_jobs_ordering each (the embedded store
// keeps them out of its ready index); a queue with a long backlog behind
// few keys would want a "head" flag maintained at insert and finish.
package postgres
