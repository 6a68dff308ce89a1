package postgres

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// insertColumns are the spool_jobs columns Insert writes (all but seq).
const insertColumns = `id, queue, type, state, priority, attempt, max_attempts, rev, timeout_ns,
	backoff_base_ns, backoff_max_ns, run_at, created_at, ready_at, started_at, finished_at,
	lease_expires_at, cancel_requested, token, worker, idempotency_key, ordering_key,
	depends_on, tags, errors, progress, payload, result, callback_url`

// insertValues selects, from the unnested arguments, the values of
// insertColumns (empty strings meaning NULL).
const insertValues = `SELECT id, queue, type, state, priority, attempt, max_attempts, rev, timeout_ns,
    backoff_base_ns, backoff_max_ns, run_at, created_at, ready_at, started_at, finished_at,
    lease_expires_at, cancel_requested, token, worker, nullif(idempotency_key, ''), ordering_key,
    nullif(depends_on, '')::text[], nullif(tags, '')::text[],
    nullif(errors, '')::json, nullif(progress, '')::json, payload, result, callback_url`

// insertSQL inserts a batch in input order (seq follows it), skipping jobs
// whose (queue, idempotency key) is taken, then runs the admission check on
// what was actually inserted: $31/$32 name the bounded queues and their
// max_depth, in the order they appear in the batch; $33-$35 are
// spool_check_depth's exclusive, tickets and max_fast_gain. It returns the
// ids inserted. spool_check_depth raises SP001 when a queue is full, which
// aborts the statement and so the whole insert.
const insertSQL = `
WITH input AS (
    SELECT * FROM ` + unnestArgs + ` WITH ORDINALITY AS t(` + unnestColumns + `, ord)
), ins AS (
    INSERT INTO spool_jobs (` + insertColumns + `)
    ` + insertValues + `
    FROM input
    ORDER BY ord
    ON CONFLICT (queue, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, queue, state
), gained AS (
    SELECT l.queue, l.max_depth, l.ord, count(*) AS n
    FROM unnest($31::text[], $32::int8[]) WITH ORDINALITY AS l(queue, max_depth, ord)
    JOIN ins ON ins.queue = l.queue AND ins.state NOT IN ('succeeded', 'dead', 'cancelled')
    GROUP BY l.queue, l.max_depth, l.ord
)
SELECT (SELECT coalesce(array_agg(id), '{}') FROM ins),
       (SELECT spool_check_depth(array_agg(queue ORDER BY ord), array_agg(n ORDER BY ord),
                                 array_agg(max_depth ORDER BY ord), $33, $34, $35) FROM gained)`

// plainInsertSQL inserts a batch in input order (seq follows it) with no
// conflict check: Insert's fast path. The ordinality column is the scan's
// sort order, so ORDER BY costs no sort.
const plainInsertSQL = `
INSERT INTO spool_jobs (` + insertColumns + `)
` + insertValues + `
FROM ` + unnestArgs + ` WITH ORDINALITY AS t(` + unnestColumns + `, ord)
ORDER BY ord`

// freshInsertSQL is plainInsertSQL for batches of fresh jobs (see fresh),
// from freshArgs; the columns it leaves out take their defaults.
const freshInsertSQL = `
INSERT INTO spool_jobs (` + freshColumns + `, attempt, rev)
SELECT id, queue, type, state, priority, max_attempts, timeout_ns, backoff_base_ns,
    backoff_max_ns, run_at, created_at, ready_at, nullif(idempotency_key, ''), ordering_key,
    nullif(depends_on, '')::text[], nullif(tags, '')::text[], payload, callback_url, 0, 1
FROM ` + freshUnnestArgs + ` WITH ORDINALITY AS t(` + freshColumns + `, ord)
ORDER BY ord`

// checkDepthSQL is the admission check of the fast path, before
// plainInsertSQL in the same transaction, on gains counted from the batch.
const checkDepthSQL = `SELECT spool_check_depth($1::text[], $2::int8[], $3::int8[], $4, $5, $6)`

