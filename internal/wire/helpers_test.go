package wire

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/jobtest"
)

// stdEncode is what the server wrote before package wire: a json.Encoder
// with HTML escaping off, newline included.
func stdEncode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(v)
	return buf.Bytes(), err
}

// stdDecodeBody decodes data as the server's decodeBody does: unknown
// fields refused, nothing but white space after the value.
func stdDecodeBody(data []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return err
	}
	if len(bytes.TrimSpace(data[dec.InputOffset():])) > 0 {
		return errTrailing
	}
	return nil
}

var errTrailing = errorString("trailing data")

type errorString string

func (e errorString) Error() string { return string(e) }

func ptr[T any](v T) *T { return &v }

var (
	t0      = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tNano   = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	tZone   = time.Date(1999, 12, 31, 23, 59, 59, 1000, time.FixedZone("x", -(5*3600+30*60)))
	tYear0  = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	tLate   = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	tTooBig = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
)

// fullJob sets every field of spool.Job: the shared fixture, which
// TestFullJobSetsEveryField keeps complete, so that the "full" cases of the
// encoder and decoder tests carry a new field as soon as it exists.
func fullJob() *spool.Job { return jobtest.Full() }

// encodeCases are jobs the fast encoder must write as encoding/json does.
func encodeCases() map[string]*spool.Job {
	with := func(f func(j *spool.Job)) *spool.Job {
		j := fullJob()
		f(j)
		return j
	}
	return map[string]*spool.Job{
		"full":    fullJob(),
		"zero":    {},
		"minimal": {ID: "1", Queue: "q", Type: "t", State: spool.StateReady, RunAt: t0, CreatedAt: t0},
		"empty slices": with(func(j *spool.Job) {
			j.DependsOn, j.Tags, j.Errors, j.Payload, j.Result = []string{}, []string{}, []spool.AttemptError{}, json.RawMessage{}, json.RawMessage{}
		}),
		"nil pointers": with(func(j *spool.Job) {
			j.Backoff, j.Progress, j.Lease, j.ReadyAt, j.StartedAt, j.FinishedAt, j.LeaseExpiresAt = nil, nil, nil, nil, nil, nil, nil
		}),
		"zero backoff":  with(func(j *spool.Job) { j.Backoff = &spool.Backoff{} }),
		"backoff max":   with(func(j *spool.Job) { j.Backoff = &spool.Backoff{Max: spool.Duration(1500 * time.Microsecond)} }),
		"backoff base":  with(func(j *spool.Job) { j.Backoff = &spool.Backoff{Base: spool.Duration(1)} }),
		"odd durations": with(func(j *spool.Job) { j.Timeout = spool.Duration(-time.Minute) }),
		"max duration":  with(func(j *spool.Job) { j.Timeout = spool.Duration(math.MaxInt64) }),
		"big ints": with(func(j *spool.Job) {
			j.Priority, j.Attempt, j.MaxAttempts = math.MinInt, math.MaxInt, -1
		}),
		"zero times":  with(func(j *spool.Job) { j.RunAt, j.CreatedAt, j.ReadyAt = time.Time{}, time.Time{}, &time.Time{} }),
		"year bounds": with(func(j *spool.Job) { j.RunAt, j.CreatedAt = tYear0, tLate }),
		"odd times": with(func(j *spool.Job) {
			j.Errors[0].At, j.Progress.UpdatedAt, j.LeaseExpiresAt = tNano, tZone, ptr(tNano)
			j.StartedAt, j.FinishedAt, j.Lease.ExpiresAt = ptr(tZone), ptr(tLate), tNano
		}),
		"escapes": with(func(j *spool.Job) {
			j.ID = "q\"b\\s/\b\f\n\r\t\x00\x01\x1f\x7f<>&"
			j.Tags = []string{"\u2028", "\u2029", "a\u2028b\u2029c"}
		}),
		"unicode": with(func(j *spool.Job) {
			j.Type = "héllo wörld 日本語 🎉"
			j.Worker = "\U0010FFFF\uFFFD"
		}),
		"invalid utf8": with(func(j *spool.Job) {
			j.ID = "a\xffb\xc3(c\xed\xa0\x80d\xe2\x80"
			j.Errors[0].Error = "\xf0\x9f\x98"
		}),
		"spaced payload": with(func(j *spool.Job) {
			j.Payload = json.RawMessage(" {\n\t\"a b\" : [ 1 , \"x  y\\\" z\" ] ,\r\n \"c\":{ } } \n")
			j.Result = json.RawMessage("[ ]")
		}),
		"payload utf8": with(func(j *spool.Job) {
			j.Payload = json.RawMessage("\"\u2028 \u00e9 <>\"")
			j.Result = json.RawMessage("-0.5e+10")
		}),
		"payload scalars": with(func(j *spool.Job) { j.Payload, j.Result = json.RawMessage("null"), json.RawMessage("0") }),
		"floats": with(func(j *spool.Job) {
			j.Progress.Percent = 1e-7
			j.Progress.Message = ""
		}),
		"float big":  with(func(j *spool.Job) { j.Progress.Percent = 1e21 }),
		"float neg":  with(func(j *spool.Job) { j.Progress.Percent = -123.456e-12 }),
		"float edge": with(func(j *spool.Job) { j.Progress.Percent = 999999999999999999999.0 }),
		"float zero": with(func(j *spool.Job) { j.Progress.Percent = math.Copysign(0, -1) }),
		"long":       with(func(j *spool.Job) { j.Payload = json.RawMessage(`"` + strings.Repeat("ab", 5000) + `"`) }),
		"deep": with(func(j *spool.Job) {
			j.Payload = json.RawMessage(strings.Repeat("[", 900) + strings.Repeat("]", 900))
		}),
		"other state": with(func(j *spool.Job) { j.State = "weird" }),
	}
}

