package postgres

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// jobColumns are the columns of spool_jobs a record is read from, in the
// order scanRecord expects.
var jobColumns = []string{
	"id", "queue", "type", "state", "priority", "rev", "attempt", "max_attempts",
	"run_at", "created_at", "ready_at", "started_at", "finished_at", "lease_expires_at",
	"timeout_ns", "backoff_base_ns", "backoff_max_ns", "cancel_requested",
	"token", "worker", "idempotency_key", "ordering_key", "depends_on", "tags",
	"errors", "progress", "payload", "result", "callback_url",
}

// cols returns the record columns qualified by alias ("" for none); with
// bodies false, payload and result are read as NULL.
func cols(alias string, bodies bool) string {
	return colsWith(alias, func(col string) string {
		if bodies {
			return col
		}
		return "NULL::bytea"
	})
}

// colsWith is cols with body(column) as the expression read for payload and
// result.
func colsWith(alias string, body func(col string) string) string {
	var b strings.Builder
	for i, c := range jobColumns {
		if i > 0 {
			b.WriteString(", ")
		}
		if alias != "" {
			c = alias + "." + c
		}
		if strings.HasSuffix(c, "payload") || strings.HasSuffix(c, "result") {
			c = body(c) + " AS " + jobColumns[i]
		}
		b.WriteString(c)
	}
	return b.String()
}

// scanRecord reads one row of cols(...), after the extra destinations.
func scanRecord(row pgx.Row, extra ...any) (*store.Record, error) {
	var (
		r                               store.Record
		priority, attempt, maxAttempts  int32
		rev, timeout                    int64
		backoffBase, backoffMax         *int64
		runAt, createdAt                time.Time
		readyAt, startedAt, finishedAt  *time.Time
		leaseExpiresAt                  *time.Time
		state                           string
		idemKey                         *string
		errorsJSON, progressJSON        []byte
		payload, result                 []byte
		dependsOn, tags                 []string
		cancelRequested                 bool
		token, worker, orderingKey, typ string
		callbackURL                     string
	)
	dest := append(extra,
		&r.ID, &r.Queue, &typ, &state, &priority, &rev, &attempt, &maxAttempts,
		&runAt, &createdAt, &readyAt, &startedAt, &finishedAt, &leaseExpiresAt,
		&timeout, &backoffBase, &backoffMax, &cancelRequested,
		&token, &worker, &idemKey, &orderingKey, &dependsOn, &tags,
		&errorsJSON, &progressJSON, &payload, &result, &callbackURL,
	)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	r.Type = typ
	r.State = spool.State(state)
	r.Priority = int(priority)
	r.Rev = uint64(rev)
	r.Attempt = int(attempt)
	r.MaxAttempts = int(maxAttempts)
	r.RunAt = runAt.UTC()
	r.CreatedAt = createdAt.UTC()
	r.ReadyAt = utcPtr(readyAt)
	r.StartedAt = utcPtr(startedAt)
	r.FinishedAt = utcPtr(finishedAt)
	r.LeaseExpiresAt = utcPtr(leaseExpiresAt)
	r.Timeout = spool.Duration(timeout)
	if backoffBase != nil || backoffMax != nil {
		r.Backoff = &spool.Backoff{Base: spool.Duration(deref(backoffBase)), Max: spool.Duration(deref(backoffMax))}
	}
	r.CancelRequested = cancelRequested
	r.Token = token
	r.Worker = worker
	r.IdempotencyKey = deref(idemKey)
	r.OrderingKey = orderingKey
	r.DependsOn = dependsOn
	r.Tags = tags
	r.CallbackURL = callbackURL
	if len(errorsJSON) > 0 {
		if err := json.Unmarshal(errorsJSON, &r.Errors); err != nil {
			return nil, corrupt(r.ID, "errors", err)
		}
		for i := range r.Errors {
			r.Errors[i].At = r.Errors[i].At.UTC()
		}
	}
	if len(progressJSON) > 0 {
		if err := json.Unmarshal(progressJSON, &r.Progress); err != nil {
			return nil, corrupt(r.ID, "progress", err)
		}
		if r.Progress != nil {
			r.Progress.UpdatedAt = r.Progress.UpdatedAt.UTC()
		}
	}
	if payload != nil {
		r.Payload = payload
	}
	if result != nil {
		r.Result = result
	}
	return &r, nil
}

