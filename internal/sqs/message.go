package sqs

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/spoolq/spool"
)

// MessageType is the Spool job type of a message sent through SQS.
const MessageType = "sqs"

// Message bodies and Spool payloads. A message sent through SQS is a job of
// type MessageType whose payload is its body as a JSON string; with
// message attributes the payload is an object {"body": ..., "attributes":
// {...}}, the attributes as the SQS JSON protocol writes them. A job sent
// through Spool's own API is received through SQS with, as body, its
// payload if it is a JSON string, else the payload's JSON text.

// MessageAttribute is one message attribute, as the SQS JSON protocol
// writes it (binary values in base64).
type MessageAttribute struct {
	DataType         string   `json:"DataType"`
	StringValue      *string  `json:"StringValue,omitempty"`
	BinaryValue      []byte   `json:"BinaryValue,omitempty"`
	StringListValues []string `json:"StringListValues,omitempty"`
	BinaryListValues [][]byte `json:"BinaryListValues,omitempty"`
}

// wrapped is the payload of a message with attributes.
type wrapped struct {
	Body       *string                     `json:"body"`
	Attributes map[string]MessageAttribute `json:"attributes,omitempty"`
}

// toPayload makes the payload of a message.
func toPayload(body string, attrs map[string]MessageAttribute) (json.RawMessage, error) {
	if len(attrs) == 0 {
		return marshalNoEscape(body)
	}
	return marshalNoEscape(wrapped{Body: &body, Attributes: attrs})
}