// keyedSQL reads, after insertSQL in the same transaction and only when
// it skipped a job, the job that holds each idempotency key of the batch: a new statement, so it sees the
// rows that made the insert skip a job even if they committed after the
// insert began. Bodies are read for other jobs only (own rows are known).
// A key without a job (its job was purged in between) raises SP002, which
// rolls the insert back to be tried again.
var keyedSQL = `
SELECT CASE WHEN j.id IS NULL THEN spool_fail('` + codeKeyVanished + `', 'the job holding an idempotency key was deleted during the insert') END,
       ` + colsWith("j", func(col string) string { return "CASE WHEN j.id = k.id THEN NULL ELSE " + col + " END" }) + `
FROM unnest($1::text[], $2::text[], $3::text[]) AS k(queue, key, id)
LEFT JOIN spool_jobs j ON j.queue = k.queue AND j.idempotency_key = k.key`

// Insert stores new jobs, all or none (see store.InsertParams). It first
// tries insertPlain: one round trip, one implicit transaction, a plain
// INSERT that fails if a job's idempotency key is taken. Only then (a
// repeated request, seldom) does it run insertSkipping: insertSQL, which
// skips the jobs whose key is taken, in an explicit transaction, followed
// by keyedSQL when a job was skipped.
func (s *Store) Insert(ctx context.Context, p store.InsertParams) ([]store.InsertResult, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	n := len(p.Jobs)
	ids := make(map[string]struct{}, n)
	for i, r := range p.Jobs {
		if err := store.CheckRecord(r); err != nil {
			return nil, spool.Invalidf("job %d of the insert: %v", i, err)
		}
		if _, ok := ids[r.ID]; ok {
			return nil, spool.Invalidf("job id %q appears twice in one insert", r.ID)
		}
		ids[r.ID] = struct{}{}
	}
	if n == 0 {
		return []store.InsertResult{}, nil
	}

	// Only the first job of each (queue, key) is sent; later ones of the
	// batch are duplicates of it.
	type key = insertKey
	dupOf := make([]int, n)
	first := make(map[key]int)
	var send []int
	var kq, kk, kid []string
	for i, r := range p.Jobs {
		dupOf[i] = -1
		if r.IdempotencyKey != "" {
			k := key{r.Queue, r.IdempotencyKey}
			if f, ok := first[k]; ok {
				dupOf[i] = f
				continue
			}
			first[k] = i
			kq, kk, kid = append(kq, r.Queue), append(kk, r.IdempotencyKey), append(kid, r.ID)
		}
		send = append(send, i)
	}
	params := newJobParams(len(send))
	var limQueues []string
	var limits, gains []int64
	for _, i := range send {
		r := p.Jobs[i]
		if err := params.add(r, 1, "", true); err != nil {
			return nil, err
		}
		if limit, ok := p.MaxDepth[r.Queue]; ok && !r.State.Terminal() {
			k := slices.Index(limQueues, r.Queue)
			if k < 0 {
				k = len(limQueues)
				limQueues = append(limQueues, r.Queue)
				limits = append(limits, limit)
				gains = append(gains, 0)
			}
			gains[k]++
		}
	}
	orderKeys := orderingLocks(p.Jobs)

	var (
		inserted []string
		existing map[key]*store.Record
	)
	err := s.insertPlain(ctx, params, orderKeys, limQueues, gains, limits)
	switch {
	case err == nil:
		inserted = make([]string, len(send))
		for k, i := range send {
			inserted[k] = p.Jobs[i].ID
		}
	case len(kq) > 0 && (sqlState(err) == pgerrUniqueViolation || sqlState(err) == codeQueueFull):
		// An idempotency key is taken (a repeated request, most likely),
		// or the queue looked full counting every job as new: the
		// insert runs again, skipping the jobs whose key is taken and
		// admitting only what it inserts.
		err = s.insertSkipping(ctx, params, orderKeys, limQueues, limits, kq, kk, kid, len(send), &inserted, &existing)
	}
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == codeQueueFull {
			return nil, queueFull(pe)
		}
		return nil, interpretError(fmt.Sprintf("inserting %d jobs", n), err)
	}
	return s.insertResults(ctx, p.Jobs, send, dupOf, inserted, existing)
}

