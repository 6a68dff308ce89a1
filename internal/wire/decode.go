package wire

import (
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/spoolq/spool"
)

// DecodeJobsResponse decodes data into out as json.Unmarshal does. It
// tries the fast path first and, when that gives up, runs json.Unmarshal
// on out untouched, so the result and the error are encoding/json's.
func DecodeJobsResponse(data []byte, out *spool.JobsResponse) error {
	if TryDecodeJobsResponse(data, out) {
		return nil
	}
	return json.Unmarshal(data, out)
}

// TryDecodeJobsResponse is the fast path of DecodeJobsResponse: it reports
// false, and leaves out as it was, when data needs encoding/json. Like
// json.Unmarshal it only sets the fields data holds; it gives up when out
// holds jobs that json.Unmarshal would decode into rather than replace.
func TryDecodeJobsResponse(data []byte, out *spool.JobsResponse) bool {
	if out == nil {
		return false
	}
	full := out.Jobs[:cap(out.Jobs)]
	for _, j := range full {
		if j != nil {
			return false
		}
	}
	d := decoder{scanner: scanner{data: data}}
	var (
		jobs     []*spool.Job
		existing []int
		seen     uint8
	)
	ok := d.object(func(k []byte) bool {
		switch string(k) {
		case "jobs":
			if seen&1 != 0 || d.next() != '[' {
				return false
			}
			seen |= 1
			jobs = out.Jobs[:0]
			if !d.array(func() bool {
				j, ok := d.job()
				jobs = append(jobs, j)
				return ok
			}) {
				return false
			}
			if len(jobs) == 0 {
				jobs = []*spool.Job{}
			}
			return true
		case "existing":
			if seen&2 != 0 || d.next() != '[' {
				return false
			}
			seen |= 2
			existing = []int{}
			return d.array(func() bool {
				n, ok := d.int()
				existing = append(existing, n)
				return ok
			})
		}
		return false
	})
	if !ok || !d.end() {
		clear(full)
		return false
	}
	if seen&1 != 0 {
		out.Jobs = jobs
	}
	if seen&2 != 0 {
		out.Existing = existing
	}
	return true
}

// DecodeBatchEnqueueRequest decodes data into out when it is a simple,
// canonical batch enqueue request, and reports whether it did; on false,
// out is untouched and the caller decodes data with encoding/json.
func DecodeBatchEnqueueRequest(data []byte, out *spool.BatchEnqueueRequest) bool {
	if out == nil {
		return false
	}
	jobs, present, ok := decodeList(data, "jobs", &enqueueScratch, func(d *decoder, jobs []spool.EnqueueRequest) bool {
		n := len(jobs)
		var prev *spool.EnqueueRequest
		if n > 1 {
			prev = &jobs[n-2]
		}
		return d.enqueueRequest(&jobs[n-1], prev)
	})
	if present {
		out.Jobs = jobs
	}
	return ok
}

// DecodeAcksRequest is DecodeBatchEnqueueRequest for an acks request.
func DecodeAcksRequest(data []byte, out *spool.AcksRequest) bool {
	if out == nil {
		return false
	}
	acks, present, ok := decodeList(data, "acks", &ackScratch, func(d *decoder, acks []spool.Ack) bool {
		return d.ack(&acks[len(acks)-1])
	})
	if present {
		out.Acks = acks
	}
	return ok
}

// decodeList reads an object whose only member, key, is an array; elem
// reads the last element of the list so far (and may look at the ones
// before it). The elements are gathered in a slice from pool, then copied
// once into one of the exact size, rather than grown by doubling. present
// reports whether the object held key; ok is false when data needs
// encoding/json, and then present is false too.
func decodeList[T any](data []byte, key string, pool *sync.Pool, elem func(d *decoder, list []T) bool) (list []T, present, ok bool) {
	d := decoder{scanner: scanner{data: data}}
	scratch := pool.Get().(*[]T)
	defer putScratch(pool, scratch)
	var items []T
	ok = d.object(func(k []byte) bool {
		if string(k) != key || present || d.next() != '[' {
			return false
		}
		present = true
		items = (*scratch)[:0]
		return d.array(func() bool {
			var zero T
			items = append(items, zero)
			return elem(&d, items)
		})
	})
	if !ok || !d.end() {
		return nil, false, false
	}
	if present {
		*scratch = items
		list = append(make([]T, 0, len(items)), items...)
	}
	return list, present, true
}

// Pooled slices in which the request decoders gather elements.
var (
	enqueueScratch = sync.Pool{New: func() any { return new([]spool.EnqueueRequest) }}
	ackScratch     = sync.Pool{New: func() any { return new([]spool.Ack) }}
)

// maxPooled bounds the elements of a slice kept in a pool.
const maxPooled = 1024

