package chaos

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
	"github.com/spoolq/spool/internal/testproc"
)

const (
	queue = "chaos"
	// leaseFor is short so that jobs left active come back soon.
	leaseFor = 2 * time.Second
	// abandonOdds is the share of leased jobs a worker leaves active
	// while faults go on.
	abandonOdds = 0.1
	// settleFor bounds the time every acknowledged job has, once the
	// faults stop, to reach a terminal state.
	settleFor = 2 * time.Minute
	// Embedded store on a tmpfs: its size and the free-space mark.
	tmpfsSize    = 512 << 20
	minFreeSpace = "64MiB"
	// smallDepth is the max_depth of the overload fault.
	smallDepth = 10
	// maxBatch is the largest batch a producer sends.
	maxBatch = 20
)

var spoolBin string

// budget is how long the suite runs: whichever of its limits comes first.
type budget struct {
	dur   time.Duration // 0: no limit
	kills int           // 0: no limit
}

func (b budget) String() string {
	var parts []string
	if b.dur > 0 {
		parts = append(parts, b.dur.String())
	}
	if b.kills > 0 {
		parts = append(parts, fmt.Sprintf("%d kills", b.kills))
	}
	return strings.Join(parts, " or ")
}

// readBudget reads CHAOS_DURATION and CHAOS_KILLS; ok is false when
// neither is set.
func readBudget() (b budget, ok bool, err error) {
	if s := os.Getenv("CHAOS_DURATION"); s != "" {
		if b.dur, err = time.ParseDuration(s); err != nil || b.dur <= 0 {
			return b, false, fmt.Errorf("CHAOS_DURATION=%q: want a positive duration such as 10m", s)
		}
	}
	if s := os.Getenv("CHAOS_KILLS"); s != "" {
		if b.kills, err = strconv.Atoi(s); err != nil || b.kills <= 0 {
			return b, false, fmt.Errorf("CHAOS_KILLS=%q: want a positive number", s)
		}
	}
	return b, b.dur > 0 || b.kills > 0, nil
}

func TestMain(m *testing.M) {
	flag.Parse()
	if _, ok, err := readBudget(); err != nil || !ok {
		// TestChaos reports the error, or skips: nothing to build.
		os.Exit(m.Run())
	}
	testproc.Main(m, "chaos", &spoolBin)
}

func TestChaos(t *testing.T) {
	total, ok, err := readBudget()
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Skip("the chaos suite runs only when asked: make chaos CHAOS_DURATION=10m (or CHAOS_KILLS=200)")
	}
	stores := strings.Split(os.Getenv("CHAOS_STORES"), ",")
	if os.Getenv("CHAOS_STORES") == "" {
		stores = []string{"embedded", "postgres", "failover"}
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("CHAOS_SEED=%q: %v", s, err)
		}
	}
	// Each store gets its share of the budget.
	share := budget{dur: total.dur / time.Duration(len(stores)), kills: (total.kills + len(stores) - 1) / len(stores)}
	t.Logf("chaos: %s in all, %s on each of %s; seed %d (replay with CHAOS_SEED=%d)", total, share, strings.Join(stores, ", "), seed, seed)
	for i, store := range stores {
		switch store {
		case "embedded", "postgres", "failover":
		default:
			t.Fatalf("CHAOS_STORES: unknown store %q (embedded, postgres, failover)", store)
		}
		t.Run(store, func(t *testing.T) {
			r := newRun(t, store, share, rand.New(rand.NewPCG(seed, uint64(i))))
			r.chaos()
			r.check()
		})
	}
}

// run is the chaos run on one store.
type run struct {
	t      *testing.T
	store  string
	budget budget
	rng    *rand.Rand
	args   []string // of spool serve
	addr   string   // fixed across restarts, so clients simply carry on
	srv    *testproc.Server
	pg     *testproc.Postgres     // on the PostgreSQL store
	pair   *testproc.PostgresPair // primary and synchronous standby
	volume string                 // the tmpfs of the embedded store, if mounted
	h      *history

	faults map[string]int // done, by name
	// failoverTook is the time from the kill of the primary to the first
	// enqueue accepted after it.
	failoverTook time.Duration
	diskFull     struct{ refused, resumed bool }
}