// insertPlain is Insert's fast path, one round trip and one implicit
// transaction: the ordering keys' locks, the admission check on the gains
// counted from the batch, and a plain INSERT (freshInsertSQL when it can),
// which fails with a unique violation if an idempotency key (or an id) is
// taken. Without ON CONFLICT PostgreSQL skips speculative insertion (a
// pre-check of the idempotency index and a speculative lock per row), and
// the statement neither returns ids nor materializes its rows for an
// admission join. The check runs before the insert, whose counter trigger
// would otherwise have counted the batch already; it counts every job
// sent as new, so with idempotency keys a refusal may be wrong (a
// repeated job does not count), and Insert then runs the careful path.
func (s *Store) insertPlain(ctx context.Context, params *jobParams, orderKeys, limQueues []string, gains, limits []int64) error {
	if params.fresh && len(params.id) >= copyMinJobs {
		return s.insertCopy(ctx, params, orderKeys, limQueues, gains, limits)
	}
	sql, args := freshInsertSQL, params.freshArgs()
	if !params.fresh {
		sql, args = plainInsertSQL, params.args()
	}
	exclusive := false
	return retry(ctx, func() error {
		b := &pgx.Batch{}
		if len(orderKeys) > 0 {
			b.Queue(orderLockSQL, orderKeys)
		}
		if len(limQueues) > 0 {
			b.Queue(checkDepthSQL, limQueues, gains, limits, exclusive, s.admission.tickets, s.admission.maxFastGain)
		}
		b.Queue(sql, args...)
		br := s.pool.SendBatch(ctx, b)
		var err error
		for range b.Len() {
			if _, e := br.Exec(); err == nil {
				err = e
			}
		}
		err = cmp.Or(err, br.Close())
		if sqlState(err) == codeAdmitExclusively {
			exclusive = true
		}
		return err
	})
}

// copyMinJobs is the smallest batch of fresh jobs insertPlain stores with
// COPY. COPY costs two more round trips than the one-statement insert
// (the explicit transaction's COMMIT, and the COPY after the checks),
// which a batch pays back on the server: PostgreSQL inserts the rows of a
// COPY a page at a time (one heap WAL record per page instead of one per
// row), with no unnest, array decoding or plan per statement. A single
// job gains nothing from it.
const copyMinJobs = 8

// insertCopy is insertPlain for a batch of fresh jobs, in one explicit
// transaction: BEGIN, the ordering keys' locks and the admission check
// (one round trip), then COPY into spool_jobs in input order, so that seq
// follows it (one), then COMMIT (one). The counter trigger runs once for
// the COPY as for an INSERT. A taken idempotency key (or id) fails the
// COPY with a unique violation, as it fails the plain insert.
func (s *Store) insertCopy(ctx context.Context, params *jobParams, orderKeys, limQueues []string, gains, limits []int64) error {
	data := params.copyData()
	exclusive := false
	return retry(ctx, func() error {
		err := s.pool.AcquireFunc(ctx, func(c *pgxpool.Conn) error {
			b := &pgx.Batch{}
			b.Queue("BEGIN")
			if len(orderKeys) > 0 {
				b.Queue(orderLockSQL, orderKeys)
			}
			if len(limQueues) > 0 {
				b.Queue(checkDepthSQL, limQueues, gains, limits, exclusive, s.admission.tickets, s.admission.maxFastGain)
			}
			err := c.SendBatch(ctx, b).Close()
			if err == nil {
				_, err = c.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(data), copySQL)
			}
			if err == nil {
				_, err = c.Exec(ctx, "COMMIT")
				return err
			}
			// Leave the connection idle for the pool (a connection still
			// in a transaction would be closed on release).
			if c.Conn().PgConn().TxStatus() != 'I' {
				if _, rbErr := c.Exec(context.WithoutCancel(ctx), "ROLLBACK"); rbErr != nil {
					return errors.Join(err, rbErr)
				}
			}
			return err
		})
		if sqlState(err) == codeAdmitExclusively {
			exclusive = true
		}
		return err
	})
}