// putScratch clears s (so the pool keeps no strings or payloads alive) and
// returns it to p unless it grew past maxPooled elements.
func putScratch[T any](p *sync.Pool, s *[]T) {
	if cap(*s) > maxPooled {
		return
	}
	clear((*s)[:cap(*s)])
	*s = (*s)[:0]
	p.Put(s)
}

type decoder struct {
	scanner
	// last values, handed out again instead of copies when they repeat.
	queue, typ, worker string
	tags               []string
	// block gathers the strings of one object read by strLater; flush
	// makes them one allocation.
	block []byte
	later []later
}

// later is a string read by strLater, to be set by flush.
type later struct {
	dst      *string
	off, end int
}

// startBlock forgets the strings of an object that was not flushed.
func (d *decoder) startBlock() {
	d.block, d.later = d.block[:0], d.later[:0]
}

// strLater reads a string into the block of the object being read; flush,
// at the end of the object, sets *dst. The strings of an object then share
// one allocation, which any of them keeps alive, as long as the object.
func (d *decoder) strLater(dst *string) bool {
	b, ok := d.rawString()
	if !ok {
		return false
	}
	if len(b) > 0 {
		off := len(d.block)
		d.block = append(d.block, b...)
		d.later = append(d.later, later{dst, off, len(d.block)})
	}
	return true
}

// flush sets the strings read by strLater since startBlock.
func (d *decoder) flush() {
	if len(d.later) == 0 {
		return
	}
	s := string(d.block)
	for _, l := range d.later {
		*l.dst = s[l.off:l.end]
	}
	d.startBlock()
}

// object reads an object, calling member for each key with i on the
// value; member reads the value.
func (d *decoder) object(member func(k []byte) bool) bool {
	if !d.eat('{') {
		return false
	}
	if d.eat('}') {
		return true
	}
	for {
		k, ok := d.key()
		if !ok || !member(k) {
			return false
		}
		if d.eat(',') {
			continue
		}
		return d.eat('}')
	}
}

// array reads an array, calling elem with i on each element.
func (d *decoder) array(elem func() bool) bool {
	if !d.eat('[') {
		return false
	}
	if d.eat(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if d.eat(',') {
			continue
		}
		return d.eat(']')
	}
}

// strings reads an array of strings; [] gives an empty slice, not nil.
// The strings of prev (the tags of the job before) are handed out again
// where they repeat at the same index.
func (d *decoder) strings(prev []string) ([]string, bool) {
	ss := []string{}
	ok := d.array(func() bool {
		var same string
		if i := len(ss); i < len(prev) {
			same = prev[i]
		}
		s, ok := d.str(same)
		ss = append(ss, s)
		return ok
	})
	return ss, ok
}

// time reads a time as time.Time.UnmarshalJSON does, from the raw bytes of
// a JSON string (which it does not unescape).
func (d *decoder) time(t *time.Time) bool {
	if d.next() != '"' {
		return false
	}
	start := d.i
	if !d.skipString() {
		return false
	}
	return t.UnmarshalJSON(d.data[start:d.i]) == nil
}

func (d *decoder) timePtr() (*time.Time, bool) {
	t := new(time.Time)
	return t, d.time(t)
}

// duration reads a spool.Duration as its UnmarshalJSON does.
func (d *decoder) duration() (spool.Duration, bool) {
	b, ok := d.rawString()
	if !ok {
		return 0, false
	}
	v, err := spool.ParseDuration(string(b))
	return spool.Duration(v), err == nil
}

func (d *decoder) durationPtr() (*spool.Duration, bool) {
	v, ok := d.duration()
	return &v, ok
}

func (d *decoder) float() (float64, bool) {
	d.ws()
	start := d.i
	if _, ok := d.number(); !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(d.data[start:d.i]), 64)
	return f, err == nil
}

func (d *decoder) backoff() (*spool.Backoff, bool) {
	b := new(spool.Backoff)
	ok := d.members(func(k []byte) (bit uint, ok bool) {
		switch string(k) {
		case "base":
			bit = 0
			b.Base, ok = d.duration()
			ok = ok && b.Base != 0 // spool.Backoff refuses a zero delay
		case "max":
			bit = 1
			b.Max, ok = d.duration()
			ok = ok && b.Max != 0
		}
		return
	})
	return b, ok
}

// members reads an object whose member function reads a key's value and
// names the key by its bit. A key that comes twice, which encoding/json
// merges, makes it fail and is left to encoding/json; the check comes
// after the value is read, which is thrown away with the fast path.
func (d *decoder) members(member func(k []byte) (bit uint, ok bool)) bool {
	var seen uint32
	return d.object(func(k []byte) bool {
		bit, ok := member(k)
		if !ok || seen&(1<<bit) != 0 {
			return false
		}
		seen |= 1 << bit
		return true
	})
}