func newRun(t *testing.T, store string, b budget, rng *rand.Rand) *run {
	r := &run{t: t, store: store, budget: b, rng: rng, h: newHistory(), faults: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	ln.Close()
	r.args = []string{"--addr", r.addr, "--lease", leaseFor.String()}
	switch store {
	case "embedded":
		dir := t.TempDir()
		if r.volume = mountTmpfs(t, dir); r.volume != "" {
			r.args = append(r.args, "--min-free-space", minFreeSpace)
		}
		r.args = append(r.args, "--data", filepath.Join(dir, "data"))
	case "postgres":
		r.pg = testproc.StartPostgres(t)
		r.args = append(r.args, "--store", r.pg.URL)
	case "failover":
		r.pair = testproc.StartPostgresPair(t)
		r.args = append(r.args, "--store", r.pair.URL)
	}
	t.Cleanup(func() {
		if r.srv != nil {
			r.srv.Kill()
			if t.Failed() {
				t.Logf("log of the last spool serve:\n%s", r.srv.Logs())
			}
		}
	})
	r.start()
	return r
}

// mountTmpfs mounts a small tmpfs on dir, for the full-disk fault, and
// returns dir; "" when it cannot (not root), which fails the test under
// CI=true.
func mountTmpfs(t *testing.T, dir string) string {
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", tmpfsSize), "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("cannot mount a tmpfs for the full-disk fault (it needs root): %v: %s", err, bytes.TrimSpace(out))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Logf("WARNING: %s; the embedded store runs without that fault", msg)
		return ""
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// start runs spool serve on the run's address and data.
func (r *run) start() {
	r.t.Helper()
	// A restart right after a kill may find the port still held for a
	// moment: try a few times.
	var err error
	for try := 0; try < 5; try++ {
		r.srv = testproc.Launch(spoolBin, "spool serve", r.args...)
		if err = r.srv.Listening(60 * time.Second); err == nil {
			return
		}
		r.srv.Kill()
	}
	r.t.Fatalf("restart %d: %v", r.faults["kill"], err)
}

// history is what the clients saw.
type history struct {
	mu sync.Mutex
	// acked: enqueues answered 202 (or 200), by job id.
	acked map[string]bool
	// batches: every batch sent, answered or not, by tag: its size.
	batches map[string]int
	// batchesAcked counts the batches answered 202.
	batchesAcked int
	// completed: completions answered 200, with the attempt completed.
	completed map[string]int
	// delivered counts deliveries (leases) per job.
	delivered map[string]int
	// abandoned: jobs a worker left active on purpose.
	abandoned map[string]bool
	// redelivered lists deliveries of a job after its completion was
	// acknowledged.
	redelivered []string
	// answers tallies the failed calls: "enqueue 503 queue_full".
	answers map[string]int
	// internal counts 5xx answers other than 503 (and 507).
	internal int
}

func newHistory() *history {
	return &history{acked: map[string]bool{}, batches: map[string]int{}, completed: map[string]int{},
		delivered: map[string]int{}, abandoned: map[string]bool{}, answers: map[string]int{}}
}

// failed records a call that failed: by its answer, or as "no answer"
// (the server was down, or the connection broke).
func (h *history) failed(op string, err error) {
	var ce *client.Error
	key := op + " no answer"
	if errors.As(err, &ce) {
		key = fmt.Sprintf("%s %d %s", op, ce.Status, ce.Code)
	}
	h.mu.Lock()
	h.answers[key]++
	if ce != nil && ce.Status >= 500 && ce.Status != 503 && ce.Status != 507 {
		h.internal++
	}
	h.mu.Unlock()
}

func (h *history) deliver(j *spool.Job) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.delivered[j.ID]++
	if a, ok := h.completed[j.ID]; ok && j.Attempt > a {
		h.redelivered = append(h.redelivered, j.ID)
	}
}

func (h *history) complete(id string, attempt int) {
	h.mu.Lock()
	h.completed[id] = attempt
	h.mu.Unlock()
}

func newClient(t *testing.T, addr string, opts ...client.Option) *client.Client {
	t.Helper()
	// No retries: each call's outcome is what the server answered.
	opts = append([]client.Option{client.WithTimeout(10 * time.Second), client.WithRetryPolicy(client.NoRetry), client.WithCoalescing(0)}, opts...)
	c, err := client.New("http://"+addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// pause paces a client loop, and slows it down while the server is down.
func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// chaos runs the load and the faults until the budget is spent, then lets
// the workers finish every job.
func (r *run) chaos() {
	t, h := r.t, r.h
	c := newClient(t, r.addr)
	produce, stopProducing := context.WithCancel(context.Background())
	work, stopWorking := context.WithCancel(context.Background())
	defer stopProducing()
	defer stopWorking()
	var (
		abandon atomic.Bool
		wg      sync.WaitGroup
	)
	abandon.Store(true)
	backoff := spool.Backoff{Base: spool.Duration(100 * time.Millisecond), Max: spool.Duration(time.Second)}
	// Two producers of single jobs, ~100 a second each.
	for p := 0; p < 2; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; produce.Err() == nil; n++ {
				job, _, err := c.Enqueue(produce, queue, spool.EnqueueRequest{
					Type: "single", Payload: []byte(fmt.Sprintf(`{"producer":%d,"n":%d}`, p, n)), Backoff: &backoff,
				})
				if err != nil {
					if produce.Err() == nil {
						h.failed("enqueue", err)
						pause(produce, 50*time.Millisecond)
					}
					continue
				}
				h.mu.Lock()
				h.acked[job.ID] = true
				h.mu.Unlock()
				pause(produce, 10*time.Millisecond)
			}
		}()
	}
	// One producer of batches of 2 to maxBatch jobs, all tagged with the
	// batch's name, so the history shows any batch stored in part.
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(r.rng.Uint64(), 1))
		for n := 0; produce.Err() == nil; n++ {
			size := 2 + rng.IntN(maxBatch-1)
			tag := fmt.Sprintf("batch-%d", n)
			reqs := make([]spool.EnqueueRequest, size)
			for i := range reqs {
				reqs[i] = spool.EnqueueRequest{Type: "batch", Tags: []string{tag},
					Payload: []byte(fmt.Sprintf(`{"batch":%d,"i":%d}`, n, i)), Backoff: &backoff}
			}
			h.mu.Lock()
			h.batches[tag] = size
			h.mu.Unlock()
			ids, err := c.EnqueueBatchIDs(produce, queue, reqs)
			if err != nil {
				if produce.Err() == nil {
					h.failed("batch", err)
					pause(produce, 50*time.Millisecond)
				}
				continue
			}
			h.mu.Lock()
			h.batchesAcked++
			for _, id := range ids {
				h.acked[id] = true
			}
			h.mu.Unlock()
			pause(produce, 50*time.Millisecond)
		}
	}()
	// Two workers: one completes job by job, the other acks in batches.
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(r.rng.Uint64(), uint64(w)))
			lease := spool.Duration(leaseFor)
			wait := spool.Duration(500 * time.Millisecond)
			for work.Err() == nil {
				jobs, err := c.Lease(work, spool.LeaseRequest{Queues: []string{queue}, Max: 20, Wait: &wait, Lease: &lease, Worker: fmt.Sprintf("chaos-%d", w)})
				if err != nil {
					if work.Err() == nil {
						h.failed("lease", err)
						pause(work, 50*time.Millisecond)
					}
					continue
				}
				var acks []spool.Ack
				for _, j := range jobs {
					h.deliver(j)
					if abandon.Load() && rng.Float64() < abandonOdds {
						h.mu.Lock()
						h.abandoned[j.ID] = true
						h.mu.Unlock()
						continue
					}
					if w == 1 {
						acks = append(acks, spool.Ack{ID: j.ID, Token: j.Lease.Token, Outcome: spool.OutcomeComplete})
						continue
					}
					if _, err := c.Complete(work, j.ID, spool.CompleteRequest{Token: j.Lease.Token}); err != nil {
						h.failed("complete", err)
						continue
					}
					h.complete(j.ID, j.Attempt)
				}
				if len(acks) == 0 {
					continue
				}
				results, err := c.Ack(work, acks)
				if err != nil {
					h.failed("ack", err)
					continue
				}
				attempts := map[string]int{}
				for _, j := range jobs {
					attempts[j.ID] = j.Attempt
				}
				for _, res := range results {
					if res.Error != nil {
						h.mu.Lock()
						h.answers["ack item "+res.Error.Code]++
						h.mu.Unlock()
						continue
					}
					h.complete(res.ID, attempts[res.ID])
				}
			}
		}()
	}

	started := time.Now()
	for r.budgetLeft(started) {
		pause(context.Background(), 300*time.Millisecond+time.Duration(r.rng.Int64N(int64(1200*time.Millisecond))))
		select {
		case <-r.srv.Done():
			t.Fatalf("spool serve exited under load: %v\n%s", r.srv.Err(), r.srv.Logs())
		default:
		}
		n := r.faults["kill"]
		switch {
		case r.pair != nil && r.faults["failover"] == 0 && r.halfway(started):
			r.failover(c)
		// Each fault comes once early (so that a short run has them
		// all), then once every so many kills.
		case r.pg != nil && n >= 1 && r.faults["pg restart"] < 1+n/8:
			r.pgRestart()
		case r.volume != "" && n >= 2 && r.faults["disk full"] < 1+n/12:
			r.diskFullFault(c)
		case n >= 1 && r.faults["overload"] < 1+n/10:
			r.overload(c)
		default:
			r.kill()
		}
	}
	t.Logf("faults over after %s: %v", time.Since(started).Round(time.Second), r.faults)
	// Faults stop: producers stop, workers leave nothing active and must
	// finish every job within settleFor.
	stopProducing()
	abandon.Store(false)
	settled := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), settleFor)
	defer cancel()
	for {
		q, err := c.Queue(ctx, queue)
		if err == nil && q.Depth == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Errorf("stuck: the queue still holds unfinished jobs %s after the faults stopped (%v, %v)", settleFor, q, err)
			break
		}
		pause(ctx, 200*time.Millisecond)
	}
	r.h.mu.Lock()
	r.faults["settle ms"] = int(time.Since(settled).Milliseconds())
	r.h.mu.Unlock()
	stopWorking()
	wg.Wait()
}

