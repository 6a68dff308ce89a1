package embedded

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// Options configures Open. The zero value is usable.
type Options struct {
	// Logger receives the store's and Pebble's messages. Nil discards them.
	Logger *slog.Logger
	// MemTableSize is Pebble's memtable size; 0 means 64 MiB. A job's keys
	// are rewritten a few times in its life (insert, lease, ack, purge); a
	// large memtable lets those versions die in memory before a flush.
	MemTableSize uint64
	// CacheSize is Pebble's block cache size; 0 means 64 MiB.
	CacheSize int64

	// fs replaces the operating system's file system (fault injection in
	// tests).
	fs vfs.FS
}

// Defaults of Options.
const (
	DefaultMemTableSize = 64 << 20
	DefaultCacheSize    = 64 << 20
)

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = DefaultMemTableSize
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.fs == nil {
		o.fs = vfs.Default
	}
	return o
}

// Store is the Pebble-backed store.Store. It is safe for concurrent use.
type Store struct {
	db  *pebble.DB
	log *slog.Logger

	// mu guards closed, x, nextSeq, applied and buckets. Writers hold it exclusively
	// from validation to the WAL apply; readers share it.
	mu      sync.RWMutex
	closed  bool
	x       index
	nextSeq uint64 // next insert sequence number
	applied uint64 // number of batches applied to the WAL
	// buckets are the rate-limited queues' token buckets (flow.go),
	// guarded by mu held for writing.
	buckets map[string]*bucket

	failure  atomic.Pointer[failure]
	synced   syncTracker
	inflight sync.WaitGroup // applied batches not yet synced, open snapshots

	fsCloser  io.Closer // stops the disk-health checker
	closeOnce sync.Once
	closeErr  error
}

// diskSlowThreshold is how long a disk operation may take before it is
// logged as slow (Pebble's default).
const diskSlowThreshold = 5 * time.Second

var _ store.Store = (*Store)(nil)

// failure is why the store stopped serving.
type failure struct {
	err   error
	fatal bool // Pebble itself gave up: do not call into it again
}

// Open opens (or creates) the store in dir and rebuilds the in-memory
// indexes from it.
func Open(dir string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	s := &Store{log: opts.Logger, x: newIndex(), nextSeq: 1}
	s.synced.cond.L = &s.synced.mu
	// Pebble wraps its FS with disk-health checks itself, but leaks the
	// checker's goroutine when Open fails (a locked directory, say); wrap it
	// here instead, close it ourselves, and log slow disks.
	fs, fsCloser := vfs.WithDiskHealthChecks(opts.fs, diskSlowThreshold, nil, func(info vfs.DiskSlowInfo) {
		s.log.Warn("slow disk operation", "path", info.Path, "op", info.OpType.String(),
			"write_bytes", info.WriteSize, "duration", info.Duration)
	})
	s.fsCloser = fsCloser
	po := &pebble.Options{
		FS:           fs,
		Logger:       pebbleLogger{s},
		MemTableSize: opts.MemTableSize,
		// Up to four memtables (one filling, three flushing) before writes
		// stall, so a burst of large payloads does not block on a flush.
		MemTableStopWritesThreshold: 4,
		CacheSize:                   opts.CacheSize,
		FormatMajorVersion:          pebble.FormatNewest,
	}
	// Bloom filters on every level (later levels inherit L0's): Get and
	// Lease read payloads by key.
	po.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	start := time.Now()
	db, err := pebble.Open(dir, po)
	if err != nil {
		_ = fsCloser.Close()
		return nil, fmt.Errorf("opening embedded store in %s: %w", dir, unavailable(err))
	}
	s.db = db
	if err := s.checkFormat(dir); err != nil {
		_ = db.Close()
		_ = fsCloser.Close()
		return nil, err
	}
	if err := s.load(); err != nil {
		_ = db.Close()
		_ = fsCloser.Close()
		return nil, fmt.Errorf("loading embedded store in %s: %w", dir, err)
	}
	finished := int64(0)
	for _, q := range s.x.queues {
		finished += q.cold.total()
	}
	s.log.Info("embedded store opened", "dir", dir, "jobs", len(s.x.jobs), "finished_jobs", finished,
		"queues", len(s.x.queues), "load_duration", time.Since(start))
	return s, nil
}

