// Package chaos holds Spool's chaos suite: the real spool binary under
// producers (single and batch enqueues) and workers through the HTTP API,
// for as long as asked, while faults hit it: kill -9 of the server and a
// restart, PostgreSQL restarts (pg_ctl restart -m immediate) on the
// PostgreSQL store, a failover (kill -9 of a PostgreSQL primary, promotion
// of its synchronous standby) on a primary/standby pair, a full disk on
// the embedded store (a small tmpfs) and overload against a small
// max_depth. At the end it pages through the
// queue's whole history and checks that no acknowledged job was lost or
// left stuck, no acknowledged completion was delivered again and no batch
// was stored in part; it counts duplicate deliveries.
//
// It runs only when asked, through `make chaos`:
//
//	make chaos CHAOS_DURATION=10m
//	make chaos CHAOS_KILLS=200
//
// CHAOS_DURATION and CHAOS_KILLS (either or both: the first reached ends
// the run) are shared between the stores named by CHAOS_STORES (default
// "embedded,postgres,failover"). CHAOS_SEED replays the choice of faults of a
// logged run. Without CHAOS_DURATION or CHAOS_KILLS, `go test ./...` skips
// it without building anything. See docs/reliability.md.
package chaos
