package server

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
)

// Decode errors name the field at fault, with its position in arrays.
func TestDecodeErrorNamesTheField(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body string
		dst  any
		want string
	}{
		{`{"tags":"a","priority":"x"}`, &enqueueBody{}, "tags must be an array, not string"},
		{`{"priority":"x","tags":"a"}`, &enqueueBody{}, "priority must be an integer in range, not string"},
		{`{"jobs":[{"type":"t"},{"type":"t","tags":"a","priority":"x"}]}`, &batchBody{}, "jobs[1].tags must be an array, not string"},
		{`{"jobs":[{"type":"t"},{"type":"t","priority":"x"},{"tags":[1]}]}`, &batchBody{}, "jobs[1].priority must be an integer in range, not string"},
		{`{"jobs":[{"type":"t","timeout":"1s","delay":"x"}]}`, &batchBody{}, `jobs[0].delay: bad duration "x"`},
		{`{"jobs":[{"type":"t","run_at":"noon"}]}`, &batchBody{}, `jobs[0].run_at: "noon" is not an RFC 3339 time`},
		{`{"jobs":{"type":"t"}}`, &batchBody{}, "jobs must be an array, not object"},
		{`{"acks":[{"id":"x","retry_in":3}]}`, &spool.AcksRequest{}, "acks[0].retry_in: duration must be a string"},
		{`{"backoff":{"base":"1s","max":"1 hour"}}`, &spool.QueueConfig{}, `backoff.max: bad duration "1 hour"`},
		{`{"queues":["a",7]}`, &spool.LeaseRequest{}, "queues[1] must be a string, not number"},
		{`{"percent":"half"}`, &spool.ProgressUpdate{}, "percent must be a number, not string"},
		{`{"paused":"yes"}`, &spool.QueueConfig{}, "paused must be true or false, not string"},
	} {
		dec := json.NewDecoder(bytes.NewReader([]byte(tc.body)))
		dec.DisallowUnknownFields()
		err := dec.Decode(tc.dst)
		require.Error(t, err, tc.body)
		got := decodeError(err, []byte(tc.body), reflect.TypeOf(tc.dst))
		require.ErrorIs(t, got, spool.ErrInvalid)
		require.Contains(t, got.Error(), tc.want, tc.body)
	}
}