// halfway says whether half the budget is spent.
func (r *run) halfway(started time.Time) bool {
	if r.budget.dur > 0 && time.Since(started) >= r.budget.dur/2 {
		return true
	}
	return r.budget.kills > 0 && r.faults["kill"] >= r.budget.kills/2
}

func (r *run) budgetLeft(started time.Time) bool {
	if r.budget.dur > 0 && time.Since(started) >= r.budget.dur {
		return false
	}
	return r.budget.kills == 0 || r.faults["kill"] < r.budget.kills
}

// kill is kill -9 of spool serve and a restart on the same data.
func (r *run) kill() {
	r.srv.Kill()
	r.faults["kill"]++
	r.start()
}

// pgRestart crashes PostgreSQL (pg_ctl restart -m immediate: no
// checkpoint, the start replays the WAL) under the running spool serve,
// which must carry on by itself.
func (r *run) pgRestart() {
	if err := r.pg.Restart("immediate"); err != nil {
		r.t.Fatalf("%v\n%s", err, r.pg.Log())
	}
	r.faults["pg restart"]++
}

// failover kills the PostgreSQL primary (kill -9 of the postmaster and
// its processes) under load and promotes the synchronous standby: the
// running spool serve must find the new primary through its multi-host
// URL by itself. It measures the time from the kill to the first enqueue
// accepted.
func (r *run) failover(c *client.Client) {
	t := r.t
	r.faults["failover"]++
	killed := time.Now()
	if err := r.pair.KillPrimary(); err != nil {
		t.Fatalf("failover: killing the primary: %v", err)
	}
	if err := r.pair.Promote(); err != nil {
		t.Fatalf("failover: %v", err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		job, _, err := c.Enqueue(ctx, queue, spool.EnqueueRequest{Type: "probe"})
		cancel()
		if err == nil {
			r.failoverTook = time.Since(killed)
			r.h.mu.Lock()
			r.h.acked[job.ID] = true
			r.h.mu.Unlock()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("failover: no enqueue accepted within 2m of the kill of the primary (last answer: %v)", err)
		}
		pause(context.Background(), 50*time.Millisecond)
	}
}

// overload shrinks the queue's max_depth to smallDepth for a while: the
// producers get 503 queue_full, never a part of a batch stored.
func (r *run) overload(c *client.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	small, normal := int64(smallDepth), int64(1_000_000)
	r.faults["overload"]++
	if _, err := c.UpdateQueue(ctx, queue, spool.QueueConfig{MaxDepth: &small}); err != nil {
		r.t.Fatalf("overload: max_depth %d: %v", small, err)
	}
	pause(ctx, time.Second+time.Duration(r.rng.Int64N(int64(time.Second))))
	// Setting it back may meet a failing store in no fault: retry within
	// the deadline.
	for {
		_, err := c.UpdateQueue(ctx, queue, spool.QueueConfig{MaxDepth: &normal})
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			r.t.Fatalf("overload: max_depth back to %d: %v", normal, err)
		}
		pause(ctx, 100*time.Millisecond)
	}
}

