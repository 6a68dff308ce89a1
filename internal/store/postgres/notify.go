package postgres

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// Cross-node wake-ups (store.Notifier); see "Wake-ups" in doc.go.

var _ store.Notifier = (*Store)(nil)

// channelName is the NOTIFY channel of a schema: stores on other schemas of
// the same database do not hear each other. A channel is an identifier of
// at most 63 bytes; a longer one is shortened with a hash of the schema.
func channelName(schema string) string {
	ch := "spool:" + schema
	if len(ch) <= 63 {
		return ch
	}
	sum := sha256.Sum256([]byte(schema))
	return "spool:" + schema[:24] + ":" + hex.EncodeToString(sum[:16])
}

// newNodeID names a Store in the notifications it sends, so that it skips
// its own.
func newNodeID() string { return crand.Text()[:13] }

// Payload format, one notification (at most maxPayload bytes, NOTIFY's
// limit being 8000):
//
//	spool1 <node id>
//	q<queue>       jobs became ready in <queue>
//	j<job id>      the job finished
//	c<queue>       the queue's config changed
//	e<job id>\t<queue>\t<type>\t<state>\t<attempt>\t<unix ns>
//	               a job event (GET /v1/events): the job changed state
//	*              anything may have changed: wake everyone (resync)
//
// Lines are separated by "\n". A key that could break the format (a queue
// name with a newline: the engine never makes one) is sent as "*"; a job
// event with a tab or newline in a field (validation refuses them) is not
// sent. Job events keep their order: they go in the order they were
// recorded, after the wake-ups of the same round.
const (
	payloadMagic = "spool1"
	maxPayload   = 7900
)

// Pending notifications beyond these bounds are replaced by one "*".
// Pending job events beyond maxPendingEvents are dropped (they are for
// watchers, not wake-ups): the other nodes' streams miss them.
const (
	maxPendingJobs   = 20_000
	maxPendingQueues = 5_000
	maxPendingEvents = 50_000
)

// sender collects the wake-ups of one Store's writes and sends them after
// commit, coalesced, from one goroutine: while one NOTIFY transaction is in
// flight, everything committed meanwhile piles up and goes in the next, so
// a node sends one notification per queue per round trip however many jobs
// and transactions it carried. See doc.go for why this is not done inside
// the writing transactions.
type sender struct {
	s       *Store
	channel string
	node    string

	mu      sync.Mutex
	queues  map[string]struct{}
	changed map[string]struct{}
	jobs    map[string]struct{}
	resync  bool
	events  []spool.JobEvent
	dropped int // job events dropped since the last warning

	kick chan struct{}
	done chan struct{}
}

