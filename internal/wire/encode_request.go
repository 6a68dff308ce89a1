package wire

import (
	"strconv"

	"github.com/spoolq/spool"
)

// The SDK's requests on the hot paths: jobs to enqueue and batches of acks.
// As for answers, the bytes are those of a json.Encoder with
// SetEscapeHTML(false), without the trailing newline; ok is false for
// what the fast path does not write (an invalid payload, a time outside
// years 0-9999), and the caller then runs encoding/json.

// TryAppendEnqueueRequest appends r encoded as JSON to b.
func TryAppendEnqueueRequest(b []byte, r *spool.EnqueueRequest) ([]byte, bool) {
	var ok bool
	b = append(b, `{"type":`...)
	b = appendString(b, r.Type)
	if b, ok = appendRawField(b, `,"payload":`, r.Payload); !ok {
		return b, false
	}
	if r.Priority != 0 {
		b = append(b, `,"priority":`...)
		b = strconv.AppendInt(b, int64(r.Priority), 10)
	}
	if r.Delay != nil {
		b = append(b, `,"delay":`...)
		b = appendDuration(b, *r.Delay)
	}
	if b, ok = appendTimePtr(b, `,"run_at":`, r.RunAt); !ok {
		return b, false
	}
	if r.MaxAttempts != 0 {
		b = append(b, `,"max_attempts":`...)
		b = strconv.AppendInt(b, int64(r.MaxAttempts), 10)
	}
	if r.Timeout != nil {
		b = append(b, `,"timeout":`...)
		b = appendDuration(b, *r.Timeout)
	}
	if r.Backoff != nil {
		b = append(b, `,"backoff":`...)
		b = appendBackoff(b, r.Backoff)
	}
	b = appendStringField(b, `,"idempotency_key":`, r.IdempotencyKey)
	b = appendStringField(b, `,"ordering_key":`, r.OrderingKey)
	b = appendStringsField(b, `,"depends_on":`, r.DependsOn)
	b = appendStringField(b, `,"ref":`, r.Ref)
	b = appendStringsField(b, `,"tags":`, r.Tags)
	b = appendStringField(b, `,"callback_url":`, r.CallbackURL)
	return append(b, '}'), true
}

// TryAppendBatchEnqueueRequest appends r encoded as JSON to b.
func TryAppendBatchEnqueueRequest(b []byte, r *spool.BatchEnqueueRequest) ([]byte, bool) {
	if r.Jobs == nil {
		return append(b, `{"jobs":null}`...), true
	}
	b = append(b, `{"jobs":[`...)
	for i := range r.Jobs {
		if i > 0 {
			b = append(b, ',')
		}
		var ok bool
		if b, ok = TryAppendEnqueueRequest(b, &r.Jobs[i]); !ok {
			return b, false
		}
	}
	return append(b, "]}"...), true
}

// TryAppendAcksRequest appends r encoded as JSON to b.
func TryAppendAcksRequest(b []byte, r *spool.AcksRequest) ([]byte, bool) {
	if r.Acks == nil {
		return append(b, `{"acks":null}`...), true
	}
	b = append(b, `{"acks":[`...)
	for i := range r.Acks {
		a := &r.Acks[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendString(b, a.ID)
		b = append(b, `,"token":`...)
		b = appendString(b, a.Token)
		b = append(b, `,"outcome":`...)
		b = appendString(b, a.Outcome)
		var ok bool
		if b, ok = appendRawField(b, `,"result":`, a.Result); !ok {
			return b, false
		}
		b = appendStringField(b, `,"error":`, a.Error)
		if a.RetryIn != nil {
			b = append(b, `,"retry_in":`...)
			b = appendDuration(b, *a.RetryIn)
		}
		if a.Final {
			b = append(b, `,"final":true`...)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...), true
}
