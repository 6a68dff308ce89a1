package spool

import (
	"encoding/json"
	"time"
)

// State is a job's place in its life cycle; see docs/states.md.
type State string

// Job states.
const (
	StateWaiting   State = "waiting"   // waits for the jobs it depends on
	StateScheduled State = "scheduled" // run_at is in the future (delay or retry backoff)
	StateReady     State = "ready"     // may be leased now
	StateActive    State = "active"    // leased by a worker
	StateSucceeded State = "succeeded" // terminal: completed
	StateDead      State = "dead"      // terminal: failed for the last time
	StateCancelled State = "cancelled" // terminal: cancelled
)

// States lists every state in life-cycle order.
var States = []State{StateWaiting, StateScheduled, StateReady, StateActive, StateSucceeded, StateDead, StateCancelled}

// Valid reports whether s is one of the known states.
func (s State) Valid() bool {
	for _, v := range States {
		if s == v {
			return true
		}
	}
	return false
}

// Terminal reports whether s is a final state (succeeded, dead, cancelled).
func (s State) Terminal() bool {
	return s == StateSucceeded || s == StateDead || s == StateCancelled
}

// Job is a unit of work as the API shows it.
type Job struct {
	ID             string          `json:"id"`
	Queue          string          `json:"queue"`
	Type           string          `json:"type"`
	Payload        json.RawMessage `json:"payload,omitempty"`
	Priority       int             `json:"priority"`
	State          State           `json:"state"`
	RunAt          time.Time       `json:"run_at"`
	Attempt        int             `json:"attempt"`
	MaxAttempts    int             `json:"max_attempts"`
	Timeout        Duration        `json:"timeout,omitempty"`
	Backoff        *Backoff        `json:"backoff,omitempty"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	OrderingKey    string          `json:"ordering_key,omitempty"`
	DependsOn      []string        `json:"depends_on,omitempty"`
	Tags           []string        `json:"tags,omitempty"`
	// CallbackURL receives the job, signed, when it reaches a terminal
	// state (see WebhookSignatureHeader).
	CallbackURL string          `json:"callback_url,omitempty"`
	Result      json.RawMessage `json:"result,omitempty"`
	Errors      []AttemptError  `json:"errors,omitempty"`
	Progress    *Progress       `json:"progress,omitempty"`
	// Worker names the holder of the current (or last) lease.
	Worker          string     `json:"worker,omitempty"`
	LeaseExpiresAt  *time.Time `json:"lease_expires_at,omitempty"`
	CancelRequested bool       `json:"cancel_requested,omitempty"`
	CreatedAt       time.Time  `json:"created_at"`
	// ReadyAt is when the job last became ready (for queue-wait metrics).
	ReadyAt    *time.Time `json:"ready_at,omitempty"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// Lease is set only in answers to a lease request.
	Lease *Lease `json:"lease,omitempty"`
}

// Lease proves a worker's claim on an active job.
type Lease struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// AttemptError records one failed attempt.
type AttemptError struct {
	Attempt int       `json:"attempt"`
	Error   string    `json:"error"`
	At      time.Time `json:"at"`
}

// Progress is what a worker last reported about a running job.
type Progress struct {
	Percent   float64   `json:"percent"`
	Message   string    `json:"message,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Backoff is a retry policy: the n-th retry waits about Base*2^(n-1), at most
// Max, with jitter. Absent (zero) fields take the queue's or the server's
// defaults; a zero delay given in JSON ("0s") is refused.
type Backoff struct {
	Base Duration `json:"base,omitempty"`
	Max  Duration `json:"max,omitempty"`
}
