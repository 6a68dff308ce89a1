package store

import (
	"math"
	"time"
)

// Flow control: the token-bucket arithmetic every backend shares, so that
// the rate limit means the same on each (see QueueLimits).

// BucketSize is the size of a rate-limited queue's token bucket: Burst, at
// least 1.
func (l QueueLimits) BucketSize() float64 { return float64(max(l.Burst, 1)) }

// Refill returns a bucket's tokens and time after refilling it from at to
// now at l.Rate, capped at l.BucketSize(). A clock that went backwards
// refills nothing and keeps at: time never runs backwards for a bucket.
func (l QueueLimits) Refill(tokens float64, at, now time.Time) (float64, time.Time) {
	if now.After(at) {
		tokens += l.Rate * now.Sub(at).Seconds()
		at = now
	}
	return math.Min(tokens, l.BucketSize()), at
}

// NextToken returns when a bucket holding tokens at now holds a whole
// token again.
func (l QueueLimits) NextToken(tokens float64, now time.Time) time.Time {
	if tokens >= 1 || l.Rate <= 0 {
		return now
	}
	d := time.Duration(math.Ceil((1 - tokens) / l.Rate * float64(time.Second)))
	return now.Add(d)
}
