package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
	"github.com/spoolq/spool/internal/store/postgres"
	"github.com/spoolq/spool/internal/store/storetest"
)

// The tests run against the server at SPOOL_TEST_POSTGRES_URL
// (scripts/with-postgres starts a throwaway one), each on a schema of its
// own so that they run in parallel.
const urlEnv = "SPOOL_TEST_POSTGRES_URL"

func TestMain(m *testing.M) {
	code := m.Run()
	admin.close()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// testURL returns the server's URL. Without one the test is skipped, except
// under CI, where a test that needs PostgreSQL must fail loudly.
func testURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(urlEnv)
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set and CI=true: the PostgreSQL tests must run (wrap the command in scripts/with-postgres)", urlEnv)
		}
		t.Skipf("%s is not set; scripts/with-postgres starts a throwaway PostgreSQL for the tests", urlEnv)
	}
	return u
}

// admin is a small pool outside any test schema: it creates and drops
// schemas and checks what the stores wrote.
var admin adminPool

type adminPool struct {
	once sync.Once
	pool *pgxpool.Pool
	err  error
}

func (a *adminPool) get(t testing.TB) *pgxpool.Pool {
	t.Helper()
	url := testURL(t)
	a.once.Do(func() {
		cfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			a.err = err
			return
		}
		cfg.MaxConns = 4
		a.pool, a.err = pgxpool.NewWithConfig(context.Background(), cfg)
	})
	require.NoError(t, a.err)
	return a.pool
}

func (a *adminPool) close() {
	if a.pool != nil {
		a.pool.Close()
	}
}

// freshSchema names a new schema (the store's migrations create it) and
// drops it when the test ends, after the stores opened on it are closed.
func freshSchema(t testing.TB) string {
	t.Helper()
	pool := admin.get(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		_, err := pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE")
		if err != nil {
			t.Errorf("dropping schema %s: %v", name, err)
		}
	})
	return name
}

func open(t testing.TB, schema string) *postgres.Store {
	t.Helper()
	return openWith(t, postgres.Options{Schema: schema, MaxConns: 8})
}

func openWith(t testing.TB, opts postgres.Options) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), testURL(t), opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func TestConformance(t *testing.T) {
	testURL(t)
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, freshSchema(t)) })
}

// TestReopen runs the durability checks with "reopen" meaning a new Store
// (a new pool, as after a restart) on the same schema.
func TestReopen(t *testing.T) {
	testURL(t)
	var schemas sync.Map // dir -> schema
	storetest.RunReopen(t, func(t *testing.T, dir string) store.Store {
		schema, ok := schemas.Load(dir)
		if !ok {
			schema, _ = schemas.LoadOrStore(dir, freshSchema(t))
		}
		return open(t, schema.(string))
	})
}

// job builds a ready job of queue.
func job(queue string) *store.Record {
	now := time.Date(2031, time.March, 4, 5, 6, 7, 0, time.UTC)
	return &store.Record{Job: spool.Job{
		ID: uuid.Must(uuid.NewV7()).String(), Queue: queue, Type: "t", Payload: []byte(`{"n":1}`),
		State: spool.StateReady, RunAt: now, MaxAttempts: 3, CreatedAt: now, ReadyAt: &now,
	}}
}

func insert(t testing.TB, s store.Store, recs ...*store.Record) {
	t.Helper()
	_, err := s.Insert(context.Background(), store.InsertParams{Jobs: recs})
	require.NoError(t, err)
}

func TestConcurrentOpenMigratesOnce(t *testing.T) {
	t.Parallel()
	url := testURL(t)
	schema := freshSchema(t)
	const n = 6
	stores := make([]*postgres.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = postgres.Open(t.Context(), url, postgres.Options{Schema: schema, MaxConns: 2})
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i], "store %d", i)
		t.Cleanup(func() { require.NoError(t, stores[i].Close()) })
	}
	var versions, migrations int
	err := admin.get(t).QueryRow(t.Context(),
		fmt.Sprintf(`SELECT count(*), max(version) FROM %s.spool_migrations`, pgx.Identifier{schema}.Sanitize())).
		Scan(&migrations, &versions)
	require.NoError(t, err)
	require.Equal(t, postgres.LatestVersion(), versions)
	require.Equal(t, postgres.LatestVersion(), migrations, "each migration applied once")

	// Every store works on the one schema.
	r := job("q")
	insert(t, stores[0], r)
	for i, s := range stores {
		g, err := s.Get(t.Context(), r.ID)
		require.NoError(t, err, "store %d", i)
		require.Equal(t, r.ID, g.ID)
	}
}

