package embedded

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// minIterLoads is the number of bodies from which loadAll reads them with
// one iterator rather than one Get each: a Get seeks every level of the
// LSM from scratch, while an iterator moving forward through sorted keys
// reuses its position (ids are UUIDv7, so a lease's jobs are mostly
// neighbours on disk too).
const minIterLoads = 8

// bodyRead is one payload or result to read into a record.
type bodyRead struct {
	key []byte
	dst *json.RawMessage
	id  string
	// what names the body in errors: "payload" or "result".
	what string
}

// loadAll fills the payloads and results that loads ask for, from snap.
func (s *Store) loadAll(snap *pebble.Snapshot, loads []bodyLoad) error {
	reads := make([]bodyRead, 0, len(loads))
	for _, l := range loads {
		if l.payload && l.j.hasPayload {
			reads = append(reads, bodyRead{payloadKey(l.j.rec.ID), &l.rec.Payload, l.j.rec.ID, "payload"})
		}
		if l.result && l.j.hasResult {
			reads = append(reads, bodyRead{resultKey(l.j.rec.ID), &l.rec.Result, l.j.rec.ID, "result"})
		}
	}
	if len(reads) < minIterLoads {
		for _, r := range reads {
			b, err := read(snap, r.key)
			if err != nil {
				return translate(fmt.Sprintf("reading %s of job %q", r.what, r.id), err)
			}
			*r.dst = b
		}
		return nil
	}
	slices.SortFunc(reads, func(a, b bodyRead) int { return bytes.Compare(a.key, b.key) })
	last := reads[len(reads)-1].key
	it, err := snap.NewIter(&pebble.IterOptions{
		LowerBound: reads[0].key,
		UpperBound: append(slices.Clip(last), 0), // just past the last key
	})
	if err != nil {
		return translate("reading job bodies", err)
	}
	for _, r := range reads {
		if !it.SeekGE(r.key) || !bytes.Equal(it.Key(), r.key) {
			err := it.Error()
			if err == nil {
				err = pebble.ErrNotFound
			}
			_ = it.Close()
			return translate(fmt.Sprintf("reading %s of job %q", r.what, r.id), err)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return translate(fmt.Sprintf("reading %s of job %q", r.what, r.id), err)
		}
		*r.dst = append(make([]byte, 0, len(v)), v...)
	}
	if err := it.Close(); err != nil {
		return translate("reading job bodies", err)
	}
	return nil
}
