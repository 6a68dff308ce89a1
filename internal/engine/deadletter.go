package engine

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// Dead-letter queues: a queue whose config names a dead_letter_queue hands
// each job that goes dead to that queue, as a new ready job with the same
// type, payload, priority, ordering key and tags, written in the same
// atomic store write as the dead state (store.Change.Then). The dead job
// stays in its own queue, finished, for the retention as any finished job.
// The copy's idempotency key (DeadLetterKeyPrefix, the dead job's id and
// its finish time) makes a repeated write of the same transition harmless,
// and a dead job retried that goes dead again is copied again. No
// max_depth applies to the copies: a dead letter is never refused.

// DeadLetterKeyPrefix starts the idempotency key of a dead-letter copy;
// the dead job's id follows, then '@' and its finish time in Unix
// nanoseconds.
const DeadLetterKeyPrefix = "dead-letter:"

// DeadLetterSource returns the id of the job a dead-letter copy was made
// from, from the copy's idempotency key ("" if it is not a copy).
func DeadLetterSource(j *spool.Job) string {
	k, ok := cutPrefix(j.IdempotencyKey, DeadLetterKeyPrefix)
	if !ok {
		return ""
	}
	for i := len(k) - 1; i >= 0; i-- {
		if k[i] == '@' {
			return k[:i]
		}
	}
	return ""
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return s, false
}

// deadLetterFor builds the dead-letter copy of a record about to be
// written dead, when its queue names a dead-letter queue (nil otherwise).
// A record read without its payload is read again for it.
func (e *Engine) deadLetterFor(ctx context.Context, r *store.Record) (*store.Record, error) {
	if r.State != spool.StateDead || r.FinishedAt == nil || IsInternalQueue(r.Queue) {
		return nil, nil
	}
	qc, err := e.queueConfig(ctx, r.Queue)
	if err != nil {
		return nil, err
	}
	dlq := *qc.DeadLetterQueue
	if dlq == "" || dlq == r.Queue {
		return nil, nil
	}
	payload := r.Payload
	if payload == nil {
		full, err := e.st.Get(ctx, r.ID)
		if err != nil {
			return nil, fmt.Errorf("reading job %s to copy it to its dead-letter queue %q: %w", r.ID, dlq, err)
		}
		payload = full.Payload
	}
	dc, err := e.queueConfig(ctx, dlq)
	if err != nil {
		return nil, err
	}
	return e.newRecord(dlq, &spool.EnqueueRequest{
		Type:           r.Type,
		Payload:        payload,
		Priority:       r.Priority,
		OrderingKey:    r.OrderingKey,
		Tags:           append([]string(nil), r.Tags...),
		IdempotencyKey: DeadLetterKeyPrefix + r.ID + "@" + strconv.FormatInt(r.FinishedAt.UnixNano(), 10),
	}, dc, e.clock.Now()), nil
}