func corrupt(id, column string, err error) error {
	return &dataError{what: fmt.Sprintf("column %s of job %q", column, id), err: err}
}

// dataError is stored data this build cannot read.
type dataError struct {
	what string
	err  error
}

func (e *dataError) Error() string { return "unreadable " + e.what + ": " + e.err.Error() }

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// jobParams holds a batch of records as one array per column, the
// parameters of the unnest(...) of Insert and Update: one statement, and
// one prepared plan, whatever the batch size. Optional values travel as ""
// and become NULL in SQL (nullif); string lists and JSON travel as text.
type jobParams struct {
	id, queue, typ, state                   []string
	priority, attempt, maxAttempts          []int32
	rev, timeout                            []int64
	backoffBase, backoffMax                 []*int64
	runAt, createdAt                        []time.Time
	readyAt, startedAt, finishedAt, leaseAt []*time.Time
	cancelRequested                         []bool
	token, worker, idemKey, orderingKey     []string
	dependsOn, tags, errorsJSON, progress   []string
	payload, result                         [][]byte
	hasResult                               []bool
	callbackURL                             []string
	// fresh: every record added is fresh, with rev 1 and no token.
	fresh bool
	// recs are the records added, for copyData.
	recs []*store.Record
}

func newJobParams(n int) *jobParams {
	return &jobParams{
		id: make([]string, 0, n), queue: make([]string, 0, n), typ: make([]string, 0, n), state: make([]string, 0, n),
		priority: make([]int32, 0, n), attempt: make([]int32, 0, n), maxAttempts: make([]int32, 0, n),
		rev: make([]int64, 0, n), timeout: make([]int64, 0, n),
		backoffBase: make([]*int64, 0, n), backoffMax: make([]*int64, 0, n),
		runAt: make([]time.Time, 0, n), createdAt: make([]time.Time, 0, n),
		readyAt: make([]*time.Time, 0, n), startedAt: make([]*time.Time, 0, n),
		finishedAt: make([]*time.Time, 0, n), leaseAt: make([]*time.Time, 0, n),
		cancelRequested: make([]bool, 0, n),
		token:           make([]string, 0, n), worker: make([]string, 0, n),
		idemKey: make([]string, 0, n), orderingKey: make([]string, 0, n),
		dependsOn: make([]string, 0, n), tags: make([]string, 0, n),
		errorsJSON: make([]string, 0, n), progress: make([]string, 0, n),
		payload: make([][]byte, 0, n), result: make([][]byte, 0, n), hasResult: make([]bool, 0, n),
		callbackURL: make([]string, 0, n),
		fresh:       true,
	}
}

