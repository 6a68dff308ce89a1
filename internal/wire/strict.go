package wire

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/spoolq/spool"
)

// Strict checks a request body, to be decoded into a value of type t by
// encoding/json, for what encoding/json would let through:
//
//   - a member whose name matches a field only without regard to case
//     ({"TYPE":"t"}): names are matched exactly;
//   - a member given twice in one object of the request ({"type":"a",
//     "type":"b"}), which encoding/json merges, the last one winning;
//   - a string, anywhere (payloads and results included), that holds
//     invalid UTF-8 or an escaped lone surrogate ("\ud800"), which
//     encoding/json replaces with U+FFFD in strings and keeps as it is in
//     a json.RawMessage, so that a worker's JSON parser would refuse the
//     job later.
//
// It returns an error wrapping spool.ErrInvalid that names the place, or
// nil. Malformed JSON is not its business: it returns nil and leaves the
// report to encoding/json. Members of payloads and results (values of
// json.RawMessage and of types with their own UnmarshalJSON) are checked
// for their strings only.
func Strict(data []byte, t reflect.Type) error {
	c := strictChecker{scanner: scanner{data: data}}
	c.value(t, "", 0)
	if c.err != nil && c.err != errSyntax {
		return c.err
	}
	return nil
}

// errSyntax stops the check at malformed JSON.
var errSyntax = fmt.Errorf("syntax")

type strictChecker struct {
	scanner
	err error
}

var (
	rawMessageType = reflect.TypeFor[json.RawMessage]()
	unmarshaler    = reflect.TypeFor[json.Unmarshaler]()
)

// value checks the value at i, to be decoded into t (nil: any value).
func (c *strictChecker) value(t reflect.Type, path string, depth int) bool {
	if depth > maxDepth*10 {
		return c.fail(errSyntax)
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (t == rawMessageType || reflect.PointerTo(t).Implements(unmarshaler) || t.Kind() == reflect.Interface) {
		t = nil // its own decoder, or any JSON: strings checked only
	}
	switch c.next() {
	case '"':
		_, ok := c.str(path)
		return ok
	case '{':
		c.i++
		var fields map[string]reflect.Type
		var elem reflect.Type
		typed := false
		if t != nil {
			switch t.Kind() {
			case reflect.Struct:
				fields, typed = fieldsOf(t), true
			case reflect.Map:
				elem, typed = t.Elem(), true
			}
		}
		var seen map[string]bool
		if c.eat('}') {
			return true
		}
		for {
			if c.next() != '"' {
				return c.fail(errSyntax)
			}
			k, ok := c.str(path)
			if !ok {
				return false
			}
			key := string(k)
			if !c.eat(':') {
				return c.fail(errSyntax)
			}
			ft := elem
			if typed {
				if seen == nil {
					seen = make(map[string]bool)
				}
				if seen[key] {
					return c.fail(spool.Invalidf("%s is given twice; give each field once", quoteField(path, key)))
				}
				seen[key] = true
				if fields != nil {
					var known bool
					if ft, known = fields[key]; !known {
						return c.fail(unknownField(key, fields))
					}
				}
			}
			if !c.value(ft, joinPath(path, key), depth+1) {
				return false
			}
			if c.eat(',') {
				continue
			}
			if c.eat('}') {
				return true
			}
			return c.fail(errSyntax)
		}
	case '[':
		c.i++
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		if c.eat(']') {
			return true
		}
		for n := 0; ; n++ {
			if !c.value(elem, path+"["+strconv.Itoa(n)+"]", depth+1) {
				return false
			}
			if c.eat(',') {
				continue
			}
			if c.eat(']') {
				return true
			}
			return c.fail(errSyntax)
		}
	case 't':
		return c.literal("true") || c.fail(errSyntax)
	case 'f':
		return c.literal("false") || c.fail(errSyntax)
	case 'n':
		return c.literal("null") || c.fail(errSyntax)
	}
	if _, ok := c.number(); !ok {
		return c.fail(errSyntax)
	}
	return true
}

func (c *strictChecker) fail(err error) bool {
	if c.err == nil {
		c.err = err
	}
	return false
}

// str reads a string, unescaped, refusing invalid UTF-8 and escaped lone
// surrogates; path names where it is, for the message.
func (c *strictChecker) str(path string) ([]byte, bool) {
	d := c.data
	start := c.i
	b := c.buf[:0]
	for i := start + 1; i < len(d); {
		ch := d[i]
		switch {
		case ch == '"':
			c.i = i + 1
			c.buf = b
			return b, true
		case ch < 0x20:
			return nil, c.fail(errSyntax)
		case ch == '\\':
			if i+1 >= len(d) {
				return nil, c.fail(errSyntax)
			}
			switch e := d[i+1]; e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b', 'f', 'n', 'r', 't':
				b = append(b, map[byte]byte{'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}[e])
			case 'u':
				r, ok := hex4(d[i+2:])
				if !ok {
					return nil, c.fail(errSyntax)
				}
				if utf16.IsSurrogate(r) {
					r2, ok := rune(0), false
					if i+11 < len(d) && d[i+6] == '\\' && d[i+7] == 'u' {
						r2, ok = hex4(d[i+8:])
					}
					if !ok || utf16.DecodeRune(r, r2) == utf8.RuneError {
						return nil, c.fail(spool.Invalidf("%s holds an escaped lone surrogate (\\u%04x) at byte %d; strings must be valid Unicode", where(path), r, i))
					}
					r = utf16.DecodeRune(r, r2)
					i += 6
				}
				b = utf8.AppendRune(b, r)
				i += 4
			default:
				return nil, c.fail(errSyntax)
			}
			i += 2
		case ch < utf8.RuneSelf:
			b = append(b, ch)
			i++
		default:
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size == 1 {
				return nil, c.fail(spool.Invalidf("%s holds invalid UTF-8 at byte %d; strings must be valid UTF-8", where(path), i))
			}
			b = append(b, d[i:i+size]...)
			i += size
		}
	}
	return nil, c.fail(errSyntax)
}

func where(path string) string {
	if path == "" {
		return "the body"
	}
	return path
}

func quoteField(path, key string) string {
	if path == "" {
		return "field " + strconv.Quote(key)
	}
	return "field " + strconv.Quote(key) + " of " + path
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// unknownField names a member that no field takes, and the field it
// differs from only by case, if any.
func unknownField(key string, fields map[string]reflect.Type) error {
	for name := range fields {
		if strings.EqualFold(name, key) {
			return spool.Invalidf("unknown field %q; field names are case-sensitive: did you mean %q?", key, name)
		}
	}
	return spool.Invalidf("unknown field %q; see /v1/openapi.json for the fields this endpoint accepts", key)
}

// fieldsCache maps a struct type to its fields by JSON name.
var fieldsCache sync.Map // reflect.Type → map[string]reflect.Type

// fieldsOf returns the members encoding/json decodes into a struct of
// type t, by exact name: tagged names, else Go names, of exported fields,
// with the fields of embedded structs promoted.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldsCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := make(map[string]reflect.Type)
	addFields(m, t, 0)
	fieldsCache.Store(t, m)
	return m
}

func addFields(m map[string]reflect.Type, t reflect.Type, depth int) {
	if depth > 8 {
		return
	}
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
				addFields(m, ft, depth+1)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, ok := m[name]; !ok || depth == 0 {
			m[name] = f.Type
		}
	}
}