// insertSkipping inserts the batch skipping the jobs whose idempotency key
// is taken (insertSQL), and reads the jobs that hold those keys (keyedSQL),
// in one transaction: the path of a repeated request.
func (s *Store) insertSkipping(ctx context.Context, params *jobParams, orderKeys, limQueues []string, limits []int64,
	kq, kk, kid []string, sent int, inserted *[]string, existing *map[insertKey]*store.Record) error {
	args := append(params.args(), limQueues, limits, false, s.admission.tickets, s.admission.maxFastGain)
	readKeyed := func(q queryer) error {
		*existing = make(map[insertKey]*store.Record, len(kq))
		rows, err := q.Query(ctx, keyedSQL, kq, kk, kid)
		for err == nil && rows.Next() {
			var r *store.Record
			if r, err = scanRecord(rows, nil); err == nil {
				(*existing)[insertKey{r.Queue, r.IdempotencyKey}] = r
			}
		}
		if rows != nil {
			rows.Close()
			err = cmp.Or(err, rows.Err())
		}
		return err
	}
	return retry(ctx, func() error {
		b := &pgx.Batch{}
		if len(orderKeys) > 0 {
			b.Queue(orderLockSQL, orderKeys)
		}
		b.Queue(insertSQL, args...)
		// The jobs holding the keys that made the insert skip a job are
		// read in the same transaction, and only when a job was skipped.
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			br := tx.SendBatch(ctx, b)
			var err error
			if len(orderKeys) > 0 {
				_, err = br.Exec()
			}
			if err == nil {
				err = br.QueryRow().Scan(inserted, nil)
			}
			if err = cmp.Or(err, br.Close()); err != nil {
				return err
			}
			if len(*inserted) < sent {
				return readKeyed(tx)
			}
			return nil
		})
		if sqlState(err) == codeAdmitExclusively {
			args[len(args)-3] = true
		}
		return err
	})
}

// insertKey is an idempotency key in its queue.
type insertKey struct{ queue, key string }

// insertResults builds Insert's answer from the ids inserted and the jobs
// found holding the keys of the others, and reports the new jobs.
func (s *Store) insertResults(ctx context.Context, jobs []*store.Record, send, dupOf []int, inserted []string,
	existing map[insertKey]*store.Record) ([]store.InsertResult, error) {
	n := len(jobs)
	isNew := make(map[string]bool, len(inserted))
	for _, id := range inserted {
		isNew[id] = true
	}
	res := make([]store.InsertResult, n)
	for _, i := range send {
		r := jobs[i]
		if isNew[r.ID] {
			out := stored(r)
			out.Rev, out.Token = 1, ""
			res[i] = store.InsertResult{Record: out}
			continue
		}
		ex := existing[insertKey{r.Queue, r.IdempotencyKey}]
		if r.IdempotencyKey == "" || ex == nil {
			return nil, fmt.Errorf("postgres store: inserting %d jobs: job %q was neither inserted nor found", n, r.ID)
		}
		if ex.ID == r.ID {
			// The job was already stored under this very id and key (an
			// insert repeated after an unknown outcome): read it whole.
			var err error
			if ex, err = s.Get(ctx, r.ID); err != nil {
				return nil, err
			}
		}
		res[i] = store.InsertResult{Record: ex, Existing: true}
	}
	for i, f := range dupOf {
		if f >= 0 {
			res[i] = store.InsertResult{Record: res[f].Record.Clone(), Existing: true}
		}
	}
	created := make([]*store.Record, 0, len(inserted))
	for _, r := range res {
		if !r.Existing {
			created = append(created, r.Record)
		}
	}
	s.written(created)
	return res, nil
}

// queueFull builds the *spool.QueueFullError of spool_check_depth's SP001.
func queueFull(pe *pgconn.PgError) error {
	var d struct {
		Queue    string `json:"queue"`
		Depth    int64  `json:"depth"`
		MaxDepth int64  `json:"max_depth"`
	}
	if err := json.Unmarshal([]byte(pe.Detail), &d); err != nil {
		return fmt.Errorf("postgres store: %w: %s", spool.ErrQueueFull, pe.Message)
	}
	return &spool.QueueFullError{Queue: d.Queue, Depth: d.Depth, MaxDepth: d.MaxDepth}
}