// add appends one record; rev is the revision to store. Update leaves the
// payload out (it is never rewritten): no need to send it.
func (p *jobParams) add(r *store.Record, rev uint64, token string, payload bool) error {
	errs, err := encodeJSON(r.Errors, len(r.Errors) > 0)
	if err != nil {
		return spool.Invalidf("job %q: errors cannot be stored: %v", r.ID, err)
	}
	prog, err := encodeJSON(r.Progress, r.Progress != nil)
	if err != nil {
		return spool.Invalidf("job %q: progress cannot be stored: %v", r.ID, err)
	}
	p.fresh = p.fresh && rev == 1 && token == "" && fresh(r)
	p.recs = append(p.recs, r)
	p.id = append(p.id, r.ID)
	p.queue = append(p.queue, r.Queue)
	p.typ = append(p.typ, r.Type)
	p.state = append(p.state, string(r.State))
	p.priority = append(p.priority, int32(r.Priority))
	p.attempt = append(p.attempt, int32(r.Attempt))
	p.maxAttempts = append(p.maxAttempts, int32(r.MaxAttempts))
	p.rev = append(p.rev, int64(rev))
	p.timeout = append(p.timeout, int64(r.Timeout))
	if r.Backoff != nil {
		base, max := int64(r.Backoff.Base), int64(r.Backoff.Max)
		p.backoffBase = append(p.backoffBase, &base)
		p.backoffMax = append(p.backoffMax, &max)
	} else {
		p.backoffBase = append(p.backoffBase, nil)
		p.backoffMax = append(p.backoffMax, nil)
	}
	p.runAt = append(p.runAt, r.RunAt)
	p.createdAt = append(p.createdAt, r.CreatedAt)
	p.readyAt = append(p.readyAt, r.ReadyAt)
	p.startedAt = append(p.startedAt, r.StartedAt)
	p.finishedAt = append(p.finishedAt, r.FinishedAt)
	p.leaseAt = append(p.leaseAt, r.LeaseExpiresAt)
	p.cancelRequested = append(p.cancelRequested, r.CancelRequested)
	p.token = append(p.token, token)
	p.worker = append(p.worker, r.Worker)
	p.idemKey = append(p.idemKey, r.IdempotencyKey)
	p.orderingKey = append(p.orderingKey, r.OrderingKey)
	p.dependsOn = append(p.dependsOn, textArray(r.DependsOn))
	p.tags = append(p.tags, textArray(r.Tags))
	p.errorsJSON = append(p.errorsJSON, errs)
	p.progress = append(p.progress, prog)
	if payload {
		p.payload = append(p.payload, bytesOrNil(r.Payload))
	} else {
		p.payload = append(p.payload, nil)
	}
	p.result = append(p.result, bytesOrNil(r.Result))
	p.hasResult = append(p.hasResult, r.Result != nil)
	p.callbackURL = append(p.callbackURL, r.CallbackURL)
	return nil
}

// unnestColumns is the column list of the unnest(...) alias, in the order
// of args.
const unnestColumns = `id, queue, type, state, priority, attempt, max_attempts, rev, timeout_ns,
	backoff_base_ns, backoff_max_ns, run_at, created_at, ready_at, started_at, finished_at,
	lease_expires_at, cancel_requested, token, worker, idempotency_key, ordering_key,
	depends_on, tags, errors, progress, payload, result, has_result, callback_url`

// unnestArgs is the unnest(...) call over parameters $1..$30, with the
// types that make each array element a column value.
const unnestArgs = `unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int4[], $6::int4[],
	$7::int4[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::timestamptz[],
	$13::timestamptz[], $14::timestamptz[], $15::timestamptz[], $16::timestamptz[],
	$17::timestamptz[], $18::bool[], $19::text[], $20::text[], $21::text[], $22::text[],
	$23::text[], $24::text[], $25::text[], $26::text[], $27::bytea[], $28::bytea[], $29::bool[], $30::text[])`

func (p *jobParams) args() []any {
	return []any{
		p.id, p.queue, p.typ, p.state, p.priority, p.attempt,
		p.maxAttempts, p.rev, p.timeout, p.backoffBase, p.backoffMax, p.runAt,
		p.createdAt, p.readyAt, p.startedAt, p.finishedAt,
		p.leaseAt, p.cancelRequested, p.token, p.worker, p.idemKey, p.orderingKey,
		p.dependsOn, p.tags, p.errorsJSON, p.progress, p.payload, p.result, p.hasResult, p.callbackURL,
	}
}

// freshColumns are the columns of a job as an enqueue makes it: the other
// columns of spool_jobs hold their defaults (no attempt, lease, worker,
// errors, progress or result), and attempt and rev are 0 and 1.
const freshColumns = `id, queue, type, state, priority, max_attempts, timeout_ns, backoff_base_ns,
	backoff_max_ns, run_at, created_at, ready_at, idempotency_key, ordering_key, depends_on, tags,
	payload, callback_url`

