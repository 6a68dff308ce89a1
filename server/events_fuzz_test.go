package server

import (
	"testing"

	"github.com/spoolq/spool"
)

// FuzzEventsQuery: any query string is either refused with ErrInvalid or
// gives filters of valid queue names and job ids.
func FuzzEventsQuery(f *testing.F) {
	for _, s := range []string{"", "queue=a&queue=b", "job=0190f5e4-7b8a-7c3d-9e2f-1a2b3c4d5e6f", "stats=0", "stats=1s",
		"queue=A", "job=x&job=y", "stats=-1s", "%zz", "queue=", "other=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseEventsQuery(raw)
		if err != nil {
			if spool.Code(err) != spool.CodeInvalid {
				t.Fatalf("query %q: error %v is not invalid_request", raw, err)
			}
			return
		}
		for _, name := range q.filter.Queues {
			if spool.ValidateQueueName(name) != nil {
				t.Fatalf("query %q: invalid queue %q accepted", raw, name)
			}
		}
		if q.filter.Job != "" {
			if _, err := parseJobID(q.filter.Job); err != nil {
				t.Fatalf("query %q: invalid job %q accepted", raw, q.filter.Job)
			}
		}
		if q.stats != 0 && (q.stats < sseMinStats) {
			t.Fatalf("query %q: stats %s accepted", raw, q.stats)
		}
	})
}