func TestMigrationVersions(t *testing.T) {
	t.Parallel()
	url := testURL(t)
	ms, err := postgres.Migrations()
	require.NoError(t, err)
	require.NotEmpty(t, ms)
	require.Equal(t, len(ms), postgres.LatestVersion())

	t.Run("SkipMigrationsNeedsAMigratedSchema", func(t *testing.T) {
		t.Parallel()
		schema := freshSchema(t)
		_, err := postgres.Open(t.Context(), url, postgres.Options{Schema: schema, SkipMigrations: true})
		require.ErrorContains(t, err, "run the migrations")
		s := open(t, schema) // migrates
		require.NoError(t, s.Migrate(t.Context()), "migrating again is a no-op")
		s2, err := postgres.Open(t.Context(), url, postgres.Options{Schema: schema, SkipMigrations: true})
		require.NoError(t, err)
		require.NoError(t, s2.Close())
	})

	t.Run("NewerSchemaRefused", func(t *testing.T) {
		t.Parallel()
		schema := freshSchema(t)
		open(t, schema)
		_, err := admin.get(t).Exec(t.Context(), fmt.Sprintf(`INSERT INTO %s.spool_migrations (version, name) VALUES (9999, 'future')`,
			pgx.Identifier{schema}.Sanitize()))
		require.NoError(t, err)
		_, err = postgres.Open(t.Context(), url, postgres.Options{Schema: schema})
		require.ErrorContains(t, err, "newer than this build")
	})
}

