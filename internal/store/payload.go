package store

import (
	"bytes"
	"encoding/json"
	"math/big"
)

// PayloadEquals reports whether payload is a JSON object whose top-level
// field (the last one of that name, as PostgreSQL's jsonb keeps) is equal
// as JSON to value: numbers compare by value (1 = 1.0), objects by their
// members in any order, arrays element by element.
func PayloadEquals(payload []byte, field string, value []byte) bool {
	payload, value = NoNULEscapes(payload), NoNULEscapes(value)
	var obj map[string]json.RawMessage
	if json.Unmarshal(payload, &obj) != nil || obj == nil {
		return false
	}
	got, ok := obj[field]
	if !ok {
		return false
	}
	a, err := decodeJSON(got)
	if err != nil {
		return false
	}
	b, err := decodeJSON(value)
	if err != nil {
		return false
	}
	return jsonEqual(a, b)
}

func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}

func jsonEqual(a, b any) bool {
	switch x := a.(type) {
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		rx, okx := new(big.Rat).SetString(string(x))
		ry, oky := new(big.Rat).SetString(string(y))
		return okx && oky && rx.Cmp(ry) == 0
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !jsonEqual(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !jsonEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	default: // string, bool, nil
		return a == b
	}
}

// NoNULEscapes replaces each \u0000 escape of JSON text with \ufffd, on
// both sides of a payload filter's comparison. PostgreSQL's jsonb cannot
// hold U+0000, so its store compares payloads in this form; the embedded
// store does the same, so that the two agree on every payload.
func NoNULEscapes(b []byte) []byte {
	if !bytes.Contains(b, nulEscape) {
		return b
	}
	return bytes.ReplaceAll(b, nulEscape, []byte(`\ufffd`))
}

var nulEscape = []byte(`\u0000`)
