package wire

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
)

func fullEnqueueRequest() spool.EnqueueRequest {
	at := time.Date(2026, 11, 23, 17, 4, 5, 123456789, time.FixedZone("x", 5400))
	delay, timeout := spool.Duration(1500*time.Millisecond), spool.Duration(90*time.Second)
	return spool.EnqueueRequest{
		Type:           "email.send",
		Payload:        json.RawMessage(` {"to" : "a@example.com", "s":"<&>\u2028", "n":[1, 2.5e3]} `),
		Priority:       -3,
		Delay:          &delay,
		RunAt:          &at,
		MaxAttempts:    7,
		Timeout:        &timeout,
		Backoff:        &spool.Backoff{Base: spool.Duration(time.Second), Max: spool.Duration(time.Hour)},
		IdempotencyKey: "key-\"1\"",
		OrderingKey:    "acct/42",
		DependsOn:      []string{"0190b3c4-7d2e-7a1b-9c3d-4e5f6a7b8c9d", "root"},
		Ref:            "r1",
		Tags:           []string{"a", "é", "\x01"},
		CallbackURL:    "https://example.com/hook?a=1&b=<2>",
	}
}

func TestAppendEnqueueRequests(t *testing.T) {
	t.Parallel()
	full := fullEnqueueRequest()
	zeroDelay := spool.Duration(0)
	cases := map[string]spool.BatchEnqueueRequest{
		"nil jobs":   {},
		"empty jobs": {Jobs: []spool.EnqueueRequest{}},
		"minimal":    {Jobs: []spool.EnqueueRequest{{Type: "t"}}},
		"full":       {Jobs: []spool.EnqueueRequest{full}},
		"mixed": {Jobs: []spool.EnqueueRequest{
			full, {Type: "t", Payload: json.RawMessage(`"x"`)}, {Type: "t", Delay: &zeroDelay, Tags: []string{}, DependsOn: []string{}},
			{Type: "t", Backoff: &spool.Backoff{}}, {Type: "t", Backoff: &spool.Backoff{Max: 1}},
			{Type: "\xff\u2029", Priority: math.MaxInt, MaxAttempts: math.MinInt},
		}},
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want, err := stdEncode(&r)
			require.NoError(t, err)
			got, ok := TryAppendBatchEnqueueRequest([]byte("prefix"), &r)
			require.True(t, ok, "the fast path refused the request")
			require.Equal(t, string(want), string(got[len("prefix"):])+"\n")
			var back spool.BatchEnqueueRequest
			require.NoError(t, json.Unmarshal(got[len("prefix"):], &back))
		})
	}
}

func TestAppendEnqueueRequestFallback(t *testing.T) {
	t.Parallel()
	far := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	for name, r := range map[string]spool.EnqueueRequest{
		"invalid payload": {Type: "t", Payload: json.RawMessage(`{"a":`)},
		"year 10000":      {Type: "t", RunAt: &far},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, ok := TryAppendBatchEnqueueRequest(nil, &spool.BatchEnqueueRequest{Jobs: []spool.EnqueueRequest{{Type: "ok"}, r}})
			require.False(t, ok, "the fast path took a request encoding/json refuses")
			_, err := json.Marshal(r)
			require.Error(t, err)
		})
	}
}

func TestAppendAcksRequest(t *testing.T) {
	t.Parallel()
	in := spool.Duration(2 * time.Minute)
	cases := map[string]spool.AcksRequest{
		"nil acks":   {},
		"empty acks": {Acks: []spool.Ack{}},
		"all": {Acks: []spool.Ack{
			{ID: "a", Token: "t", Outcome: spool.OutcomeComplete},
			{ID: "b", Token: "t", Outcome: spool.OutcomeComplete, Result: json.RawMessage(` { "rows" : [1, 2] } `)},
			{ID: "c", Token: "t\u2028", Outcome: spool.OutcomeFail, Error: "boom <&> \"quoted\"\n", RetryIn: &in, Final: true},
			{ID: "d", Token: "", Outcome: spool.OutcomeRelease, Result: json.RawMessage(`null`)},
		}},
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want, err := stdEncode(&r)
			require.NoError(t, err)
			got, ok := TryAppendAcksRequest([]byte("prefix"), &r)
			require.True(t, ok, "the fast path refused the request")
			require.Equal(t, string(want), string(got[len("prefix"):])+"\n")
		})
	}
	_, ok := TryAppendAcksRequest(nil, &spool.AcksRequest{Acks: []spool.Ack{{ID: "a", Result: json.RawMessage(`[`)}}})
	require.False(t, ok, "an invalid result must go to encoding/json")
}

func FuzzAppendEnqueueRequest(f *testing.F) {
	f.Add("t", []byte(`{"a": 1}`), 5, int64(1772366400), int64(5), int64(1e9), "tag", "key", uint8(0xff))
	f.Add("\u2028\xff\"", []byte(" [ ] "), -1, int64(-62135596800), int64(0), int64(-1), "", "<>&", uint8(0))
	f.Add("", []byte(`"x`), math.MaxInt, int64(253402300800), int64(999999999), int64(math.MaxInt64), "é", "", uint8(0x55))
	f.Fuzz(func(t *testing.T, typ string, payload []byte, prio int, sec, nsec, dur int64, tag, key string, flags uint8) {
		at := time.Unix(sec, nsec).In(time.FixedZone("z", int(nsec%(30*3600))))
		d := spool.Duration(dur)
		r := spool.EnqueueRequest{Type: typ, Payload: payload, Priority: prio, MaxAttempts: -prio,
			IdempotencyKey: key, OrderingKey: tag, Ref: key + tag, CallbackURL: tag + key}
		if flags&1 != 0 {
			r.Delay, r.Timeout = &d, &d
		}
		if flags&2 != 0 {
			r.RunAt = &at
		}
		if flags&4 != 0 {
			r.Backoff = &spool.Backoff{Base: d / 3, Max: spool.Duration(nsec)}
		}
		if flags&8 != 0 {
			r.DependsOn, r.Tags = []string{key, typ}, []string{}
		}
		batch := spool.BatchEnqueueRequest{Jobs: []spool.EnqueueRequest{r}}
		want, err := stdEncode(&batch)
		got, ok := TryAppendBatchEnqueueRequest(nil, &batch)
		if ok {
			require.NoError(t, err, "the fast path wrote what encoding/json refuses")
			require.Equal(t, string(want), string(got)+"\n")
		}
		acks := spool.AcksRequest{Acks: []spool.Ack{{ID: key, Token: tag, Outcome: typ, Result: payload, Error: tag, RetryIn: r.Delay, Final: flags&16 != 0}}}
		want, err = stdEncode(&acks)
		got, ok = TryAppendAcksRequest(nil, &acks)
		if ok {
			require.NoError(t, err, "the fast path wrote what encoding/json refuses")
			require.Equal(t, string(want), string(got)+"\n")
		}
	})
}
