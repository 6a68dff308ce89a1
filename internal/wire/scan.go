package wire

import (
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds the nesting of payloads the fast paths handle; deeper
// values go to encoding/json (whose own limit is 10,000).
const maxDepth = 1000

// scanner reads JSON from data at i. Every method reports false on input
// the fast path does not take, which is then left to encoding/json.
type scanner struct {
	data []byte
	i    int
	// spaced records that ws skipped white space.
	spaced bool
	// buf holds the unescaped bytes of the last string read.
	buf []byte
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// plain marks the bytes a string may hold as they are: ASCII from 0x20 up,
// but for the quote and the backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// ws skips white space.
func (s *scanner) ws() {
	i := s.i
	for i < len(s.data) && isSpace(s.data[i]) {
		i++
	}
	if i != s.i {
		s.spaced = true
		s.i = i
	}
}

// next skips white space and returns the byte at i (0 at the end).
func (s *scanner) next() byte {
	s.ws()
	if s.i < len(s.data) {
		return s.data[s.i]
	}
	return 0
}

// eat skips white space and then c.
func (s *scanner) eat(c byte) bool {
	if s.next() != c {
		return false
	}
	s.i++
	return true
}

// end reports whether only white space is left.
func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.data)
}

// skipValue checks the JSON value at i (white space before it skipped) and
// moves past it.
func (s *scanner) skipValue(depth int) bool {
	if depth > maxDepth {
		return false
	}
	switch s.next() {
	case '"':
		return s.skipString()
	case '{':
		s.i++
		if s.eat('}') {
			return true
		}
		for {
			if s.next() != '"' || !s.skipString() || !s.eat(':') || !s.skipValue(depth+1) {
				return false
			}
			if s.eat(',') {
				continue
			}
			return s.eat('}')
		}
	case '[':
		s.i++
		if s.eat(']') {
			return true
		}
		for {
			if !s.skipValue(depth + 1) {
				return false
			}
			if s.eat(',') {
				continue
			}
			return s.eat(']')
		}
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	}
	_, ok := s.number()
	return ok
}