// checkFormat refuses a directory written in a format this build cannot
// read, upgrades one of format 1, and stamps a new one with formatVersion.
func (s *Store) checkFormat(dir string) error {
	v, closer, err := s.db.Get(formatKey)
	if err == nil {
		got := string(v)
		_ = closer.Close()
		switch got {
		case formatVersion:
			return nil
		case "1":
			return s.upgradeFrom1()
		}
		return fmt.Errorf("embedded store in %s has format version %q; this build reads versions 1 and %s only", dir, got, formatVersion)
	}
	if !errors.Is(err, pebble.ErrNotFound) {
		return translate("reading format version", err)
	}
	it, err := s.db.NewIter(nil)
	if err != nil {
		return translate("checking for data", err)
	}
	used := it.First()
	if err := it.Close(); err != nil {
		return translate("checking for data", err)
	}
	if used {
		return fmt.Errorf("embedded store in %s holds data without a format version; it was not written by spool", dir)
	}
	if err := s.db.Set(formatKey, []byte(formatVersion), pebble.Sync); err != nil {
		return translate("writing format version", err)
	}
	return nil
}

// load rebuilds the indexes from the queue and job keys.
func (s *Store) load() error {
	err := s.scan(prefixQueue, func(name string, v []byte) error {
		cfg, err := decodeQueueConfig(name, v)
		if err != nil {
			return err
		}
		s.x.queues[name] = newQueueState(name, cfg)
		return nil
	})
	if err != nil {
		return err
	}
	return s.loadJobs()
}

// loadJobs decodes and indexes the jobs not yet finished, and counts the
// finished ones from their index keys, without reading their records.
func (s *Store) loadJobs() error {
	err := s.scan(prefixJob, func(id string, v []byte) error {
		j, err := decodeJob(id, v)
		if err != nil {
			return err
		}
		if cold(j) {
			return fmt.Errorf("job %q is %s but stored with the jobs not yet finished", id, j.rec.State)
		}
		s.queue(j.rec.Queue)
		s.x.add(j)
		if j.seq >= s.nextSeq {
			s.nextSeq = j.seq + 1
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.scan(prefixStateIdx, func(k string, _ []byte) error {
		queue, st, id, err := parseStateIdx(k)
		if err != nil {
			return err
		}
		s.queue(queue).cold.add(st, 1)
		s.x.maxCold = max(s.x.maxCold, id)
		return nil
	})
}

// queue returns the in-memory view of a queue, creating it in memory
// (loading, or once its config is on disk). Call with s.mu held.
func (s *Store) queue(name string) *queueState {
	q := s.x.queues[name]
	if q == nil {
		q = newQueueState(name, spool.QueueConfig{})
		s.x.queues[name] = q
	}
	return q
}

func (s *Store) scan(prefix string, fn func(name string, v []byte) error) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte(prefix), UpperBound: prefixEnd(prefix)})
	if err != nil {
		return translate("scanning "+prefix, err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return translate("scanning "+prefix, err)
		}
		if err := fn(string(it.Key()[len(prefix):]), v); err != nil {
			_ = it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return translate("scanning "+prefix, err)
	}
	return nil
}

// Close waits for pending writes to be synced, then closes Pebble. It is
// idempotent; afterwards every method returns spool.ErrUnavailable.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.inflight.Wait()
		if f := s.failure.Load(); f != nil && f.fatal {
			s.closeErr = fmt.Errorf("closing embedded store: %w", f.err)
			return
		}
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("closing embedded store: %w", err)
		}
		_ = s.fsCloser.Close()
		s.log.Info("embedded store closed")
	})
	return s.closeErr
}

var errClosed = fmt.Errorf("embedded store is closed: %w", spool.ErrUnavailable)

// usable reports whether the store may serve. Call with s.mu held.
func (s *Store) usable() error {
	if s.closed {
		return errClosed
	}
	if f := s.failure.Load(); f != nil {
		return fmt.Errorf("embedded store stopped after an earlier failure: %w", unavailable(f.err))
	}
	return nil
}

// fail stops the store: memory and disk may have diverged.
func (s *Store) fail(err error, fatal bool) {
	if s.failure.CompareAndSwap(nil, &failure{err: err, fatal: fatal}) {
		s.log.Error("embedded store failed; restart to recover from disk", "error", err)
	}
	s.synced.fail(err)
}

// unavailable wraps a cause with spool.ErrUnavailable.
func unavailable(err error) error { return fmt.Errorf("%w: %w", spool.ErrUnavailable, err) }

