package engine

import (
	"sync"
	"time"
)

// rateWindow is the span over which queue rates are measured.
const rateWindow = time.Minute

// rate counts events in one-second buckets over rateWindow.
type rate struct {
	buckets [60]int64
	stamps  [60]int64 // unix second each bucket belongs to
}

func (r *rate) add(now time.Time, n int64) {
	s := now.Unix()
	i := s % int64(len(r.buckets))
	if r.stamps[i] != s {
		r.stamps[i] = s
		r.buckets[i] = 0
	}
	r.buckets[i] += n
}

// perSec is the mean rate over the window ending now (the current,
// incomplete second excluded when the window is full of history).
func (r *rate) perSec(now time.Time) float64 {
	s := now.Unix()
	var sum int64
	for i := range r.buckets {
		if st := r.stamps[i]; st > s-int64(len(r.buckets)) && st <= s {
			sum += r.buckets[i]
		}
	}
	return float64(sum) / rateWindow.Seconds()
}

// queueRates holds one queue's rates on this node.
type queueRates struct {
	enqueued, finished, failed rate
}

type rateBook struct {
	mu     sync.Mutex
	queues map[string]*queueRates
}

func (b *rateBook) get(q string) *queueRates {
	if b.queues == nil {
		b.queues = make(map[string]*queueRates)
	}
	r := b.queues[q]
	if r == nil {
		r = &queueRates{}
		b.queues[q] = r
	}
	return r
}

func (b *rateBook) enqueued(q string, now time.Time, n int) {
	b.mu.Lock()
	b.get(q).enqueued.add(now, int64(n))
	b.mu.Unlock()
}

func (b *rateBook) finished(q string, now time.Time) {
	b.mu.Lock()
	b.get(q).finished.add(now, 1)
	b.mu.Unlock()
}

func (b *rateBook) failed(q string, now time.Time) {
	b.mu.Lock()
	b.get(q).failed.add(now, 1)
	b.mu.Unlock()
}

// snapshot returns enqueue, finish and fail rates per second.
func (b *rateBook) snapshot(q string, now time.Time) (enq, fin, fail float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.queues[q]
	if r == nil {
		return 0, 0, 0
	}
	return r.enqueued.perSec(now), r.finished.perSec(now), r.failed.perSec(now)
}
