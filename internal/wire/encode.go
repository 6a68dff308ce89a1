// Package wire is a hand-written JSON codec for the few API types on
// Spool's hot paths: the jobs of a batch enqueue or a lease answer
// (spool.JobsResponse, spool.Job), the ids-only answer to a batch enqueue
// (spool.JobIDsResponse) and the batch enqueue and ack requests
// (spool.BatchEnqueueRequest, spool.AcksRequest).
//
// encoding/json stays the reference: the encoders write exactly the bytes
// that a json.Encoder with SetEscapeHTML(false) writes (without its
// trailing newline), and the decoders accept only simple, canonical input
// whose result they can build exactly as encoding/json would. Anything else
// makes them give up, and the caller runs encoding/json as before, so
// behaviour (answers, errors, error messages) never changes.
package wire

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/spoolq/spool"
)

// TryAppendJobsResponse appends r encoded as JSON to b, without a trailing
// newline. ok is false, and the returned slice meaningless, when r holds a
// value the fast path does not write (a time outside years 0-9999, a
// payload that is not valid JSON or nests deeper than 1,000, a NaN): the
// caller then runs encoding/json.
func TryAppendJobsResponse(b []byte, r *spool.JobsResponse) ([]byte, bool) {
	if r == nil {
		return append(b, "null"...), true
	}
	b = append(b, `{"jobs":`...)
	if r.Jobs == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, j := range r.Jobs {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = TryAppendJob(b, j); !ok {
				return b, false
			}
		}
		b = append(b, ']')
	}
	return append(appendExisting(b, r.Existing), '}'), true
}

