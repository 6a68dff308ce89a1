package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/engine"
)

// Queue is what a Dispatcher needs of the engine: leasing delivery jobs,
// reading the job a delivery names, and acknowledging deliveries.
// *engine.Engine implements it.
type Queue interface {
	Lease(ctx context.Context, req spool.LeaseRequest) ([]*spool.Job, error)
	Release(ctx context.Context, id string, req spool.ReleaseRequest) (*spool.Job, error)
	Get(ctx context.Context, id string, wait time.Duration) (*spool.Job, error)
	Complete(ctx context.Context, id string, req spool.CompleteRequest) (*spool.Job, error)
	Fail(ctx context.Context, id string, req spool.FailRequest) (*spool.Job, error)
	// Stopped is closed when the engine stops.
	Stopped() <-chan struct{}
}

var _ Queue = (*engine.Engine)(nil)

// DispatcherConfig configures a Dispatcher.
type DispatcherConfig struct {
	Engine Queue
	// Secret signs every delivery (required).
	Secret string
	// Sender configures the HTTP client: allowlist, timeout.
	Sender Config
	Logger *slog.Logger
	// Workers is how many deliveries run at once (default 4).
	Workers int
	// Worker names the dispatcher on the delivery jobs it leases
	// (default "spool-webhooks").
	Worker string
}

// Dispatcher delivers the webhooks of finished jobs: it leases delivery
// jobs from engine.WebhookQueue, POSTs the job they name, signed, to its
// callback URL, and completes the delivery on a 2xx answer or fails it
// otherwise (retried with the delivery's backoff). A target the allowlist
// refuses, or a job that no longer exists, fails the delivery for good.
type Dispatcher struct {
	cfg   DispatcherConfig
	e     Queue
	s     *Sender
	log   *slog.Logger
	lease time.Duration

	mu     sync.Mutex
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewDispatcher returns a Dispatcher; Start runs it.
func NewDispatcher(cfg DispatcherConfig) (*Dispatcher, error) {
	if cfg.Engine == nil {
		return nil, errors.New("webhook: DispatcherConfig.Engine is required")
	}
	if cfg.Secret == "" {
		return nil, errors.New("webhook: DispatcherConfig.Secret is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Worker == "" {
		cfg.Worker = "spool-webhooks"
	}
	s := NewSender(cfg.Sender)
	return &Dispatcher{
		cfg: cfg, e: cfg.Engine, s: s, log: cfg.Logger,
		// The lease outlasts one delivery (the sender's timeout) well.
		lease: 2*s.cfg.Timeout + 10*time.Second,
	}, nil
}

// Start runs the delivery loops until Stop or ctx ends.
func (d *Dispatcher) Start(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cancel != nil {
		return errors.New("webhook: dispatcher already started")
	}
	ctx, d.cancel = context.WithCancel(ctx)
	for range d.cfg.Workers {
		d.wg.Go(func() { d.loop(ctx) })
	}
	return nil
}

// Stop ends the loops and waits for them; a delivery in flight is
// abandoned and handed back to the queue. Idempotent. Stop the dispatcher
// before the engine.
func (d *Dispatcher) Stop() {
	d.mu.Lock()
	cancel := d.cancel
	d.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	d.wg.Wait()
	d.s.Close()
}

func (d *Dispatcher) loop(ctx context.Context) {
	for ctx.Err() == nil {
		select {
		case <-d.e.Stopped():
			return
		default:
		}
		if _, err := d.run(ctx, 30*time.Second); err != nil && ctx.Err() == nil {
			d.log.Warn("webhook: leasing deliveries failed", "error", err)
			select {
			case <-ctx.Done():
			case <-d.e.Stopped():
			case <-time.After(time.Second):
			}
		}
	}
}

// RunOnce leases at most one due delivery, without waiting, and makes
// it; it reports whether there was one (for tests and tools).
func (d *Dispatcher) RunOnce(ctx context.Context) (bool, error) {
	return d.run(ctx, 0)
}

func (d *Dispatcher) run(ctx context.Context, wait time.Duration) (bool, error) {
	req := spool.LeaseRequest{
		Queues: []string{engine.WebhookQueue},
		Max:    1,
		Lease:  ptr(spool.Duration(d.lease)),
		Worker: d.cfg.Worker,
	}
	if wait > 0 {
		req.Wait = ptr(spool.Duration(wait))
	}
	jobs, err := d.e.Lease(ctx, req)
	if err != nil {
		return false, err
	}
	for _, j := range jobs {
		d.deliver(ctx, j)
	}
	return len(jobs) > 0, nil
}

// deliver makes one delivery attempt and acks its job.
func (d *Dispatcher) deliver(ctx context.Context, j *spool.Job) {
	token := j.Lease.Token
	var p engine.WebhookDelivery
	if err := json.Unmarshal(j.Payload, &p); err != nil || p.JobID == "" || p.URL == "" {
		d.ack(j.ID, token, fmt.Errorf("malformed delivery payload %q", truncate(string(j.Payload), 200)), true)
		return
	}
	err := d.send(ctx, p)
	if err != nil && ctx.Err() != nil {
		// Stopped mid-delivery: not the receiver's fault.
		actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, rerr := d.e.Release(actx, j.ID, spool.ReleaseRequest{Token: token}); rerr != nil {
			d.log.Warn("webhook: handing back an interrupted delivery", "delivery", j.ID, "error", rerr)
		}
		return
	}
	final := errors.Is(err, ErrRefused) || errors.Is(err, spool.ErrInvalid) || errors.Is(err, spool.ErrNotFound)
	d.ack(j.ID, token, err, final)
	if err != nil {
		d.log.Info("webhook: delivery failed", "delivery", j.ID, "job", p.JobID, "attempt", j.Attempt, "final", final, "error", err)
	}
}

// send POSTs the job p names to p.URL.
func (d *Dispatcher) send(ctx context.Context, p engine.WebhookDelivery) error {
	job, err := d.e.Get(ctx, p.JobID, 0)
	if err != nil {
		if errors.Is(err, spool.ErrNotFound) {
			return fmt.Errorf("job %s no longer exists (purged after its retention?): %w", p.JobID, err)
		}
		return fmt.Errorf("reading job %s: %w", p.JobID, err)
	}
	body, err := json.Marshal(job)
	if err != nil {
		return fmt.Errorf("encoding job %s: %w", p.JobID, err)
	}
	return d.s.Send(ctx, p.URL, d.cfg.Secret, body)
}

// ack completes (err nil) or fails a delivery job.
func (d *Dispatcher) ack(id, token string, err error, final bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var aerr error
	if err == nil {
		_, aerr = d.e.Complete(ctx, id, spool.CompleteRequest{Token: token})
	} else {
		msg := err.Error()
		if final {
			msg = "not retried: " + msg
		}
		_, aerr = d.e.Fail(ctx, id, spool.FailRequest{Token: token, Error: truncate(msg, 1000), Final: final})
	}
	if aerr != nil {
		d.log.Warn("webhook: recording a delivery's outcome", "delivery", id, "error", aerr)
	}
}

func ptr[T any](v T) *T { return &v }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
