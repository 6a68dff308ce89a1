package multinode

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
)

// ledger is what the clients saw.
type ledger struct {
	mu sync.Mutex
	// acked: enqueues answered 202 (or 200 for a repeated key).
	acked map[string]bool
	// delivered counts leases per job; completed counts completions
	// answered 200 per job.
	delivered map[string]int
	completed map[string]int
	// leasesBy counts leased jobs per node.
	leasesBy map[string]int
}

func newLedger() *ledger {
	return &ledger{acked: map[string]bool{}, delivered: map[string]int{}, completed: map[string]int{}, leasesBy: map[string]int{}}
}

func (l *ledger) ack(ids ...string) {
	l.mu.Lock()
	for _, id := range ids {
		l.acked[id] = true
	}
	l.mu.Unlock()
}

func (l *ledger) leased(node string, jobs []*spool.Job) {
	l.mu.Lock()
	for _, j := range jobs {
		l.delivered[j.ID]++
	}
	l.leasesBy[node] += len(jobs)
	l.mu.Unlock()
}

// done records a completion answered 200 and returns how many jobs have
// been completed at least once.
func (l *ledger) done(id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.completed[id]++
	return len(l.completed)
}

func (l *ledger) numCompleted() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.completed)
}

func (l *ledger) numAcked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// startNodes starts n nodes at once on the store (so that their
// migrations race, as in a rollout) and waits until all listen.
func startNodes(t *testing.T, n int, storeURL string) []*node {
	t.Helper()
	nodes := make([]*node, n)
	var wg sync.WaitGroup
	ready := make([]chan *node, n)
	for i := range n {
		ready[i] = make(chan *node, 1)
	}
	// startNode fails the test from the test goroutine only: launch in
	// parallel, report here.
	for i := range n {
		wg.Go(func() { ready[i] <- launch(fmt.Sprintf("n%d", i), "--store", storeURL) })
	}
	wg.Wait()
	for i := range n {
		nodes[i] = await(t, <-ready[i])
	}
	return nodes
}

const backoffBase, backoffMax = 50 * time.Millisecond, 200 * time.Millisecond

var quickBackoff = &spool.Backoff{Base: spool.Duration(backoffBase), Max: spool.Duration(backoffMax)}

func TestThreeNodes(t *testing.T) {
	base := needPostgres(t)
	storeURL, schema := freshSchema(t, base)
	start := time.Now()
	nodes := startNodes(t, 3, storeURL)
	t.Logf("three nodes on schema %s up in %s: %s, %s, %s", schema, time.Since(start).Round(time.Millisecond),
		nodes[0].Addr, nodes[1].Addr, nodes[2].Addr)

	t.Run("EveryJobCompletedOnce", func(t *testing.T) { everyJobOnce(t, nodes) })
	t.Run("WakeUpLatency", func(t *testing.T) { wakeUpLatency(t, nodes[0], nodes[1]) })
	t.Run("EventsAcrossNodes", func(t *testing.T) { eventsAcrossNodes(t, nodes[0], nodes[1]) })
	t.Run("DependenciesAcrossNodes", func(t *testing.T) { dependenciesAcrossNodes(t, nodes) })
	t.Run("KillOneNode", func(t *testing.T) { killOneNode(t, nodes) })
	for _, n := range nodes[:2] {
		n.Stop(t, 30*time.Second)
	}
	t.Logf("whole test: %s", time.Since(start).Round(time.Millisecond))
}