// freshUnnestArgs is the unnest(...) over the parameters of freshArgs.
const freshUnnestArgs = `unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int4[], $6::int4[],
	$7::int8[], $8::int8[], $9::int8[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[],
	$13::text[], $14::text[], $15::text[], $16::text[], $17::bytea[], $18::text[])`

// freshArgs are the parameters of freshUnnestArgs: 18 arrays instead of
// 30, so less to encode, send, decode and unnest.
func (p *jobParams) freshArgs() []any {
	return []any{
		p.id, p.queue, p.typ, p.state, p.priority, p.maxAttempts, p.timeout, p.backoffBase,
		p.backoffMax, p.runAt, p.createdAt, p.readyAt, p.idemKey, p.orderingKey, p.dependsOn, p.tags,
		p.payload, p.callbackURL,
	}
}

// copySQL copies fresh jobs into spool_jobs from copyData's binary
// stream: freshColumns, then attempt and rev; the other columns take their
// defaults.
const copySQL = `COPY spool_jobs (` + freshColumns + `, attempt, rev) FROM STDIN (FORMAT binary)`

// copyFields is the number of columns of copySQL.
const copyFields = 20

// copyData encodes a batch of fresh jobs, in the order added, as the
// binary COPY stream of copySQL, with the values freshInsertSQL would
// store (no idempotency key, dependencies, tags, payload, ready time or
// backoff: NULL; attempt 0, rev 1). Written by hand, not through pgx's
// CopyFrom: no per-value type lookup, and no statement description to ask
// for first.
func (p *jobParams) copyData() []byte {
	size := 21
	for i, r := range p.recs {
		size += 2 + copyFields*4 + 4 + 8 + 8 + 3*8 + 8 + len(r.ID) + len(r.Queue) + len(r.Type) + len(p.state[i]) +
			len(r.IdempotencyKey) + len(r.OrderingKey) + len(r.Payload) + len(r.CallbackURL) +
			20 + 8*len(r.DependsOn) + 20 + 8*len(r.Tags)
		for _, d := range r.DependsOn {
			size += len(d)
		}
		for _, t := range r.Tags {
			size += len(t)
		}
	}
	b := make([]byte, 0, size)
	b = append(b, "PGCOPY\n\xff\r\n\x00"...)
	b = binary.BigEndian.AppendUint32(b, 0) // flags
	b = binary.BigEndian.AppendUint32(b, 0) // header extension
	for i, r := range p.recs {
		b = binary.BigEndian.AppendUint16(b, copyFields)
		b = copyText(b, p.id[i])
		b = copyText(b, p.queue[i])
		b = copyText(b, p.typ[i])
		b = copyText(b, p.state[i])
		b = copyInt4(b, p.priority[i])
		b = copyInt4(b, p.maxAttempts[i])
		b = copyInt8(b, p.timeout[i])
		b = copyInt8Ptr(b, p.backoffBase[i])
		b = copyInt8Ptr(b, p.backoffMax[i])
		b = copyTime(b, p.runAt[i])
		b = copyTime(b, p.createdAt[i])
		if t := p.readyAt[i]; t != nil {
			b = copyTime(b, *t)
		} else {
			b = copyNull(b)
		}
		if r.IdempotencyKey != "" {
			b = copyText(b, r.IdempotencyKey)
		} else {
			b = copyNull(b)
		}
		b = copyText(b, p.orderingKey[i])
		b = copyTextArray(b, r.DependsOn)
		b = copyTextArray(b, r.Tags)
		if pl := p.payload[i]; pl != nil {
			b = binary.BigEndian.AppendUint32(b, uint32(len(pl)))
			b = append(b, pl...)
		} else {
			b = copyNull(b)
		}
		b = copyText(b, p.callbackURL[i])
		b = copyInt4(b, 0)
		b = copyInt8(b, 1)
	}
	return binary.BigEndian.AppendUint16(b, 0xffff) // trailer: -1
}