func newSender(s *Store) *sender {
	return &sender{
		s:       s,
		channel: channelName(s.schema),
		node:    s.node,
		queues:  make(map[string]struct{}),
		changed: make(map[string]struct{}),
		jobs:    make(map[string]struct{}),
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
}

func (n *sender) signal() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// add records the wake-ups of one committed write.
func (n *sender) add(ready, changed, finished []string) {
	if len(ready)+len(changed)+len(finished) == 0 {
		return
	}
	n.mu.Lock()
	for _, q := range ready {
		n.queues[q] = struct{}{}
	}
	for _, q := range changed {
		n.changed[q] = struct{}{}
	}
	for _, id := range finished {
		n.jobs[id] = struct{}{}
	}
	if len(n.jobs) > maxPendingJobs || len(n.queues)+len(n.changed) > maxPendingQueues {
		n.resync = true
		clear(n.jobs)
		clear(n.queues)
		clear(n.changed)
	}
	n.mu.Unlock()
	n.signal()
}

// PublishJobEvents queues job events for the other nodes
// (store.EventPublisher).
func (s *Store) PublishJobEvents(evs []spool.JobEvent) {
	n := s.sender
	n.mu.Lock()
	room := maxPendingEvents - len(n.events)
	if room < len(evs) {
		n.dropped += len(evs) - max(room, 0)
		evs = evs[:max(room, 0)]
	}
	n.events = append(n.events, evs...)
	n.mu.Unlock()
	n.signal()
}

// eventLine encodes a job event, or returns "" if a field could break the
// format.
func eventLine(ev *spool.JobEvent) string {
	fields := []string{ev.ID, ev.Queue, ev.Type, string(ev.State)}
	for _, f := range fields {
		if strings.ContainsAny(f, "\t\n\r") || len(f) > 1000 {
			return ""
		}
	}
	return "e" + strings.Join(fields, "\t") + "\t" + strconv.Itoa(ev.Attempt) + "\t" + strconv.FormatInt(ev.At.UnixNano(), 10)
}

// parseEventLine decodes eventLine's output (without the 'e').
func parseEventLine(l string) (*spool.JobEvent, bool) {
	f := strings.Split(l, "\t")
	if len(f) != 6 {
		return nil, false
	}
	attempt, err1 := strconv.Atoi(f[4])
	ns, err2 := strconv.ParseInt(f[5], 10, 64)
	st := spool.State(f[3])
	if err1 != nil || err2 != nil || !st.Valid() || f[0] == "" {
		return nil, false
	}
	return &spool.JobEvent{ID: f[0], Queue: f[1], Type: f[2], State: st, Attempt: attempt, At: time.Unix(0, ns).UTC()}, true
}

// take empties the pending set into notification payloads.
func (n *sender) take() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.dropped > 0 {
		n.s.log.Warn("postgres store: job events for other nodes' streams were dropped (too many pending)", "dropped", n.dropped)
		n.dropped = 0
	}
	if !n.resync && len(n.queues)+len(n.changed)+len(n.jobs)+len(n.events) == 0 {
		return nil
	}
	head := payloadMagic + " " + n.node
	var (
		out []string
		b   strings.Builder
	)
	line := func(l string) {
		if b.Len() > 0 && b.Len()+1+len(l) > maxPayload {
			out = append(out, b.String())
			b.Reset()
		}
		if b.Len() == 0 {
			b.WriteString(head)
		}
		b.WriteByte('\n')
		b.WriteString(l)
	}
	safe := func(kind byte, key string) string {
		if key == "" || strings.ContainsAny(key, "\n\r") || len(key) > 1000 {
			return "*"
		}
		return string(kind) + key
	}
	if n.resync {
		line("*")
	}
	for q := range n.queues {
		line(safe('q', q))
	}
	for q := range n.changed {
		line(safe('c', q))
	}
	for id := range n.jobs {
		line(safe('j', id))
	}
	for i := range n.events {
		if l := eventLine(&n.events[i]); l != "" {
			line(l)
		}
	}
	out = append(out, b.String())
	n.resync = false
	clear(n.queues)
	clear(n.changed)
	clear(n.jobs)
	n.events = n.events[:0]
	return out
}

// putBack returns payloads that could not be sent to the pending set, as a
// resync: simpler than parsing them back, and rare (the database was out
// of reach).
func (n *sender) putBack() {
	n.mu.Lock()
	n.resync = true
	clear(n.queues)
	clear(n.changed)
	clear(n.jobs)
	n.mu.Unlock()
}

// notifySQL sends the payloads in one transaction that does not wait for
// its commit to be flushed: a notification is a hint (the data it points
// to was committed, and flushed, before), and the commit of a NOTIFY holds
// a database-wide lock that a synchronous commit would hold through a WAL
// flush.
const notifySQL = `SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, p) FROM unnest($2::text[]) AS p`

// Send retries: the first retry after senderBackoffMin, doubling up to
// senderBackoffMax while the database is out of reach.
const (
	senderBackoffMin = 50 * time.Millisecond
	senderBackoffMax = 2 * time.Second
	senderTimeout    = 5 * time.Second
)

