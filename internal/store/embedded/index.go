package embedded

import (
	"math"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/btree"

	"github.com/spoolq/spool"
)

// btreeDegree is the branching factor of every index tree.
const btreeDegree = 32

// job is the in-memory form of a stored job: its metadata (meta.go), plus
// what only this package needs. A *job is never changed once it is in the
// indexes; a write replaces it with a new one, so readers may hold the old
// one and undo is a matter of putting the old pointer back.
type job struct {
	rec        meta
	seq        uint64 // insert order, for FIFO within a priority
	hasPayload bool
	hasResult  bool
	// payloadBytes is the length of the payload (for store.Usage; 0 for
	// jobs written before it was recorded).
	payloadBytes uint32
}

// readyItem orders a queue's ready jobs for Lease: higher priority first,
// then insert order. seq is unique, so id is payload, not part of the order.
type readyItem struct {
	prio int
	seq  uint64
	id   string
}

func readyLess(a, b readyItem) bool {
	if a.prio != b.prio {
		return a.prio > b.prio
	}
	return a.seq < b.seq
}

// timeItem orders jobs by a time, then by id. The time is wall time in Unix
// nanoseconds (see nanos), so the order is the same before and after a
// restart; 8 bytes instead of a time.Time's 24 keep the trees small.
type timeItem struct {
	t  int64
	id string
}

func timeLess(a, b timeItem) bool {
	if a.t != b.t {
		return a.t < b.t
	}
	return a.id < b.id
}

// Bounds of the times nanos tells apart.
var (
	minNanos = time.Unix(0, math.MinInt64)
	maxNanos = time.Unix(0, math.MaxInt64)
)

// nanos is t's wall time in Unix nanoseconds. Times outside what an int64
// holds (before 1678 or after 2262, which the engine never sets) clamp to
// its bounds: they keep their order against every other time, and among
// themselves are ordered by id. The zero time clamps to the lowest.
func nanos(t time.Time) int64 {
	switch {
	case t.Before(minNanos):
		return math.MinInt64
	case t.After(maxNanos):
		return math.MaxInt64
	}
	return t.UnixNano()
}

func idLess(a, b string) bool { return a < b }

// wall strips the monotonic clock reading.
func wall(t time.Time) time.Time { return t.Round(0) }

func valueOr(p *time.Time, fallback time.Time) time.Time {
	if p != nil {
		return *p
	}
	return fallback
}

// queueState is the in-memory view of one queue.
type queueState struct {
	name string
	cfg  spool.QueueConfig
	// byState holds the ids of the queue's jobs not yet terminal, by state
	// (no tree for the terminal states).
	byState map[spool.State]*btree.BTreeG[string]
	// cold counts the queue's terminal jobs, which are on disk only
	// (cold.go).
	cold coldCounts
	// ready orders ready jobs for leasing; readySince by ready_at.
	ready      *btree.BTreeG[readyItem]
	readySince *btree.BTreeG[timeItem]
	// keys holds, per ordering key, the jobs of the key not yet terminal
	// by insert order; only the first (the head) may be in ready (see
	// flow.go).
	keys map[string]*btree.BTreeG[seqItem]
}

func newQueueState(name string, cfg spool.QueueConfig) *queueState {
	q := &queueState{
		name:       name,
		cfg:        cfg,
		byState:    make(map[spool.State]*btree.BTreeG[string], len(spool.States)),
		ready:      btree.NewG(btreeDegree, readyLess),
		readySince: btree.NewG(btreeDegree, timeLess),
		keys:       make(map[string]*btree.BTreeG[seqItem]),
	}
	for _, st := range spool.States {
		if !st.Terminal() {
			q.byState[st] = btree.NewG(btreeDegree, idLess)
		}
	}
	return q
}

// count returns how many of the queue's jobs are in state st.
func (q *queueState) count(st spool.State) int64 {
	if st.Terminal() {
		return *q.cold.of(st)
	}
	return int64(q.byState[st].Len())
}

// depth counts the jobs not yet terminal.
func (q *queueState) depth() int64 {
	n := 0
	for _, ids := range q.byState {
		n += ids.Len()
	}
	return int64(n)
}

type idemKey struct{ queue, key string }

