package wire

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
)

func TestStrict(t *testing.T) {
	t.Parallel()
	enq := reflect.TypeFor[*spool.EnqueueRequest]()
	batch := reflect.TypeFor[*spool.BatchEnqueueRequest]()
	tests := []struct {
		name string
		typ  reflect.Type
		body string
		err  string // "" when Strict lets it through
	}{
		{"plain", enq, `{"type":"t","payload":{"a":[1,"é",{"b":null}]},"tags":["x"]}`, ""},
		{"escaped names match", enq, `{"\u0074ype":"t"}`, ""},
		{"surrogate pair", enq, `{"type":"t","payload":"\ud83c\udf89"}`, ""},
		{"payload keys may repeat", enq, `{"type":"t","payload":{"a":1,"a":2}}`, ""},
		{"malformed left to encoding/json", enq, `{"type":`, ""},
		{"wrong type left to encoding/json", enq, `{"type":1}`, ""},
		{"upper case", enq, `{"TYPE":"t"}`, `unknown field "TYPE"; field names are case-sensitive: did you mean "type"?`},
		{"unknown", enq, `{"colour":"red"}`, `unknown field "colour"`},
		{"twice", enq, `{"type":"a","type":"b"}`, `field "type" is given twice`},
		{"twice in a batch element", batch, `{"jobs":[{"type":"a"},{"tags":[],"tags":[]}]}`, `field "tags" of jobs[1] is given twice`},
		{"invalid UTF-8", enq, "{\"type\":\"\xff\"}", "type holds invalid UTF-8 at byte 9"},
		{"invalid UTF-8 deep in a payload", batch, "{\"jobs\":[{\"payload\":{\"a\":[\"ok\",\"\xc0\xaf\"]}}]}", "jobs[0].payload.a[1] holds invalid UTF-8"},
		{"lone high surrogate", enq, `{"payload":"\ud83c x"}`, `payload holds an escaped lone surrogate (\ud83c)`},
		{"lone low surrogate", enq, `{"payload":"\udf89"}`, `payload holds an escaped lone surrogate`},
		{"surrogate at the end", enq, `{"payload":"\ud83c"}`, `payload holds an escaped lone surrogate`},
		{"encoded surrogate", enq, "{\"payload\":\"\xed\xa0\x80\"}", "payload holds invalid UTF-8"},
		{"invalid UTF-8 in a key", enq, "{\"payload\":{\"\xff\":1}}", "payload holds invalid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Strict([]byte(tt.body), tt.typ)
			if tt.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, spool.ErrInvalid)
			require.Contains(t, err.Error(), tt.err)
		})
	}
}

// FuzzStrict: Strict never panics nor loops on any input.
func FuzzStrict(f *testing.F) {
	f.Add([]byte(`{"type":"t","payload":{"a":"\ud83c\udf89"}}`))
	f.Add([]byte("{\"type\":\"\xff\"}"))
	f.Add([]byte(`{"type":"a","type":"b"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = Strict(data, reflect.TypeFor[*spool.BatchEnqueueRequest]())
		_ = Strict(data, reflect.TypeFor[*spool.EnqueueRequest]())
	})
}
