package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/wire"
)

// optionalBody is a request type whose body may be empty (all fields
// optional): an empty body leaves it at its zero value.
type optionalBody interface{ optionalBody() }

// decodeBody reads the request body (at most Limits.MaxBodyBytes) and
// decodes it into dst: one JSON value, unknown fields refused (names
// matched exactly), no field given twice, every string valid UTF-8,
// nothing but white space after it. For *noBody and an optionalBody, an empty body is
// accepted.
func (s *Server) decodeBody(c *call, dst any) error {
	data, done, err := s.readBody(c)
	defer done()
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		if _, ok := dst.(*noBody); ok {
			return nil
		}
		if _, ok := dst.(optionalBody); ok {
			return nil
		}
		return spool.Invalidf("the request body is empty; send a JSON object (see /v1/openapi.json)")
	}
	if decodeFast(data, dst) {
		return nil
	}
	// What encoding/json lets through: names matched without case,
	// members given twice, invalid UTF-8.
	if err := wire.Strict(data, reflect.TypeOf(dst)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err, data, reflect.TypeOf(dst))
	}
	off := dec.InputOffset()
	if rest := bytes.TrimSpace(data[off:]); len(rest) > 0 {
		return spool.Invalidf("unexpected data after the JSON object at byte %d; send exactly one JSON object", off+int64(bytes.Index(data[off:], rest[:1])))
	}
	return nil
}

// decodeFast decodes the bodies on the hot paths (a batch enqueue, a batch
// of acks) with the fast decoders of package wire, which take only simple,
// canonical JSON and give the same result as encoding/json. It reports
// false, dst untouched, when decodeBody must run encoding/json (and report
// its errors) as for every other body.
func decodeFast(data []byte, dst any) bool {
	switch dst := dst.(type) {
	case *batchBody:
		return wire.DecodeBatchEnqueueRequest(data, &dst.BatchEnqueueRequest)
	case *spool.AcksRequest:
		return wire.DecodeAcksRequest(data, dst)
	}
	return false
}

// decodeError turns an error of encoding/json into a message a person can
// act on, naming the field at fault where it can be found.
func decodeError(err error, data []byte, t reflect.Type) error {
	var (
		se *json.SyntaxError
		te *json.UnmarshalTypeError
		pe *time.ParseError
	)
	switch {
	case errors.As(err, &se):
		return spool.Invalidf("malformed JSON at byte %d: %s", se.Offset, se.Error())
	case errors.Is(err, io.ErrUnexpectedEOF):
		return spool.Invalidf("malformed JSON: the body ends before the JSON value is complete")
	case errors.As(err, &te):
		if te.Field == "" {
			return spool.Invalidf("the body must be a JSON object, not %s", te.Value)
		}
		// te.Field has no array indices ("jobs.priority"); locate finds
		// them ("jobs[3].priority") when it lands on the same field.
		field := wireField(te.Field)
		if p := locate(data, t); p != "" && strings.EqualFold(stripIndices(p), field) {
			field = p
		}
		return spool.Invalidf("%s must be %s, not %s", field, describe(te.Type), te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return spool.Invalidf("unknown field %s; see /v1/openapi.json for the fields this endpoint accepts", name)
	}
	// An error of a field's own decoder (a duration, a time): find the
	// field, since encoding/json does not say.
	msg := err.Error()
	if errors.As(err, &pe) {
		msg = fmt.Sprintf("%q is not an RFC 3339 time such as \"2026-03-01T12:00:00Z\"", truncate(pe.Value, 40))
	}
	if field := locate(data, t); field != "" {
		return spool.Invalidf("%s: %s", field, msg)
	}
	return spool.Invalidf("%s", msg)
}

// wireField drops from an encoding/json field path the names of embedded
// Go structs ("BatchEnqueueRequest.jobs.tags" → "jobs.tags"): the wire
// names of the API are all lower case.
func wireField(f string) string {
	parts := strings.Split(f, ".")
	for len(parts) > 1 && parts[0] != "" && parts[0][0] >= 'A' && parts[0][0] <= 'Z' {
		parts = parts[1:]
	}
	return strings.Join(parts, ".")
}

// stripIndices turns "jobs[3].tags[0]" into "jobs.tags".
func stripIndices(p string) string {
	var b strings.Builder
	depth := 0
	for _, r := range p {
		switch {
		case r == '[':
			depth++
		case r == ']':
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// describe names the JSON kind a Go type expects.
func describe(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case reflect.TypeFor[spool.Duration]():
		return "a duration string such as \"30s\""
	case reflect.TypeFor[time.Time]():
		return "an RFC 3339 time string"
	case reflect.TypeFor[json.RawMessage]():
		return "a JSON value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer in range"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return t.String()
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// locate returns the path ("jobs[3].delay") of the first value in data
// that does not decode on its own into its field of t, or "" if none is
// found. It runs only on the error path.
func locate(data []byte, t reflect.Type) string {
	p, _ := locateIn(data, t, "")
	return p
}

func locateIn(data []byte, t reflect.Type, path string) (string, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if string(bytes.TrimSpace(data)) == "null" {
		return "", false
	}
	leaf := reflect.PointerTo(t).Implements(unmarshalerType)
	switch t.Kind() {
	case reflect.Struct, reflect.Slice, reflect.Array, reflect.Map:
	default:
		leaf = true
	}
	if leaf {
		if err := json.Unmarshal(data, reflect.New(t).Interface()); err != nil {
			return path, true
		}
		return "", false
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		members, ok := objectMembers(data)
		if !ok {
			return path, true
		}
		for _, m := range members {
			var ft reflect.Type
			if t.Kind() == reflect.Map {
				ft = t.Elem()
			} else if ft, ok = fieldType(t, m.key); !ok {
				continue
			}
			if p, ok := locateIn(m.value, ft, join(path, m.key)); ok {
				return p, true
			}
		}
	case reflect.Slice, reflect.Array:
		var arr []json.RawMessage
		if json.Unmarshal(data, &arr) != nil {
			return path, true
		}
		for i, el := range arr {
			if p, ok := locateIn(el, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); ok {
				return p, true
			}
		}
	}
	return "", false
}

type member struct {
	key   string
	value json.RawMessage
}

// objectMembers splits a JSON object into its members, in document order
// (the order in which encoding/json meets, and reports, their errors).
func objectMembers(data []byte) ([]member, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		out = append(out, member{key, v})
	}
	return out, true
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fieldType finds the type of the struct field that encoding/json would
// fill from key (embedded structs included, names matched without case).
func fieldType(t reflect.Type, key string) (reflect.Type, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				if typ, ok := fieldType(ft, key); ok {
					return typ, true
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if strings.EqualFold(name, key) {
			return f.Type, true
		}
	}
	return nil, false
}
