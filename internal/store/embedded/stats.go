package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// Telemetry buckets are keyed x/<width: 8 bytes>/<queue>\x00<start: 8
// bytes>, both numbers big-endian nanoseconds, so one queue's buckets of
// one width are contiguous and in time order. Values are statsVersion
// followed by the bucket's figures as uvarints (sums of seconds as 8-byte
// floats): mostly small numbers, so a bucket takes about 100 bytes.

const statsVersion = 1

func statsPrefix(width time.Duration, queue string) []byte {
	b := make([]byte, 0, len(prefixStats)+8+len(queue)+1+8)
	b = append(b, prefixStats...)
	b = binary.BigEndian.AppendUint64(b, uint64(width))
	b = append(b, queue...)
	return append(b, 0)
}

func statsKey(width time.Duration, queue string, start time.Time) []byte {
	return binary.BigEndian.AppendUint64(statsPrefix(width, queue), uint64(start.UnixNano()))
}

func encodeStats(b *store.StatsBucket) []byte {
	out := make([]byte, 0, 128)
	out = append(out, statsVersion)
	for _, v := range []int64{b.Arrivals, b.Succeeded, b.Dead, b.Cancelled, b.Retries, b.WaitCount, b.RunCount,
		b.Samples, b.DepthSum, b.ReadySum, b.ActiveSum} {
		out = binary.AppendVarint(out, v)
	}
	out = binary.BigEndian.AppendUint64(out, math.Float64bits(b.WaitSum))
	out = binary.BigEndian.AppendUint64(out, math.Float64bits(b.RunSum))
	for i := range b.WaitHist {
		out = binary.AppendVarint(out, b.WaitHist[i])
	}
	for i := range b.RunHist {
		out = binary.AppendVarint(out, b.RunHist[i])
	}
	return out
}

func decodeStats(v []byte, b *store.StatsBucket) error {
	if len(v) == 0 || v[0] != statsVersion {
		return errors.New("unknown telemetry bucket version")
	}
	v = v[1:]
	bad := false
	next := func() int64 {
		n, k := binary.Varint(v)
		if k <= 0 {
			bad = true
			return 0
		}
		v = v[k:]
		return n
	}
	for _, p := range []*int64{&b.Arrivals, &b.Succeeded, &b.Dead, &b.Cancelled, &b.Retries, &b.WaitCount, &b.RunCount,
		&b.Samples, &b.DepthSum, &b.ReadySum, &b.ActiveSum} {
		*p = next()
	}
	if bad || len(v) < 16 {
		return errors.New("truncated telemetry bucket")
	}
	b.WaitSum = math.Float64frombits(binary.BigEndian.Uint64(v))
	b.RunSum = math.Float64frombits(binary.BigEndian.Uint64(v[8:]))
	v = v[16:]
	for i := range b.WaitHist {
		b.WaitHist[i] = next()
	}
	for i := range b.RunHist {
		b.RunHist[i] = next()
	}
	if bad {
		return errors.New("truncated telemetry bucket")
	}
	return nil
}

func checkStatsKey(queue string, width time.Duration) error {
	if queue == "" || strings.ContainsRune(queue, 0) {
		return spool.Invalidf("a telemetry bucket needs a queue name without NUL")
	}
	if width <= 0 {
		return spool.Invalidf("a telemetry bucket needs a positive width")
	}
	return nil
}

// AddStats adds each delta to its stored bucket.
func (s *Store) AddStats(ctx context.Context, deltas []store.StatsBucket) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i := range deltas {
		if err := checkStatsKey(deltas[i].Queue, deltas[i].Width); err != nil {
			return err
		}
	}
	if len(deltas) == 0 {
		return nil
	}
	a, err := s.addStats(deltas)
	if err != nil {
		return err
	}
	return s.finish(&a)
}