// index holds every in-memory structure. It is guarded by Store.mu.
type index struct {
	jobs      map[string]*job // the jobs not yet terminal
	queues    map[string]*queueState
	scheduled *btree.BTreeG[timeItem] // by run_at, every queue
	active    *btree.BTreeG[timeItem] // by lease expiry, every queue
	idem      map[idemKey]string      // of the jobs not yet terminal
	// maxCold is at least the largest id of a terminal job (cold.go).
	maxCold string
	// maxHot is at least the largest id of a job not yet terminal: the
	// largest ever indexed, never lowered. With maxCold it lets a new id
	// (the engine's ascend) skip the lookups that would find nothing.
	maxHot string
	// payloadBytes sums the payload lengths of jobs (store.Usage).
	payloadBytes int64
	// children maps a parent id to the waiting jobs that depend on it.
	children map[string]map[string]struct{}
}

func newIndex() index {
	return index{
		jobs:      make(map[string]*job),
		queues:    make(map[string]*queueState),
		scheduled: btree.NewG(btreeDegree, timeLess),
		active:    btree.NewG(btreeDegree, timeLess),
		idem:      make(map[idemKey]string),
		children:  make(map[string]map[string]struct{}),
	}
}

func (x *index) depth(queue string) int64 {
	if q := x.queues[queue]; q != nil {
		return q.depth()
	}
	return 0
}

// Keys of the time-ordered indexes. A missing time sorts first: an active
// job without an expiry is expired (never stuck).
func readySince(j *job) timeItem {
	return timeItem{nanos(valueOr(j.rec.ReadyAt, j.rec.CreatedAt)), j.rec.ID}
}
func runAt(j *job) timeItem { return timeItem{nanos(j.rec.RunAt), j.rec.ID} }
func leaseExpiry(j *job) timeItem {
	return timeItem{nanos(valueOr(j.rec.LeaseExpiresAt, time.Time{})), j.rec.ID}
}

// add indexes j, a job not yet terminal. Its queue must exist.
func (x *index) add(j *job) {
	r := &j.rec
	q := x.queues[r.Queue]
	x.jobs[r.ID] = j
	x.payloadBytes += int64(j.payloadBytes)
	x.maxHot = max(x.maxHot, r.ID)
	x.addState(q, j, true)
	if r.IdempotencyKey != "" {
		x.idem[idemKey{r.Queue, r.IdempotencyKey}] = r.ID
	}
}

// remove undoes add(j). j must be the indexed version of its job.
func (x *index) remove(j *job) {
	r := &j.rec
	q := x.queues[r.Queue]
	delete(x.jobs, r.ID)
	x.payloadBytes -= int64(j.payloadBytes)
	x.removeState(q, j, true)
	if r.IdempotencyKey != "" {
		k := idemKey{r.Queue, r.IdempotencyKey}
		if x.idem[k] == r.ID {
			delete(x.idem, k)
		}
	}
}

// replace is remove(old) then add(new) for a new version of the same job
// (same id, queue and idempotency key): the entries that do not change
// (the id in the queue's tree and in the maps, its state's tree when the
// state stays) are left in place.
func (x *index) replace(old, new *job) {
	q := x.queues[old.rec.Queue]
	moved := old.rec.State != new.rec.State
	x.removeState(q, old, moved)
	x.jobs[new.rec.ID] = new
	x.payloadBytes += int64(new.payloadBytes) - int64(old.payloadBytes)
	x.addState(q, new, moved)
}

// sameSlot reports whether new may replace old in place (see replace).
func sameSlot(old, new *job) bool {
	return old.rec.ID == new.rec.ID && old.rec.Queue == new.rec.Queue &&
		old.rec.IdempotencyKey == new.rec.IdempotencyKey
}

// addState indexes what depends on j's state and fields (and, if byState,
// its id in its state's tree).
func (x *index) addState(q *queueState, j *job, byState bool) {
	r := &j.rec
	if byState {
		q.byState[r.State].ReplaceOrInsert(r.ID)
	}
	head := x.addKeyed(q, j)
	switch {
	case r.State == spool.StateReady:
		if head {
			q.ready.ReplaceOrInsert(readyItem{r.Priority, j.seq, r.ID})
		}
		q.readySince.ReplaceOrInsert(readySince(j))
	case r.State == spool.StateScheduled:
		x.scheduled.ReplaceOrInsert(runAt(j))
	case r.State == spool.StateActive:
		x.active.ReplaceOrInsert(leaseExpiry(j))
	case r.State == spool.StateWaiting:
		x.addChild(j)
	}
}

