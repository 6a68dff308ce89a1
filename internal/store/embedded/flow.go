package embedded

import (
	"time"

	"github.com/google/btree"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// Flow control: ordering keys, concurrency and rate limits.
//
// Ordering keys. A job with an ordering key may be leased only while it is
// the oldest (by seq, the insert order) job not yet terminal of its (queue,
// key): its key's head. queueState.keys holds, per key, the seqs of the
// key's jobs not yet terminal, and the queue's ready tree holds a keyed
// ready job only while it is its key's head. So Lease, which walks the
// ready tree, never meets a blocked job and pays nothing for a key with a
// long backlog; a job blocked behind its head still counts as ready and
// shows in readySince (it is ready: only its turn has not come). The
// invariant (ready holds exactly the ready jobs that are unkeyed or
// heads) is kept by index.add and index.remove whatever the order of the
// calls, so Open may load jobs in any order and a rollback may undo in
// reverse.
//
// Limits. Lease is given each limited queue's store.QueueLimits and,
// under the store's mutex, takes from the queue at most the concurrency
// cap minus the jobs active now and at most the whole tokens of the
// queue's bucket. Buckets live in memory only: a restart refills them.

// seqItem is one job of an ordering key, ordered by insert order.
type seqItem struct {
	seq uint64
	id  string
}

func seqLess(a, b seqItem) bool { return a.seq < b.seq }

func keyed(r *meta) bool { return r.orderingKey() != "" && !r.State.Terminal() }

// addKeyed adds j to its key's jobs and reports whether j may be in the
// ready tree: it has no ordering key, or it is its key's head. A head it
// displaces leaves the ready tree.
func (x *index) addKeyed(q *queueState, j *job) bool {
	r := &j.rec
	if !keyed(r) {
		return true
	}
	g := q.keys[r.orderingKey()]
	if g == nil {
		g = btree.NewG(btreeDegree, seqLess)
		q.keys[r.orderingKey()] = g
	}
	old, hadHead := g.Min()
	g.ReplaceOrInsert(seqItem{j.seq, r.ID})
	if !hadHead {
		return true
	}
	if j.seq < old.seq {
		x.unready(q, x.jobs[old.id])
		return true
	}
	return false
}

// removeKeyed undoes addKeyed(q, j); if j was its key's head, the next
// job of the key becomes the head (and enters the ready tree if ready).
// j has already left the ready tree.
func (x *index) removeKeyed(q *queueState, j *job) {
	r := &j.rec
	if !keyed(r) {
		return
	}
	g := q.keys[r.orderingKey()]
	if g == nil {
		return
	}
	head, _ := g.Min()
	g.Delete(seqItem{j.seq, r.ID})
	if g.Len() == 0 {
		delete(q.keys, r.orderingKey())
		return
	}
	if head.seq != j.seq {
		return
	}
	next, _ := g.Min()
	if nj := x.jobs[next.id]; nj != nil && nj.rec.State == spool.StateReady {
		q.ready.ReplaceOrInsert(readyItem{nj.rec.Priority, nj.seq, nj.rec.ID})
	}
}

// unready takes j out of the ready tree (if it is there).
func (x *index) unready(q *queueState, j *job) {
	if j != nil && j.rec.State == spool.StateReady {
		q.ready.Delete(readyItem{j.rec.Priority, j.seq, j.rec.ID})
	}
}

// bucket is a rate-limited queue's token bucket.
type bucket struct {
	tokens float64
	at     time.Time
}

// allowed returns how many of want jobs queue q may start now under lim.
// Guarded by s.mu (held for writing).
func (s *Store) allowed(q *queueState, lim store.QueueLimits, now time.Time, want int) int {
	if lim.MaxActive > 0 {
		want = min(want, lim.MaxActive-q.byState[spool.StateActive].Len())
	}
	if lim.Rate > 0 {
		b := s.bucket(q.name, lim, now)
		want = min(want, int(b.tokens))
	}
	return max(want, 0)
}

// took takes n tokens from q's bucket and reports, through throttled, a
// bucket left without a whole token. Guarded by s.mu (held for writing).
func (s *Store) took(q *queueState, lim store.QueueLimits, now time.Time, n int, throttled func(string, time.Time)) {
	if lim.Rate <= 0 {
		return
	}
	b := s.bucket(q.name, lim, now)
	b.tokens -= float64(n)
	if b.tokens < 1 && throttled != nil {
		throttled(q.name, lim.NextToken(b.tokens, b.at))
	}
}

// bucket returns queue's bucket refilled to now; a bucket first seen is
// full.
func (s *Store) bucket(queue string, lim store.QueueLimits, now time.Time) *bucket {
	if s.buckets == nil {
		s.buckets = make(map[string]*bucket)
	}
	b := s.buckets[queue]
	if b == nil {
		b = &bucket{tokens: lim.BucketSize(), at: now}
		s.buckets[queue] = b
	}
	b.tokens, b.at = lim.Refill(b.tokens, b.at, now)
	return b
}