// fallbackJobs are jobs the fast encoder leaves to encoding/json.
func fallbackJobs() map[string]*spool.Job {
	with := func(f func(j *spool.Job)) *spool.Job {
		j := fullJob()
		f(j)
		return j
	}
	return map[string]*spool.Job{
		"year 10000":        with(func(j *spool.Job) { j.RunAt = tTooBig }),
		"year -1":           with(func(j *spool.Job) { j.FinishedAt = ptr(time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)) }),
		"zone 24h":          with(func(j *spool.Job) { j.CreatedAt = time.Date(2020, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600)) }),
		"nan":               with(func(j *spool.Job) { j.Progress.Percent = math.NaN() }),
		"inf":               with(func(j *spool.Job) { j.Progress.Percent = math.Inf(-1) }),
		"bad payload":       with(func(j *spool.Job) { j.Payload = json.RawMessage(`{"a":}`) }),
		"two values":        with(func(j *spool.Job) { j.Result = json.RawMessage(`1 2`) }),
		"blank payload":     with(func(j *spool.Job) { j.Payload = json.RawMessage(` `) }),
		"control in string": with(func(j *spool.Job) { j.Payload = json.RawMessage("\"a\tb\"") }),
		"too deep":          with(func(j *spool.Job) { j.Payload = json.RawMessage(strings.Repeat("[", 1100) + strings.Repeat("]", 1100)) }),
		"bad lease time":    with(func(j *spool.Job) { j.Lease.ExpiresAt = tTooBig }),
	}
}

// The fast encoders with encoding/json as the fallback, as the server's
// writeJSON uses them.

// AppendJobsResponse appends r encoded as JSON to b, without a trailing
// newline. If r holds a value the fast path does not write (a time outside
// years 0-9999, a payload that is not valid JSON, a NaN), it falls back to
// encoding/json; if that fails too, b is returned unchanged.
func AppendJobsResponse(b []byte, r *spool.JobsResponse) []byte {
	if out, ok := TryAppendJobsResponse(b, r); ok {
		return out
	}
	return appendStd(b, r)
}

// AppendJob appends j encoded as JSON to b, without a trailing newline,
// with the same fallback as AppendJobsResponse.
func AppendJob(b []byte, j *spool.Job) []byte {
	if out, ok := TryAppendJob(b, j); ok {
		return out
	}
	return appendStd(b, j)
}

// appendStd appends v as encoding/json writes it, without the newline, or
// returns b unchanged if encoding/json fails.
func appendStd(b []byte, v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return b
	}
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}