// marshalNoEscape is json.Marshal without escaping <, > and &: bodies
// are often XML or HTML and should not grow.
func marshalNoEscape(v any) (json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// fromJob reads the body and attributes of a job.
func fromJob(j *spool.Job) (body string, attrs map[string]MessageAttribute) {
	p := bytes.TrimSpace(j.Payload)
	if len(p) == 0 {
		return "null", nil
	}
	switch p[0] {
	case '"':
		if err := json.Unmarshal(p, &body); err == nil {
			return body, nil
		}
	case '{':
		if j.Type == MessageType {
			var w wrapped
			if err := json.Unmarshal(p, &w); err == nil && w.Body != nil {
				return *w.Body, w.Attributes
			}
		}
	}
	return string(p), nil
}

// md5Hex is the hex MD5 digest of s (MD5OfMessageBody).
func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// attributesMD5 is MD5OfMessageAttributes: the attributes sorted by name,
// each encoded as its name, its data type (both length-prefixed), a
// transport byte (1 string, 2 binary, 3 string list, 4 binary list) and
// its value (length-prefixed), lengths as 4-byte big-endian integers.
// "" when there are none.
func attributesMD5(attrs map[string]MessageAttribute) string {
	if len(attrs) == 0 {
		return ""
	}
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	h := md5.New()
	var l [4]byte
	put := func(b []byte) {
		binary.BigEndian.PutUint32(l[:], uint32(len(b)))
		h.Write(l[:])
		h.Write(b)
	}
	for _, n := range names {
		a := attrs[n]
		put([]byte(n))
		put([]byte(a.DataType))
		switch {
		case a.StringValue != nil:
			h.Write([]byte{1})
			put([]byte(*a.StringValue))
		case a.BinaryValue != nil:
			h.Write([]byte{2})
			put(a.BinaryValue)
		case len(a.StringListValues) > 0:
			h.Write([]byte{3})
			for _, v := range a.StringListValues {
				put([]byte(v))
			}
		case len(a.BinaryListValues) > 0:
			h.Write([]byte{4})
			for _, v := range a.BinaryListValues {
				put(v)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// validBody checks a message body: at least one character, only the
// characters SQS allows (#x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to
// #xFFFD | #x10000 to #x10FFFF).
func validBody(body string) *apiError {
	if body == "" {
		return missingParameter("MessageBody")
	}
	if !utf8.ValidString(body) {
		return newError(400, "InvalidMessageContents", "InvalidMessageContents", "Invalid binary character in the message body: the body is not valid UTF-8.")
	}
	for i, r := range body {
		if !validChar(r) {
			return newError(400, "InvalidMessageContents", "InvalidMessageContents", "Invalid binary character '#x%X' at byte %d of the message body. The set of allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.", r, i)
		}
	}
	return nil
}

func validChar(r rune) bool {
	return r == 0x9 || r == 0xA || r == 0xD || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// maxMessageAttributes is how many attributes a message may carry.
const maxMessageAttributes = 10

// validAttributes checks message attributes and returns their size in
// bytes as SQS counts it (names, data types and values).
func validAttributes(attrs map[string]MessageAttribute) (int, *apiError) {
	if len(attrs) > maxMessageAttributes {
		return 0, invalidParameter("Number of message attributes [%d] exceeds the allowed maximum [%d].", len(attrs), maxMessageAttributes)
	}
	size := 0
	for name, a := range attrs {
		if err := validAttributeName(name); err != nil {
			return 0, err
		}
		base, _, _ := strings.Cut(a.DataType, ".")
		switch base {
		case "String", "Number", "Binary":
		default:
			if a.DataType == "" {
				return 0, invalidParameter("The message attribute '%s' must contain non-empty message attribute type.", clip(name, 256))
			}
			return 0, invalidParameter("The type of message (user) attribute '%s' is invalid. You must use only the following supported type prefixes: Binary, Number, String.", clip(name, 256))
		}
		if len(a.DataType) > 256 {
			return 0, invalidParameter("Message attribute '%s' has a data type longer than 256 characters.", clip(name, 256))
		}
		size += len(name) + len(a.DataType)
		switch {
		case base == "Binary":
			if a.BinaryValue == nil || a.StringValue != nil {
				return 0, invalidParameter("The message attribute '%s' with type 'Binary' must use field 'Binary'.", clip(name, 256))
			}
			size += len(a.BinaryValue)
		default:
			if a.StringValue == nil || a.BinaryValue != nil {
				return 0, invalidParameter("The message attribute '%s' with type '%s' must use field 'String'.", clip(name, 256), base)
			}
			if *a.StringValue == "" {
				return 0, invalidParameter("The message attribute '%s' must contain non-empty message attribute value for message attribute type '%s'.", clip(name, 256), base)
			}
			if err := validBody(*a.StringValue); err != nil {
				return 0, invalidParameter("The message attribute '%s' contains a character SQS does not allow.", clip(name, 256))
			}
			if base == "Number" && !validNumber(*a.StringValue) {
				return 0, invalidParameter("Can't cast the value of message (user) attribute '%s' to a number.", clip(name, 256))
			}
			size += len(*a.StringValue)
		}
		if len(a.StringListValues) > 0 || len(a.BinaryListValues) > 0 {
			return 0, invalidParameter("Message attribute list values are not supported.")
		}
	}
	return size, nil
}

func validAttributeName(name string) *apiError {
	if name == "" || len(name) > 256 {
		return invalidParameter("Message (user) attribute names must be 1 to 256 characters long.")
	}
	lower := strings.ToLower(name)
	if strings.HasPrefix(lower, "aws.") || strings.HasPrefix(lower, "amazon.") {
		return invalidParameter("Message (user) attribute name '%s' is reserved for use by SQS.", clip(name, 256))
	}
	if name[0] == '.' || name[len(name)-1] == '.' || strings.Contains(name, "..") {
		return invalidParameter("Message (user) attribute name '%s' must not start or end with a period or contain two periods in a row.", clip(name, 256))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return invalidParameter("Message (user) attribute name '%s' can contain only alphanumeric characters, hyphens (-), underscores (_) and periods (.).", clip(name, 256))
		}
	}
	return nil
}

// validNumber accepts what SQS accepts as a Number attribute: a decimal
// number, optionally signed, with an optional fraction and exponent.
func validNumber(s string) bool {
	var f big.Float
	_, ok := f.SetString(strings.TrimSpace(s))
	return ok && len(s) <= 256
}

// Receipt handles. A receipt handle names a job, the lease token of one
// receive and the job's queue: base64 of "1 <job id> <token> <queue>". A
// handle of an earlier receive holds a token that is no longer the job's:
// the store's lease fencing refuses it.

func receiptHandle(id, token, queue string) string {
	return base64.StdEncoding.EncodeToString([]byte("1 " + id + " " + token + " " + queue))
}

func parseReceiptHandle(h, queue string) (id, token string, err *apiError) {
	raw, e := base64.StdEncoding.DecodeString(h)
	if e != nil {
		return "", "", invalidReceiptHandle(h)
	}
	parts := strings.Split(string(raw), " ")
	if len(parts) != 4 || parts[0] != "1" || parts[2] == "" || parts[3] != queue {
		return "", "", invalidReceiptHandle(h)
	}
	if _, e := uuid.Parse(parts[1]); e != nil {
		return "", "", invalidReceiptHandle(h)
	}
	return parts[1], parts[2], nil
}

// sequenceNumber is a FIFO message's SequenceNumber: its job id (a
// time-ordered UUIDv7) read as a 128-bit number, in decimal.
func sequenceNumber(id string) string {
	u, err := uuid.Parse(id)
	if err != nil {
		return ""
	}
	return new(big.Int).SetBytes(u[:]).String()
}
