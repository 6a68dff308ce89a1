package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/auth"
	"github.com/spoolq/spool/internal/engine"
)

// Timing of GET /v1/events.
const (
	// sseHeartbeat is the longest silence on a stream: a comment line
	// keeps proxies and clients from timing it out.
	sseHeartbeat = 15 * time.Second
	// sseDefaultStats is how often queue snapshots are sent unless the
	// stats parameter says otherwise.
	sseDefaultStats = 5 * time.Second
	// sseMinStats bounds the stats parameter from below.
	sseMinStats = time.Second
	// sseWriteTimeout bounds one write to a stream's client.
	sseWriteTimeout = 30 * time.Second
	// ssePage bounds the job events read from the ring at once.
	ssePage = 500
)

// eventsQuery is what the query string of GET /v1/events asks for.
type eventsQuery struct {
	filter engine.EventFilter
	stats  time.Duration // 0: no queue snapshots
}

// parseEventsQuery reads ?queue= (repeatable), ?job= and ?stats=.
func parseEventsQuery(raw string) (*eventsQuery, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, spool.Invalidf("the query string is malformed: %v", err)
	}
	out := &eventsQuery{stats: sseDefaultStats}
	for k, vs := range q {
		switch k {
		case "queue":
			for _, v := range vs {
				if err := spool.ValidateQueueName(v); err != nil {
					return nil, err
				}
			}
			out.filter.Queues = vs
		case "job":
			if len(vs) > 1 {
				return nil, spool.Invalidf("query parameter \"job\" is given %d times; give it once", len(vs))
			}
			id, err := parseJobID(vs[0])
			if err != nil {
				return nil, err
			}
			out.filter.Job = id
		case "stats":
			if len(vs) > 1 {
				return nil, spool.Invalidf("query parameter \"stats\" is given %d times; give it once", len(vs))
			}
			d, err := spool.ParseDuration(vs[0])
			if err != nil {
				return nil, spool.Invalidf("stats: %v", err)
			}
			if d != 0 && (d < sseMinStats || d > time.Hour) {
				return nil, spool.Invalidf("stats must be 0 (no queue snapshots) or between %s and 1h", sseMinStats)
			}
			out.stats = d
		default:
			return nil, spool.Invalidf("unknown query parameter %q; this endpoint accepts queue, job, stats", truncate(k, 40))
		}
	}
	return out, nil
}

// serveEvents: GET /v1/events, a Server-Sent Events stream of job state
// changes ("job", with ids) and queue snapshots ("queue", without ids).
// A Last-Event-ID header resumes after that id; when the events after it
// are gone a "missed" event says so first. The stream ends when the
// client leaves or the server stops.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	q, err := parseEventsQuery(r.URL.RawQuery)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	pr := principalOf(r.Context())
	for _, name := range q.filter.Queues {
		if !pr.Reaches(name) {
			s.writeError(w, r, outOfScope(pr, "queue", name))
			return
		}
	}
	cursor := s.engine.LastEventID()
	if h := r.Header.Get("Last-Event-ID"); h != "" {
		id, err := strconv.ParseUint(h, 10, 64)
		if err != nil {
			s.writeError(w, r, spool.Invalidf("Last-Event-ID %q is not an event id (a non-negative integer)", truncate(h, 40)))
			return
		}
		cursor = id
	}
	select {
	case <-s.engine.Stopped():
		s.writeError(w, r, &apiError{status: http.StatusServiceUnavailable, code: spool.CodeUnavailable, msg: "the server is stopping"})
		return
	default:
	}

	rc := http.NewResponseController(w)
	// The connection's deadlines are made for requests, not streams: lift
	// the read deadline and move the write deadline with every write.
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	st := &sseStream{w: bufio.NewWriter(w), rc: rc}
	st.comment("spool events")

	ctx := r.Context()
	now := time.Now()
	nextBeat := now.Add(sseHeartbeat)
	var nextStats time.Time
	if q.stats > 0 {
		nextStats = now // a first snapshot at once
	}
	for {
		p := s.engine.EventsAfter(cursor, q.filter, ssePage)
		if p.Missed {
			st.event(spool.EventMissed, 0, spool.MissedEvent{LastEventID: cursor, ResumedAfter: p.ResumedAfter})
		}
		for i := range p.Events {
			if !pr.Reaches(p.Events[i].Queue) {
				continue
			}
			st.event(spool.EventJob, p.Events[i].EventID, &p.Events[i])
		}
		cursor = p.Cursor
		now = time.Now()
		if !nextStats.IsZero() && !now.Before(nextStats) {
			s.queueSnapshots(ctx, st, q.filter, pr)
			nextStats = now.Add(q.stats)
		}
		if !now.Before(nextBeat) {
			st.comment("heartbeat")
		}
		if st.dirty {
			nextBeat = now.Add(sseHeartbeat)
		}
		if err := st.flush(); err != nil {
			return // the client left
		}
		if s.engine.LastEventID() > cursor {
			continue // more than a page was waiting
		}
		wake := nextBeat
		if !nextStats.IsZero() && nextStats.Before(wake) {
			wake = nextStats
		}
		wctx, cancel := context.WithDeadline(ctx, wake)
		s.engine.WaitEvents(wctx, cursor)
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-s.engine.Stopped():
			return
		default:
		}
	}
}

// queueSnapshots sends a "queue" event for each queue the filter names
// (every queue when it names none; none when it names only a job).
func (s *Server) queueSnapshots(ctx context.Context, st *sseStream, f engine.EventFilter, pr *auth.Principal) {
	var qs []spool.QueueInfo
	switch {
	case len(f.Queues) > 0:
		for _, name := range f.Queues {
			qi, err := s.engine.Queue(ctx, name)
			if err == nil {
				qs = append(qs, *qi)
			} else if !errors.Is(err, spool.ErrNotFound) {
				s.log.Warn("events: reading a queue", "queue", name, "error", err)
			}
		}
	case f.Job != "":
		return
	default:
		var err error
		if qs, err = s.engine.Queues(ctx); err != nil {
			s.log.Warn("events: reading queues", "error", err)
			return
		}
		qs = filterQueues(&call{p: pr}, qs)
	}
	for i := range qs {
		st.event(spool.EventQueue, 0, &qs[i])
	}
}

// sseStream writes Server-Sent Events. Errors stick: after the first,
// writes do nothing and flush reports it.
type sseStream struct {
	w     *bufio.Writer
	rc    *http.ResponseController
	err   error
	dirty bool
}

func (st *sseStream) write(b []byte) {
	if st.err != nil {
		return
	}
	if !st.dirty {
		_ = st.rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	}
	st.dirty = true
	_, st.err = st.w.Write(b)
}

// event writes one event; id 0 writes no id line.
func (st *sseStream) event(name string, id uint64, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		st.err = err
		return
	}
	b := make([]byte, 0, len(data)+64)
	if id > 0 {
		b = append(append(append(b, "id: "...), strconv.FormatUint(id, 10)...), '\n')
	}
	b = append(append(append(b, "event: "...), name...), '\n')
	b = append(append(append(b, "data: "...), data...), "\n\n"...)
	st.write(b)
}

func (st *sseStream) comment(text string) { st.write([]byte(": " + text + "\n\n")) }

func (st *sseStream) flush() error {
	if !st.dirty || st.err != nil {
		return st.err
	}
	st.dirty = false
	if st.err = st.w.Flush(); st.err != nil {
		return st.err
	}
	st.err = st.rc.Flush()
	return st.err
}