// leaseSQL claims ready, due jobs in one statement: for each queue in
// order ($1, with ORDINALITY), its ready jobs by (priority desc, seq) from
// the spool_jobs_ready partial index, locked with SKIP LOCKED so that
// concurrent leasers take disjoint jobs without waiting. The nested loop
// reads the queues lazily and the outer LIMIT stops it, so a later queue is
// not even read (nor its rows locked) once earlier ones filled $3. Each job
// gets token $4[row number]. A job with an ordering key is taken only if
// no older job of its key is still to finish (see flow.go).
var leaseSQL = leaseStatement("unnest($1::text[]) WITH ORDINALITY AS q(name, ord)", "$3")

// leaseStatement is the lease statement over the queues of from, taking
// at most limit jobs of each.
func leaseStatement(from, limit string) string {
	return `
WITH picked AS MATERIALIZED (
    SELECT j.id, q.ord
    FROM ` + from + `
    CROSS JOIN LATERAL (
        SELECT id FROM spool_jobs
        WHERE state = 'ready' AND queue = q.name AND run_at <= $2
          AND ` + orderingHeadSQL + `
        ORDER BY priority DESC, seq
        LIMIT ` + limit + `
        FOR UPDATE SKIP LOCKED
    ) j
    LIMIT $3
), numbered AS (
    SELECT id, ord, row_number() OVER () AS rn FROM picked
)
UPDATE spool_jobs j
SET state = 'active', token = ($4::text[])[n.rn], attempt = j.attempt + 1, worker = $5,
    started_at = $2, lease_expires_at = $6, rev = j.rev + 1
FROM numbered n
WHERE j.id = n.id
  -- Lets the planner probe the primary key instead of hashing the table.
  AND j.id = ANY (ARRAY(SELECT id FROM picked))
RETURNING n.ord, j.seq, ` + cols("j", true)
}

// leaseFirstRound bounds the tokens made before knowing how many jobs are
// ready: a lease for many jobs that finds few does not make (and send) a
// token for each job it might have had.
const leaseFirstRound = 64

// Lease claims up to p.Max ready jobs (see store.LeaseParams). Each
// statement commits on its own; if a second round is needed (more than
// leaseFirstRound jobs wanted and available) and fails, the jobs of the
// first are returned: they are leased.
func (s *Store) Lease(ctx context.Context, p store.LeaseParams) ([]*store.Record, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	if p.Max <= 0 {
		return nil, spool.Invalidf("lease max must be positive, got %d", p.Max)
	}
	newToken := p.NewToken
	if newToken == nil {
		newToken = rand.Text
	}
	var queues []string
	for _, q := range p.Queues {
		if !slices.Contains(queues, q) {
			queues = append(queues, q)
		}
	}
	out := []*store.Record{}
	if len(queues) == 0 {
		return out, nil
	}
	if limited := s.limitedQueues(queues, p.Limits); len(limited) > 0 {
		return s.leaseLimited(ctx, queues, limited, newToken, p)
	}
	want := p.Max
	for round := 0; want > 0; round++ {
		n := want
		if round == 0 {
			n = min(n, leaseFirstRound)
		}
		tokens := make([]string, n)
		for i := range tokens {
			tokens[i] = newToken()
		}
		var recs []*store.Record
		err := retry(ctx, func() error {
			var err error
			recs, err = s.leaseOnce(ctx, queues, n, tokens, p)
			return err
		})
		if err != nil {
			if len(out) > 0 {
				s.log.Warn("leasing: second round failed; returning the jobs of the first", "error", err, "leased", len(out))
				return out, nil
			}
			return nil, interpretError(fmt.Sprintf("leasing from %q", queues), err)
		}
		out = append(out, recs...)
		if len(recs) < n {
			break
		}
		want -= n
	}
	return out, nil
}