func (s *Store) addStats(deltas []store.StatsBucket) (a after, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return a, err
	}
	// Deltas of one bucket are merged first: the batch cannot be read.
	merged := make(map[string]*store.StatsBucket, len(deltas))
	order := make([]string, 0, len(deltas))
	for i := range deltas {
		k := string(statsKey(deltas[i].Width, deltas[i].Queue, deltas[i].Start))
		if m := merged[k]; m != nil {
			m.Add(&deltas[i])
			continue
		}
		var cur store.StatsBucket
		v, closer, err := s.db.Get([]byte(k))
		switch {
		case err == nil:
			derr := decodeStats(v, &cur)
			_ = closer.Close()
			if derr != nil {
				return a, fmt.Errorf("embedded store: reading telemetry of queue %q: %w", deltas[i].Queue, derr)
			}
		case errors.Is(err, pebble.ErrNotFound):
		default:
			return a, translate("reading telemetry", err)
		}
		cur.Add(&deltas[i])
		merged[k] = &cur
		order = append(order, k)
	}
	t := s.begin()
	for _, k := range order {
		t.set([]byte(k), encodeStats(merged[k]))
	}
	a.commit, err = s.apply(t, "storing telemetry")
	return a, err
}

// Stats returns the buckets of one width starting in [From, To).
func (s *Store) Stats(ctx context.Context, p store.StatsParams) ([]store.StatsBucket, error) {
	if p.Width <= 0 {
		return nil, spool.Invalidf("a telemetry query needs a positive width")
	}
	var out []store.StatsBucket
	err := s.readPebble(ctx, func() error {
		lower := statsPrefix(p.Width, p.Queue)
		if p.Queue == "" {
			lower = lower[:len(lower)-1]
		}
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEndBytes(lower)})
		if err != nil {
			return translate("reading telemetry", err)
		}
		defer func() { _ = it.Close() }()
		base := len(prefixStats) + 8
		from, to := uint64(p.From.UnixNano()), uint64(p.To.UnixNano())
		ok := it.SeekGE(binary.BigEndian.AppendUint64(statsPrefix(p.Width, p.Queue), from))
		if p.Queue == "" {
			ok = it.First()
		}
		for ok {
			k := it.Key()
			nul := bytes.IndexByte(k[base:], 0)
			if nul < 0 || len(k) != base+nul+1+8 {
				return fmt.Errorf("embedded store: malformed telemetry key %q", k)
			}
			queue := string(k[base : base+nul])
			start := binary.BigEndian.Uint64(k[base+nul+1:])
			switch {
			case start < from:
				ok = it.SeekGE(binary.BigEndian.AppendUint64(statsPrefix(p.Width, queue), from))
				continue
			case start >= to:
				// This queue is done: on to the next one.
				ok = it.SeekGE(append(statsPrefix(p.Width, queue)[:base+nul], 1))
				continue
			}
			v, err := it.ValueAndErr()
			if err != nil {
				return translate("reading telemetry", err)
			}
			b := store.StatsBucket{Queue: queue, Width: p.Width, Start: time.Unix(0, int64(start)).UTC()}
			if err := decodeStats(v, &b); err != nil {
				return fmt.Errorf("embedded store: reading telemetry of queue %q: %w", queue, err)
			}
			out = append(out, b)
			ok = it.Next()
		}
		return it.Error()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PurgeStats deletes the buckets of one width that start before before.
func (s *Store) PurgeStats(ctx context.Context, width time.Duration, before time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if width <= 0 {
		return 0, spool.Invalidf("a telemetry purge needs a positive width")
	}
	n, a, err := s.purgeStats(width, before)
	if err != nil {
		return 0, err
	}
	return n, s.finish(&a)
}

func (s *Store) purgeStats(width time.Duration, before time.Time) (n int, a after, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return 0, a, err
	}
	lower := statsPrefix(width, "")
	lower = lower[:len(lower)-1]
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEndBytes(lower)})
	if err != nil {
		return 0, a, translate("purging telemetry", err)
	}
	cut := uint64(before.UnixNano())
	base := len(lower)
	t := s.begin()
	for ok := it.First(); ok; {
		k := it.Key()
		nul := bytes.IndexByte(k[base:], 0)
		if nul < 0 || len(k) != base+nul+1+8 {
			ok = it.Next()
			continue
		}
		if binary.BigEndian.Uint64(k[base+nul+1:]) < cut {
			t.delete(bytes.Clone(k))
			n++
			ok = it.Next()
			continue
		}
		ok = it.SeekGE(append(bytes.Clone(k[:base+nul]), 1))
	}
	if err := it.Close(); err != nil {
		t.rollback()
		return 0, a, translate("purging telemetry", err)
	}
	if n == 0 {
		t.rollback()
		return 0, a, nil
	}
	a.commit, err = s.apply(t, "purging telemetry")
	return n, a, err
}
