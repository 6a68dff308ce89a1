package bench

import (
	"errors"
	"fmt"
	"strconv"
)

// seqDigits is the width of the sequence number in a payload.
const seqDigits = 12

// MinPayloadSize is the smallest payload that holds a sequence number:
// the quotes, seqDigits digits and a space.
const MinPayloadSize = seqDigits + 3

// Payload returns the payload of job seq: a JSON string exactly size bytes
// long, quotes included, such as "000000000042 xxxxxxxx...". Every target
// gets the same bytes: a valid JSON document (Spool stores payloads as
// JSON) that any system can carry as opaque bytes. size is raised to
// MinPayloadSize.
func Payload(seq int64, size int) []byte {
	size = max(size, MinPayloadSize)
	b := make([]byte, 0, size)
	b = append(b, '"')
	b = fmt.Appendf(b, "%0*d", seqDigits, seq)
	b = append(b, ' ')
	for len(b) < size-1 {
		b = append(b, 'x')
	}
	return append(b, '"')
}

// PayloadSeq returns the sequence number that Payload put in p.
func PayloadSeq(p []byte) (int64, error) {
	if len(p) < MinPayloadSize || p[0] != '"' {
		return 0, errors.New("bench: not a bench payload")
	}
	n, err := strconv.ParseInt(string(p[1:1+seqDigits]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bench: not a bench payload: %w", err)
	}
	return n, nil
}
