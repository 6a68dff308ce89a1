package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// Job dependencies (spool.Job.DependsOn).
//
// A job with parents is stored waiting unless its parents have already
// decided its fate: all succeeded (it is stored ready or scheduled), or one
// ended dead or cancelled (it is stored cancelled, with that reason in its
// errors). When a job reaches a terminal state, after() notes its id; the
// dependency loop then finds its waiting children (store.WaitingChildren),
// reads the states of all their parents (store.Lookup) and moves each child
// on with a compare-and-set Update. A cancelled child is itself a terminal
// job, so the cancellation runs down the whole subtree.
//
// Nothing here is atomic with the parent's terminal write, and it need not
// be: the parent that finishes last triggers a pass that sees every parent
// finished, and a child inserted while its last parent finishes is checked
// again after its insert. What a crash can lose (ids noted but not yet
// resolved) is found by the sweep, which reads every waiting job at start
// and every depSweepInterval.

// depSweepInterval is how often every waiting job is checked again.
const depSweepInterval = 30 * time.Second

// depParentsBatch bounds the parent ids of one WaitingChildren call, and
// depChildrenBatch the children settled with one Lookup and one Update.
const (
	depParentsBatch  = 500
	depChildrenBatch = 100
)

// depQueue holds the ids of jobs that reached a terminal state and whose
// waiting children have not been looked at yet.
type depQueue struct {
	mu      sync.Mutex
	pending []string
	kick    chan struct{}
}

func newDepQueue() *depQueue { return &depQueue{kick: make(chan struct{}, 1)} }

func (q *depQueue) add(ids ...string) {
	if len(ids) == 0 {
		return
	}
	q.mu.Lock()
	q.pending = append(q.pending, ids...)
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

func (q *depQueue) take() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	ids := q.pending
	q.pending = nil
	return ids
}

// dependencyLoop resolves the children of finished jobs as they are noted,
// and sweeps every waiting job at start and every depSweepInterval.
func (e *Engine) dependencyLoop(ctx context.Context) {
	var fl failureLog
	fl.note(ctx, e.log, e.sweepWaiting(ctx))
	sweep := time.NewTicker(depSweepInterval)
	defer sweep.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case <-e.deps.kick:
			err = e.ResolveDependencies(ctx)
		case <-sweep.C:
			err = e.sweepWaiting(ctx)
		}
		fl.note(ctx, e.log, err)
	}
}

// ResolveDependencies moves on the waiting children of every job noted as
// finished since the last call. Maintain calls it too.
func (e *Engine) ResolveDependencies(ctx context.Context) error {
	parents := e.deps.take()
	if len(parents) == 0 {
		return nil
	}
	if err := e.resolveChildren(ctx, parents); err != nil {
		// Try again at the next note; the sweep is the backstop.
		e.deps.add(parents...)
		return err
	}
	return nil
}

func (e *Engine) resolveChildren(ctx context.Context, parents []string) error {
	slices.Sort(parents)
	parents = slices.Compact(parents)
	for len(parents) > 0 {
		batch := parents[:min(len(parents), depParentsBatch)]
		parents = parents[len(batch):]
		after := ""
		for {
			kids, err := e.st.WaitingChildren(ctx, batch, after, maintenanceBatch)
			if err != nil {
				return fmt.Errorf("finding waiting children: %w", err)
			}
			if err := e.settle(ctx, kids); err != nil {
				return err
			}
			if len(kids) < maintenanceBatch {
				break
			}
			after = kids[len(kids)-1].ID
		}
	}
	return nil
}

// sweepWaiting checks every waiting job of every queue.
func (e *Engine) sweepWaiting(ctx context.Context) error {
	qs, err := e.st.Queues(ctx)
	if err != nil {
		return fmt.Errorf("listing queues: %w", err)
	}
	for _, q := range qs {
		if q.Counts[spool.StateWaiting] == 0 {
			continue
		}
		after := ""
		for {
			page, next, err := e.st.ListJobs(ctx, store.ListJobsParams{
				Queue: q.Name, State: spool.StateWaiting, After: after, Limit: maintenanceBatch,
			})
			if err != nil {
				return fmt.Errorf("listing waiting jobs of %q: %w", q.Name, err)
			}
			if err := e.settle(ctx, page); err != nil {
				return err
			}
			if next == "" {
				break
			}
			after = next
		}
	}
	return nil
}