// diskFullFault fills the embedded store's tmpfs below the free-space
// mark: enqueues must be refused with 503 disk_full while leases and acks
// go on; once the filler is removed, enqueues must be accepted again
// without a restart.
func (r *run) diskFullFault(c *client.Client) {
	t := r.t
	r.faults["disk full"]++
	var st unix.Statfs_t
	if err := unix.Statfs(r.volume, &st); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(r.volume, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for {
		if err := unix.Statfs(r.volume, &st); err != nil {
			t.Fatal(err)
		}
		if int64(st.Bavail)*int64(st.Bsize) < 32<<20 {
			break
		}
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	probe := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		job, _, err := c.Enqueue(ctx, queue, spool.EnqueueRequest{Type: "probe"})
		if err == nil {
			r.h.mu.Lock()
			r.h.acked[job.ID] = true
			r.h.mu.Unlock()
		}
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := probe()
		if errors.Is(err, spool.ErrDiskFull) {
			r.diskFull.refused = true
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("disk full: enqueues not refused with 503 disk_full within 10s of the disk filling (last answer: %v)", err)
			break
		}
		pause(context.Background(), 100*time.Millisecond)
	}
	// Load goes on against the full disk for a moment.
	pause(context.Background(), 500*time.Millisecond+time.Duration(r.rng.Int64N(int64(time.Second))))
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		err := probe()
		if err == nil {
			r.diskFull.resumed = true
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("disk full: enqueues not accepted again within 10s of space coming back (last answer: %v)", err)
			return
		}
		pause(context.Background(), 100*time.Millisecond)
	}
}

