package embedded

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/diskspace"
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

	failure atomic.Pointer[failure]
	failed  chan struct{} // closed by the first fail
	synced  syncTracker
	// opened is set once Pebble's Open has returned; before, a disk-full
	// background error aborts Open (openPebble).
	opened    atomic.Bool
	openAbort chan error
	// quiet silences Pebble's messages once an Open was abandoned.
	quiet    atomic.Bool
	limiter  logLimiter
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
	s := &Store{log: opts.Logger, x: newIndex(), nextSeq: 1,
		failed: make(chan struct{}), openAbort: make(chan error, 1)}
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
	el := pebble.MakeLoggingEventListener(pebbleLogger{s})
	logBackground := el.BackgroundError
	el.BackgroundError = func(err error) {
		logBackground(err)
		s.backgroundError(err)
	}
	po.EventListener = &el
	start := time.Now()
	db, err := s.openPebble(dir, po)
	if err != nil {
		if !errors.Is(err, errOpenAbandoned) {
			_ = fsCloser.Close()
		}
		return nil, fmt.Errorf("opening embedded store in %s: %w", dir, unavailable(err))
	}
	s.db = db
	s.opened.Store(true)
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
		s.log.Error("embedded store failed; restart to recover from disk", "error", err, "disk_full", diskFull(err))
		close(s.failed)
	}
	s.synced.fail(err)
}

// Failed is closed when the store stops serving after a failure (a write
// to disk that failed, Pebble giving up): it cannot recover in place (a
// failed WAL write is final for Pebble's log writer, and memory may be
// ahead of disk), so its owner should stop and restart, which rebuilds
// the indexes from what is on disk. Err says why.
func (s *Store) Failed() <-chan struct{} { return s.failed }

// Err is nil while the store serves, else the failure that stopped it
// (wrapping spool.ErrUnavailable, and spool.ErrDiskFull when the disk was
// full).
func (s *Store) Err() error {
	if f := s.failure.Load(); f != nil {
		return fmt.Errorf("embedded store stopped after a failure: %w", unavailable(f.err))
	}
	return nil
}

// backgroundError is Pebble's report of a failed flush or compaction. A
// full disk is not retried: during Open, Pebble would retry the flush of
// the replayed WAL forever, so Open gives up (openPebble); later, flushes
// that cannot write would stall every write once the memtables are full,
// so the store fails and its owner restarts it instead of hanging.
func (s *Store) backgroundError(err error) {
	if !diskFull(err) {
		return
	}
	if !s.opened.Load() {
		select {
		case s.openAbort <- err:
		default:
		}
		return
	}
	s.fail(fmt.Errorf("writing to disk in the background (flush or compaction): %w", err), false)
}

// abandoned counts the Opens given up that still run (tests wait for them).
var abandoned sync.WaitGroup

// errOpenAbandoned marks an Open given up while Pebble's goroutine still
// runs (it holds the directory's lock until the process exits).
var errOpenAbandoned = errors.New("open abandoned")

// openPebble opens Pebble, but gives up as soon as a flush during Open
// fails for a full disk: Pebble would retry it forever. The abandoned
// Open keeps running in the background, silenced, until the process
// exits (which is what a caller does with this error).
func (s *Store) openPebble(dir string, po *pebble.Options) (*pebble.DB, error) {
	type result struct {
		db  *pebble.DB
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- result{err: fmt.Errorf("pebble: %v", v)}
			}
		}()
		db, err := pebble.Open(dir, po)
		done <- result{db, err}
	}()
	select {
	case r := <-done:
		if r.err != nil && diskFull(r.err) {
			return nil, fmt.Errorf("%s: %w", diskFullAdvice(dir), r.err)
		}
		return r.db, r.err
	case err := <-s.openAbort:
		s.quiet.Store(true)
		abandoned.Add(1)
		go func() { // should Open return after all, close it
			defer abandoned.Done()
			if r := <-done; r.db != nil {
				_ = r.db.Close()
			}
			_ = s.fsCloser.Close()
		}()
		return nil, fmt.Errorf("%s: %w: %w", diskFullAdvice(dir), errOpenAbandoned, err)
	}
}

// diskFullAdvice says what to do about a disk too full to open the store.
func diskFullAdvice(dir string) string {
	free := "unknown"
	if u, err := diskspace.Stat(dir); err == nil {
		free = diskspace.FormatBytes(u.Free)
	}
	return fmt.Sprintf("the disk of %s is full (%s free): the store cannot write the jobs it recovers from its log; free some space and start again (nothing stored is lost)", dir, free)
}

// diskFull reports whether err comes from a full disk (or quota).
func diskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// unavailable wraps a cause with spool.ErrUnavailable, and with
// spool.ErrDiskFull too when the disk was full.
func unavailable(err error) error {
	if diskFull(err) {
		return fmt.Errorf("%w: %w: %w", spool.ErrUnavailable, spool.ErrDiskFull, err)
	}
	return fmt.Errorf("%w: %w", spool.ErrUnavailable, err)
}

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
	if l.s.quiet.Load() {
		return
	}
	l.s.log.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

// Errorf logs Pebble's errors, at most logBurst in logWindow: a disk that
// fails makes Pebble retry, and report, many times a second.
func (l pebbleLogger) Errorf(format string, args ...any) {
	if l.s.quiet.Load() {
		return
	}
	ok, dropped := l.s.limiter.allow(time.Now())
	if !ok {
		return
	}
	if dropped > 0 {
		l.s.log.Error(fmt.Sprintf(format, args...), "component", "pebble", "suppressed_before", dropped)
		return
	}
	l.s.log.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Rate of Pebble's error messages that are logged.
const (
	logBurst  = 5
	logWindow = 10 * time.Second
)

// logLimiter lets logBurst messages through in each logWindow and counts
// the others, reported with the next one let through.
type logLimiter struct {
	mu      sync.Mutex
	start   time.Time
	n       int
	dropped int
}

func (l *logLimiter) allow(now time.Time) (ok bool, dropped int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= logWindow {
		l.start, l.n = now, 0
	}
	if l.n >= logBurst {
		l.dropped++
		return false, 0
	}
	l.n++
	dropped, l.dropped = l.dropped, 0
	return true, dropped
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.s.log.Error(msg, "component", "pebble", "fatal", true)
	l.s.fail(errors.New("pebble: "+msg), true)
	panic("pebble: " + msg)
}
