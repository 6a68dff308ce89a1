package sqs

import (
	"strings"

	"github.com/spoolq/spool"
)

// Queue names. An SQS queue name is 1 to 80 characters of [A-Za-z0-9_-],
// a FIFO queue's ending in ".fifo"; SQS names are case-sensitive. A Spool
// queue name is [a-z0-9][a-z0-9._-]{0,127}. The mapping between them is
// reversible and needs no table:
//
//   - the ".fifo" suffix is kept as it is;
//   - a lower-case letter, a digit, '_' and '-' are kept as they are;
//   - an upper-case letter becomes its lower-case letter followed by '.'
//     ("MyQueue" is "m.yq.ueue");
//   - a name that would start with '_' or '-' gets the prefix "0."
//     ("_jobs" is "0._jobs").
//
// So every SQS name written in lower case is the Spool queue of the same
// name, and a Spool queue is visible through SQS exactly when decoding its
// name and encoding it again gives it back ("a.b" is "Ab"; "1.x" has no SQS
// name). An SQS name whose Spool form would pass 128 characters (more than
// about 60 upper-case letters) is refused.

const (
	fifoSuffix    = ".fifo"
	maxSQSNameLen = 80
	leadingPrefix = "0."
)

// validSQSName checks an SQS queue name; fifo reports its ".fifo" suffix.
func validSQSName(name string) (fifo bool, err error) {
	base, fifo := strings.CutSuffix(name, fifoSuffix)
	if name == "" || base == "" || len(name) > maxSQSNameLen {
		return false, invalidParameter("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
	}
	for i := 0; i < len(base); i++ {
		c := base[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false, invalidParameter("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
		}
	}
	return fifo, nil
}

// toSpool maps a valid SQS queue name to its Spool queue name.
func toSpool(name string) (string, error) {
	if _, err := validSQSName(name); err != nil {
		return "", err
	}
	base, fifo := strings.CutSuffix(name, fifoSuffix)
	var b strings.Builder
	b.Grow(len(name) + 8)
	if base[0] == '_' || base[0] == '-' {
		b.WriteString(leadingPrefix)
	}
	for i := 0; i < len(base); i++ {
		c := base[i]
		if c >= 'A' && c <= 'Z' {
			b.WriteByte(c + ('a' - 'A'))
			b.WriteByte('.')
			continue
		}
		b.WriteByte(c)
	}
	if fifo {
		b.WriteString(fifoSuffix)
	}
	s := b.String()
	if err := spool.ValidateQueueName(s); err != nil {
		return "", invalidParameter("Queue name %q is too long for Spool: its Spool form %q passes %d characters (each upper-case letter takes two)", name, s, spool.MaxNameLen)
	}
	return s, nil
}

// fromSpool maps a Spool queue name to its SQS name; ok is false when the
// Spool queue has none.
func fromSpool(name string) (sqsName string, ok bool) {
	base, fifo := strings.CutSuffix(name, fifoSuffix)
	base = strings.TrimPrefix(base, leadingPrefix)
	var b strings.Builder
	b.Grow(len(base))
	for i := 0; i < len(base); i++ {
		c := base[i]
		if c >= 'a' && c <= 'z' && i+1 < len(base) && base[i+1] == '.' {
			b.WriteByte(c - ('a' - 'A'))
			i++
			continue
		}
		b.WriteByte(c)
	}
	if fifo {
		b.WriteString(fifoSuffix)
	}
	s := b.String()
	if back, err := toSpool(s); err != nil || back != name {
		return "", false
	}
	return s, true
}