// run sends pending notifications until ctx ends, then makes one last
// attempt with what is left.
func (n *sender) run(ctx context.Context) {
	defer close(n.done)
	backoff := time.Duration(0)
	failing := false
	for {
		if backoff == 0 {
			select {
			case <-ctx.Done():
				n.flush(context.Background(), time.Second)
				return
			case <-n.kick:
			}
		} else {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		err := n.flush(ctx, senderTimeout)
		switch {
		case err == nil:
			if failing {
				n.s.log.Info("postgres store: sending wake-ups to other nodes again")
			}
			failing, backoff = false, 0
		case ctx.Err() != nil:
		default:
			if !failing {
				n.s.log.Warn("postgres store: cannot send wake-ups to other nodes; retrying", "error", err)
			}
			failing = true
			backoff = min(max(2*backoff, senderBackoffMin), senderBackoffMax)
		}
	}
}

func (n *sender) flush(ctx context.Context, timeout time.Duration) error {
	payloads := n.take()
	if len(payloads) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := n.s.pool.Exec(ctx, notifySQL, n.channel, payloads); err != nil {
		n.putBack()
		return interpretError("sending wake-ups", err)
	}
	return nil
}

// parsePayload decodes a notification into events, skipping the
// notifications of the Store named own. A payload it cannot read is a
// resync.
func parsePayload(payload, own string, fn func(store.Event)) {
	head, body, _ := strings.Cut(payload, "\n")
	magic, node, _ := strings.Cut(head, " ")
	if magic != payloadMagic {
		fn(store.Event{Kind: store.EventResync})
		return
	}
	if node == own {
		return
	}
	for body != "" {
		var l string
		l, body, _ = strings.Cut(body, "\n")
		if l == "" {
			continue
		}
		switch l[0] {
		case 'q':
			fn(store.Event{Kind: store.EventQueueReady, Queue: l[1:]})
		case 'j':
			fn(store.Event{Kind: store.EventJobFinished, JobID: l[1:]})
		case 'c':
			fn(store.Event{Kind: store.EventQueueChanged, Queue: l[1:]})
		case 'e':
			if ev, ok := parseEventLine(l[1:]); ok {
				fn(store.Event{Kind: store.EventJobState, Job: ev})
			}
		default: // "*", or a kind of a newer build
			fn(store.Event{Kind: store.EventResync})
		}
	}
}

// The listener's reconnection backoff, and how often an idle listening
// connection is checked (a peer that vanished without closing the TCP
// connection would otherwise go unnoticed until the kernel gives up).
const (
	listenBackoffMin = 50 * time.Millisecond
	listenBackoffMax = 2 * time.Second
	listenIdleCheck  = 15 * time.Second
	listenPingTime   = 5 * time.Second
)

// ListenApplicationName is the application_name of the listening
// connection (pg_stat_activity shows it).
const ListenApplicationName = "spool-listener"

// Listen receives the wake-ups sent by the other Stores on this schema
// (other nodes) on a connection of its own, outside the pool, until ctx
// ends or the store is closed (store.Notifier). It sends a Resync each
// time it has (re)connected and issued LISTEN: notifications sent while it
// was not listening are lost.
func (s *Store) Listen(ctx context.Context, fn func(store.Event)) error {
	if err := s.begin(ctx); err != nil {
		if s.closed.Load() {
			return err
		}
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.life, cancel)
	defer stop()

	cfg := s.listenCfg.Copy()
	cfg.RuntimeParams["application_name"] = ListenApplicationName
	listen := "LISTEN " + pgx.Identifier{channelName(s.schema)}.Sanitize()
	backoff := time.Duration(0)
	failures := 0
	for {
		connected, err := s.listenOnce(ctx, cfg, listen, fn, failures > 0)
		if ctx.Err() != nil {
			if s.closed.Load() {
				return errClosed
			}
			return nil
		}
		if connected {
			failures, backoff = 0, 0
		}
		failures++
		if failures == 1 {
			s.log.Warn("postgres store: the listening connection failed; reconnecting (wake-ups from other nodes are delayed until then)",
				"error", interpretError("listening", err))
		}
		backoff = min(max(2*backoff, listenBackoffMin), listenBackoffMax)
		// Full jitter, so that nodes do not reconnect in step.
		t := time.NewTimer(backoff/2 + rand.N(backoff/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

// listenOnce connects, listens and delivers events until the connection
// fails or ctx ends. connected reports whether LISTEN took effect.
func (s *Store) listenOnce(ctx context.Context, cfg *pgx.ConnConfig, listen string, fn func(store.Event), again bool) (connected bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, listen); err != nil {
		return false, err
	}
	if again {
		s.log.Info("postgres store: listening for other nodes' wake-ups again; waking every waiter once")
	}
	fn(store.Event{Kind: store.EventResync})
	for {
		wctx, cancel := context.WithTimeout(ctx, listenIdleCheck)
		note, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			parsePayload(note.Payload, s.node, fn)
		case ctx.Err() != nil:
			return true, ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			// Idle: check that the connection still works.
			pctx, cancel := context.WithTimeout(ctx, listenPingTime)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return true, fmt.Errorf("idle check: %w", err)
			}
		default:
			return true, err
		}
	}
}