func (s *scanner) literal(lit string) bool {
	if len(s.data)-s.i < len(lit) || string(s.data[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

// skipDigits returns the index of the first byte of d at or after i that
// is not a decimal digit.
func skipDigits(d []byte, i int) int {
	for i < len(d) && d[i] >= '0' && d[i] <= '9' {
		i++
	}
	return i
}

// number checks the JSON number at i and moves past it; integer reports
// that it has neither fraction nor exponent.
func (s *scanner) number() (integer, ok bool) {
	d, i := s.data, s.i
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		i = skipDigits(d, i)
	default:
		return false, false
	}
	integer = true
	if i < len(d) && d[i] == '.' {
		integer = false
		j := skipDigits(d, i+1)
		if j == i+1 {
			return false, false
		}
		i = j
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		integer = false
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := skipDigits(d, i)
		if j == i {
			return false, false
		}
		i = j
	}
	s.i = i
	return integer, true
}

// skipString checks the JSON string at i as encoding/json's scanner does
// (any byte from 0x20 up, valid escapes) and moves past it. Unlike
// encoding/json it also refuses invalid UTF-8 and escaped lone surrogates,
// which no worker's JSON parser could be sure to read back.
func (s *scanner) skipString() bool {
	d := s.data
	for i := s.i + 1; i < len(d); i++ {
		for i < len(d) && plain[d[i]] {
			i++
		}
		if i >= len(d) {
			return false
		}
		switch c := d[i]; {
		case c == '"':
			s.i = i + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			i++
			if i >= len(d) {
				return false
			}
			switch d[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				r, ok := hex4(d[i+1:])
				if !ok {
					return false
				}
				i += 4
				if utf16.IsSurrogate(r) {
					// Only a pair is Unicode: a lone surrogate is left to
					// the caller's strict path, which refuses it.
					if i+6 >= len(d) || d[i+1] != '\\' || d[i+2] != 'u' {
						return false
					}
					r2, ok := hex4(d[i+3:])
					if !ok || utf16.DecodeRune(r, r2) == utf8.RuneError {
						return false
					}
					i += 6
				}
			default:
				return false
			}
		default: // c >= utf8.RuneSelf
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size == 1 {
				return false // invalid UTF-8: left to the strict path
			}
			i += size - 1
		}
	}
	return false
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// rawString reads the string at i (after white space) and returns its
// contents, unescaped: a sub-slice of data when it has no escapes, else
// s.buf. Invalid UTF-8 and lone surrogates, which encoding/json replaces
// with U+FFFD, are refused.
func (s *scanner) rawString() ([]byte, bool) {
	if s.next() != '"' {
		return nil, false
	}
	d := s.data
	start := s.i + 1
	i := start
	ascii := true
	for ; i < len(d); i++ {
		for i < len(d) && plain[d[i]] {
			i++
		}
		if i >= len(d) {
			return nil, false
		}
		c := d[i]
		if c == '"' {
			if !ascii && !utf8.Valid(d[start:i]) {
				return nil, false
			}
			s.i = i + 1
			return d[start:i], true
		}
		if c < 0x20 || c == '\\' {
			break
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	if i >= len(d) || d[i] != '\\' {
		return nil, false
	}
	if !ascii && !utf8.Valid(d[start:i]) {
		return nil, false
	}
	b := append(s.buf[:0], d[start:i]...)
	for i < len(d) {
		c := d[i]
		switch {
		case c == '"':
			s.i = i + 1
			s.buf = b
			return b, true
		case c < 0x20:
			return nil, false
		case c == '\\':
			if i+1 >= len(d) {
				return nil, false
			}
			switch e := d[i+1]; e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, ok := hex4(d[i+2:])
				if !ok {
					return nil, false
				}
				if utf16.IsSurrogate(r) {
					if i+7 >= len(d) || d[i+6] != '\\' || d[i+7] != 'u' {
						return nil, false
					}
					r2, ok := hex4(d[i+8:])
					if !ok {
						return nil, false
					}
					if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
						return nil, false
					}
					i += 6
				}
				b = utf8.AppendRune(b, r)
				i += 4
			default:
				return nil, false
			}
			i += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size == 1 {
				return nil, false
			}
			b = append(b, d[i:i+size]...)
			i += size
		}
	}
	return nil, false
}

// str reads a string as a Go string; same is returned, without a copy,
// when the string equals it (a queue or type that repeats in a batch).
func (s *scanner) str(same string) (string, bool) {
	b, ok := s.rawString()
	if !ok {
		return "", false
	}
	if string(b) == same {
		return same, true
	}
	return string(b), true
}

// key reads an object key and the colon after it. Keys with escapes are
// refused: encoding/json unescapes them before it matches fields.
func (s *scanner) key() ([]byte, bool) {
	if s.next() != '"' {
		return nil, false
	}
	d := s.data
	start := s.i + 1
	for i := start; i < len(d); i++ {
		for i < len(d) && plain[d[i]] {
			i++
		}
		if i >= len(d) {
			return nil, false
		}
		switch c := d[i]; {
		case c == '"':
			s.i = i + 1
			if !s.eat(':') {
				return nil, false
			}
			return d[start:i], true
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			return nil, false
		}
	}
	return nil, false
}

// int reads an integer written -?[0-9]+ that fits in an int.
func (s *scanner) int() (int, bool) {
	s.ws()
	start := s.i
	integer, ok := s.number()
	if !ok || !integer {
		return 0, false
	}
	d := s.data[start:s.i]
	neg := d[0] == '-'
	if neg {
		d = d[1:]
	}
	if len(d) > 19 {
		return 0, false
	}
	var u uint64
	for _, c := range d {
		u = u*10 + uint64(c-'0')
	}
	const maxInt = 1<<(strconvIntSize-1) - 1
	switch {
	case !neg && u <= maxInt:
		return int(u), true
	case neg && u <= maxInt+1:
		return int(-u), true
	}
	return 0, false
}

const strconvIntSize = 32 << (^uint(0) >> 63)

// bool reads true or false.
func (s *scanner) bool() (bool, bool) {
	switch s.next() {
	case 't':
		return true, s.literal("true")
	case 'f':
		return false, s.literal("false")
	}
	return false, false
}

// raw reads any JSON value but null and returns its bytes, copied (the
// data of a request or answer is a reused buffer).
func (s *scanner) raw() ([]byte, bool) {
	if s.next() == 'n' {
		return nil, false
	}
	start := s.i
	if !s.skipValue(0) {
		return nil, false
	}
	return append([]byte(nil), s.data[start:s.i]...), true
}