// everyJobOnce: producers and workers on all three nodes; every job is
// leased once and its completion acknowledged once.
func everyJobOnce(t *testing.T, nodes []*node) {
	const (
		queue        = "mn1"
		perProducer  = 200 // 100 single enqueues, 10 batches of 10
		producersPer = 2
		workersPer   = 2
	)
	total := perProducer * producersPer * len(nodes)
	l := newLedger()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	allDone := make(chan struct{})
	var closeOnce sync.Once
	var prod, work sync.WaitGroup
	start := time.Now()
	for ni, n := range nodes {
		c := newClient(t, n)
		for p := range producersPer {
			prod.Go(func() {
				for k := 0; k < perProducer; {
					if k%20 < 10 {
						j, _, err := c.Enqueue(ctx, queue, spool.EnqueueRequest{Type: "mn", Payload: []byte(fmt.Sprintf(`{"n":%d,"p":%d,"k":%d}`, ni, p, k))})
						if err != nil {
							t.Errorf("enqueue on %s: %v", n.Name, err)
							return
						}
						l.ack(j.ID)
						k++
						continue
					}
					reqs := make([]spool.EnqueueRequest, 10)
					for i := range reqs {
						reqs[i] = spool.EnqueueRequest{Type: "mn", Payload: []byte(fmt.Sprintf(`{"n":%d,"p":%d,"k":%d}`, ni, p, k+i))}
					}
					jobs, err := c.EnqueueBatch(ctx, queue, reqs)
					if err != nil {
						t.Errorf("batch enqueue on %s: %v", n.Name, err)
						return
					}
					for _, j := range jobs {
						l.ack(j.ID)
					}
					k += len(jobs)
				}
			})
		}
		for w := range workersPer {
			work.Go(func() {
				lease, wait := spool.Duration(30*time.Second), spool.Duration(500*time.Millisecond)
				for ctx.Err() == nil {
					jobs, err := c.Lease(ctx, spool.LeaseRequest{Queues: []string{queue}, Max: 10, Wait: &wait, Lease: &lease, Worker: fmt.Sprintf("%s-w%d", n.Name, w)})
					if err != nil {
						if ctx.Err() == nil {
							t.Errorf("lease on %s: %v", n.Name, err)
						}
						return
					}
					l.leased(n.Name, jobs)
					for _, j := range jobs {
						if _, err := c.Complete(ctx, j.ID, spool.CompleteRequest{Token: j.Lease.Token, Result: []byte(`{"ok":true}`)}); err != nil {
							t.Errorf("complete of %s on %s: %v", j.ID, n.Name, err)
							return
						}
						if l.done(j.ID) == total {
							closeOnce.Do(func() { close(allDone) })
						}
					}
				}
			})
		}
	}
	prod.Wait()
	producing := time.Since(start)
	select {
	case <-allDone:
	case <-time.After(60 * time.Second):
		t.Errorf("only %d of %d jobs completed within 60s", l.numCompleted(), total)
	}
	elapsed := time.Since(start)
	cancel()
	work.Wait()

	if got := l.numAcked(); got != total {
		t.Fatalf("%d enqueues acknowledged, want %d", got, total)
	}
	for id := range l.acked {
		if n := l.delivered[id]; n != 1 {
			t.Errorf("job %s delivered %d times, want once", id, n)
		}
		if n := l.completed[id]; n != 1 {
			t.Errorf("job %s: %d completions acknowledged, want exactly one", id, n)
		}
	}
	q, err := newClient(t, nodes[1]).Queue(context.Background(), queue)
	if err != nil {
		t.Fatal(err)
	}
	if q.Counts[spool.StateSucceeded] != int64(total) || q.Depth != 0 {
		t.Errorf("queue %s: %d succeeded, depth %d; want %d and 0 (%v)", queue, q.Counts[spool.StateSucceeded], q.Depth, total, q.Counts)
	}
	t.Logf("%d jobs enqueued on 3 nodes in %s, all completed in %s; leases per node: %v",
		total, producing.Round(time.Millisecond), elapsed.Round(time.Millisecond), l.leasesBy)
}