// TestConcurrentLeasing: 8 goroutines on two stores (two nodes) lease and
// complete jobs of two queues; no job is leased twice and every job ends
// succeeded.
func TestConcurrentLeasing(t *testing.T) {
	t.Parallel()
	schema := freshSchema(t)
	nodes := []*postgres.Store{open(t, schema), open(t, schema)}
	const jobs, workers = 600, 8
	for i := 0; i < jobs; i += 100 {
		batch := make([]*store.Record, 100)
		for k := range batch {
			batch[k] = job(fmt.Sprintf("q%d", k%2))
			batch[k].Priority = k % 3
		}
		insert(t, nodes[0], batch...)
	}
	var mu sync.Mutex
	leased := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	var tokens atomic.Int64
	for w := range workers {
		s := nodes[w%2]
		wg.Go(func() {
			now := time.Date(2031, time.March, 4, 5, 6, 8, 0, time.UTC)
			for {
				recs, err := s.Lease(t.Context(), store.LeaseParams{
					Queues: []string{"q0", "q1"}, Max: 1 + w%5, Worker: fmt.Sprint("w", w), Now: now,
					ExpiresAt: now.Add(time.Minute), NewToken: func() string { return fmt.Sprint("tok-", tokens.Add(1)) },
				})
				if err != nil {
					errs <- err
					return
				}
				if len(recs) == 0 {
					return
				}
				mu.Lock()
				for _, r := range recs {
					leased[r.ID]++
				}
				mu.Unlock()
				changes := make([]store.Change, len(recs))
				for i, r := range recs {
					r.State, r.FinishedAt, r.Token = spool.StateSucceeded, &now, ""
					changes[i] = store.Change{Record: r}
				}
				_, cerrs, err := s.Update(t.Context(), changes)
				if err != nil {
					errs <- err
					return
				}
				for _, e := range cerrs {
					if e != nil {
						errs <- e
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, leased, jobs)
	for id, n := range leased {
		require.Equal(t, 1, n, "job %s leased %d times", id, n)
	}
	var total int64
	for _, q := range []string{"q0", "q1"} {
		qr, err := nodes[1].Queue(t.Context(), q)
		require.NoError(t, err)
		total += qr.Counts[spool.StateSucceeded]
		require.Zero(t, qr.Counts[spool.StateReady]+qr.Counts[spool.StateActive])
	}
	require.EqualValues(t, jobs, total)
	requireCountersMatch(t, schema)
}

// TestConcurrentAdmissionIsExact: producers on two nodes race to fill a
// bounded queue with batches of one to three jobs; no insert is refused
// while its jobs fit, and the queue never holds more than max_depth. Run
// with the default tuning (a small queue: every insert is admitted
// exclusively) and with a small fast-path headroom, so that the queue goes
// from the fast path to the exclusive one on the way.
func TestConcurrentAdmissionIsExact(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		tickets     int32
		maxFastGain int64
		maxDepth    int64
	}{
		{name: "Default", maxDepth: 37},
		{name: "FastThenExclusive", tickets: 4, maxFastGain: 2, maxDepth: 45}, // headroom 8
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			schema := freshSchema(t)
			opts := postgres.WithAdmission(postgres.Options{Schema: schema, MaxConns: 6}, tc.tickets, tc.maxFastGain)
			nodes := []*postgres.Store{openWith(t, opts), openWith(t, opts)}
			const producers = 8
			var admitted, full atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, producers)
			for p := range producers {
				s := nodes[p%2]
				wg.Go(func() {
					for i := 0; ; i++ {
						batch := make([]*store.Record, 1+(p+i)%3)
						for k := range batch {
							batch[k] = job("bounded")
						}
						_, err := s.Insert(t.Context(), store.InsertParams{Jobs: batch, MaxDepth: map[string]int64{"bounded": tc.maxDepth}})
						var qf *spool.QueueFullError
						switch {
						case err == nil:
							admitted.Add(int64(len(batch)))
						case errors.As(err, &qf):
							full.Add(1)
							if qf.Depth+int64(len(batch)) <= tc.maxDepth {
								errs <- fmt.Errorf("refused at depth %d with %d new jobs, max %d", qf.Depth, len(batch), tc.maxDepth)
								return
							}
							if len(batch) == 1 {
								return // full for good
							}
						default:
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			q, err := nodes[0].Queue(t.Context(), "bounded")
			require.NoError(t, err)
			require.EqualValues(t, admitted.Load(), q.Counts[spool.StateReady])
			require.Equal(t, tc.maxDepth, admitted.Load(), "filled exactly to max_depth (the producers stop at a refused single job)")
			require.NotZero(t, full.Load())
			requireCountersMatch(t, schema)
		})
	}
}

// requireCountersMatch checks that the counters the triggers keep equal a
// count of the jobs.
func requireCountersMatch(t *testing.T, schema string) {
	t.Helper()
	ident := pgx.Identifier{schema}.Sanitize()
	rows, err := admin.get(t).Query(t.Context(), fmt.Sprintf(`
		SELECT coalesce(c.queue, j.queue), coalesce(c.state, j.state), coalesce(c.n, 0), coalesce(j.n, 0)
		FROM (SELECT queue, state, sum(n) AS n FROM %[1]s.spool_queue_counts GROUP BY 1, 2) c
		FULL JOIN (SELECT queue, state, count(*) AS n FROM %[1]s.spool_jobs GROUP BY 1, 2) j
		  ON j.queue = c.queue AND j.state = c.state`, ident))
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var q, st string
		var counted, actual int64
		require.NoError(t, rows.Scan(&q, &st, &counted, &actual))
		require.Equal(t, actual, counted, "queue %s, state %s", q, st)
	}
	require.NoError(t, rows.Err())
}

func TestCountersFollowEveryWrite(t *testing.T) {
	t.Parallel()
	schema := freshSchema(t)
	s := open(t, schema)
	ctx := t.Context()
	now := time.Date(2031, time.March, 4, 5, 6, 7, 0, time.UTC)
	var recs []*store.Record
	for i := range 30 {
		r := job(fmt.Sprintf("q%d", i%3))
		if i%4 == 0 {
			r.State, r.ReadyAt, r.RunAt = spool.StateScheduled, nil, now.Add(time.Duration(i)*time.Second)
		}
		recs = append(recs, r)
	}
	insert(t, s, recs...)
	leased, err := s.Lease(ctx, store.LeaseParams{Queues: []string{"q0", "q1"}, Max: 7, Now: now, ExpiresAt: now.Add(time.Minute)})
	require.NoError(t, err)
	require.Len(t, leased, 7)
	for i, r := range leased {
		r.State, r.FinishedAt = []spool.State{spool.StateSucceeded, spool.StateDead}[i%2], &now
	}
	_, _, err = s.Update(ctx, []store.Change{{Record: leased[0]}, {Record: leased[1]}, {Record: leased[2]}})
	require.NoError(t, err)
	// Heartbeat one (no state change).
	leased[4].State, leased[4].FinishedAt = spool.StateActive, nil
	leased[4].LeaseExpiresAt = ptr(now.Add(time.Hour))
	_, errs, err := s.Update(ctx, []store.Change{{Record: leased[4]}})
	require.NoError(t, err)
	require.NoError(t, errs[0])
	// A fix by hand in psql moves a job to a queue never used: the
	// triggers keep the counts and create the queue.
	_, err = admin.get(t).Exec(ctx, fmt.Sprintf(`UPDATE %s.spool_jobs SET queue = 'moved', state = 'succeeded' WHERE id = $1`,
		pgx.Identifier{schema}.Sanitize()), leased[3].ID)
	require.NoError(t, err)
	_, err = s.PromoteDue(ctx, now.Add(10*time.Second), 100)
	require.NoError(t, err)
	_, err = s.Purge(ctx, "q0", now.Add(time.Hour), 100)
	require.NoError(t, err)
	_, err = s.Purge(ctx, "q1", now.Add(time.Hour), 100)
	require.NoError(t, err)
	requireCountersMatch(t, schema)
	q, err := s.Queue(ctx, "moved")
	require.NoError(t, err, "a job moved to a new queue creates it")
	require.EqualValues(t, 1, q.Counts[spool.StateSucceeded])
}

func ptr[T any](v T) *T { return &v }

// TestEveryJobFieldIsStored fails when spool.Job gains a field: the store
// keeps each field in a column, so a new one needs a migration and a place
// in codec.go (and a line here).
func TestEveryJobFieldIsStored(t *testing.T) {
	stored := map[string]string{
		"ID": "id", "Queue": "queue", "Type": "type", "Payload": "payload", "Priority": "priority",
		"State": "state", "RunAt": "run_at", "Attempt": "attempt", "MaxAttempts": "max_attempts",
		"Timeout": "timeout_ns", "Backoff": "backoff_base_ns", "IdempotencyKey": "idempotency_key",
		"OrderingKey": "ordering_key", "DependsOn": "depends_on", "Tags": "tags", "Result": "result",
		"Errors": "errors", "Progress": "progress", "Worker": "worker", "LeaseExpiresAt": "lease_expires_at",
		"CancelRequested": "cancel_requested", "CreatedAt": "created_at", "ReadyAt": "ready_at",
		"StartedAt": "started_at", "FinishedAt": "finished_at",
		"CallbackURL": "callback_url",
		"Lease":       "", // derived from the token and the expiry, never stored
	}
	columns := map[string]bool{}
	for _, c := range postgres.JobColumns {
		columns[c] = true
	}
	typ := reflect.TypeFor[spool.Job]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		col, ok := stored[f.Name]
		require.True(t, ok, "spool.Job.%s is not stored by the postgres store: add a column (a new migration) and map it in codec.go", f.Name)
		if col != "" {
			require.True(t, columns[col], "column %s of spool.Job.%s is not read", col, f.Name)
		}
	}
}

func TestTextArrayQuoting(t *testing.T) {
	require.Equal(t, "", postgres.TextArray(nil))
	require.Equal(t, `{"a","b c","\"q\"","back\\slash","{x,y}","NULL",""}`,
		postgres.TextArray([]string{"a", "b c", `"q"`, `back\slash`, "{x,y}", "NULL", ""}))
	// And PostgreSQL reads them back as written.
	pool := admin.get(t)
	in := []string{"a", "b c", `"q"`, `back\slash`, "{x,y}", "NULL", "", "ünï"}
	var out []string
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT $1::text::text[]`, postgres.TextArray(in)).Scan(&out))
	require.Equal(t, in, out)
}

func TestUnreachableServerIsUnavailable(t *testing.T) {
	t.Parallel()
	testURL(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err := postgres.Open(ctx, "postgres://spool@127.0.0.1:1/spool?sslmode=disable&connect_timeout=5", postgres.Options{})
	require.ErrorIs(t, err, spool.ErrUnavailable)
}

func TestBadInputIsInvalid(t *testing.T) {
	t.Parallel()
	s := open(t, freshSchema(t))
	r := job("q")
	r.Type = "nul\x00byte" // PostgreSQL text cannot hold NUL
	_, err := s.Insert(t.Context(), store.InsertParams{Jobs: []*store.Record{r}})
	require.ErrorIs(t, err, spool.ErrInvalid)

	a := job("q")
	insert(t, s, a)
	b := job("q")
	b.ID = a.ID
	_, err = s.Insert(t.Context(), store.InsertParams{Jobs: []*store.Record{b}})
	require.ErrorIs(t, err, spool.ErrConflict, "an id already stored")
}

// TestInsertRepeatedWithSameIDAndKey: an insert repeated after an unknown
// outcome (same ids, same keys) returns the stored jobs, whole.
func TestInsertRepeatedWithSameIDAndKey(t *testing.T) {
	t.Parallel()
	s := open(t, freshSchema(t))
	a := job("q")
	a.IdempotencyKey = "k"
	insert(t, s, a)
	res, err := s.Insert(t.Context(), store.InsertParams{Jobs: []*store.Record{a.Clone()}})
	require.NoError(t, err)
	require.True(t, res[0].Existing)
	require.Equal(t, a.ID, res[0].Record.ID)
	require.JSONEq(t, string(a.Payload), string(res[0].Record.Payload))
}

// TestLeaseManyRounds: a lease for more than the first round's worth of
// jobs takes them all, in order.
func TestLeaseManyRounds(t *testing.T) {
	t.Parallel()
	s := open(t, freshSchema(t))
	n := postgres.LeaseRound1*2 + 7
	var want []string
	batch := make([]*store.Record, n)
	for i := range batch {
		batch[i] = job("q")
		want = append(want, batch[i].ID)
	}
	insert(t, s, batch...)
	now := time.Date(2031, time.March, 4, 5, 6, 8, 0, time.UTC)
	var made atomic.Int64
	recs, err := s.Lease(t.Context(), store.LeaseParams{Queues: []string{"q"}, Max: n + 100, Now: now, ExpiresAt: now.Add(time.Minute),
		NewToken: func() string { return fmt.Sprint("t", made.Add(1)) }})
	require.NoError(t, err)
	got := make([]string, len(recs))
	tokens := map[string]bool{}
	for i, r := range recs {
		got[i] = r.ID
		tokens[r.Token] = true
	}
	require.Equal(t, want, got)
	require.Len(t, tokens, n)
}

func TestInterpretError(t *testing.T) {
	pg := func(code string) error { return fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: code, Message: "m"}) }
	for _, tc := range []struct {
		err  error
		want error
	}{
		{pgx.ErrNoRows, spool.ErrNotFound},
		{pg("23505"), spool.ErrConflict},
		{pg("22021"), spool.ErrInvalid},
		{pg("23514"), spool.ErrInvalid},
		{pg("40P01"), spool.ErrUnavailable},
		{pg("57P01"), spool.ErrUnavailable},
		{pg("08006"), spool.ErrUnavailable},
		{pg("53300"), spool.ErrUnavailable},
		{pg("25006"), spool.ErrUnavailable},
		{errors.New("read tcp: connection reset by peer"), spool.ErrUnavailable},
		{fmt.Errorf("x: %w", context.Canceled), context.Canceled},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), context.DeadlineExceeded},
	} {
		got := postgres.Interpret("op", tc.err)
		require.ErrorIs(t, got, tc.want, "%v", tc.err)
		var pe *pgconn.PgError
		require.False(t, errors.As(got, &pe), "no pgx type crosses the seam: %v", got)
	}
	got := postgres.Interpret("op", pg("42P01"))
	require.Equal(t, spool.CodeInternal, spool.Code(got), "an unexpected server error is internal")
	require.Nil(t, postgres.Interpret("op", nil))
	require.True(t, postgres.Retryable(pg("40P01")))
	require.True(t, postgres.Retryable(pg("40001")))
	require.False(t, postgres.Retryable(pg("23505")))
	require.False(t, postgres.Retryable(errors.New("x")))
}

// TestPipelineIsOneTransaction pins what Insert relies on: the statements
// of one pgx batch run in one implicit transaction, so a later statement
// that fails (spool_check_depth, the keyed read) undoes the insert.
func TestPipelineIsOneTransaction(t *testing.T) {
	t.Parallel()
	schema := freshSchema(t)
	open(t, schema)
	ident := pgx.Identifier{schema}.Sanitize()
	conn, err := admin.get(t).Acquire(t.Context())
	require.NoError(t, err)
	defer conn.Release()
	for range 2 { // the second time with the statements prepared
		b := &pgx.Batch{}
		b.Queue(fmt.Sprintf(`INSERT INTO %s.spool_queues (name) VALUES ($1)`, ident), "pipelined")
		b.Queue(fmt.Sprintf(`SELECT %s.spool_fail($1, 'boom')`, ident), "SP999")
		err := conn.SendBatch(t.Context(), b).Close()
		require.ErrorContains(t, err, "boom")
	}
	pool := admin.get(t)
	var n int
	require.NoError(t, pool.QueryRow(t.Context(), fmt.Sprintf(`SELECT count(*) FROM %s.spool_queues`, ident)).Scan(&n))
	require.Zero(t, n, "the first statement was rolled back")
}