// settle reads the parents of waiting jobs and moves on those whose parents
// decided their fate. A conflict means the job changed meanwhile (another
// node settled or cancelled it); it is left to whoever changed it.
func (e *Engine) settle(ctx context.Context, kids []*store.Record) error {
	for len(kids) > 0 {
		chunk := kids[:min(len(kids), depChildrenBatch)]
		kids = kids[len(chunk):]
		states, err := e.parentStates(ctx, chunk)
		if err != nil {
			return err
		}
		now := e.clock.Now()
		var changes []store.Change
		for _, k := range chunk {
			if k.State != spool.StateWaiting {
				continue
			}
			v := verdictOf(k.DependsOn, states)
			if v.wait {
				continue
			}
			applyVerdict(k, v, now)
			changes = append(changes, store.Change{Record: k, NoBodies: true})
		}
		if len(changes) == 0 {
			continue
		}
		recs, errs, err := e.update(ctx, changes)
		if err != nil {
			return fmt.Errorf("releasing waiting jobs: %w", err)
		}
		for i, r := range recs {
			if errs[i] == nil {
				e.after(spool.StateWaiting, r)
			}
		}
	}
	return nil
}

// parentStates reads the states of every parent of kids.
func (e *Engine) parentStates(ctx context.Context, kids []*store.Record) (map[string]spool.State, error) {
	var ids []string
	for _, k := range kids {
		ids = append(ids, k.DependsOn...)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	recs, err := e.st.Lookup(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("reading parent jobs: %w", err)
	}
	states := make(map[string]spool.State, len(recs))
	for _, r := range recs {
		states[r.ID] = r.State
	}
	return states, nil
}

// verdict is what a job's parents decide: wait, run, or cancel (reason).
type verdict struct {
	wait   bool
	cancel string
}

// verdictOf decides from the parents' states (absent: the parent no
// longer exists, purged after its retention).
func verdictOf(parents []string, states map[string]spool.State) verdict {
	v := verdict{}
	for _, p := range parents {
		st, ok := states[p]
		switch {
		case !ok:
			return verdict{cancel: fmt.Sprintf("parent job %s no longer exists", p)}
		case st == spool.StateDead || st == spool.StateCancelled:
			return verdict{cancel: fmt.Sprintf("parent job %s ended %s", p, st)}
		case st != spool.StateSucceeded:
			v.wait = true
		}
	}
	return v
}

// applyVerdict moves a job that no longer waits: cancelled with the reason,
// or ready (scheduled if its run_at is still ahead).
func applyVerdict(r *store.Record, v verdict, now time.Time) {
	switch {
	case v.wait:
		r.State, r.ReadyAt = spool.StateWaiting, nil
	case v.cancel != "":
		r.State = spool.StateCancelled
		r.FinishedAt = ptr(now)
		r.ReadyAt = nil
		r.Errors = append(r.Errors, spool.AttemptError{Attempt: r.Attempt, Error: v.cancel, At: now})
	case r.RunAt.After(now):
		r.State, r.ReadyAt = spool.StateScheduled, nil
	default:
		r.State, r.ReadyAt = spool.StateReady, ptr(now)
	}
}

// linkDependencies resolves the refs of a batch into ids, refuses
// self-references, cycles and unknown parents, and sets each job's starting
// state from its parents.
// It returns the parents outside the batch of the jobs left waiting, to be
// checked again once the insert is stored.
func (e *Engine) linkDependencies(ctx context.Context, reqs []spool.EnqueueRequest, recs []*store.Record, now time.Time) ([]string, error) {
	refs := make(map[string]int)
	anyDeps := false
	for i := range reqs {
		if ref := reqs[i].Ref; ref != "" {
			if j, dup := refs[ref]; dup {
				return nil, spool.Invalidf("jobs[%d] and jobs[%d] both have ref %q", j, i, ref)
			}
			refs[ref] = i
		}
		anyDeps = anyDeps || len(reqs[i].DependsOn) > 0
	}
	if !anyDeps {
		return nil, nil
	}
	// parents[i]: the batch jobs that jobs[i] depends on.
	parents := make([][]int, len(reqs))
	var outside []string
	for i := range reqs {
		if len(reqs[i].DependsOn) == 0 {
			continue
		}
		deps := slices.Clone(reqs[i].DependsOn)
		for k, d := range deps {
			j, ok := refs[d]
			if !ok {
				outside = append(outside, d)
				continue
			}
			if j == i {
				return nil, spool.Invalidf("jobs[%d] depends on itself (ref %q)", i, d)
			}
			parents[i] = append(parents[i], j)
			deps[k] = recs[j].ID
		}
		recs[i].DependsOn = deps
	}
	order, err := topoOrder(parents)
	if err != nil {
		return nil, err
	}
	states := map[string]spool.State{}
	if len(outside) > 0 {
		slices.Sort(outside)
		outside = slices.Compact(outside)
		found, err := e.st.Lookup(ctx, outside)
		if err != nil {
			return nil, fmt.Errorf("reading parent jobs: %w", err)
		}
		for _, r := range found {
			states[r.ID] = r.State
		}
		for _, id := range outside {
			if _, ok := states[id]; !ok {
				return nil, spool.Invalidf("depends_on: no job with id %q (nor a ref of this batch)", id)
			}
		}
	}
	var recheck []string
	for _, i := range order {
		r := recs[i]
		if len(r.DependsOn) == 0 {
			states[r.ID] = r.State
			continue
		}
		v := verdictOf(r.DependsOn, states)
		applyVerdict(r, v, now)
		if r.State == spool.StateWaiting {
			for _, d := range r.DependsOn {
				if _, ok := slices.BinarySearch(outside, d); ok {
					recheck = append(recheck, d)
				}
			}
		}
		// Later jobs of the batch see this one as it will be stored.
		states[r.ID] = r.State
	}
	return recheck, nil
}

// relinkRepeats handles a batch in which a job that others depend on by
// ref was an idempotent repeat: the store kept the earlier job, so the new
// dependents name an id that was never stored. They are pointed at the
// earlier job and checked again. (When a whole batch is repeated, as the
// SDK's retries do, every job is a repeat and there is nothing to do.)
func (e *Engine) relinkRepeats(ctx context.Context, recs []*store.Record, res []EnqueueResult) error {
	moved := make(map[string]string)
	for i, r := range res {
		if r.Existing {
			moved[recs[i].ID] = r.Job.ID
		}
	}
	if len(moved) == 0 {
		return nil
	}
	var changes []store.Change
	var parents []string
	for i, r := range res {
		if r.Existing || len(r.Job.DependsOn) == 0 {
			continue
		}
		deps, changed := slices.Clone(r.Job.DependsOn), false
		for k, d := range deps {
			if to, ok := moved[d]; ok {
				deps[k], changed = to, true
				parents = append(parents, to)
			}
		}
		if !changed {
			continue
		}
		rec, err := e.st.Get(ctx, r.Job.ID)
		if err != nil {
			return fmt.Errorf("relinking job %s: %w", r.Job.ID, err)
		}
		rec.DependsOn = deps
		changes = append(changes, store.Change{Record: rec})
		res[i].Job.DependsOn = deps
	}
	if len(changes) == 0 {
		return nil
	}
	_, errs, err := e.update(ctx, changes)
	if err = errors.Join(append(errs, err)...); err != nil {
		return fmt.Errorf("relinking dependents of repeated jobs: %w", err)
	}
	e.deps.add(parents...)
	return nil
}

// topoOrder returns the batch indexes in an order where every job comes
// after the batch jobs it depends on, or an error naming a cycle.
func topoOrder(parents [][]int) ([]int, error) {
	n := len(parents)
	indeg := make([]int, n)
	children := make([][]int, n)
	for i, ps := range parents {
		indeg[i] = len(ps)
		for _, p := range ps {
			children[p] = append(children[p], i)
		}
	}
	order := make([]int, 0, n)
	for i := range n {
		if indeg[i] == 0 {
			order = append(order, i)
		}
	}
	for k := 0; k < len(order); k++ {
		for _, c := range children[order[k]] {
			if indeg[c]--; indeg[c] == 0 {
				order = append(order, c)
			}
		}
	}
	if len(order) < n {
		for i := range n {
			if indeg[i] > 0 {
				return nil, spool.Invalidf("depends_on forms a cycle through jobs[%d]", i)
			}
		}
	}
	return order, nil
}

// Parents returns the jobs a job depends on, in its depends_on order, with
// their results; parents purged since are left out.
func (e *Engine) Parents(ctx context.Context, id string) ([]*spool.Job, error) {
	rec, err := e.st.Get(ctx, id)
	if err != nil {
		return nil, e.notFound(id, err)
	}
	out := make([]*spool.Job, 0, len(rec.DependsOn))
	for _, p := range rec.DependsOn {
		pr, err := e.st.Get(ctx, p)
		if errors.Is(err, spool.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading parent %s of job %s: %w", p, id, err)
		}
		out = append(out, view(pr))
	}
	return out, nil
}

// retryVerdict is the state a retried job with parents starts in: it waits
// or runs as its parents say, and cannot be retried while a parent is dead
// or cancelled.
func (e *Engine) retryVerdict(ctx context.Context, r *store.Record) (verdict, error) {
	states, err := e.parentStates(ctx, []*store.Record{r})
	if err != nil {
		return verdict{}, err
	}
	v := verdictOf(r.DependsOn, states)
	if v.cancel != "" {
		return v, spool.Conflictf("job %s cannot run: %s; retry that job first", r.ID, v.cancel)
	}
	return v, nil
}
