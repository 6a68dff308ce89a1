// Package multinode holds Spool's tests of several `spool serve` nodes on
// one PostgreSQL database, with real processes: it builds the spool binary
// and runs it with --store.
//
//   - TestThreeNodes: three nodes on one fresh schema, producers and
//     workers spread over them; every job is completed, and its completion
//     acknowledged exactly once. Then one node is killed with SIGKILL while
//     its workers hold leases: those jobs are delivered again once their
//     leases lapse, none is lost, and the duplicates are counted.
//   - TestPostgresRestart: PostgreSQL itself is stopped and started again,
//     then restarted, under load (a server of its own, so the other tests
//     are not disturbed): requests fail with 503 while it is down, /readyz
//     says so, the nodes recover by themselves (pool and listening
//     connection), and every job acknowledged with 202 ends succeeded.
//   - TestMeasureThroughput (only with SPOOL_MEASURE=1): enqueue and
//     processing throughput of the embedded store, PostgreSQL with one node
//     and with three, in one run.
//
// The tests need SPOOL_TEST_POSTGRES_URL (scripts/with-postgres sets it).
// Without it they are skipped, except under CI=true, where they fail. The
// restart test also needs the PostgreSQL server binaries (initdb, pg_ctl):
// $SPOOL_TEST_POSTGRES_BINDIR (exported by scripts/with-postgres), else
// $PG_BINDIR, else /usr/lib/postgresql/*/bin. Everything is skipped with
// -short.
package multinode
