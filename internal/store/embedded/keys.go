package embedded

import (
	"encoding/json"
	"fmt"
	"maps"

	"github.com/spoolq/spool"
)

// formatVersion is the on-disk format this build reads and writes; see the
// package documentation for the key layout. Version 1 had no cold indexes
// (cold.go) and is upgraded at Open.
const formatVersion = "2"

// Key prefixes. Every key is one of these followed by an id, a name or an
// index entry; all of them are here so that no two are the same (a test
// checks it).
const (
	prefixMeta        = "m/"
	prefixJob         = "j/"
	prefixColdJob     = "c/" // a finished job's record (cold.go)
	prefixPayload     = "p/"
	prefixResult      = "r/"
	prefixQueue       = "q/"
	prefixTopic       = "t/" // topics.go
	prefixSchedule    = "s/" // schedules.go
	prefixStateIdx    = "d/" // finished jobs by state (cold.go)
	prefixFinishedIdx = "f/" // finished jobs by finish time (cold.go)
	prefixIdemIdx     = "i/" // finished jobs' idempotency keys (cold.go)
	prefixAPIKey      = "k/" // API keys (apikeys.go)
	prefixAudit       = "a/" // the audit log (apikeys.go)
	prefixStats       = "x/" // telemetry buckets (stats.go)
)

// prefixes lists every key prefix, for the test that they differ.
var prefixes = []string{
	prefixMeta, prefixJob, prefixColdJob, prefixPayload, prefixResult, prefixQueue, prefixTopic,
	prefixSchedule, prefixStateIdx, prefixFinishedIdx, prefixIdemIdx, prefixAPIKey, prefixAudit, prefixStats,
}

var formatKey = []byte(prefixMeta + "format")

func jobKey(id string) []byte     { return key(prefixJob, id) }
func coldJobKey(id string) []byte { return key(prefixColdJob, id) }
func payloadKey(id string) []byte { return key(prefixPayload, id) }
func resultKey(id string) []byte  { return key(prefixResult, id) }
func queueKey(name string) []byte { return key(prefixQueue, name) }

func key(prefix, s string) []byte {
	return appendKey(make([]byte, 0, len(prefix)+len(s)), prefix, s)
}

// appendKey appends the key of s under prefix to b.
func appendKey(b []byte, prefix, s string) []byte {
	return append(append(b, prefix...), s...)
}

// prefixEnd returns the smallest key greater than every key with prefix p
// (p never ends in 0xff here).
func prefixEnd(p string) []byte {
	b := []byte(p)
	b[len(b)-1]++
	return b
}

func decodeJob(id string, b []byte) (*job, error) {
	j, err := parseJob(id, b)
	if err != nil {
		return nil, fmt.Errorf("decoding job %q: %w", id, err)
	}
	if !j.rec.State.Valid() {
		return nil, fmt.Errorf("decoding job %q: unknown state %q", id, j.rec.State)
	}
	return j, nil
}

func encodeQueueConfig(name string, c *spool.QueueConfig) ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, spool.Invalidf("config of queue %q cannot be stored: %v", name, err)
	}
	return b, nil
}

func decodeQueueConfig(name string, b []byte) (spool.QueueConfig, error) {
	var c spool.QueueConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("decoding config of queue %q: %w", name, err)
	}
	return c, nil
}

// cloneQueueConfig deep-copies the pointer fields of a queue config.
func cloneQueueConfig(c spool.QueueConfig) spool.QueueConfig {
	if c.MaxDepth != nil {
		v := *c.MaxDepth
		c.MaxDepth = &v
	}
	if c.Retention != nil {
		v := *c.Retention
		c.Retention = &v
	}
	if c.Paused != nil {
		v := *c.Paused
		c.Paused = &v
	}
	if c.MaxAttempts != nil {
		v := *c.MaxAttempts
		c.MaxAttempts = &v
	}
	if c.Backoff != nil {
		v := *c.Backoff
		c.Backoff = &v
	}
	if c.Concurrency != nil {
		v := *c.Concurrency
		c.Concurrency = &v
	}
	if c.Rate != nil {
		v := *c.Rate
		c.Rate = &v
	}
	if c.Burst != nil {
		v := *c.Burst
		c.Burst = &v
	}
	if c.TargetWait != nil {
		v := *c.TargetWait
		c.TargetWait = &v
	}
	if c.DeadLetterQueue != nil {
		v := *c.DeadLetterQueue
		c.DeadLetterQueue = &v
	}
	if c.Attributes != nil {
		c.Attributes = maps.Clone(c.Attributes)
	}
	return c
}
