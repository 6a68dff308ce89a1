package embedded

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/spoolq/spool"
)

// Finished jobs live on disk only.
//
// A job in a terminal state (succeeded, dead, cancelled) is kept for its
// queue's retention, which may be days: holding it in memory would make the
// store's memory grow with everything it ever finished. So memory holds
// only the jobs not yet terminal ("hot"), and a terminal ("cold") job is
// its record, under c/ instead of j/, plus three Pebble index keys,
// written and deleted in the same batch as the record:
//
//	d/<queue><state>\x00<id>      for ListJobs by state, in id order
//	f/<queue><finished_at><id>    for Purge, oldest first
//	i/<queue><idempotency key>    → id, when the job has a key
//
// where <queue> is the name preceded by its length (uvarint), so that no
// queue's keys are a prefix of another's, and <finished_at> is Unix
// nanoseconds, 8 bytes big-endian (a job without a finish time sorts
// first). Per queue, memory keeps only the number of cold jobs per
// terminal state, for Counts. Open reads the j/ records and counts the d/
// keys: it never reads a finished job's record, so a long retention costs
// a restart one key per finished job, not a decode.
//
// A lookup by id (Get, Lookup, Update, the id check of Insert) tries memory
// first, then the write in progress (a job turned cold earlier in the same
// batch is not in Pebble yet), then Pebble. A Pebble lookup of a key that
// is not there still checks the Bloom filter of every file whose key range
// covers it, which made the id check of Insert a third of its CPU; so the
// store keeps maxCold, an id at least as large as every cold job's, and an
// id above it is known not to be cold without asking Pebble. Job ids are
// UUIDv7s from a monotonic generator, so a new id is almost always above
// the ids of the jobs that have already finished.

// appendQueue appends prefix and the length-prefixed queue name to b.
func appendQueue(b []byte, prefix, queue string) []byte {
	b = append(b, prefix...)
	b = binary.AppendUvarint(b, uint64(len(queue)))
	return append(b, queue...)
}

// stateIdxPrefix is the prefix of the d/ keys of queue's jobs in state st.
func stateIdxPrefix(b []byte, queue string, st spool.State) []byte {
	b = appendQueue(b, prefixStateIdx, queue)
	return append(append(b, st...), 0)
}

func stateIdxKey(b []byte, j *job) []byte {
	return append(stateIdxPrefix(b, j.rec.Queue, j.rec.State), j.rec.ID...)
}

// finishedNanos maps a finish time to the order of the f/ keys: Unix
// nanoseconds, none (or before 1970) as 0, past 2262 as the largest.
func finishedNanos(t *time.Time) uint64 {
	switch {
	case t == nil || t.Unix() < 0:
		return 0
	case t.Unix() >= math.MaxInt64/int64(time.Second):
		return math.MaxInt64
	}
	return uint64(t.UnixNano())
}

// parseStateIdx splits a d/ key, without its prefix, into its queue,
// state and job id.
func parseStateIdx(k string) (queue string, st spool.State, id string, err error) {
	n, w := binary.Uvarint([]byte(k))
	if w > 0 && n <= uint64(len(k)-w) {
		queue, rest := k[w:w+int(n)], k[w+int(n):]
		if i := strings.IndexByte(rest, 0); i >= 0 {
			st, id = spool.State(rest[:i]), rest[i+1:]
			if st.Terminal() && id != "" {
				return queue, st, id, nil
			}
		}
	}
	return "", "", "", fmt.Errorf("malformed index key %q", prefixStateIdx+k)
}

func finishedIdxBound(b []byte, queue string, t *time.Time) []byte {
	return binary.BigEndian.AppendUint64(appendQueue(b, prefixFinishedIdx, queue), finishedNanos(t))
}

func finishedIdxKey(b []byte, j *job) []byte {
	return append(finishedIdxBound(b, j.rec.Queue, j.rec.FinishedAt), j.rec.ID...)
}

func idemIdxKey(b []byte, k idemKey) []byte {
	return append(appendQueue(b, prefixIdemIdx, k.queue), k.key...)
}

func cold(j *job) bool { return j.rec.State.Terminal() }

