package engine

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// Webhook deliveries are jobs of the internal queue WebhookQueue, of type
// WebhookJobType, whose payload is a WebhookDelivery: durable, retried
// with backoff and visible like any job, and apart from the job they
// report on, so a slow receiver never holds up that job's completion.
// Queue names starting with '_' are internal: spool.ValidateQueueName
// refuses them, so users can neither enqueue into nor lease from them
// through the API; the engine reaches them through update (a delivery is
// written with the terminal state it reports) and Lease (which does not
// check names).
const (
	WebhookQueue   = "_spool.webhooks"
	WebhookJobType = "webhook"
	// WebhookMaxAttempts, WebhookBackoffBase and WebhookBackoffMax are the
	// retry policy of a delivery: about 5s, 10s, 20s, ... up to 10m
	// between attempts, about 40 minutes in all.
	WebhookMaxAttempts = 10
	WebhookBackoffBase = 5 * time.Second
	WebhookBackoffMax  = 10 * time.Minute
)

// WebhookDelivery is the payload of a delivery job.
type WebhookDelivery struct {
	JobID string `json:"job_id"`
	URL   string `json:"url"`
}

// IsInternalQueue reports whether a queue name is reserved for Spool.
func IsInternalQueue(name string) bool { return strings.HasPrefix(name, "_") }

// update writes changes through the store, and stores with each change
// that brings a job with a callback_url to a terminal state the job's
// webhook delivery, in the same atomic write (store.Change.Then): a
// finished job's callback is never lost to a crash between two writes.
// The delivery's idempotency key (job id and finish time) makes a repeated
// write of the same transition harmless, and a job retried and finished
// again gets a new delivery.
//
// A job going dead in a queue with a dead-letter queue gets its copy there
// in the same way (see deadletter.go).
func (e *Engine) update(ctx context.Context, changes []store.Change) ([]*store.Record, []error, error) {
	withDelivery := false
	var dead []string
	for i := range changes {
		if d := e.deliveryFor(ctx, changes[i].Record); d != nil {
			changes[i].Then = append(changes[i].Then, d)
			withDelivery = true
		}
		d, err := e.deadLetterFor(ctx, changes[i].Record)
		if err != nil {
			return nil, nil, err
		}
		if d != nil {
			changes[i].Then = append(changes[i].Then, d)
			dead = append(dead, d.Queue)
		}
	}
	recs, errs, err := e.st.Update(ctx, changes)
	if err == nil && withDelivery {
		e.hub.queueReady(WebhookQueue)
	}
	if err == nil {
		for _, q := range dead {
			e.hub.queueReady(q)
		}
	}
	return recs, errs, err
}

// deliveryFor builds the delivery job of a record about to be written in
// a terminal state with a callback_url (nil for any other record).
func (e *Engine) deliveryFor(ctx context.Context, r *store.Record) *store.Record {
	if r.CallbackURL == "" || !r.State.Terminal() || IsInternalQueue(r.Queue) || r.FinishedAt == nil {
		return nil
	}
	payload, err := json.Marshal(WebhookDelivery{JobID: r.ID, URL: r.CallbackURL})
	if err != nil {
		e.log.Error("webhook: encoding a delivery", "job", r.ID, "error", err)
		return nil
	}
	qc, err := e.queueConfig(ctx, WebhookQueue)
	if err != nil {
		// The defaults serve: the delivery sets its own attempts and
		// backoff, and no max_depth applies to it.
		qc = e.resolve(spool.QueueConfig{})
	}
	return e.newRecord(WebhookQueue, &spool.EnqueueRequest{
		Type:           WebhookJobType,
		Payload:        payload,
		MaxAttempts:    WebhookMaxAttempts,
		Backoff:        &spool.Backoff{Base: spool.Duration(WebhookBackoffBase), Max: spool.Duration(WebhookBackoffMax)},
		IdempotencyKey: r.ID + "@" + strconv.FormatInt(r.FinishedAt.UnixNano(), 10),
	}, qc, e.clock.Now())
}

// validateReadableQueue accepts the names users may give and the internal
// queues, for reads: the HTTP layer refuses internal names before this.
func validateReadableQueue(name string) error {
	if name == WebhookQueue {
		return nil
	}
	return spool.ValidateQueueName(name)
}