func (s *Store) leaseOnce(ctx context.Context, queues []string, n int, tokens []string, p store.LeaseParams) ([]*store.Record, error) {
	return leaseRows(ctx, s.pool, leaseSQL, queues, p.Now, int64(n), tokens, p.Worker, p.ExpiresAt)
}

// leaseRows runs a lease statement and returns its records in queue order,
// priority, FIFO.
func leaseRows(ctx context.Context, q queryer, sql string, args ...any) ([]*store.Record, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	type leased struct {
		ord, seq int64
		rec      *store.Record
	}
	var got []leased
	for rows.Next() {
		var l leased
		if l.rec, err = scanRecord(rows, &l.ord, &l.seq); err != nil {
			return nil, err
		}
		got = append(got, l)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// RETURNING has no order: restore queue order, priority, FIFO.
	slices.SortFunc(got, func(a, b leased) int {
		return cmp.Or(cmp.Compare(a.ord, b.ord), cmp.Compare(b.rec.Priority, a.rec.Priority), cmp.Compare(a.seq, b.seq))
	})
	recs := make([]*store.Record, len(got))
	for i, l := range got {
		recs[i] = l.rec
	}
	return recs, nil
}

// updateSQL applies a round of compare-and-set changes (at most one per
// job) in one statement. It first locks every named job in id order, so
// that concurrent updates of overlapping sets (two nodes expiring the same
// leases, acks racing an expiry) cannot deadlock; the UPDATE then writes
// the rows whose rev still matches (READ COMMITTED re-checks the condition
// on the latest version). id, queue, created_at and idempotency_key are
// fixed by the engine (see store.Change), callback_url is set at enqueue, and payload is never rewritten, so
// they are not written. Per change it returns the input order, the current
// rev (NULL: no such job) and the stored record (NULL: not written).
var updateSQL = `
WITH c AS (
    SELECT * FROM ` + unnestArgs + ` WITH ORDINALITY AS c(` + unnestColumns + `, ord)
), locked AS MATERIALIZED (
    SELECT j.id, j.rev FROM spool_jobs j WHERE j.id = ANY($1::text[]) ORDER BY j.id FOR UPDATE
), upd AS (
    UPDATE spool_jobs j SET
        type = c.type, state = c.state, priority = c.priority,
        attempt = c.attempt, max_attempts = c.max_attempts, rev = j.rev + 1,
        timeout_ns = c.timeout_ns, backoff_base_ns = c.backoff_base_ns, backoff_max_ns = c.backoff_max_ns,
        run_at = c.run_at, ready_at = c.ready_at, started_at = c.started_at,
        finished_at = c.finished_at, lease_expires_at = c.lease_expires_at,
        cancel_requested = c.cancel_requested, token = c.token, worker = c.worker,
        ordering_key = c.ordering_key,
        depends_on = nullif(c.depends_on, '')::text[], tags = nullif(c.tags, '')::text[],
        errors = nullif(c.errors, '')::json, progress = nullif(c.progress, '')::json,
        result = CASE WHEN c.has_result THEN c.result ELSE j.result END
    FROM c
    WHERE j.id = c.id AND j.rev = c.rev
      -- Every row is locked (in id order) before any is written.
      AND j.id = ANY ((SELECT array_agg(id) FROM locked)::text[])
    RETURNING ` + cols("j", true) + `
)
SELECT c.ord, l.rev, ` + cols("u", true) + `
FROM c
LEFT JOIN locked l ON l.id = c.id
LEFT JOIN upd u ON u.id = c.id
ORDER BY c.ord`

// Update applies compare-and-set changes, each on its own, in one
// transaction (see store.Store). Changes naming the same job apply in
// order, one statement per round.
func (s *Store) Update(ctx context.Context, changes []store.Change) ([]*store.Record, []error, error) {
	if err := s.begin(ctx); err != nil {
		return nil, nil, err
	}
	for i, c := range changes {
		if err := store.CheckRecord(c.Record); err != nil {
			return nil, nil, spool.Invalidf("change %d of the update: %v", i, err)
		}
		for _, r := range c.Then {
			if err := store.CheckRecord(r); err != nil {
				return nil, nil, spool.Invalidf("a job to store with change %d: %v", i, err)
			}
		}
	}
	recs := make([]*store.Record, len(changes))
	errs := make([]error, len(changes))
	if len(changes) == 0 {
		return recs, errs, nil
	}
	// Round k holds the k-th change of each job.
	var rounds [][]int
	seen := make(map[string]int, len(changes))
	for i, c := range changes {
		k := seen[c.Record.ID]
		seen[c.Record.ID] = k + 1
		if k == len(rounds) {
			rounds = append(rounds, nil)
		}
		rounds[k] = append(rounds[k], i)
	}
	params := make([]*jobParams, len(rounds))
	for k, round := range rounds {
		params[k] = newJobParams(len(round))
		for _, i := range round {
			r := changes[i].Record
			if err := params[k].add(r, r.Rev, r.Token, false); err != nil {
				return nil, nil, err
			}
		}
	}
	then := hasThen(changes)
	var created []*store.Record
	err := retry(ctx, func() error {
		clear(recs)
		clear(errs)
		if len(rounds) == 1 && !then {
			return s.updateRound(ctx, s.pool, changes, rounds[0], params[0], recs, errs)
		}
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			for k, round := range rounds {
				if err := s.updateRound(ctx, tx, changes, round, params[k], recs, errs); err != nil {
					return err
				}
			}
			var err error
			created, err = s.insertThen(ctx, tx, changes, errs)
			return err
		})
	})
	if err != nil {
		return nil, nil, interpretError(fmt.Sprintf("updating %d jobs", len(changes)), err)
	}
	s.written(append(recs, created...))
	return recs, errs, nil
}