func copyNull(b []byte) []byte { return binary.BigEndian.AppendUint32(b, 0xffffffff) }

func copyText(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func copyInt4(b []byte, v int32) []byte {
	b = binary.BigEndian.AppendUint32(b, 4)
	return binary.BigEndian.AppendUint32(b, uint32(v))
}

func copyInt8(b []byte, v int64) []byte {
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(v))
}

func copyInt8Ptr(b []byte, v *int64) []byte {
	if v == nil {
		return copyNull(b)
	}
	return copyInt8(b, *v)
}

// pgEpochMicros is 2000-01-01 UTC, PostgreSQL's timestamp epoch, in
// microseconds since the Unix epoch.
const pgEpochMicros = 946684800 * 1000000

// copyTime writes a timestamptz: microseconds since 2000-01-01 UTC, the
// nanoseconds truncated (as pgx writes them).
func copyTime(b []byte, t time.Time) []byte {
	us := t.Unix()*1000000 + int64(t.Nanosecond())/1000
	return copyInt8(b, us-pgEpochMicros)
}

// copyTextArray writes a one-dimensional text[] (NULL when empty).
func copyTextArray(b []byte, ss []string) []byte {
	if len(ss) == 0 {
		return copyNull(b)
	}
	n := 20
	for _, s := range ss {
		n += 4 + len(s)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = binary.BigEndian.AppendUint32(b, 1)       // dimensions
	b = binary.BigEndian.AppendUint32(b, 0)       // no NULL element
	b = binary.BigEndian.AppendUint32(b, textOID) // element type
	b = binary.BigEndian.AppendUint32(b, uint32(len(ss)))
	b = binary.BigEndian.AppendUint32(b, 1) // lower bound
	for _, s := range ss {
		b = copyText(b, s)
	}
	return b
}

// textOID is the type oid of text.
const textOID = 25

// fresh reports whether r can be stored from freshArgs (with rev 1 and no
// token, as Insert stores every job).
func fresh(r *store.Record) bool {
	return r.Attempt == 0 && r.StartedAt == nil && r.FinishedAt == nil && r.LeaseExpiresAt == nil &&
		!r.CancelRequested && r.Worker == "" && len(r.Errors) == 0 && r.Progress == nil && r.Result == nil
}

func encodeJSON(v any, present bool) (string, error) {
	if !present {
		return "", nil
	}
	b, err := json.Marshal(v)
	return string(b), err
}

func bytesOrNil(b []byte) []byte {
	if b == nil {
		return nil
	}
	return []byte(b)
}

// textArray writes ss as a PostgreSQL array literal ("" for none), which
// SQL casts with nullif(x, ”)::text[]. Every element is quoted, with
// backslash and double quote escaped.
func textArray(ss []string) string {
	if len(ss) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for j := 0; j < len(s); j++ {
			if s[j] == '"' || s[j] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(s[j])
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// stored returns r as the store keeps it: a deep copy with times in UTC at
// PostgreSQL's microsecond precision.
func stored(r *store.Record) *store.Record {
	c := r.Clone()
	c.RunAt = micro(c.RunAt)
	c.CreatedAt = micro(c.CreatedAt)
	for _, p := range []**time.Time{&c.ReadyAt, &c.StartedAt, &c.FinishedAt, &c.LeaseExpiresAt} {
		if *p != nil {
			t := micro(**p)
			*p = &t
		}
	}
	for i := range c.Errors {
		c.Errors[i].At = c.Errors[i].At.UTC()
	}
	if c.Progress != nil {
		c.Progress.UpdatedAt = c.Progress.UpdatedAt.UTC()
	}
	c.Lease = nil // derived from Token and LeaseExpiresAt, never stored
	return c
}

func micro(t time.Time) time.Time { return t.Truncate(time.Microsecond).UTC() }
