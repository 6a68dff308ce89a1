package embedded

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/spoolq/spool"
)

// Job metadata (the value of j/<id>) is a sequence of fields, each a tag
// (uvarint) followed by its value; a field at its zero value is left out.
// Values:
//
//	string    uvarint length, bytes
//	int       zigzag varint
//	uint      uvarint
//	flag      nothing: the tag alone means true
//	time      varint Unix seconds, uvarint nanoseconds (read back in UTC)
//	list      uvarint count, then the elements
//	struct    its fields in a fixed order, no tags
//
// The id is not stored: it is the key. A new field gets a new tag and needs
// no format change (old records read as the zero value); a tag is never
// reused or renumbered. A tag this build does not know is an error, so that
// a record written by a newer build is never silently truncated.
//
// Compared with encoding/json this decodes about nine times faster (0.6 µs
// instead of 5.6 µs per job measured), and decoding was most of the cost of
// rebuilding the indexes at Open.
const (
	tagQueue           = 1  // string
	tagType            = 2  // string
	tagPriority        = 3  // int
	tagState           = 4  // string
	tagRunAt           = 5  // time
	tagAttempt         = 6  // int
	tagMaxAttempts     = 7  // int
	tagTimeout         = 8  // int (nanoseconds)
	tagBackoff         = 9  // struct {Base, Max int}; present when non-nil
	tagIdempotencyKey  = 10 // string
	tagOrderingKey     = 11 // string
	tagDependsOn       = 12 // list of string
	tagTags            = 13 // list of string
	tagErrors          = 14 // list of struct {Attempt int, Error string, At time}
	tagProgress        = 15 // struct {Percent float64 bits as uint, Message string, UpdatedAt time}
	tagWorker          = 16 // string
	tagLeaseExpiresAt  = 17 // time; present when non-nil
	tagCancelRequested = 18 // flag
	tagCreatedAt       = 19 // time
	tagReadyAt         = 20 // time; present when non-nil
	tagStartedAt       = 21 // time; present when non-nil
	tagFinishedAt      = 22 // time; present when non-nil
	tagLease           = 23 // struct {Token string, ExpiresAt time}
	tagToken           = 24 // string (store.Record.Token)
	tagRev             = 25 // uint (store.Record.Rev)
	tagSeq             = 26 // uint (insert sequence)
	tagHasPayload      = 27 // flag
	tagHasResult       = 28 // flag
	tagCallbackURL     = 29 // string
	tagPayloadBytes    = 30 // uint (length of the payload)
)

// codecFields names the spool.Job fields this codec writes, for the test
// that fails when Job gains a field the codec does not know.
var codecFields = []string{
	"ID", "Queue", "Type", "Payload", "Priority", "State", "RunAt", "Attempt", "MaxAttempts",
	"Timeout", "Backoff", "IdempotencyKey", "OrderingKey", "DependsOn", "Tags", "CallbackURL", "Result",
	"Errors", "Progress", "Worker", "LeaseExpiresAt", "CancelRequested", "CreatedAt",
	"ReadyAt", "StartedAt", "FinishedAt", "Lease",
}

type encoder struct{ b []byte }

func (e *encoder) tag(t uint64)       { e.b = binary.AppendUvarint(e.b, t) }
func (e *encoder) rawUint(v uint64)   { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) rawInt(v int64)     { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) rawString(s string) { e.rawUint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) rawTime(t time.Time) {
	e.rawInt(t.Unix())
	e.rawUint(uint64(t.Nanosecond()))
}

func (e *encoder) string(t uint64, s string) {
	if s != "" {
		e.tag(t)
		e.rawString(s)
	}
}

func (e *encoder) int(t uint64, v int64) {
	if v != 0 {
		e.tag(t)
		e.rawInt(v)
	}
}

func (e *encoder) uint(t uint64, v uint64) {
	if v != 0 {
		e.tag(t)
		e.rawUint(v)
	}
}

func (e *encoder) flag(t uint64, v bool) {
	if v {
		e.tag(t)
	}
}

func (e *encoder) time(t uint64, v time.Time) {
	if !v.IsZero() {
		e.tag(t)
		e.rawTime(v)
	}
}

func (e *encoder) timePtr(t uint64, v *time.Time) {
	if v != nil {
		e.tag(t)
		e.rawTime(*v)
	}
}

func (e *encoder) strings(t uint64, v []string) {
	if len(v) > 0 {
		e.tag(t)
		e.rawUint(uint64(len(v)))
		for _, s := range v {
			e.rawString(s)
		}
	}
}