// written tells the other nodes, and NextDue, about committed records:
// ready ones wake their queue, finished ones their job's waiters, and
// scheduled ones may be due before NextDue thought.
func (s *Store) written(recs []*store.Record) {
	var ready, finished []string
	for _, r := range recs {
		if r == nil {
			continue
		}
		switch {
		case r.State == spool.StateReady:
			if !slices.Contains(ready, r.Queue) {
				ready = append(ready, r.Queue)
			}
		case r.State == spool.StateScheduled:
			s.due.lower(r.RunAt)
			if s.capped(r.Queue) && !slices.Contains(ready, r.Queue) {
				ready = append(ready, r.Queue) // left active: a place is free
			}
		case r.State.Terminal():
			finished = append(finished, r.ID)
			if (r.OrderingKey != "" || s.capped(r.Queue)) && !slices.Contains(ready, r.Queue) {
				// The key's next job, or another job of a capped
				// queue, may start now.
				ready = append(ready, r.Queue)
			}
		}
	}
	s.sender.add(ready, nil, finished)
}

type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func (s *Store) updateRound(ctx context.Context, q queryer, changes []store.Change, round []int, p *jobParams,
	recs []*store.Record, errs []error) error {
	rows, err := q.Query(ctx, updateSQL, p.args()...)
	if err != nil {
		return err
	}
	defer rows.Close()
	skip := make([]any, 2+len(jobColumns))
	for rows.Next() {
		var (
			ord int64
			cur *int64
		)
		skip[0], skip[1] = &ord, &cur
		if rows.RawValues()[2] == nil { // not written
			if err := rows.Scan(skip...); err != nil {
				return err
			}
			i := round[ord-1]
			r := changes[i].Record
			if cur == nil {
				errs[i] = spool.NotFoundf("job %q not found", r.ID)
			} else {
				errs[i] = spool.Conflictf("job %q changed since revision %d (now %d)", r.ID, r.Rev, *cur)
			}
			continue
		}
		rec, err := scanRecord(rows, &ord, &cur)
		if err != nil {
			return err
		}
		i := round[ord-1]
		if changes[i].NoBodies {
			rec.Payload, rec.Result = nil, nil
		}
		recs[i] = rec
	}
	return rows.Err()
}

