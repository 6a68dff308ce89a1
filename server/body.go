package server

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spoolq/spool"
)

// Reading request bodies. A client declares a body's length before sending
// it, and may then send it slowly or not at all, so nothing is sized from
// the declared length beyond firstBodyChunk: the buffer grows with the
// bytes that actually arrive. Every body must arrive within
// Config.BodyReadTimeout (far shorter than the read deadline a long-poll
// needs), and the buffers of all bodies being read share one budget,
// Config.MaxBodyMemory: a body that would take the total past it is
// refused with 503 server_busy and Retry-After.
const (
	// firstBodyChunk is the most a buffer is given before the bytes
	// arrive, whatever Content-Length says.
	firstBodyChunk = 64 << 10
	// minBodyRead is the least room a read is given.
	minBodyRead = 512
	// busyRetryAfter is the Retry-After (seconds) of a server_busy answer.
	busyRetryAfter = 1
)

// bodyBudget is a semaphore of bytes: the buffer capacity that request
// bodies being read may hold together.
type bodyBudget struct {
	mu    sync.Mutex
	limit int64
	used  int64
	gauge prometheus.Gauge
}

func newBodyBudget(limit int64) *bodyBudget {
	return &bodyBudget{limit: limit, gauge: prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "spool_http_body_bytes_in_flight",
		Help: "Bytes of buffer held by request bodies being read (bounded by the server's body memory budget).",
	})}
}

// acquire takes n bytes of the budget, or reports false if that would go
// past the limit.
func (b *bodyBudget) acquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit {
		return false
	}
	b.used += n
	b.gauge.Set(float64(b.used))
	return true
}

func (b *bodyBudget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	b.gauge.Set(float64(b.used))
}

// errServerBusy answers a body that does not fit in the body memory budget.
var errServerBusy = &apiError{status: http.StatusServiceUnavailable, code: spool.CodeServerBusy,
	msg: "the server is reading too many request bodies at once; retry shortly"}

// readBody reads the request body, at most Limits.MaxBodyBytes, and
// returns it. The returned slice lives in a pooled buffer: call done (at
// once, deferred) when the data is no longer needed.
func (s *Server) readBody(c *call) (data []byte, done func(), err error) {
	buf := getBuf()
	var reserved int64
	done = func() {
		s.bodies.release(reserved)
		putBuf(buf)
	}
	if c.r.Body == nil || c.r.Body == http.NoBody {
		return nil, done, nil
	}
	limit := s.cfg.Limits.MaxBodyBytes
	rc := http.NewResponseController(c.w)
	if rc.SetReadDeadline(time.Now().Add(s.cfg.BodyReadTimeout)) == nil {
		// Once the body is in, the connection's read deadline goes back
		// to what the longest request needs: net/http reads on in the
		// background to notice a client leaving, and a deadline passing
		// there would cancel a long-poll. A body that failed keeps the
		// short deadline: net/http tries to read what is left of it
		// before it answers.
		defer func() {
			if err == nil {
				_ = rc.SetReadDeadline(time.Now().Add(s.longest))
			}
		}()
	}
	body := http.MaxBytesReader(c.w, c.r.Body, limit)
	// Room for the declared length (plus the read that sees EOF), but
	// never more than firstBodyChunk before the bytes arrive.
	want := int64(firstBodyChunk)
	if n := c.r.ContentLength; n >= 0 && n < want {
		want = n + minBodyRead
	}
	// room is the capacity the body may use so far: what was charged to
	// the budget. A pooled buffer may be larger; only room of it is used.
	b := buf.AvailableBuffer()[:0]
	room := int64(0)
	for {
		if room-int64(len(b)) < minBodyRead {
			room = min(max(room*2, want), limit+minBodyRead)
			if !s.bodies.acquire(room - reserved) {
				return nil, done, errServerBusy
			}
			reserved = room
			if int64(cap(b)) < room {
				grown := make([]byte, len(b), room)
				copy(grown, b)
				b = grown
			}
		}
		n, rerr := body.Read(b[len(b):room])
		b = b[:len(b)+n]
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			var mb *http.MaxBytesError
			switch {
			case errors.As(rerr, &mb):
				return nil, done, spool.TooLargef("the request body is over the limit of %d bytes", mb.Limit)
			case errors.Is(rerr, os.ErrDeadlineExceeded):
				return nil, done, &apiError{status: http.StatusRequestTimeout, code: spool.CodeRequestTimeout,
					msg: "the request body did not arrive within " + s.cfg.BodyReadTimeout.String() + "; send it whole and promptly"}
			}
			return nil, done, spool.Invalidf("reading the request body: %v", rerr)
		}
	}
	// A slice grown here goes back to the pool in place of the buffer's.
	if cap(b) > buf.Cap() {
		*buf = *bytes.NewBuffer(b[:0])
	}
	return b, done, nil
}
