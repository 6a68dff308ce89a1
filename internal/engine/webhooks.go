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
// through the API; the engine reaches them through enqueueDelivery and
// Lease (which does not check names).
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

// enqueueDelivery enqueues the webhook delivery of a job that has just
// reached a terminal state, after that transition was stored.
//
// It is not atomic with the terminal write: if the process dies (or the
// store fails) between the two, that job's callback is lost. The
// idempotency key (job id and finish time) makes a repeated call for the
// same transition harmless, and a job retried and finished again gets a
// new delivery.
func (e *Engine) enqueueDelivery(r *store.Record) {
	if r.CallbackURL == "" || IsInternalQueue(r.Queue) || r.FinishedAt == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	payload, err := json.Marshal(WebhookDelivery{JobID: r.ID, URL: r.CallbackURL})
	if err != nil {
		e.log.Error("webhook: encoding a delivery", "job", r.ID, "error", err)
		return
	}
	qc, err := e.queueConfig(ctx, WebhookQueue)
	if err != nil {
		e.log.Error("webhook: the delivery of a job was not enqueued: its callback is lost", "job", r.ID, "error", err)
		return
	}
	now := e.clock.Now()
	rec := e.newRecord(WebhookQueue, &spool.EnqueueRequest{
		Type:           WebhookJobType,
		Payload:        payload,
		MaxAttempts:    WebhookMaxAttempts,
		Backoff:        &spool.Backoff{Base: spool.Duration(WebhookBackoffBase), Max: spool.Duration(WebhookBackoffMax)},
		IdempotencyKey: r.ID + "@" + strconv.FormatInt(r.FinishedAt.UnixNano(), 10),
	}, qc, now)
	if _, err := e.insert(ctx, []*store.Record{rec}, map[string]int64{WebhookQueue: *qc.MaxDepth}, now); err != nil {
		e.log.Error("webhook: the delivery of a job was not enqueued: its callback is lost", "job", r.ID, "url", r.CallbackURL, "error", err)
	}
}

// validateReadableQueue accepts the names users may give and the internal
// queues, for reads: the HTTP layer refuses internal names before this.
func validateReadableQueue(name string) error {
	if name == WebhookQueue {
		return nil
	}
	return spool.ValidateQueueName(name)
}