// wakeUpLatency: a long-poll on node b answers an enqueue on node a at
// once (LISTEN/NOTIFY), not when its 20s wait ends.
func wakeUpLatency(t *testing.T, a, b *node) {
	ca, cb := newClient(t, a), newClient(t, b)
	var lat []time.Duration
	for i := range 5 {
		queue := fmt.Sprintf("ping%d", i)
		got := make(chan []*spool.Job, 1)
		go func() {
			wait := spool.Duration(20 * time.Second)
			jobs, err := cb.Lease(context.Background(), spool.LeaseRequest{Queues: []string{queue}, Max: 1, Wait: &wait, Worker: "pinger"})
			if err != nil {
				t.Errorf("lease on %s: %v", b.Name, err)
			}
			got <- jobs
		}()
		// The lease request is being served (the scrape is the other one).
		eventually(t, 10*time.Second, "lease request in flight", func() bool { return inFlight(b) >= 2 })
		j, _, err := ca.Enqueue(context.Background(), queue, spool.EnqueueRequest{Type: "ping"})
		if err != nil {
			t.Fatal(err)
		}
		enqueued := time.Now()
		select {
		case jobs := <-got:
			if len(jobs) != 1 || jobs[0].ID != j.ID {
				t.Fatalf("the long-poll on %s answered %d jobs, want the one enqueued on %s", b.Name, len(jobs), a.Name)
			}
			lat = append(lat, time.Since(enqueued))
			if _, err := cb.Complete(context.Background(), j.ID, spool.CompleteRequest{Token: jobs[0].Lease.Token}); err != nil {
				t.Fatal(err)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("the long-poll on %s was not woken by the enqueue on %s", b.Name, a.Name)
		}
	}
	slices.Sort(lat)
	t.Logf("enqueue on %s -> long-poll on %s answered after (sorted, over HTTP): %v; median %s", a.Name, b.Name, lat, lat[len(lat)/2])
}

// killOneNode: while producers and workers run on all nodes, node 2 is
// killed with SIGKILL as its workers hold leases. Its jobs come back when
// their 2s leases lapse and the other nodes finish them; nothing
// acknowledged is lost.
func killOneNode(t *testing.T, nodes []*node) {
	const (
		queue       = "mn2"
		leaseFor    = 2 * time.Second
		perProducer = 150
		armAt       = 300 // acked enqueues before node 2's workers take their last leases
	)
	victim := nodes[2]
	l := newLedger()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	victimCtx, victimCancel := context.WithCancel(ctx)
	defer victimCancel()
	killed := make(chan struct{})
	arm := make(chan struct{})
	var armOnce sync.Once
	held := make(chan []string, 2)
	var stale atomic.Int64
	var prod, work sync.WaitGroup
	start := time.Now()

	enqueue := func(ctx context.Context, c *client.Client, n *node, p, k int) error {
		j, _, err := c.Enqueue(ctx, queue, spool.EnqueueRequest{Type: "mn", Backoff: quickBackoff,
			Payload: []byte(fmt.Sprintf(`{"n":%q,"p":%d,"k":%d}`, n.Name, p, k))})
		if err == nil {
			l.ack(j.ID)
			if l.numAcked() >= armAt {
				armOnce.Do(func() { close(arm) })
			}
		}
		return err
	}
	for _, n := range nodes[:2] {
		c := newClient(t, n)
		for p := range 2 {
			prod.Go(func() {
				for k := range perProducer {
					if err := enqueue(ctx, c, n, p, k); err != nil {
						t.Errorf("enqueue on %s: %v", n.Name, err)
						return
					}
				}
			})
		}
		for w := range 2 {
			work.Go(func() {
				lease, wait := spool.Duration(leaseFor), spool.Duration(500*time.Millisecond)
				for ctx.Err() == nil {
					jobs, err := c.Lease(ctx, spool.LeaseRequest{Queues: []string{queue}, Max: 10, Wait: &wait, Lease: &lease, Worker: fmt.Sprintf("%s-w%d", n.Name, w)})
					if err != nil {
						if ctx.Err() == nil {
							t.Errorf("lease on %s: %v", n.Name, err)
						}
						return
					}
					if len(jobs) == 0 {
						continue
					}
					l.leased(n.Name, jobs)
					acks := make([]spool.Ack, len(jobs))
					for i, j := range jobs {
						acks[i] = spool.Ack{ID: j.ID, Token: j.Lease.Token, Outcome: spool.OutcomeComplete}
					}
					res, err := c.Ack(ctx, acks)
					if err != nil {
						t.Errorf("ack on %s: %v", n.Name, err)
						return
					}
					for _, r := range res {
						switch {
						case r.Error == nil:
							l.done(r.ID)
						case r.Error.Code == spool.CodeLeaseLost:
							// This worker's lease lapsed (a slow machine):
							// the job went to another worker.
							stale.Add(1)
						default:
							t.Errorf("ack of %s on %s: %s: %s", r.ID, n.Name, r.Error.Code, r.Error.Message)
						}
					}
				}
			})
		}
	}
	// Node 2: producers until the kill; workers that take leases once
	// armed and hold them until the kill.
	cv := newClient(t, victim, client.WithRetryPolicy(client.NoRetry))
	var victimAcked atomic.Int64
	for p := range 2 {
		prod.Go(func() {
			for k := 0; ; k++ {
				if err := enqueue(victimCtx, cv, victim, p, k); err != nil {
					return // killed: this enqueue's outcome is unknown
				}
				victimAcked.Add(1)
			}
		})
	}
	for w := range 2 {
		work.Go(func() {
			select {
			case <-arm:
			case <-victimCtx.Done():
				held <- nil
				return
			}
			lease, wait := spool.Duration(leaseFor), spool.Duration(5*time.Second)
			jobs, err := cv.Lease(victimCtx, spool.LeaseRequest{Queues: []string{queue}, Max: 5, Wait: &wait, Lease: &lease, Worker: fmt.Sprintf("%s-w%d", victim.Name, w)})
			if err != nil {
				t.Errorf("lease on %s before the kill: %v", victim.Name, err)
				held <- nil
				return
			}
			l.leased(victim.Name, jobs)
			ids := make([]string, len(jobs))
			for i, j := range jobs {
				ids[i] = j.ID
			}
			held <- ids
			<-killed // "working" on them when the node dies
		})
	}
	var heldIDs []string
	for range 2 {
		select {
		case ids := <-held:
			heldIDs = append(heldIDs, ids...)
		case <-time.After(30 * time.Second):
			t.Fatal("node 2's workers did not take leases within 30s")
		}
	}
	if len(heldIDs) == 0 {
		t.Fatal("node 2's workers hold no lease: the kill would prove nothing")
	}
	victim.Kill()
	killedAt := time.Now()
	close(killed)
	victimCancel()
	t.Logf("killed %s (SIGKILL) %s into the run, its workers holding %d leases of %s; %d enqueues acked on it before",
		victim.Name, killedAt.Sub(start).Round(time.Millisecond), len(heldIDs), leaseFor, victimAcked.Load())

	prod.Wait()
	c0 := newClient(t, nodes[0])
	var q *spool.QueueInfo
	eventually(t, 45*time.Second, "the queue drains on the surviving nodes", func() bool {
		var err error
		q, err = c0.Queue(context.Background(), queue)
		return err == nil && q.Depth == 0
	})
	drained := time.Since(killedAt)
	cancel()
	work.Wait()

	lost := 0
	for id := range l.acked {
		j, err := c0.Get(context.Background(), id, 0)
		if err != nil {
			t.Errorf("acked job %s: %v", id, err)
			lost++
			continue
		}
		if j.State != spool.StateSucceeded {
			t.Errorf("acked job %s is %s, want succeeded", id, j.State)
			lost++
		}
		if n := l.completed[id]; n > 1 {
			t.Errorf("job %s: %d completions acknowledged", id, n)
		}
	}
	for _, id := range heldIDs {
		j, err := c0.Get(context.Background(), id, 0)
		if err != nil {
			t.Fatal(err)
		}
		if l.delivered[id] < 2 {
			t.Errorf("job %s was held by %s at the kill but not delivered again", id, victim.Name)
		}
		if j.Attempt < 2 || len(j.Errors) == 0 || !strings.Contains(j.Errors[0].Error, "lease expired") {
			t.Errorf("job %s held at the kill: attempt %d, errors %v; want the lapsed lease as a failed attempt", id, j.Attempt, j.Errors)
		}
	}
	dups := 0
	for _, n := range l.delivered {
		if n > 1 {
			dups++
		}
	}
	stored := q.Counts[spool.StateSucceeded]
	if n := q.Counts[spool.StateDead] + q.Counts[spool.StateCancelled]; n > 0 {
		t.Errorf("%d jobs ended dead or cancelled (%v)", n, q.Counts)
	}
	sort.Strings(heldIDs)
	t.Logf("after the kill: queue drained %s later; %d jobs acked, %d lost; %d stored jobs succeeded (%d stored but never acked: in flight at the kill); "+
		"%d jobs delivered more than once (%d held at the kill), %d stale acks; leases per node: %v",
		drained.Round(time.Millisecond), len(l.acked), lost, stored, stored-int64(len(l.acked)),
		dups, len(heldIDs), stale.Load(), l.leasesBy)
	if lost > 0 {
		t.Fatalf("%d acknowledged jobs lost", lost)
	}
}

// eventsAcrossNodes: a job enqueued, leased and completed through node a
// shows its whole life, in order, on the event stream of node b.
func eventsAcrossNodes(t *testing.T, a, b *node) {
	ca, cb := newClient(t, a), newClient(t, b)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	type seen struct {
		id    string
		state spool.State
	}
	got := make(chan seen, 1000)
	go func() {
		for ev, err := range cb.Events(ctx, client.EventsOptions{Queues: []string{"sse"}, Stats: -1}) {
			if err != nil {
				t.Errorf("events on b: %v", err)
				return
			}
			if ev.Job != nil {
				got <- seen{ev.Job.ID, ev.Job.State}
			}
		}
	}()
	// Until the stream is connected, events go unseen: push markers until
	// one shows up.
	connected := false
	for !connected {
		if _, err := ca.Push(ctx, "sse", "marker", nil); err != nil {
			t.Fatal(err)
		}
		select {
		case <-got:
			connected = true
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("the stream on b never showed an event of a")
		}
	}
	job, err := ca.Push(ctx, "sse", "work", nil, client.Priority(10))
	if err != nil {
		t.Fatal(err)
	}
	leased, err := ca.Lease(ctx, spool.LeaseRequest{Queues: []string{"sse"}, Max: 1})
	if err != nil || len(leased) != 1 || leased[0].ID != job.ID {
		t.Fatalf("lease on a: %v, %d jobs (want job %s first: it has the higher priority)", err, len(leased), job.ID)
	}
	if _, err := ca.Complete(ctx, job.ID, spool.CompleteRequest{Token: leased[0].Lease.Token}); err != nil {
		t.Fatal(err)
	}
	var states []spool.State
	for len(states) < 3 {
		select {
		case s := <-got:
			if s.id == job.ID {
				states = append(states, s.state)
			}
		case <-ctx.Done():
			t.Fatalf("b's stream showed only %v of job %s", states, job.ID)
		}
	}
	if want := []spool.State{spool.StateReady, spool.StateActive, spool.StateSucceeded}; !slices.Equal(states, want) {
		t.Fatalf("b's stream showed job %s as %v, want %v", job.ID, states, want)
	}
}

// dependenciesAcrossNodes: a 1 → 10 → 1 graph enqueued through node 0 and
// worked through nodes 1 and 2 with long-polls: each finished parent,
// whichever node completed it, releases its children, and the join runs
// last, once.
func dependenciesAcrossNodes(t *testing.T, nodes []*node) {
	c0 := newClient(t, nodes[0])
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	reqs := []spool.EnqueueRequest{{Type: "root", Ref: "root"}}
	var refs []string
	for i := range 10 {
		refs = append(refs, fmt.Sprint("part-", i))
		reqs = append(reqs, spool.EnqueueRequest{Type: "part", Ref: refs[i], DependsOn: []string{"root"}})
	}
	reqs = append(reqs, spool.EnqueueRequest{Type: "join", DependsOn: refs})
	jobs, err := c0.EnqueueBatch(ctx, "dag", reqs)
	if err != nil {
		t.Fatal(err)
	}
	join := jobs[len(jobs)-1]

	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	for _, n := range nodes[1:] {
		c := newClient(t, n)
		wait := spool.Duration(time.Second)
		wg.Go(func() {
			for ctx.Err() == nil {
				leased, err := c.Lease(ctx, spool.LeaseRequest{Queues: []string{"dag"}, Max: 4, Wait: &wait})
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("lease on %s: %v", n.Name, err)
					}
					return
				}
				for _, j := range leased {
					mu.Lock()
					order = append(order, j.Type)
					mu.Unlock()
					if _, err := c.Complete(ctx, j.ID, spool.CompleteRequest{Token: j.Lease.Token}); err != nil {
						t.Errorf("complete on %s: %v", n.Name, err)
					}
				}
			}
		})
	}
	final, err := c0.Wait(ctx, join.ID)
	cancel()
	wg.Wait()
	if err != nil || final.State != spool.StateSucceeded {
		t.Fatalf("join: %v, %+v", err, final)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(order) != 12 || order[0] != "root" || order[11] != "join" {
		t.Fatalf("jobs ran in the order %v: want the root first, the 10 parts, the join last", order)
	}
}