// coldCounts counts a queue's cold jobs per terminal state.
type coldCounts struct{ succeeded, dead, cancelled int64 }

func (c *coldCounts) of(st spool.State) *int64 {
	switch st {
	case spool.StateSucceeded:
		return &c.succeeded
	case spool.StateDead:
		return &c.dead
	case spool.StateCancelled:
		return &c.cancelled
	}
	panic("embedded: no cold count for state " + string(st))
}

func (c *coldCounts) add(st spool.State, n int64) { *c.of(st) += n }

func (c *coldCounts) total() int64 { return c.succeeded + c.dead + c.cancelled }

// coldAdd indexes a terminal job on disk (its c/ record is the caller's:
// setJob).
func (t *txn) coldAdd(j *job) {
	t.x.queues[j.rec.Queue].cold.add(j.rec.State, 1)
	t.x.maxCold = max(t.x.maxCold, j.rec.ID) // not undone: a bound may stay too high
	t.setColdKeys(j)
	t.pend(j.rec.ID, j)
	if k := j.rec.IdempotencyKey; k != "" {
		t.pendIdem(idemKey{j.rec.Queue, k}, j.rec.ID)
	}
}

// coldRemove undoes coldAdd(j) on disk, and deletes j's record.
func (t *txn) coldRemove(j *job) {
	t.x.queues[j.rec.Queue].cold.add(j.rec.State, -1)
	t.key = appendKey(t.key[:0], prefixColdJob, j.rec.ID)
	t.delete(t.key)
	t.key = stateIdxKey(t.key[:0], j)
	t.delete(t.key)
	t.key = finishedIdxKey(t.key[:0], j)
	t.delete(t.key)
	t.pend(j.rec.ID, nil)
	if k := j.rec.IdempotencyKey; k != "" {
		ik := idemKey{j.rec.Queue, k}
		t.key = idemIdxKey(t.key[:0], ik)
		t.delete(t.key)
		t.pendIdem(ik, "")
	}
}

// setColdKeys writes the index keys of terminal job j.
func (t *txn) setColdKeys(j *job) {
	t.key = stateIdxKey(t.key[:0], j)
	t.set(t.key, nil)
	t.key = finishedIdxKey(t.key[:0], j)
	t.set(t.key, nil)
	if k := j.rec.IdempotencyKey; k != "" {
		t.key = idemIdxKey(t.key[:0], idemKey{j.rec.Queue, k})
		t.set(t.key, []byte(j.rec.ID))
	}
}

func (t *txn) pend(id string, j *job) {
	if t.pending == nil {
		t.pending = make(map[string]*job)
	}
	t.pending[id] = j
}

func (t *txn) pendIdem(k idemKey, id string) {
	if t.pendingIdem == nil {
		t.pendingIdem = make(map[idemKey]string)
	}
	t.pendingIdem[k] = id
}

// job returns the current version of job id, or nil if there is none:
// from memory, else from t's pending cold writes (t may be nil), else from
// Pebble. Call with s.mu held.
func (s *Store) job(t *txn, id string) (*job, error) {
	if id > s.x.maxHot && id > s.x.maxCold {
		// Above every id ever stored (t's pending cold writes included:
		// they were hot, or raised maxCold).
		return nil, nil
	}
	if j := s.x.jobs[id]; j != nil {
		return j, nil
	}
	if t != nil {
		if j, ok := t.pending[id]; ok {
			return j, nil
		}
	}
	return s.coldJob(id)
}

// coldJob reads a terminal job from Pebble; nil if there is none.
func (s *Store) coldJob(id string) (*job, error) {
	if id > s.x.maxCold {
		return nil, nil
	}
	v, closer, err := s.db.Get(coldJobKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, translate(fmt.Sprintf("reading job %q", id), err)
	}
	defer func() { _ = closer.Close() }()
	j, err := decodeJob(id, v)
	if err != nil {
		return nil, unavailable(err)
	}
	if !cold(j) {
		return nil, unavailable(fmt.Errorf("job %q is %s under the prefix of finished jobs", id, j.rec.State))
	}
	return j, nil
}

