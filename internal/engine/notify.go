package engine

import "sync"

// waiter is one blocked long-poll. Its channel has room for one signal, so a
// wake-up that arrives between two looks is never lost.
type waiter struct{ ch chan struct{} }

func newWaiter() *waiter { return &waiter{ch: make(chan struct{}, 1)} }

func (w *waiter) wake() {
	select {
	case w.ch <- struct{}{}:
	default:
	}
}

// hub wakes long-polls: lease requests waiting on queues and status requests
// waiting on jobs. Register before looking, look, then wait: no lost wake-ups.
type hub struct {
	mu     sync.Mutex
	queues map[string]map[*waiter]struct{}
	jobs   map[string]map[*waiter]struct{}
}

func newHub() *hub {
	return &hub{queues: make(map[string]map[*waiter]struct{}), jobs: make(map[string]map[*waiter]struct{})}
}

func (h *hub) add(m map[string]map[*waiter]struct{}, keys []string, w *waiter) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range keys {
		set := m[k]
		if set == nil {
			set = make(map[*waiter]struct{})
			m[k] = set
		}
		set[w] = struct{}{}
	}
}

func (h *hub) remove(m map[string]map[*waiter]struct{}, keys []string, w *waiter) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range keys {
		if set := m[k]; set != nil {
			delete(set, w)
			if len(set) == 0 {
				delete(m, k)
			}
		}
	}
}

func (h *hub) signal(m map[string]map[*waiter]struct{}, key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range m[key] {
		w.wake()
	}
}

func (h *hub) watchQueues(qs []string, w *waiter)   { h.add(h.queues, qs, w) }
func (h *hub) unwatchQueues(qs []string, w *waiter) { h.remove(h.queues, qs, w) }
func (h *hub) queueReady(q string)                  { h.signal(h.queues, q) }
func (h *hub) watchJob(id string, w *waiter)        { h.add(h.jobs, []string{id}, w) }
func (h *hub) unwatchJob(id string, w *waiter)      { h.remove(h.jobs, []string{id}, w) }
func (h *hub) jobChanged(id string)                 { h.signal(h.jobs, id) }

// wakeAll wakes every waiter (shutdown).
func (h *hub) wakeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, set := range h.queues {
		for w := range set {
			w.wake()
		}
	}
	for _, set := range h.jobs {
		for w := range set {
			w.wake()
		}
	}
}
