// Package embedded is the single-node store of Spool: Pebble
// (github.com/cockroachdb/pebble/v2) on a data directory, with every index
// the queue needs kept in memory and rebuilt at Open.
//
// # Writes
//
// Every write method works in three steps:
//
//  1. Under the store's mutex it validates against the in-memory indexes,
//     changes them (recording how to undo the change), builds one Pebble
//     batch and hands it to the WAL with DB.ApplyNoSyncWait(batch,
//     pebble.Sync). The WAL order is therefore the order in which the
//     indexes changed. If the apply fails, the index changes are undone
//     before the mutex is released, so memory never holds a change that
//     is not in the WAL.
//  2. It releases the mutex.
//  3. It waits for the fsync (Batch.SyncWait) outside the mutex and only
//     then returns. Pebble's commit pipeline makes concurrent batches share
//     one fsync: this is the group commit. Lease is the one exception: it
//     waits for the writes applied before it (the leased jobs' inserts) to
//     be synced, and leaves its own to the next group commit, in the
//     background. A crash can undo a lease (its jobs are ready again after
//     the restart: delivered again, which at-least-once delivery allows),
//     never an insert or an ack, which are synced after it in WAL order.
//
// A write that has been applied but not yet synced is visible to readers
// (as in Pebble itself); its own caller has not been answered yet. Insert,
// whose answer for an idempotent duplicate may rest on such a write, waits
// until every write it could have seen is synced. If an fsync fails, memory
// and disk may have diverged: the store marks itself failed and from then
// on every method returns an error wrapping spool.ErrUnavailable; a restart
// rebuilds the indexes from what is on disk. The same happens when Pebble
// reports a fatal error (its Logger.Fatalf), which then panics, as Pebble
// expects Fatalf not to return.
//
// Payloads and results are never held in memory: the indexes keep job
// metadata only, and Get, Insert (for duplicates), Lease and Update read the
// bodies from a Pebble snapshot taken under the mutex, after releasing it.
// Finished jobs (succeeded, dead, cancelled) are not held in memory at all:
// they are kept on disk with three index keys of their own, so memory does
// not grow with the jobs kept for retention (see cold.go).
//
// # Key layout (format version 2)
//
//	m/format               "2": the format version, written when the
//	                       directory is created and checked at every Open;
//	                       version 1 is upgraded (it kept finished jobs
//	                       under j/, without d/, f/ and i/ keys), an
//	                       unknown version (or data without one) is
//	                       refused.
//	j/<job id>             job metadata: the store.Record without payload
//	                       and result, plus the insert sequence number
//	                       (FIFO within a priority survives restarts) and
//	                       whether a payload and a result exist. A compact
//	                       tagged binary encoding, described in jobcodec.go.
//	c/<job id>             the same for a finished job (cold.go).
//	p/<job id>             payload bytes, exactly as inserted (absent when
//	                       the job has no payload).
//	r/<job id>             result bytes (absent until a result is written).
//	q/<queue name>         queue config overrides: JSON spool.QueueConfig.
//	                       Written when a queue is first used, so a queue
//	                       outlives its jobs.
//	d/, f/, i/             a finished job's indexes: by state, by finish
//	                       time, by idempotency key (cold.go).
//	s/<schedule name>      a cron schedule (schedules.go).
//	t/<topic>\x00<queue>   a topic subscription: JSON {"types":[...],
//	                       "created_at":...}. No in-memory index: they
//	                       are few, and read from Pebble (topics.go).
//	x/<width><queue>\x00<start>  a telemetry bucket (stats.go): width and
//	                       start as 8-byte big-endian nanoseconds.
//
// Job metadata is a tagged binary encoding rather than JSON because
// decoding it is most of the work of Open (rebuilding the indexes of a
// million jobs); a new spool.Job field gets a new tag without a format
// change, and a test fails when Job gains a field the codec does not know.
// Queue configs are few and small, and stay JSON. The idempotency keys of
// jobs not yet finished are not stored separately: the (queue, idempotency
// key) → id map is rebuilt from the job metadata at Open.
//
// # In-memory indexes
//
// They hold the jobs not yet finished. All of them are
// github.com/google/btree trees or Go maps, so every operation is
// O(log n):
//
//   - jobs: id → metadata (meta.go: the fields most jobs set inline, the
//     rest behind one pointer).
//   - per queue: ready jobs by (priority desc, seq asc) for Lease, where a
//     job with an ordering key is only while it heads its key; per ordering
//     key, the key's jobs not yet terminal by seq (flow.go); ready jobs by
//     (ready_at, id) for OldestReady; ids per state and ids of all states
//     for ListJobs and Counts; the number of finished jobs per state.
//   - global: scheduled jobs by (run_at, id) for PromoteDue; active jobs by
//     (lease_expires_at, id) for ExpiredLeases.
//   - idempotency: (queue, key) → id.
//   - dependencies: parent id → the waiting jobs that name it in
//     depends_on (for WaitingChildren).
//
// Rate-limited queues' token buckets are in memory only (a restart refills
// them); see flow.go.
//
// Memory is about 500 bytes per job not yet finished (BenchmarkHeapPerReadyJob:
// the job's metadata in a compact form, meta.go, about half of it; its id;
// its entries in the maps and trees) and nothing per finished job; Open
// decodes the jobs not yet finished (a million in about 5 to 7 seconds on
// two cores) and counts the finished ones' d/ keys.
//
// # Pebble tuning
//
// See Options: a 64 MiB memtable (Pebble's default is 4 MiB) so that a
// job's whole life (insert, lease, ack, purge rewrite the same keys) often
// ends before its keys are flushed, which drops the shadowed versions at
// flush instead of carrying them into compactions, and fewer, larger L0
// files; up to four memtables before writes stall, so a burst of large
// payloads does not wait for a flush; a 64 MiB block cache; Bloom filters
// on every level, because the hot reads (payloads of leased and fetched
// jobs) are point lookups; the newest on-disk format. Everything else is
// Pebble's default.
package embedded