// indexedJob reads a job that an index (which) names: it must be stored.
func (s *Store) indexedJob(id, which string) (*job, error) {
	j, err := s.job(nil, id)
	if err == nil && j == nil {
		err = unavailable(fmt.Errorf("job %q is in the %s index but not stored", id, which))
	}
	return j, err
}

// idemJob returns the job that holds queue's idempotency key k, or nil.
func (s *Store) idemJob(t *txn, k idemKey) (*job, error) {
	if id, ok := s.x.idem[k]; ok {
		return s.x.jobs[id], nil
	}
	if t != nil {
		if id, ok := t.pendingIdem[k]; ok {
			if id == "" {
				return nil, nil
			}
			return s.job(t, id)
		}
	}
	v, closer, err := s.db.Get(idemIdxKey(nil, k))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, translate(fmt.Sprintf("reading idempotency key %q of queue %q", k.key, k.queue), err)
	}
	id := string(v)
	_ = closer.Close()
	return s.job(t, id)
}

// coldIDs returns up to limit ids of queue's jobs in terminal state st
// greater than after, in order. Call with s.mu held.
func (s *Store) coldIDs(queue string, st spool.State, after string, limit int) ([]string, error) {
	prefix := stateIdxPrefix(nil, queue, st)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEndBytes(prefix)})
	if err != nil {
		return nil, translate("listing jobs", err)
	}
	var ids []string
	ok := it.SeekGE(append(bytes.Clone(prefix), after...))
	for ; ok && len(ids) < limit; ok = it.Next() {
		id := string(it.Key()[len(prefix):])
		if id == after {
			continue
		}
		ids = append(ids, id)
	}
	if err := it.Close(); err != nil {
		return nil, translate("listing jobs", err)
	}
	return ids, nil
}

// finishedBefore returns the ids of up to limit of queue's cold jobs
// finished before cutoff, oldest first. Call with s.mu held.
func (s *Store) finishedBefore(queue string, cutoff time.Time, limit int) ([]string, error) {
	prefix := appendQueue(nil, prefixFinishedIdx, queue)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: finishedIdxBound(nil, queue, &cutoff)})
	if err != nil {
		return nil, translate("finding jobs to purge", err)
	}
	var ids []string
	for ok := it.First(); ok && len(ids) < limit; ok = it.Next() {
		ids = append(ids, string(it.Key()[len(prefix)+8:]))
	}
	if err := it.Close(); err != nil {
		return nil, translate("finding jobs to purge", err)
	}
	return ids, nil
}

// prefixEndBytes returns the smallest key greater than every key that
// starts with p, or nil (no bound) if there is none.
func prefixEndBytes(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// upgradeFrom1 converts a directory of format 1, which kept finished jobs
// with the others and had no cold indexes, to the current format: it moves
// every terminal job's record from j/ to c/ and writes its index keys,
// then the new version, synced. Interrupted, it goes on at the next Open:
// the jobs already moved are no longer under j/.
func (s *Store) upgradeFrom1() error {
	const perBatch = 4096
	t := &txn{x: &s.x, batch: s.db.NewBatch()}
	n, total := 0, 0
	flush := func(opts *pebble.WriteOptions) error {
		if t.err != nil {
			return translate("upgrading the format", t.err)
		}
		err := s.db.Apply(t.batch, opts)
		_ = t.batch.Close()
		t.batch, n = s.db.NewBatch(), 0
		if err != nil {
			return translate("upgrading the format", err)
		}
		return nil
	}
	err := s.scan(prefixJob, func(id string, v []byte) error {
		j, err := decodeJob(id, v)
		if err != nil || !cold(j) {
			return err
		}
		t.delete(jobKey(id))
		t.set(coldJobKey(id), v)
		t.setColdKeys(j)
		n++
		total++
		if n == perBatch {
			return flush(pebble.NoSync)
		}
		return nil
	})
	if err == nil {
		t.set(formatKey, []byte(formatVersion))
		err = flush(pebble.Sync)
	}
	_ = t.batch.Close()
	if err != nil {
		return err
	}
	s.log.Info("embedded store upgraded", "from_format", "1", "to_format", formatVersion, "finished_jobs", total)
	return nil
}
