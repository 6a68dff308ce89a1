package engine

import (
	"math"
	"time"

	"github.com/spoolq/spool"
)

// backoffDelay is the wait before the retry that follows failed attempt n
// (n >= 1): about base*2^(n-1), capped at max, with "equal jitter" — a
// uniform draw in [d/2, d] — so retries of jobs that failed together spread
// out, yet never come sooner than half the nominal delay.
func backoffDelay(n int, base, max time.Duration, rnd float64) time.Duration {
	if n < 1 {
		n = 1
	}
	if base <= 0 {
		return 0
	}
	d := float64(base) * math.Pow(2, float64(n-1))
	if max > 0 && d > float64(max) {
		d = float64(max)
	}
	return time.Duration(d/2 + rnd*d/2)
}

// retryAfter estimates, by Little's law, how many seconds until a full queue
// has room for n more jobs: the excess over max_depth divided by the rate at
// which the queue finishes jobs. With no finishes seen in the rate window,
// the estimate is the window itself (nothing is known to drain sooner).
func retryAfter(depth, maxDepth int64, n int, drainPerSec float64, window time.Duration) int {
	excess := float64(depth + int64(n) - maxDepth)
	if excess < 1 {
		excess = 1
	}
	var secs float64
	if drainPerSec <= 0 {
		secs = window.Seconds()
	} else {
		secs = excess / drainPerSec
	}
	s := int(math.Ceil(secs))
	if s < 1 {
		s = 1
	}
	if max := int(maxRetryAfter / time.Second); s > max {
		s = max
	}
	return s
}

// rateWindow is the window of the drain rate Retry-After divides by, and
// the Retry-After when nothing drained in it.
const rateWindow = time.Minute

// maxRetryAfter bounds Retry-After so clients look again at least this often.
const maxRetryAfter = 5 * time.Minute

// policy is the resolved retry policy of a job.
func (e *Engine) policy(j *spool.Job, qc spool.QueueConfig) (base, max time.Duration) {
	base, max = qc.Backoff.Base.D(), qc.Backoff.Max.D()
	if j.Backoff != nil {
		if j.Backoff.Base > 0 {
			base = j.Backoff.Base.D()
		}
		if j.Backoff.Max > 0 {
			max = j.Backoff.Max.D()
		}
	}
	if max > 0 && base > max {
		base = max
	}
	return base, max
}

// RetryAfter is the Retry-After, in seconds, of a refused enqueue of n jobs
// to a queue at depth of maxDepth that finishes drainPerSec jobs a second:
// what a 503 queue_full says (the dashboard shows it for full queues).
func RetryAfter(depth, maxDepth int64, n int, drainPerSec float64) int {
	return retryAfter(depth, maxDepth, n, drainPerSec, rateWindow)
}
