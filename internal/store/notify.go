package store

import (
	"context"

	"github.com/spoolq/spool"
)

// Notifier is implemented by a store that several nodes (processes, each
// with its own Store) share, such as postgres. It reports writes made by
// the other nodes that a long-poll may be waiting for, so that a lease
// request on node B wakes when node A makes a job ready, and a status
// request on B wakes when A finishes the job.
//
// It is optional: the engine subscribes when its store implements it, and
// otherwise (the embedded store: one node, every write made by its own
// engine) costs nothing. A Store never reports its own writes: the engine
// that made them has already woken its waiters.
//
// Events are hints, never the truth: the engine answers one by looking in
// the store again. So a backend may coalesce them (one QueueReady per
// queue for many jobs), send some that turn out stale, and lose some, as
// long as it sends a Resync whenever it may have lost any (after its
// connection to the other nodes broke and came back, or when too many
// piled up to send). Lost wake-ups it cannot know of (a node that died
// between its commit and its notification) are covered by the engine
// looking again at an interval.
type Notifier interface {
	// Listen calls fn for each event until ctx ends, and then returns nil.
	// It reconnects by itself after failures (sending a Resync each time
	// it is connected again, and once when first connected), so it
	// returns early only when it cannot work at all (the store is
	// closed), with an error. fn is called from one goroutine at a time,
	// in the order events arrive, and must return quickly.
	Listen(ctx context.Context, fn func(Event)) error
}

// EventKind says what an Event reports.
type EventKind uint8

const (
	// EventQueueReady: jobs became ready in Event.Queue (enqueued,
	// promoted, retried, released, or back after a failed attempt).
	EventQueueReady EventKind = iota + 1
	// EventJobFinished: job Event.JobID reached a terminal state.
	EventJobFinished
	// EventQueueChanged: the config of Event.Queue was changed
	// (SetQueueConfig): cached copies are stale, and waiters on the queue
	// should look again (it may have been resumed).
	EventQueueChanged
	// EventResync: events may have been missed; every waiter should look
	// again and every cached queue config is suspect.
	EventResync
	// EventJobState: a job changed state on another node; Event.Job says
	// how (its EventID is not set: each node numbers its own stream).
	EventJobState
)

// EventPublisher is implemented by a Notifier that also carries the job
// events (GET /v1/events) of its node to the others, so that a stream on
// any node shows the changes made through every node. The engine calls it
// with each batch of events it records; it must return quickly (send
// later, coalesced). Like wake-ups, events may be lost when the nodes
// cannot reach each other.
type EventPublisher interface {
	PublishJobEvents(evs []spool.JobEvent)
}

func (k EventKind) String() string {
	switch k {
	case EventQueueReady:
		return "queue_ready"
	case EventJobFinished:
		return "job_finished"
	case EventQueueChanged:
		return "queue_changed"
	case EventResync:
		return "resync"
	case EventJobState:
		return "job_state"
	}
	return "unknown"
}

// Event is one change made by another node.
type Event struct {
	Kind EventKind
	// Queue names the queue of EventQueueReady and EventQueueChanged.
	Queue string
	// JobID names the job of EventJobFinished.
	JobID string
	// Job is the change of EventJobState.
	Job *spool.JobEvent
}
