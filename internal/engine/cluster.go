package engine

import (
	"context"
	"time"

	"github.com/spoolq/spool/internal/store"
)

// Several nodes on one store.
//
// Each node's engine wakes its own long-polls when it writes (see after and
// the hub). When the store is shared by several nodes (postgres), a job
// made ready on node A must also wake a lease request waiting on node B,
// and a job finished on A a status request waiting on B. A store that can
// tell implements store.Notifier; the engine then runs listenLoop, which
// feeds the other nodes' writes into the same hub, and wakes every waiter
// at RecheckInterval as a safety net for wake-ups the store could not know
// it lost. The embedded store does not implement it: nothing runs, and
// nothing changes for it.

// DefaultRecheckInterval is Config.RecheckInterval's default.
const DefaultRecheckInterval = 5 * time.Second

// listenRetry is the pause before subscribing again after Listen failed.
const listenRetry = time.Second

// notifier returns the store's Notifier, if it has one.
func (e *Engine) notifier() (store.Notifier, bool) {
	n, ok := e.st.(store.Notifier)
	return n, ok
}

// listenLoop subscribes to the other nodes' writes until ctx ends.
func (e *Engine) listenLoop(ctx context.Context, n store.Notifier) {
	for {
		err := n.Listen(ctx, e.remote)
		if ctx.Err() != nil {
			return
		}
		e.log.Warn("listening for other nodes' writes failed; long-polls fall back to looking every recheck interval",
			"error", err, "recheck_interval", e.cfg.RecheckInterval)
		t := time.NewTimer(listenRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// recheckLoop wakes every waiter at RecheckInterval, so that a long-poll
// looks again even when the wake-up meant for it was lost (a node that
// died between its commit and its notification).
func (e *Engine) recheckLoop(ctx context.Context) {
	t := time.NewTicker(e.cfg.RecheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.hub.wakeAll()
		}
	}
}

// remote applies one event of another node: the same wake-ups as after a
// local write (see after), which the store only reports for other nodes.
func (e *Engine) remote(ev store.Event) {
	switch ev.Kind {
	case store.EventQueueReady:
		e.hub.queueReady(ev.Queue)
	case store.EventJobFinished:
		e.hub.jobChanged(ev.JobID)
	case store.EventQueueChanged:
		// Paused, resumed or resized on another node: take the new
		// config now rather than after ConfigTTL.
		e.forgetConfig(ev.Queue)
		e.hub.queueReady(ev.Queue)
	case store.EventJobState:
		if ev.Job != nil {
			e.events.add(*ev.Job)
		}
	case store.EventResync:
		e.forgetAllConfigs()
		e.hub.wakeAll()
		// Jobs scheduled meanwhile may be due before the next pass.
		e.poke()
	}
}

func (e *Engine) forgetAllConfigs() {
	e.cfgMu.Lock()
	clear(e.cfgTab)
	e.cfgMu.Unlock()
}
