package wire

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
)

const fullEnqueue = `{"type":"send","payload":{"to":"a@example.com", "n": [1, 2]},"priority":-3,"delay":"1.5s",` +
	`"run_at":"2026-03-01T12:00:00.123+02:00","max_attempts":5,"timeout":"10m","backoff":{"base":"1s","max":"1h"},` +
	`"idempotency_key":"k1","ordering_key":"o1","depends_on":["r0","0190b3c4-7d2e-7a1b-9c3d-4e5f6a7b8c9d"],` +
	`"ref":"r1","tags":["a","b\u00e9"],"callback_url":"https://example.com/h?x=<1>&y"}`

func TestDecodeBatchEnqueueRequest(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		data string
		fast bool
	}{
		{"full", `{"jobs":[` + fullEnqueue + `]}`, true},
		{"many", `{"jobs":[` + fullEnqueue + `,{"type":"send"},{"type":"other","payload":"x"},{"type":"send","payload":7}]}`, true},
		{"empty object", `{}`, true},
		{"empty jobs", `{"jobs":[]}`, true},
		{"empty job", `{"jobs":[{}]}`, true},
		{"empty lists", `{"jobs":[{"type":"t","tags":[],"depends_on":[]}]}`, true},
		{"zero values", `{"jobs":[{"type":"","priority":0,"max_attempts":-0,"delay":"0s","timeout":"0","backoff":{}}]}`, true},
		{"white space", "\n{ \"jobs\" :\t[ { \"type\" : \"t\" , \"payload\" : [ 1 ,\n 2 ] } ] }\r\n", true},
		{"escapes", `{"jobs":[{"type":"a\"\\\/\b\f\n\r\t\u0041\ud83c\udf89","tags":["\u2028"]}]}`, true},

		{"unknown field", `{"jobs":[{"type":"t","color":"red"}]}`, false},
		{"unknown top field", `{"jobs":[],"queue":"q"}`, false},
		{"key case", `{"jobs":[{"Type":"t"}]}`, false},
		{"top key case", `{"Jobs":[]}`, false},
		{"null jobs", `{"jobs":null}`, false},
		{"null job", `{"jobs":[null]}`, false},
		{"null delay", `{"jobs":[{"delay":null}]}`, false},
		{"null payload", `{"jobs":[{"payload":null}]}`, false},
		{"jobs object", `{"jobs":{}}`, false},
		{"float priority", `{"jobs":[{"priority":1.5}]}`, false},
		{"big priority", `{"jobs":[{"priority":99999999999999999999}]}`, false},
		{"number delay", `{"jobs":[{"delay":5}]}`, false},
		{"bad delay", `{"jobs":[{"delay":"5 minutes"}]}`, false},
		{"negative delay", `{"jobs":[{"delay":"-5s"}]}`, false},
		{"bad run_at", `{"jobs":[{"run_at":"2026-03-01"}]}`, false},
		{"duplicate key", `{"jobs":[{"type":"a","type":"b"}]}`, false},
		{"duplicate backoff key", `{"jobs":[{"backoff":{"base":"1s","base":"2s"}}]}`, false},
		{"unknown backoff key", `{"jobs":[{"backoff":{"min":"1s"}}]}`, false},
		{"trailing data", `{"jobs":[]}]`, false},
		{"second object", `{"jobs":[]} {"jobs":[]}`, false},
		{"invalid utf8", "{\"jobs\":[{\"type\":\"\xc3\"}]}", false},
		{"lone surrogate", `{"jobs":[{"type":"\udfff"}]}`, false},
		{"bad payload", `{"jobs":[{"payload":{"a":01}}]}`, false},
		{"string priority", `{"jobs":[{"priority":"1"}]}`, false},
		{"bool tags", `{"jobs":[{"tags":[true]}]}`, false},
		{"truncated", `{"jobs":[{"type":"t"}`, false},
		{"not an object", `"jobs"`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			checkDecode(t, []byte(c.data), c.fast, DecodeBatchEnqueueRequest, func(b []byte, r *spool.BatchEnqueueRequest) error { return stdDecodeBody(b, r) })
		})
	}
}

func TestDecodeAcksRequest(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		data string
		fast bool
	}{
		{"complete", `{"acks":[{"id":"0190b3c4-7d2e-7a1b-9c3d-4e5f6a7b8c9d","token":"t1","outcome":"complete","result":{"ok": true}}]}`, true},
		{"mixed", `{"acks":[{"id":"1","token":"t","outcome":"fail","error":"boom\n","retry_in":"30s","final":true},` +
			`{"id":"2","token":"t","outcome":"release"},{"id":"3","token":"t","outcome":"other","final":false}]}`, true},
		{"empty", `{"acks":[]}`, true},
		{"empty object", `{}`, true},
		{"empty ack", `{"acks":[{}]}`, true},

		{"unknown field", `{"acks":[{"id":"1","reason":"x"}]}`, false},
		{"key case", `{"acks":[{"Id":"1"}]}`, false},
		{"null result", `{"acks":[{"result":null}]}`, false},
		{"null acks", `{"acks":null}`, false},
		{"number final", `{"acks":[{"final":1}]}`, false},
		{"bad retry_in", `{"acks":[{"retry_in":"soon"}]}`, false},
		{"duplicate outcome", `{"acks":[{"outcome":"fail","outcome":"complete"}]}`, false},
		{"trailing data", `{"acks":[]}}`, false},
		{"bad result", `{"acks":[{"result":tru}]}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			checkDecode(t, []byte(c.data), c.fast, DecodeAcksRequest, func(b []byte, r *spool.AcksRequest) error { return stdDecodeBody(b, r) })
		})
	}
}

// The decoders gather elements in pooled slices: a result must not change
// when later requests are decoded.
func TestDecodedRequestsDoNotShareMemory(t *testing.T) {
	var first spool.BatchEnqueueRequest
	require.True(t, DecodeBatchEnqueueRequest([]byte(`{"jobs":[{"type":"a","priority":1},{"type":"b","priority":2}]}`), &first))
	var acks spool.AcksRequest
	require.True(t, DecodeAcksRequest([]byte(`{"acks":[{"id":"1","token":"t","outcome":"complete"}]}`), &acks))
	for i := range 20 {
		var later spool.BatchEnqueueRequest
		require.True(t, DecodeBatchEnqueueRequest([]byte(fmt.Sprintf(`{"jobs":[{"type":"x%d","priority":%d},{"type":"y","priority":9},{"type":"z"}]}`, i, 10+i)), &later))
		var laterAcks spool.AcksRequest
		require.True(t, DecodeAcksRequest([]byte(`{"acks":[{"id":"9","token":"u","outcome":"fail"},{"id":"8","token":"v","outcome":"release"}]}`), &laterAcks))
	}
	require.Equal(t, []spool.EnqueueRequest{{Type: "a", Priority: 1}, {Type: "b", Priority: 2}}, first.Jobs)
	require.Equal(t, []spool.Ack{{ID: "1", Token: "t", Outcome: spool.OutcomeComplete}}, acks.Acks)
}