// AppendJobIDsResponse appends r encoded as JSON to b, without a trailing
// newline. Every value of it has a fast encoding.
func AppendJobIDsResponse(b []byte, r *spool.JobIDsResponse) []byte {
	if r == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"ids":`...)
	if r.IDs == nil {
		b = append(b, "null"...)
	} else {
		b = appendStrings(b, r.IDs)
	}
	return append(appendExisting(b, r.Existing), '}')
}

// appendExisting appends the "existing" field of a batch enqueue's answer,
// left out when empty.
func appendExisting(b []byte, existing []int) []byte {
	if len(existing) == 0 {
		return b
	}
	b = append(b, `,"existing":[`...)
	for i, n := range existing {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(n), 10)
	}
	return append(b, ']')
}

// TryAppendJob is TryAppendJobsResponse for one job.
func TryAppendJob(b []byte, j *spool.Job) ([]byte, bool) {
	if j == nil {
		return append(b, "null"...), true
	}
	var ok bool
	b = append(b, `{"id":`...)
	b = appendString(b, j.ID)
	b = append(b, `,"queue":`...)
	b = appendString(b, j.Queue)
	b = append(b, `,"type":`...)
	b = appendString(b, j.Type)
	if b, ok = appendRawField(b, `,"payload":`, j.Payload); !ok {
		return b, false
	}
	b = append(b, `,"priority":`...)
	b = strconv.AppendInt(b, int64(j.Priority), 10)
	b = append(b, `,"state":`...)
	b = appendString(b, string(j.State))
	b = append(b, `,"run_at":`...)
	if b, ok = appendTime(b, j.RunAt); !ok {
		return b, false
	}
	b = append(b, `,"attempt":`...)
	b = strconv.AppendInt(b, int64(j.Attempt), 10)
	b = append(b, `,"max_attempts":`...)
	b = strconv.AppendInt(b, int64(j.MaxAttempts), 10)
	if j.Timeout != 0 {
		b = append(b, `,"timeout":`...)
		b = appendDuration(b, j.Timeout)
	}
	if j.Backoff != nil {
		b = append(b, `,"backoff":`...)
		b = appendBackoff(b, j.Backoff)
	}
	b = appendStringField(b, `,"idempotency_key":`, j.IdempotencyKey)
	b = appendStringField(b, `,"ordering_key":`, j.OrderingKey)
	b = appendStringsField(b, `,"depends_on":`, j.DependsOn)
	b = appendStringsField(b, `,"tags":`, j.Tags)
	b = appendStringField(b, `,"callback_url":`, j.CallbackURL)
	if b, ok = appendRawField(b, `,"result":`, j.Result); !ok {
		return b, false
	}
	if len(j.Errors) > 0 {
		b = append(b, `,"errors":[`...)
		for i := range j.Errors {
			e := &j.Errors[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"attempt":`...)
			b = strconv.AppendInt(b, int64(e.Attempt), 10)
			b = append(b, `,"error":`...)
			b = appendString(b, e.Error)
			b = append(b, `,"at":`...)
			if b, ok = appendTime(b, e.At); !ok {
				return b, false
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if p := j.Progress; p != nil {
		b = append(b, `,"progress":{"percent":`...)
		if b, ok = appendFloat(b, p.Percent); !ok {
			return b, false
		}
		b = appendStringField(b, `,"message":`, p.Message)
		b = append(b, `,"updated_at":`...)
		if b, ok = appendTime(b, p.UpdatedAt); !ok {
			return b, false
		}
		b = append(b, '}')
	}
	b = appendStringField(b, `,"worker":`, j.Worker)
	if b, ok = appendTimePtr(b, `,"lease_expires_at":`, j.LeaseExpiresAt); !ok {
		return b, false
	}
	if j.CancelRequested {
		b = append(b, `,"cancel_requested":true`...)
	}
	b = append(b, `,"created_at":`...)
	if b, ok = appendTime(b, j.CreatedAt); !ok {
		return b, false
	}
	for _, f := range [...]struct {
		key string
		t   *time.Time
	}{{`,"ready_at":`, j.ReadyAt}, {`,"started_at":`, j.StartedAt}, {`,"finished_at":`, j.FinishedAt}} {
		if b, ok = appendTimePtr(b, f.key, f.t); !ok {
			return b, false
		}
	}
	if l := j.Lease; l != nil {
		b = append(b, `,"lease":{"token":`...)
		b = appendString(b, l.Token)
		b = append(b, `,"expires_at":`...)
		if b, ok = appendTime(b, l.ExpiresAt); !ok {
			return b, false
		}
		b = append(b, '}')
	}
	return append(b, '}'), true
}

func appendBackoff(b []byte, bo *spool.Backoff) []byte {
	b = append(b, '{')
	if bo.Base != 0 {
		b = append(b, `"base":`...)
		b = appendDuration(b, bo.Base)
	}
	if bo.Max != 0 {
		if bo.Base != 0 {
			b = append(b, ',')
		}
		b = append(b, `"max":`...)
		b = appendDuration(b, bo.Max)
	}
	return append(b, '}')
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendDuration writes d as spool.Duration.MarshalJSON does. A duration
// string is ASCII but for "µs", which encoding/json leaves as it is.
func appendDuration(b []byte, d spool.Duration) []byte {
	b = append(b, '"')
	b = append(b, time.Duration(d).String()...)
	return append(b, '"')
}

// appendTime writes t as time.Time.MarshalJSON does (RFC 3339 with
// nanoseconds); ok is false where MarshalJSON fails (a year outside
// 0-9999, a zone offset of 24 hours or more).
func appendTime(b []byte, t time.Time) ([]byte, bool) {
	b = append(b, '"')
	b, err := t.AppendText(b)
	if err != nil {
		return b, false
	}
	return append(b, '"'), true
}

// The append...Field functions write an optional member: key (with its
// leading comma and colon) and the value, or nothing when the value is
// absent (nil, empty), as encoding/json does for omitempty.

func appendTimePtr(b []byte, key string, t *time.Time) ([]byte, bool) {
	if t == nil {
		return b, true
	}
	b = append(b, key...)
	return appendTime(b, *t)
}

func appendStringField(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(append(b, key...), s)
}

func appendStringsField(b []byte, key string, ss []string) []byte {
	if len(ss) == 0 {
		return b
	}
	return appendStrings(append(b, key...), ss)
}

func appendRawField(b []byte, key string, raw []byte) ([]byte, bool) {
	if len(raw) == 0 {
		return b, true
	}
	return appendCompact(append(b, key...), raw)
}

// appendFloat writes f as encoding/json writes a float64; ok is false for
// NaN and infinities, which encoding/json refuses.
func appendFloat(b []byte, f float64) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, false
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 → e-9, as encoding/json does.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string exactly as encoding/json does with
// HTML escaping off: \" \\ \b \f \n \r \t, other control characters as
// \u00XX, invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendCompact appends the JSON value raw without its insignificant white
// space, as encoding/json does for a json.RawMessage when HTML escaping is
// off; ok is false if raw is not one valid JSON value (encoding/json then
// fails) or is nested deeper than the fast path goes.
func appendCompact(b, raw []byte) ([]byte, bool) {
	s := scanner{data: raw}
	s.ws()
	start := s.i
	if !s.skipValue(0) {
		return b, false
	}
	end := s.i
	s.ws()
	if s.i != len(raw) {
		return b, false
	}
	v := raw[start:end]
	if !s.spaced {
		return append(b, v...), true
	}
	inString := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case inString:
			if c == '\\' {
				b = append(b, c, v[i+1])
				i++
				continue
			}
			if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			continue
		}
		b = append(b, c)
	}
	return b, true
}
