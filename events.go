package spool

import "time"

// Server-Sent Event names of GET /v1/events.
const (
	// EventJob: a job changed state; data is a JobEvent.
	EventJob = "job"
	// EventQueue: a periodic snapshot of a queue; data is a QueueInfo.
	// Snapshots carry no event id and are never replayed.
	EventQueue = "queue"
	// EventMissed: the stream resumed from an id older than the server
	// still holds (or from before a restart); data is a MissedEvent. Some
	// job events were lost: read the jobs of interest again.
	EventMissed = "missed"
)

// JobEvent is one job state change, the data of a "job" event.
type JobEvent struct {
	// EventID is the event's id (also its SSE id): it increases by one
	// with every job event of the server process.
	EventID uint64 `json:"event_id"`
	// ID is the job's id.
	ID      string    `json:"id"`
	Queue   string    `json:"queue"`
	Type    string    `json:"type"`
	State   State     `json:"state"`
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
}

// MissedEvent is the data of a "missed" event.
type MissedEvent struct {
	// LastEventID is the id the client resumed from.
	LastEventID uint64 `json:"last_event_id"`
	// ResumedAfter is the id after which the stream goes on: the events
	// between LastEventID and it are lost.
	ResumedAfter uint64 `json:"resumed_after"`
}