// removeState undoes addState(q, j, byState).
func (x *index) removeState(q *queueState, j *job, byState bool) {
	r := &j.rec
	if byState {
		q.byState[r.State].Delete(r.ID)
	}
	switch {
	case r.State == spool.StateReady:
		q.ready.Delete(readyItem{r.Priority, j.seq, r.ID})
		q.readySince.Delete(readySince(j))
	case r.State == spool.StateScheduled:
		x.scheduled.Delete(runAt(j))
	case r.State == spool.StateActive:
		x.active.Delete(leaseExpiry(j))
	case r.State == spool.StateWaiting:
		x.removeChild(j)
	}
	x.removeKeyed(q, j)
}

// txn is one write in progress: the index changes made so far (to undo them
// if the batch cannot be applied) and the batch that makes them durable.
type txn struct {
	x       *index
	batch   *pebble.Batch
	undo    []change
	created []string // queues created by this write
	err     error    // first error of a batch operation
	// key and val are scratch space for the keys and values of setJob,
	// setBody and the cold indexes: the batch copies what it is given.
	key, val []byte
	// pending holds the jobs this write made cold (nil: removed), which
	// Pebble does not show until the batch is applied; pendingIdem their
	// idempotency keys ("": removed). See Store.job.
	pending     map[string]*job
	pendingIdem map[idemKey]string
}

type change struct{ old, new *job }

func (s *Store) begin() *txn {
	return &txn{x: &s.x, batch: s.db.NewBatch()}
}

// put replaces old (nil: none) by new (nil: delete) in the indexes: in
// memory for a job not yet terminal, on disk for a terminal one (cold.go).
// It deletes old's record when new's goes elsewhere (or nowhere); the
// caller writes new's record (setJob) and the bodies.
func (t *txn) put(old, new *job) {
	if old != nil && !cold(old) && (new == nil || cold(new)) {
		t.key = appendKey(t.key[:0], prefixJob, old.rec.ID)
		t.delete(t.key)
	}
	switch {
	case old != nil && new != nil && !cold(old) && !cold(new) && sameSlot(old, new):
		t.x.replace(old, new)
	default:
		if old != nil {
			if cold(old) {
				t.coldRemove(old)
			} else {
				t.x.remove(old)
			}
		}
		if new != nil {
			t.ensureQueue(new.rec.Queue)
			if cold(new) {
				t.coldAdd(new)
			} else {
				t.x.add(new)
			}
		}
	}
	t.undo = append(t.undo, change{old, new})
}

// ensureQueue creates a queue that was never used, in memory and on disk.
func (t *txn) ensureQueue(name string) {
	if _, ok := t.x.queues[name]; ok {
		return
	}
	t.x.queues[name] = newQueueState(name, spool.QueueConfig{})
	t.created = append(t.created, name)
	t.set(queueKey(name), []byte("{}"))
}

func (t *txn) set(k, v []byte) {
	if err := t.batch.Set(k, v, nil); err != nil && t.err == nil {
		t.err = err
	}
}

// setJob writes j's record under its job key: j/ for a job not yet
// finished, c/ for a finished one.
func (t *txn) setJob(j *job) {
	prefix := prefixJob
	if cold(j) {
		prefix = prefixColdJob
	}
	t.key = appendKey(t.key[:0], prefix, j.rec.ID)
	t.val = appendJob(t.val[:0], j)
	t.set(t.key, t.val)
}

// setBody writes a payload or result (prefix says which) of job id.
func (t *txn) setBody(prefix, id string, v []byte) {
	t.key = appendKey(t.key[:0], prefix, id)
	t.set(t.key, v)
}

func (t *txn) delete(k []byte) {
	if err := t.batch.Delete(k, nil); err != nil && t.err == nil {
		t.err = err
	}
}

// rollback undoes every index change, newest first, and drops the batch.
func (t *txn) rollback() {
	// The cold indexes' keys are in the batch, dropped below; only their
	// counts are in memory.
	for i := len(t.undo) - 1; i >= 0; i-- {
		c := t.undo[i]
		if c.new != nil {
			if cold(c.new) {
				t.x.queues[c.new.rec.Queue].cold.add(c.new.rec.State, -1)
			} else {
				t.x.remove(c.new)
			}
		}
		if c.old != nil {
			if cold(c.old) {
				t.x.queues[c.old.rec.Queue].cold.add(c.old.rec.State, 1)
			} else {
				t.x.add(c.old)
			}
		}
	}
	for _, name := range t.created {
		delete(t.x.queues, name)
	}
	t.undo, t.created = nil, nil
	_ = t.batch.Close()
}