// check pages through the queue's whole history and checks it against
// what the clients saw.
func (r *run) check() {
	t, h := r.t, r.h
	c := newClient(t, r.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	type seen struct {
		state spool.State
		tag   string
	}
	jobs := map[string]seen{}
	for j, err := range c.Jobs(ctx, queue, client.ListJobsOptions{Limit: 1000}) {
		if err != nil {
			t.Fatalf("paging through the queue after %d jobs: %v", len(jobs), err)
		}
		var tag string
		if len(j.Tags) > 0 {
			tag = j.Tags[0]
		}
		jobs[j.ID] = seen{j.State, tag}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	lost, stuck, notSucceeded, dead := 0, 0, 0, 0
	for id := range h.acked {
		j, ok := jobs[id]
		switch {
		case !ok:
			lost++
			if lost <= 10 {
				t.Errorf("lost: job %s was acknowledged (202) but is not in the queue", id)
			}
		case j.state != spool.StateSucceeded && j.state != spool.StateDead && j.state != spool.StateCancelled:
			stuck++
			if stuck <= 10 {
				t.Errorf("stuck: job %s is %s after the faults stopped", id, j.state)
			}
		}
	}
	for _, j := range jobs {
		if j.state == spool.StateDead {
			dead++
		}
	}
	for id := range h.completed {
		if j, ok := jobs[id]; !ok || j.state != spool.StateSucceeded {
			notSucceeded++
			if notSucceeded <= 10 {
				t.Errorf("completion lost: job %s was completed (200) but is %q", id, j.state)
			}
		}
	}
	inBatch := map[string]int{}
	for _, j := range jobs {
		if j.tag != "" {
			inBatch[j.tag]++
		}
	}
	partial := 0
	for tag, n := range inBatch {
		if size := h.batches[tag]; n != size {
			partial++
			if partial <= 10 {
				t.Errorf("partial batch: %s of %d jobs has %d stored", tag, size, n)
			}
		}
	}
	// A job delivered more than once that no worker abandoned was
	// delivered again because of a fault: a kill that undid its lease or
	// came before its completion was answered.
	dups, faultDups, deliveries := 0, 0, 0
	for id, n := range h.delivered {
		deliveries += n
		if n > 1 {
			dups++
			if !h.abandoned[id] {
				faultDups++
			}
		}
	}
	if len(h.redelivered) > 0 {
		t.Errorf("%d deliveries of jobs whose completion had been acknowledged (first: %s)", len(h.redelivered), h.redelivered[0])
	}
	if h.internal > 0 {
		t.Errorf("%d answers were 5xx other than 503/507", h.internal)
	}
	if r.faults["overload"] > 0 && h.answers["enqueue 503 queue_full"]+h.answers["batch 503 queue_full"] == 0 {
		t.Errorf("overload: %d times max_depth %d, yet no enqueue was refused with 503 queue_full", r.faults["overload"], smallDepth)
	}
	if len(h.acked) == 0 || len(h.completed) == 0 {
		t.Errorf("%d enqueues and %d completions acknowledged: the run proves nothing", len(h.acked), len(h.completed))
	}

	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	row := func(k string, v any, want string) { fmt.Fprintf(tw, "%s\t%v\t%s\t\n", k, v, want) }
	fmt.Fprintf(tw, "store %s\t\t\t\n", r.store)
	row("kill -9 of spool serve", r.faults["kill"], "")
	if r.pg != nil {
		row("PostgreSQL restarts (immediate)", r.faults["pg restart"], "")
	}
	if r.pair != nil {
		row("PostgreSQL failovers (kill -9 primary, promote standby)", r.faults["failover"], fmt.Sprintf("first enqueue accepted %s after the kill", r.failoverTook.Round(time.Millisecond)))
	}
	if r.volume != "" {
		row("full disks", r.faults["disk full"], fmt.Sprintf("refused %v, resumed %v", r.diskFull.refused, r.diskFull.resumed))
	}
	row("overloads (max_depth 10)", r.faults["overload"], "")
	row("jobs acknowledged (202)", len(h.acked), "")
	row("  of them in batches", fmt.Sprintf("%d batches", h.batchesAcked), "")
	row("jobs in the history (paged)", len(jobs), fmt.Sprintf("%d pages of 1000", (len(jobs)+999)/1000))
	row("completions acknowledged", len(h.completed), "")
	row("deliveries", deliveries, "")
	row("LOST acknowledged jobs", lost, "must be 0")
	row("STUCK acknowledged jobs", stuck, fmt.Sprintf("must be 0 (%s to settle)", time.Duration(r.faults["settle ms"])*time.Millisecond))
	row("LOST acknowledged completions", notSucceeded, "must be 0")
	row("REDELIVERED acknowledged completions", len(h.redelivered), "must be 0")
	row("PARTIAL batches", partial, "must be 0")
	row("5xx other than 503/507", h.internal, "must be 0")
	row("duplicate deliveries (jobs)", dups, "counted")
	row("  of them never abandoned by a worker", faultDups, fmt.Sprintf("counted (%d jobs abandoned on purpose)", len(h.abandoned)))
	row("dead jobs", dead, "")
	keys := make([]string, 0, len(h.answers))
	for k := range h.answers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		row("refused/failed: "+k, h.answers[k], "")
	}
	tw.Flush()
	t.Logf("summary\n%s", b.String())
}