// translate maps a Pebble error to the spool sentinels.
func translate(op string, err error) error {
	if errors.Is(err, pebble.ErrNotFound) {
		return fmt.Errorf("embedded store: %s: %w", op, spool.ErrNotFound)
	}
	return fmt.Errorf("embedded store: %s: %w", op, unavailable(err))
}

// apply hands t's batch to the WAL without waiting for the sync, or undoes
// t's index changes if that fails. Call with s.mu held; the returned commit
// must be passed to finish.
func (s *Store) apply(t *txn, op string) (*commit, error) {
	if t.err != nil {
		t.rollback()
		return nil, translate(op, t.err)
	}
	if err := s.db.ApplyNoSyncWait(t.batch, pebble.Sync); err != nil {
		t.rollback()
		return nil, translate(op, err)
	}
	s.applied++
	s.inflight.Add(1)
	return &commit{batch: t.batch, seq: s.applied, op: op}, nil
}

// commit is a batch in the WAL, waiting for its fsync.
type commit struct {
	batch *pebble.Batch
	seq   uint64
	op    string
}

// snapshot returns a Pebble snapshot of what the indexes show now. Call with
// s.mu held; pass it to finish (or release it).
func (s *Store) snapshot() *pebble.Snapshot {
	s.inflight.Add(1)
	return s.db.NewSnapshot()
}

func (s *Store) release(snap *pebble.Snapshot) {
	_ = snap.Close()
	s.inflight.Done()
}

// bodyLoad asks finish to fill a returned record's payload and result.
type bodyLoad struct {
	j       *job
	rec     *store.Record
	payload bool
	result  bool
}

// after is what a method does once it has released s.mu: read bodies from
// the snapshot, then wait for its batch's sync (or, if it wrote nothing,
// for the sync of every batch its answer may rest on).
type after struct {
	commit  *commit
	barrier uint64
	snap    *pebble.Snapshot
	loads   []bodyLoad
}

func (s *Store) finish(a *after) error {
	var err error
	if a.snap != nil {
		err = s.loadAll(a.snap, a.loads)
		s.release(a.snap)
	}
	switch {
	case a.commit != nil:
		if werr := s.await(a.commit); werr != nil {
			return werr
		}
	case a.barrier > 0:
		if werr := s.synced.wait(a.barrier); werr != nil {
			return fmt.Errorf("embedded store: waiting for earlier writes: %w", unavailable(werr))
		}
	}
	return err
}

// await waits for c's fsync. A failed sync fails the store: the indexes
// already show the write and later writes may rest on it.
func (s *Store) await(c *commit) error {
	defer s.inflight.Done()
	err := c.batch.SyncWait()
	_ = c.batch.Close()
	if err != nil {
		err = fmt.Errorf("%s: syncing the WAL: %w", c.op, err)
		s.fail(err, false)
		return fmt.Errorf("embedded store: %w", unavailable(err))
	}
	s.synced.done(c.seq)
	return nil
}

func read(snap *pebble.Snapshot, k []byte) ([]byte, error) {
	v, closer, err := snap.Get(k)
	if err != nil {
		return nil, err
	}
	b := append(make([]byte, 0, len(v)), v...)
	return b, closer.Close()
}

// syncTracker knows up to which applied batch the WAL is synced. WAL syncs
// complete in order, so once batch n is synced every batch before it is.
type syncTracker struct {
	mu     sync.Mutex
	cond   sync.Cond
	synced uint64
	err    error
}

func (t *syncTracker) done(seq uint64) {
	t.mu.Lock()
	if seq > t.synced {
		t.synced = seq
	}
	t.mu.Unlock()
	t.cond.Broadcast()
}

func (t *syncTracker) fail(err error) {
	t.mu.Lock()
	if t.err == nil {
		t.err = err
	}
	t.mu.Unlock()
	t.cond.Broadcast()
}

func (t *syncTracker) wait(seq uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.synced < seq && t.err == nil {
		t.cond.Wait()
	}
	if t.synced >= seq {
		return nil
	}
	return t.err
}

// pebbleLogger sends Pebble's messages to the store's logger. Pebble calls
// Fatalf when it cannot go on (its commit pipeline is broken); the store is
// then failed, so that whoever recovers the panic gets ErrUnavailable from
// then on instead of a store that silently lost writes.
type pebbleLogger struct{ s *Store }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.s.log.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.s.log.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.s.log.Error(msg, "component", "pebble", "fatal", true)
	l.s.fail(errors.New("pebble: "+msg), true)
	panic("pebble: " + msg)
}
