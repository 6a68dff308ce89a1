package engine

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// DefaultEventLog is how many job events the engine keeps in memory for
// streams that resume (Last-Event-ID).
const DefaultEventLog = 10_000

// eventLog is a bounded in-memory ring of the job events of this process,
// with ids increasing by one from 1. Readers wait on changed, a channel
// closed (and replaced) at every append.
type eventLog struct {
	mu      sync.Mutex
	buf     []spool.JobEvent
	start   int // index of the oldest event in buf
	n       int // events in buf
	next    uint64
	changed chan struct{}
}

func newEventLog(size int) *eventLog {
	if size <= 0 {
		size = DefaultEventLog
	}
	return &eventLog{buf: make([]spool.JobEvent, size), next: 1, changed: make(chan struct{})}
}

// emit records job events of this node in its ring and, when the store
// carries events between nodes, hands them to the store for the others.
func (e *Engine) emit(evs ...spool.JobEvent) {
	if len(evs) == 0 {
		return
	}
	e.events.add(evs...)
	if p, ok := e.st.(store.EventPublisher); ok {
		p.PublishJobEvents(evs)
	}
}

func (l *eventLog) add(evs ...spool.JobEvent) {
	if len(evs) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range evs {
		ev.EventID = l.next
		l.next++
		if l.n < len(l.buf) {
			l.buf[(l.start+l.n)%len(l.buf)] = ev
			l.n++
		} else {
			l.buf[l.start] = ev
			l.start = (l.start + 1) % len(l.buf)
		}
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// EventFilter selects job events: by queue (any of Queues, when not empty)
// and by job id (when not empty).
type EventFilter struct {
	Queues []string
	Job    string
}

func (f *EventFilter) keep(ev *spool.JobEvent) bool {
	if f.Job != "" && ev.ID != f.Job {
		return false
	}
	return len(f.Queues) == 0 || slices.Contains(f.Queues, ev.Queue)
}

// LastEventID is the id of the newest job event (0 if none yet): a new
// stream reads from there.
func (e *Engine) LastEventID() uint64 {
	e.events.mu.Lock()
	defer e.events.mu.Unlock()
	return e.events.next - 1
}

// EventPage is the answer of EventsAfter.
type EventPage struct {
	// Events are the kept events, oldest first.
	Events []spool.JobEvent
	// Cursor is the id to pass next time: the last event looked at, kept
	// or not.
	Cursor uint64
	// Missed is true when the events right after the requested id are no
	// longer held (the ring moved on, or the id is from an earlier
	// process): the page then starts after ResumedAfter.
	Missed       bool
	ResumedAfter uint64
}

// EventsAfter returns up to max job events with ids after after that f
// keeps.
func (e *Engine) EventsAfter(after uint64, f EventFilter, max int) EventPage {
	l := e.events
	l.mu.Lock()
	defer l.mu.Unlock()
	last := l.next - 1
	oldest := l.next - uint64(l.n) // id of the oldest held event
	var p EventPage
	switch {
	case after > last:
		// An id this process never gave: the server restarted.
		return EventPage{Cursor: last, Missed: true, ResumedAfter: last}
	case after+1 < oldest:
		after = oldest - 1
		p.Missed, p.ResumedAfter = true, after
	}
	p.Cursor = after
	for id := after + 1; id <= last && len(p.Events) < max; id++ {
		ev := &l.buf[(l.start+int(id-oldest))%len(l.buf)]
		p.Cursor = id
		if f.keep(ev) {
			p.Events = append(p.Events, *ev)
		}
	}
	return p
}

// WaitEvents blocks until there is a job event after after, ctx ends, or
// the engine stops. It returns false in the last two cases.
func (e *Engine) WaitEvents(ctx context.Context, after uint64) bool {
	l := e.events
	l.mu.Lock()
	if l.next-1 > after {
		l.mu.Unlock()
		return true
	}
	ch := l.changed
	l.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	case <-e.stopped:
		return false
	}
}

// Stopped is closed when the engine stops: streams end.
func (e *Engine) Stopped() <-chan struct{} { return e.stopped }

func jobEventOf(r *store.Record, now time.Time) spool.JobEvent {
	return spool.JobEvent{ID: r.ID, Queue: r.Queue, Type: r.Type, State: r.State, Attempt: r.Attempt, At: now.UTC()}
}