// promoteSQL makes due scheduled jobs ready, earliest run_at first. SKIP
// LOCKED lets several nodes promote at once, each taking other jobs; a job
// changed meanwhile is re-checked on its latest version.
const promoteSQL = `
WITH due AS MATERIALIZED (
    SELECT id FROM spool_jobs
    WHERE state = 'scheduled' AND run_at <= $1
    ORDER BY run_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE spool_jobs j SET state = 'ready', ready_at = $1, rev = j.rev + 1
WHERE j.id = ANY (ARRAY(SELECT id FROM due))
RETURNING j.queue`

// nextDueSQL reads the earliest run_at of a scheduled job (one probe of
// spool_jobs_scheduled), after promoteSQL in the same round trip: a new
// statement, so it sees the promotion.
const nextDueSQL = `SELECT min(run_at) FROM spool_jobs WHERE state = 'scheduled'`

// PromoteDue makes up to limit scheduled jobs with run_at <= now ready and
// returns the queues that received jobs, by name. It also refreshes what
// NextDue answers.
func (s *Store) PromoteDue(ctx context.Context, now time.Time, limit int) ([]string, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, spool.Invalidf("promote limit must be positive, got %d", limit)
	}
	queues := []string{}
	var next *time.Time
	mark := s.due.mark()
	err := retry(ctx, func() error {
		queues = queues[:0]
		b := &pgx.Batch{}
		b.Queue(promoteSQL, now, int64(limit))
		b.Queue(nextDueSQL)
		br := s.pool.SendBatch(ctx, b)
		rows, err := br.Query()
		for err == nil && rows.Next() {
			var q string
			err = rows.Scan(&q)
			queues = append(queues, q)
		}
		if rows != nil {
			rows.Close()
			err = cmp.Or(err, rows.Err())
		}
		if err == nil {
			err = br.QueryRow().Scan(&next)
		}
		return cmp.Or(err, br.Close())
	})
	if err != nil {
		return nil, interpretError("promoting due jobs", err)
	}
	var at time.Time
	if next != nil {
		at = next.UTC()
	}
	s.due.refresh(mark, at, now)
	slices.Sort(queues)
	queues = slices.Compact(queues)
	s.sender.add(queues, nil, nil)
	return queues, nil
}

// purgeSQL deletes a queue's oldest terminal jobs finished before $2.
const purgeSQL = `
WITH old AS MATERIALIZED (
    SELECT id FROM spool_jobs
    WHERE queue = $1 AND state IN ('succeeded', 'dead', 'cancelled')
      AND coalesce(finished_at, '-infinity'::timestamptz) < $2
    ORDER BY coalesce(finished_at, '-infinity'::timestamptz)
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
DELETE FROM spool_jobs WHERE id = ANY (ARRAY(SELECT id FROM old))`

// Purge deletes up to limit terminal jobs of queue finished before before,
// oldest first, with their idempotency keys, and returns how many.
func (s *Store) Purge(ctx context.Context, queue string, before time.Time, limit int) (int, error) {
	if err := s.begin(ctx); err != nil {
		return 0, err
	}
	if limit <= 0 {
		return 0, spool.Invalidf("purge limit must be positive, got %d", limit)
	}
	var n int64
	err := retry(ctx, func() error {
		tag, err := s.pool.Exec(ctx, purgeSQL, queue, before, int64(limit))
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, interpretError(fmt.Sprintf("purging queue %q", queue), err)
	}
	return int(n), nil
}

// SetQueueConfig replaces a queue's overrides, creating the queue.
func (s *Store) SetQueueConfig(ctx context.Context, name string, cfg spool.QueueConfig) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	if name == "" {
		return spool.Invalidf("queue name is empty")
	}
	b, err := json.Marshal(&cfg)
	if err != nil {
		return spool.Invalidf("config of queue %q cannot be stored: %v", name, err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO spool_queues (name, config) VALUES ($1, $2::jsonb)
		ON CONFLICT (name) DO UPDATE SET config = excluded.config`, name, string(b))
	if err != nil {
		return interpretError(fmt.Sprintf("setting the config of queue %q", name), err)
	}
	s.sender.add(nil, []string{name}, nil)
	return nil
}
