package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spoolq/spool"
)

// EventsOptions selects what Events streams.
type EventsOptions struct {
	// Queues limits the stream to these queues (none: every queue).
	Queues []string
	// Job limits the stream to one job.
	Job string
	// Stats is how often queue snapshots are sent: 0 takes the server's
	// default (5s); a negative value asks for none.
	Stats time.Duration
	// LastEventID resumes after this event id (0: from now on).
	LastEventID uint64
}

// Event is one event of the stream. Exactly one of Job, Queue and Missed
// is set, as Name says.
type Event struct {
	// Name is spool.EventJob, spool.EventQueue or spool.EventMissed.
	Name string
	// ID is the event id of a job event (0 for the others).
	ID     uint64
	Job    *spool.JobEvent
	Queue  *spool.QueueInfo
	Missed *spool.MissedEvent
}

// maxEventLine bounds one line of the stream (a queue snapshot is small).
const maxEventLine = 1 << 20

// Events streams the server's events (GET /v1/events) until ctx ends or
// the loop stops ranging. A dropped connection is reopened after a backoff,
// resuming after the last event seen (Last-Event-ID); if the server no
// longer holds the events in between, a spool.EventMissed event says so.
// An answer that retrying cannot fix (a 4xx, such as an unknown queue name)
// is yielded as the error and ends the stream; transport errors and 5xx
// answers are retried and not yielded.
func (c *Client) Events(ctx context.Context, opts EventsOptions) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		last := opts.LastEventID
		for try := 1; ; try++ {
			got, err := c.streamEvents(ctx, opts, &last, yield)
			if err == nil || ctx.Err() != nil {
				return // the consumer stopped, or ctx ended
			}
			var apiErr *Error
			if errors.As(err, &apiErr) && apiErr.Status < 500 && apiErr.Status != http.StatusTooManyRequests {
				yield(Event{}, err)
				return
			}
			if got {
				try = 1 // the stream worked for a while: start the backoff over
			}
			if c.sleep(ctx, c.backoff(try, err)) != nil {
				return
			}
		}
	}
}

// streamEvents reads one connection's events. It returns nil when the
// consumer stopped, and otherwise the error that ended the stream; got
// tells whether any event arrived.
func (c *Client) streamEvents(ctx context.Context, opts EventsOptions, last *uint64, yield func(Event, error) bool) (got bool, err error) {
	q := url.Values{}
	for _, name := range opts.Queues {
		q.Add("queue", name)
	}
	if opts.Job != "" {
		q.Set("job", opts.Job)
	}
	switch {
	case opts.Stats < 0:
		q.Set("stats", "0s")
	case opts.Stats > 0:
		q.Set("stats", opts.Stats.String())
	}
	u := *c.base
	u.Path = c.base.Path + "/v1/events"
	u.RawPath = ""
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, fmt.Errorf("GET /v1/events: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	if *last > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(*last, 10))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return false, &TransportError{Method: http.MethodGet, URL: u.Redacted(), Err: unwrapURLError(err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return false, decodeError(resp.StatusCode, resp.Header, b)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 4096), maxEventLine)
	var name, id string
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() == 0 {
				name, id = "", ""
				continue
			}
			ev, err := decodeEvent(name, id, data.String())
			name, id = "", ""
			data.Reset()
			if err != nil {
				return got, &TransportError{Method: http.MethodGet, URL: u.Redacted(), Err: err}
			}
			got = true
			if ev.ID > 0 {
				*last = ev.ID
			}
			if ev.Name == "" {
				continue // an event this client does not know
			}
			if !yield(ev, nil) {
				return got, nil
			}
		case strings.HasPrefix(line, ":"):
			// a comment: the server's keep-alive
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				name = value
			case "id":
				id = value
			case "data":
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				data.WriteString(value)
			}
		}
	}
	err = sc.Err()
	if err == nil {
		err = io.ErrUnexpectedEOF // the server ended the stream (it is stopping)
	}
	return got, &TransportError{Method: http.MethodGet, URL: u.Redacted(), Err: err}
}

// decodeEvent builds an Event from one SSE message; an unknown event name
// gives an Event without Name.
func decodeEvent(name, id, data string) (Event, error) {
	ev := Event{Name: name}
	if id != "" {
		n, err := strconv.ParseUint(id, 10, 64)
		if err != nil {
			return ev, fmt.Errorf("event id %q: %w", id, err)
		}
		ev.ID = n
	}
	var target any
	switch name {
	case spool.EventJob:
		ev.Job = new(spool.JobEvent)
		target = ev.Job
	case spool.EventQueue:
		ev.Queue = new(spool.QueueInfo)
		target = ev.Queue
	case spool.EventMissed:
		ev.Missed = new(spool.MissedEvent)
		target = ev.Missed
	default:
		return Event{ID: ev.ID}, nil
	}
	if err := json.Unmarshal([]byte(data), target); err != nil {
		return ev, fmt.Errorf("decoding a %q event: %w", name, err)
	}
	return ev, nil
}