// appendJob appends the encoding of j's metadata (never its payload or
// result) to b.
func appendJob(b []byte, j *job) []byte {
	e := encoder{b}
	r := &j.rec
	x := r.rare
	if x == nil {
		x = &noRare
	}
	e.string(tagQueue, r.Queue)
	e.string(tagType, r.Type)
	e.int(tagPriority, int64(r.Priority))
	e.string(tagState, string(r.State))
	e.time(tagRunAt, r.RunAt)
	e.int(tagAttempt, int64(r.Attempt))
	e.int(tagMaxAttempts, int64(r.MaxAttempts))
	e.int(tagTimeout, int64(r.Timeout))
	if x.Backoff != nil {
		e.tag(tagBackoff)
		e.rawInt(int64(x.Backoff.Base))
		e.rawInt(int64(x.Backoff.Max))
	}
	e.string(tagIdempotencyKey, r.IdempotencyKey)
	e.string(tagOrderingKey, x.OrderingKey)
	e.strings(tagDependsOn, x.DependsOn)
	e.strings(tagTags, x.Tags)
	e.string(tagCallbackURL, x.CallbackURL)
	if len(x.Errors) > 0 {
		e.tag(tagErrors)
		e.rawUint(uint64(len(x.Errors)))
		for _, ae := range x.Errors {
			e.rawInt(int64(ae.Attempt))
			e.rawString(ae.Error)
			e.rawTime(ae.At)
		}
	}
	if x.Progress != nil {
		e.tag(tagProgress)
		e.rawUint(math.Float64bits(x.Progress.Percent))
		e.rawString(x.Progress.Message)
		e.rawTime(x.Progress.UpdatedAt)
	}
	e.string(tagWorker, r.Worker)
	e.timePtr(tagLeaseExpiresAt, r.LeaseExpiresAt)
	e.flag(tagCancelRequested, x.CancelRequested)
	e.time(tagCreatedAt, r.CreatedAt)
	e.timePtr(tagReadyAt, r.ReadyAt)
	e.timePtr(tagStartedAt, r.StartedAt)
	e.timePtr(tagFinishedAt, r.FinishedAt)
	if x.Lease != nil {
		e.tag(tagLease)
		e.rawString(x.Lease.Token)
		e.rawTime(x.Lease.ExpiresAt)
	}
	e.string(tagToken, r.Token)
	e.uint(tagRev, r.Rev)
	e.uint(tagSeq, j.seq)
	e.flag(tagHasPayload, j.hasPayload)
	e.flag(tagHasResult, j.hasResult)
	e.uint(tagPayloadBytes, uint64(j.payloadBytes))
	return e.b
}

// noRare stands for the rare fields of a job that sets none of them.
var noRare rareMeta

var errTruncated = errors.New("truncated or corrupt record")

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errTruncated
	}
	d.b = nil
}

func (d *decoder) uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) time() time.Time {
	sec, nsec := d.int(), d.uint()
	if nsec >= uint64(time.Second) {
		d.fail()
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

func (d *decoder) timePtr() *time.Time {
	t := d.time()
	return &t
}

// count reads a list length; every element takes at least one byte, which
// bounds what garbage can make us allocate.
func (d *decoder) count() int {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) strings() []string {
	out := make([]string, d.count())
	for i := range out {
		out[i] = d.string()
	}
	return out
}

func parseJob(id string, b []byte) (*job, error) {
	j := &job{}
	r := &j.rec
	r.ID = id
	d := decoder{b: b}
	for len(d.b) > 0 && d.err == nil {
		switch t := d.uint(); t {
		case tagQueue:
			r.Queue = d.string()
		case tagType:
			r.Type = d.string()
		case tagPriority:
			r.Priority = int(d.int())
		case tagState:
			r.State = spool.State(d.string())
		case tagRunAt:
			r.RunAt = d.time()
		case tagAttempt:
			r.Attempt = int(d.int())
		case tagMaxAttempts:
			r.MaxAttempts = int(d.int())
		case tagTimeout:
			r.Timeout = spool.Duration(d.int())
		case tagBackoff:
			r.setRare().Backoff = &spool.Backoff{Base: spool.Duration(d.int()), Max: spool.Duration(d.int())}
		case tagIdempotencyKey:
			r.IdempotencyKey = d.string()
		case tagOrderingKey:
			r.setRare().OrderingKey = d.string()
		case tagDependsOn:
			r.setRare().DependsOn = d.strings()
		case tagTags:
			r.setRare().Tags = d.strings()
		case tagErrors:
			errs := make([]spool.AttemptError, d.count())
			for i := range errs {
				errs[i] = spool.AttemptError{Attempt: int(d.int()), Error: d.string(), At: d.time()}
			}
			r.setRare().Errors = errs
		case tagProgress:
			r.setRare().Progress = &spool.Progress{Percent: math.Float64frombits(d.uint()), Message: d.string(), UpdatedAt: d.time()}
		case tagWorker:
			r.Worker = d.string()
		case tagLeaseExpiresAt:
			r.LeaseExpiresAt = d.timePtr()
		case tagCancelRequested:
			r.setRare().CancelRequested = true
		case tagCreatedAt:
			r.CreatedAt = d.time()
		case tagReadyAt:
			r.ReadyAt = d.timePtr()
		case tagStartedAt:
			r.StartedAt = d.timePtr()
		case tagFinishedAt:
			r.FinishedAt = d.timePtr()
		case tagLease:
			r.setRare().Lease = &spool.Lease{Token: d.string(), ExpiresAt: d.time()}
		case tagToken:
			r.Token = d.string()
		case tagCallbackURL:
			r.setRare().CallbackURL = d.string()
		case tagRev:
			r.Rev = d.uint()
		case tagSeq:
			j.seq = d.uint()
		case tagHasPayload:
			j.hasPayload = true
		case tagHasResult:
			j.hasResult = true
		case tagPayloadBytes:
			j.payloadBytes = uint32(min(d.uint(), math.MaxUint32))
		default:
			if d.err == nil {
				return nil, fmt.Errorf("unknown field tag %d (written by a newer spool?)", t)
			}
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	return j, nil
}
