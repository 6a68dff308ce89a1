// Package postgres is the store of Spool for several nodes: any number of
// `spool serve` processes share one PostgreSQL database (pgx v5, pgxpool).
// PostgreSQL provides durability, replication and failover; every method
// is one transaction that has committed (with synchronous_commit on, which
// each connection enforces) before it returns.
//
// # Schema (version 1, migrations/0001_init.sql)
//
// The tables live in Options.Schema ("public" by default; the pool sets
// search_path, so one database can hold several stores, as the tests do
// with a schema each). Numbered migrations are embedded and applied at Open
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
//   - Insert is one round trip: a pipeline run as one implicit transaction.
//     The first statement inserts the batch from unnest() arrays (one plan
//     whatever the batch size; COPY could not express the idempotency
//     conflict or return what it did), with ON CONFLICT DO NOTHING on the
//     idempotency index, then calls spool_check_depth on what was actually
//     inserted; the second reads the job holding each idempotency key.
//     Duplicates within a batch are resolved before sending (first wins).
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
// # Not here yet
//
// Cross-node wake-ups (LISTEN/NOTIFY): a long-polling Lease on one node is
// woken by jobs that become ready on the same node only; the store seam has
// no way yet to tell the engine about writes made elsewhere.
package postgres
