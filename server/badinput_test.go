package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/server"
)

// Bad input is answered with the right status, code and a message naming
// the problem, and changes nothing.
func TestBadInputs(t *testing.T) {
	t.Parallel()
	eachStore(t, testBadInputs)
}

func testBadInputs(t *testing.T, store func(*server.Config)) {
	ts := newTestServer(t, store, func(c *server.Config) {
		c.Limits = spool.Limits{MaxPayloadBytes: 1024, MaxBodyBytes: 4096, MaxBatch: 10, MaxLease: 10}
	})
	// One job in each of active, dead and ready.
	active := ts.enqueue("q", spool.EnqueueRequest{Type: "active"})
	lease := ts.leaseOne("q")
	dead := ts.enqueue("q", spool.EnqueueRequest{Type: "dead"})
	ld := ts.leaseOne("q")
	ts.do("POST", "/v1/jobs/"+dead.ID+"/fail", spool.FailRequest{Token: ld.Lease.Token, Final: true}).ok(t, http.StatusOK, nil)
	ready := ts.enqueue("q", spool.EnqueueRequest{Type: "ready", IdempotencyKey: "k1"})

	expand := strings.NewReplacer("{active}", active.ID, "{dead}", dead.ID, "{ready}", ready.ID, "{token}", lease.Lease.Token)
	big := func(n int) string { return strings.Repeat("x", n) }
	jobs := func(n int) string {
		var b strings.Builder
		b.WriteString(`{"jobs":[`)
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(`{"type":"t"}`)
		}
		b.WriteString("]}")
		return b.String()
	}
	const (
		enq   = "/v1/queues/q/jobs"
		batch = "/v1/queues/q/jobs:batch"
		bad   = spool.CodeInvalid
	)
	rows := []struct {
		name   string
		method string
		path   string
		body   string
		hdr    []string
		status int
		code   string
		msg    string // the message contains this
		allow  string // the Allow header, for 405
	}{
		// Bodies.
		{name: "malformed JSON", method: "POST", path: enq, body: `{"type":`, status: 400, code: bad, msg: "malformed JSON"},
		{name: "syntax error offset", method: "POST", path: enq, body: `{"type":"t",}`, status: 400, code: bad, msg: "at byte 13"},
		{name: "trailing garbage", method: "POST", path: enq, body: `{"type":"t"} xyz`, status: 400, code: bad, msg: "after the JSON object"},
		{name: "two objects", method: "POST", path: enq, body: `{"type":"t"}{"type":"t"}`, status: 400, code: bad, msg: "after the JSON object"},
		{name: "unknown field", method: "POST", path: enq, body: `{"type":"t","colour":"red"}`, status: 400, code: bad, msg: `unknown field "colour"`},
		{name: "unknown nested field", method: "POST", path: enq, body: `{"type":"t","backoff":{"base":"1s","factor":2}}`, status: 400, code: bad, msg: `unknown field "factor"`},
		{name: "wrong type", method: "POST", path: enq, body: `{"type":"t","priority":"high"}`, status: 400, code: bad, msg: "priority must be an integer"},
		{name: "wrong type in batch", method: "POST", path: batch, body: `{"jobs":[{"type":"t"},{"type":"t","tags":"a"}]}`, status: 400, code: bad, msg: "jobs[1].tags must be an array"},
		{name: "not an object", method: "POST", path: enq, body: `["t"]`, status: 400, code: bad, msg: "must be a JSON object"},
		{name: "empty body", method: "POST", path: enq, status: 400, code: bad, msg: "empty"},
		{name: "missing type", method: "POST", path: enq, body: `{"payload":{"a":1}}`, status: 400, code: bad, msg: "type is required"},
		{name: "payload not JSON", method: "POST", path: enq, body: `{"type":"t","payload":{a:1}}`, status: 400, code: bad, msg: "malformed JSON"},
		{name: "payload over limit", method: "POST", path: enq, body: `{"type":"t","payload":"` + big(2000) + `"}`, status: 413, code: spool.CodeTooLarge, msg: "payload"},
		{name: "body over limit", method: "POST", path: enq, body: `{"type":"t","payload":"` + big(5000) + `"}`, status: 413, code: spool.CodeTooLarge, msg: "4096"},
		{name: "priority out of range", method: "POST", path: enq, body: `{"type":"t","priority":5000}`, status: 400, code: bad, msg: "priority"},
		{name: "max_attempts too big", method: "POST", path: enq, body: `{"type":"t","max_attempts":1001}`, status: 400, code: bad, msg: "max_attempts"},
		{name: "max_attempts negative", method: "POST", path: enq, body: `{"type":"t","max_attempts":-1}`, status: 400, code: bad, msg: "max_attempts"},
		{name: "ordering_key too long", method: "POST", path: enq, body: `{"type":"t","ordering_key":"` + big(300) + `"}`, status: 400, code: bad, msg: "ordering_key is longer than 256 bytes"},
		{name: "ordering_key control character", method: "POST", path: enq, body: `{"type":"t","ordering_key":"a\u0001"}`, status: 400, code: bad, msg: "ordering_key contains a control character"},
		{name: "depends_on unknown job", method: "POST", path: enq, body: `{"type":"t","depends_on":["no-such-job"]}`, status: 400, code: bad, msg: `no job with id "no-such-job"`},
		{name: "depends_on twice", method: "POST", path: enq, body: `{"type":"t","depends_on":["{ready}","{ready}"]}`, status: 400, code: bad, msg: "twice"},
		{name: "depends_on empty entry", method: "POST", path: enq, body: `{"type":"t","depends_on":[""]}`, status: 400, code: bad, msg: "depends_on entry is required"},
		{name: "depends_on on itself", method: "POST", path: batch, body: `{"jobs":[{"type":"t","ref":"a","depends_on":["a"]}]}`, status: 400, code: bad, msg: "jobs[0] depends on itself"},
		{name: "depends_on cycle", method: "POST", path: batch, body: `{"jobs":[{"type":"t"},{"type":"t","ref":"a","depends_on":["b"]},{"type":"t","ref":"b","depends_on":["a"]}]}`, status: 400, code: bad, msg: "cycle"},
		{name: "ref used twice", method: "POST", path: batch, body: `{"jobs":[{"type":"t","ref":"a"},{"type":"t","ref":"a"}]}`, status: 400, code: bad, msg: `both have ref "a"`},
		{name: "control character in type", method: "POST", path: enq, body: `{"type":"a\u0007b"}`, status: 400, code: bad, msg: "control character"},
		// Durations and times.
		{name: "duration in words", method: "POST", path: enq, body: `{"type":"t","delay":"5 minutes"}`, status: 400, code: bad, msg: `delay: bad duration "5 minutes"`},
		{name: "negative duration", method: "POST", path: enq, body: `{"type":"t","delay":"-1s"}`, status: 400, code: bad, msg: "delay: bad duration \"-1s\": must not be negative"},
		{name: "duration as number", method: "POST", path: enq, body: `{"type":"t","delay":5}`, status: 400, code: bad, msg: "delay: duration must be a string"},
		{name: "absurd delay", method: "POST", path: enq, body: `{"type":"t","delay":"9000h"}`, status: 400, code: bad, msg: "delay must be between"},
		{name: "zero timeout", method: "POST", path: enq, body: `{"type":"t","timeout":"0s"}`, status: 400, code: bad, msg: "timeout"},
		{name: "delay and run_at", method: "POST", path: enq, body: `{"type":"t","delay":"1s","run_at":"2030-01-01T00:00:00Z"}`, status: 400, code: bad, msg: "not both"},
		{name: "run_at not a time", method: "POST", path: enq, body: `{"type":"t","run_at":"tomorrow"}`, status: 400, code: bad, msg: `run_at: "tomorrow" is not an RFC 3339 time`},
		{name: "run_at too far", method: "POST", path: enq, body: fmt.Sprintf(`{"type":"t","run_at":%q}`, time.Now().Add(400*24*time.Hour).Format(time.RFC3339)), status: 400, code: bad, msg: "ahead"},
		{name: "bad duration in batch", method: "POST", path: batch, body: `{"jobs":[{"type":"t"},{"type":"t","timeout":"soon"}]}`, status: 400, code: bad, msg: "jobs[1].timeout: bad duration"},
		// Idempotency header.
		{name: "header and body keys differ", method: "POST", path: enq, body: `{"type":"t","idempotency_key":"a"}`, hdr: []string{"Idempotency-Key", "b"}, status: 400, code: bad, msg: "differ"},
		{name: "header key too long", method: "POST", path: enq, body: `{"type":"t"}`, hdr: []string{"Idempotency-Key", big(300)}, status: 400, code: bad, msg: "idempotency_key"},
		// Queue names.
		{name: "queue upper case", method: "POST", path: "/v1/queues/Emails/jobs", body: `{"type":"t"}`, status: 400, code: bad, msg: "queue name"},
		{name: "queue too long", method: "POST", path: "/v1/queues/" + strings.Repeat("a", 129) + "/jobs", body: `{"type":"t"}`, status: 400, code: bad, msg: "longer than 128"},
		{name: "queue empty segment", method: "POST", path: "/v1/queues//jobs", body: `{"type":"t"}`, status: 400, code: bad, msg: "empty"},
		{name: "queue starts with dot", method: "GET", path: "/v1/queues/.hidden", status: 400, code: bad, msg: "queue name"},
		{name: "queue escaped slash", method: "GET", path: "/v1/queues/a%2Fb/jobs", status: 400, code: bad, msg: "queue name"},
		{name: "dot segment", method: "GET", path: "/v1/queues/q/../q", status: 400, code: bad, msg: "segment"},
		// Batches.
		{name: "batch over count", method: "POST", path: batch, body: jobs(11), status: 400, code: bad, msg: "limit is 10"},
		{name: "empty batch", method: "POST", path: batch, body: `{"jobs":[]}`, status: 400, code: bad, msg: "jobs is empty"},
		{name: "batch without jobs", method: "POST", path: batch, body: `{}`, status: 400, code: bad, msg: "jobs is empty"},
		{name: "batch with a bad job", method: "POST", path: batch, body: `{"jobs":[{"type":"t"},{"type":""}]}`, status: 400, code: bad, msg: "jobs[1]: type is required"},
		{name: "batch with a run_at too far", method: "POST", path: batch, body: fmt.Sprintf(`{"jobs":[{"type":"t"},{"type":"t"},{"type":"t","run_at":%q}]}`, time.Now().Add(400*24*time.Hour).Format(time.RFC3339)), status: 400, code: bad, msg: "jobs[2]: run_at"},
		{name: "publish with a run_at too far", method: "POST", path: "/v1/topics/tp/messages:batch", body: fmt.Sprintf(`{"messages":[{"type":"t"},{"type":"t","run_at":%q}]}`, time.Now().Add(400*24*time.Hour).Format(time.RFC3339)), status: 400, code: bad, msg: "messages[1]: run_at"},
		// Ids and paths.
		{name: "unknown job id", method: "GET", path: "/v1/jobs/0190f5e4-7b8a-7c3d-9e2f-1a2b3c4d5e6f", status: 404, code: spool.CodeNotFound, msg: "no job"},
		{name: "cancel unknown job", method: "DELETE", path: "/v1/jobs/0190f5e4-7b8a-7c3d-9e2f-1a2b3c4d5e6f", status: 404, code: spool.CodeNotFound},
		{name: "non-UUID id", method: "GET", path: "/v1/jobs/42", status: 400, code: bad, msg: "not a UUID"},
		{name: "braced UUID", method: "GET", path: "/v1/jobs/{" + strings.TrimPrefix(ready.ID, "") + "}", status: 400, code: bad, msg: "not a UUID"},
		{name: "unknown queue", method: "GET", path: "/v1/queues/nope", status: 404, code: spool.CodeNotFound, msg: "no queue"},
		{name: "wrong method on job", method: "PUT", path: "/v1/jobs/{ready}", body: `{}`, status: 405, code: spool.CodeMethodNotAllowed, allow: "DELETE, GET, HEAD"},
		{name: "wrong method on jobs", method: "DELETE", path: enq, status: 405, code: spool.CodeMethodNotAllowed, allow: "GET, HEAD, POST"},
		{name: "wrong method on queues", method: "POST", path: "/v1/queues", body: `{}`, status: 405, code: spool.CodeMethodNotAllowed, allow: "GET, HEAD"},
		{name: "unknown path", method: "GET", path: "/v1/nope", status: 404, code: spool.CodeNotFound, msg: "no endpoint"},
		{name: "unknown deeper path", method: "GET", path: "/v1/queues/q/jobs/extra", status: 404, code: spool.CodeNotFound},
		{name: "trailing slash", method: "GET", path: "/v1/queues/", status: 404, code: spool.CodeNotFound},
		{name: "unknown query parameter", method: "GET", path: "/v1/queues/q?verbose=1", status: 400, code: bad, msg: `unknown query parameter "verbose"`},
		{name: "repeated query parameter", method: "GET", path: "/v1/queues/q/jobs?limit=1&limit=2", status: 400, code: bad, msg: "given 2 times"},
		{name: "body on a GET", method: "GET", path: "/v1/jobs/{ready}", body: `{"x":1}`, status: 400, code: bad, msg: `unknown field "x"`},
		// Status waits.
		{name: "wait not a duration", method: "GET", path: "/v1/jobs/{ready}?wait=forever", status: 400, code: bad, msg: "wait"},
		{name: "wait too long", method: "GET", path: "/v1/jobs/{ready}?wait=10m", status: 400, code: bad, msg: "at most 5m0s"},
		// Workers.
		{name: "lease with no queues", method: "POST", path: "/v1/leases", body: `{"queues":[]}`, status: 400, code: bad, msg: "queues is empty"},
		{name: "lease without body fields", method: "POST", path: "/v1/leases", body: `{}`, status: 400, code: bad, msg: "queues is empty"},
		{name: "lease max over limit", method: "POST", path: "/v1/leases", body: `{"queues":["q"],"max":11}`, status: 400, code: bad, msg: "max 11"},
		{name: "lease bad queue", method: "POST", path: "/v1/leases", body: `{"queues":["Q"]}`, status: 400, code: bad, msg: "queue name"},
		{name: "lease wait too long", method: "POST", path: "/v1/leases", body: `{"queues":["q"],"wait":"1h"}`, status: 400, code: bad, msg: "wait"},
		{name: "lease too short", method: "POST", path: "/v1/leases", body: `{"queues":["q"],"lease":"10ms"}`, status: 400, code: bad, msg: "lease must be"},
		{name: "heartbeat without token", method: "POST", path: "/v1/jobs/{active}/heartbeat", body: `{}`, status: 400, code: bad, msg: "token is required"},
		{name: "heartbeat bad progress", method: "POST", path: "/v1/jobs/{active}/heartbeat", body: `{"token":"{token}","progress":{"percent":120}}`, status: 400, code: bad, msg: "percent"},
		{name: "heartbeat unknown job", method: "POST", path: "/v1/jobs/0190f5e4-7b8a-7c3d-9e2f-1a2b3c4d5e6f/heartbeat", body: `{"token":"x"}`, status: 404, code: spool.CodeNotFound},
		{name: "complete wrong token", method: "POST", path: "/v1/jobs/{active}/complete", body: `{"token":"wrong","result":1}`, status: 409, code: spool.CodeLeaseLost},
		{name: "complete a ready job", method: "POST", path: "/v1/jobs/{ready}/complete", body: `{"token":"{token}"}`, status: 409, code: spool.CodeLeaseLost},
		{name: "complete result over limit", method: "POST", path: "/v1/jobs/{active}/complete", body: `{"token":"{token}","result":"` + big(2000) + `"}`, status: 413, code: spool.CodeTooLarge, msg: "result"},
		{name: "fail bad retry_in", method: "POST", path: "/v1/jobs/{active}/fail", body: `{"token":"{token}","retry_in":"-5s"}`, status: 400, code: bad, msg: "retry_in"},
		{name: "release without token", method: "POST", path: "/v1/jobs/{active}/release", body: `{}`, status: 400, code: bad, msg: "token is required"},
		{name: "release unknown field", method: "POST", path: "/v1/jobs/{active}/release", body: `{"token":"{token}","delay":"1s"}`, status: 400, code: bad, msg: `unknown field "delay"`},
		{name: "release wrong token", method: "POST", path: "/v1/jobs/{active}/release", body: `{"token":"wrong"}`, status: 409, code: spool.CodeLeaseLost},
		{name: "release a ready job", method: "POST", path: "/v1/jobs/{ready}/release", body: `{"token":"{token}"}`, status: 409, code: spool.CodeLeaseLost},
		{name: "acks release with an error", method: "POST", path: "/v1/acks", body: `{"acks":[{"id":"{active}","token":"{token}","outcome":"release","error":"x"}]}`, status: 400, code: bad, msg: "acks[0]: a release takes only id and token"},
		{name: "acks empty", method: "POST", path: "/v1/acks", body: `{"acks":[]}`, status: 400, code: bad, msg: "acks is empty"},
		{name: "acks bad outcome", method: "POST", path: "/v1/acks", body: `{"acks":[{"id":"{active}","token":"{token}","outcome":"done"}]}`, status: 400, code: bad, msg: "acks[0]: outcome"},
		// Status changes that the state forbids.
		{name: "retry a ready job", method: "POST", path: "/v1/jobs/{ready}/retry", status: 409, code: spool.CodeConflict, msg: "only dead or cancelled"},
		{name: "cancel a dead job", method: "DELETE", path: "/v1/jobs/{dead}", status: 409, code: spool.CodeConflict},
		// Queues.
		{name: "patch max_depth zero", method: "PATCH", path: "/v1/queues/q", body: `{"max_depth":0}`, status: 400, code: bad, msg: "max_depth"},
		{name: "patch max_depth words", method: "PATCH", path: "/v1/queues/q", body: `{"max_depth":"lots"}`, status: 400, code: bad, msg: "max_depth must be an integer"},
		{name: "patch creates nothing when bad", method: "PATCH", path: "/v1/queues/fresh", body: `{"max_depth":-3}`, status: 400, code: bad, msg: "max_depth"},
		{name: "patch unknown field", method: "PATCH", path: "/v1/queues/q", body: `{"rate_limit":5}`, status: 400, code: bad, msg: `unknown field "rate_limit"`},
		{name: "patch bad retention", method: "PATCH", path: "/v1/queues/q", body: `{"retention":"1ms"}`, status: 400, code: bad, msg: "retention"},
		{name: "patch negative concurrency", method: "PATCH", path: "/v1/queues/q", body: `{"concurrency":-1}`, status: 400, code: bad, msg: "concurrency must be between 0 (no cap) and 1000000"},
		{name: "patch concurrency too big", method: "PATCH", path: "/v1/queues/q", body: `{"concurrency":1000001}`, status: 400, code: bad, msg: "concurrency must be between"},
		{name: "patch concurrency as text", method: "PATCH", path: "/v1/queues/q", body: `{"concurrency":"3"}`, status: 400, code: bad, msg: "concurrency must be an integer"},
		{name: "patch fractional concurrency", method: "PATCH", path: "/v1/queues/q", body: `{"concurrency":1.5}`, status: 400, code: bad, msg: "concurrency"},
		{name: "patch negative rate", method: "PATCH", path: "/v1/queues/q", body: `{"rate":-0.5}`, status: 400, code: bad, msg: "rate must be a number of jobs per second between 0 (no cap) and 1e+06"},
		{name: "patch absurd rate", method: "PATCH", path: "/v1/queues/q", body: `{"rate":1e9}`, status: 400, code: bad, msg: "rate must be"},
		{name: "patch rate as text", method: "PATCH", path: "/v1/queues/q", body: `{"rate":"fast"}`, status: 400, code: bad, msg: "rate"},
		{name: "patch negative burst", method: "PATCH", path: "/v1/queues/q", body: `{"burst":-2}`, status: 400, code: bad, msg: "burst must be between 0"},
		{name: "patch good and bad limits together", method: "PATCH", path: "/v1/queues/q", body: `{"concurrency":3,"rate":5,"burst":-1}`, status: 400, code: bad, msg: "burst"},
		{name: "bad state filter", method: "GET", path: "/v1/queues/q/jobs?state=done", status: 400, code: bad, msg: `unknown state "done"`},
		{name: "limit not a number", method: "GET", path: "/v1/queues/q/jobs?limit=ten", status: 400, code: bad, msg: "limit"},
		{name: "limit zero", method: "GET", path: "/v1/queues/q/jobs?limit=0", status: 400, code: bad, msg: "limit"},
		{name: "limit too big", method: "GET", path: "/v1/queues/q/jobs?limit=5000", status: 400, code: bad, msg: "limit"},
		{name: "cursor too long", method: "GET", path: "/v1/queues/q/jobs?cursor=" + big(100), status: 400, code: bad, msg: "cursor"},
		{name: "payload field without value", method: "GET", path: "/v1/queues/q/jobs?payload_field=customer", status: 400, code: bad, msg: "payload_field needs payload_value"},
		{name: "payload value without field", method: "GET", path: "/v1/queues/q/jobs?payload_value=42", status: 400, code: bad, msg: "payload_value needs payload_field"},
		{name: "payload field too long", method: "GET", path: "/v1/queues/q/jobs?payload_value=1&payload_field=" + big(200), status: 400, code: bad, msg: "payload_field is longer than 128 bytes"},
		{name: "payload field with a control character", method: "GET", path: "/v1/queues/q/jobs?payload_value=1&payload_field=a%0Ab", status: 400, code: bad, msg: "payload_field contains a control character"},
		{name: "payload value too long", method: "GET", path: "/v1/queues/q/jobs?payload_field=a&payload_value=" + big(2000), status: 400, code: bad, msg: "payload_value is longer than 1024 bytes"},
		{name: "payload value not JSON", method: "GET", path: "/v1/queues/q/jobs?payload_field=a&payload_value=acme", status: 400, code: bad, msg: "payload_value is not JSON"},
		{name: "bulk payload value not JSON", method: "POST", path: "/v1/queues/q/jobs:retry", body: `{"payload_field":"a","payload_value":"{"}`, status: 400, code: bad, msg: "payload_value is not JSON"},
		{name: "cursor garbage", method: "GET", path: "/v1/queues/q/jobs?cursor=garbage", status: 400, code: bad, msg: `cursor "garbage" is not one this server returned`},
		{name: "cursor with a NUL", method: "GET", path: "/v1/queues/q/jobs?cursor=%00", status: 400, code: bad, msg: "cursor"},
		// Strictness: names matched exactly, each once, strings valid UTF-8.
		{name: "field name upper case", method: "POST", path: enq, body: `{"TYPE":"t"}`, status: 400, code: bad, msg: `unknown field "TYPE"; field names are case-sensitive: did you mean "type"?`},
		{name: "field name mixed case", method: "POST", path: enq, body: `{"type":"t","Priority":3}`, status: 400, code: bad, msg: `unknown field "Priority"`},
		{name: "nested field name case", method: "POST", path: enq, body: `{"type":"t","backoff":{"Base":"1s"}}`, status: 400, code: bad, msg: `unknown field "Base"`},
		{name: "batch field name case", method: "POST", path: batch, body: `{"jobs":[{"type":"t"},{"Type":"t"}]}`, status: 400, code: bad, msg: `unknown field "Type"`},
		{name: "lease field name case", method: "POST", path: "/v1/leases", body: `{"Queues":["q"]}`, status: 400, code: bad, msg: `unknown field "Queues"`},
		{name: "heartbeat field name case", method: "POST", path: "/v1/jobs/{active}/heartbeat", body: `{"Token":"{token}"}`, status: 400, code: bad, msg: `unknown field "Token"`},
		{name: "acks field name case", method: "POST", path: "/v1/acks", body: `{"acks":[{"ID":"{active}","token":"{token}","outcome":"complete"}]}`, status: 400, code: bad, msg: `unknown field "ID"`},
		{name: "patch field name case", method: "PATCH", path: "/v1/queues/q", body: `{"Max_Depth":5}`, status: 400, code: bad, msg: `unknown field "Max_Depth"`},
		{name: "duplicate key", method: "POST", path: enq, body: `{"type":"a","type":"b"}`, status: 400, code: bad, msg: `field "type" is given twice`},
		{name: "duplicate key escaped", method: "POST", path: enq, body: `{"type":"a","\u0074ype":"b"}`, status: 400, code: bad, msg: `field "type" is given twice`},
		{name: "duplicate key in batch", method: "POST", path: batch, body: `{"jobs":[{"type":"a"},{"type":"a","priority":1,"priority":2}]}`, status: 400, code: bad, msg: `field "priority" of jobs[1] is given twice`},
		{name: "duplicate jobs key", method: "POST", path: batch, body: `{"jobs":[{"type":"a"}],"jobs":[{"type":"b"}]}`, status: 400, code: bad, msg: `field "jobs" is given twice`},
		{name: "duplicate key in ack", method: "POST", path: "/v1/acks", body: `{"acks":[{"id":"{active}","token":"{token}","outcome":"fail","outcome":"complete"}]}`, status: 400, code: bad, msg: `field "outcome" of acks[0] is given twice`},
		{name: "duplicate key in patch", method: "PATCH", path: "/v1/queues/q", body: `{"max_depth":5,"max_depth":6}`, status: 400, code: bad, msg: "given twice"},
		{name: "invalid UTF-8 in type", method: "POST", path: enq, body: "{\"type\":\"a\xffb\"}", status: 400, code: bad, msg: "type holds invalid UTF-8"},
		{name: "invalid UTF-8 in payload", method: "POST", path: enq, body: "{\"type\":\"t\",\"payload\":{\"name\":\"\xc3\x28\"}}", status: 400, code: bad, msg: "payload.name holds invalid UTF-8"},
		{name: "invalid UTF-8 in payload key", method: "POST", path: enq, body: "{\"type\":\"t\",\"payload\":{\"\xff\":1}}", status: 400, code: bad, msg: "payload holds invalid UTF-8"},
		{name: "lone surrogate in payload", method: "POST", path: enq, body: `{"type":"t","payload":["\ud800"]}`, status: 400, code: bad, msg: `payload[0] holds an escaped lone surrogate`},
		{name: "invalid UTF-8 in batch payload", method: "POST", path: batch, body: "{\"jobs\":[{\"type\":\"t\"},{\"type\":\"t\",\"payload\":\"\xed\xa0\x80\"}]}", status: 400, code: bad, msg: "jobs[1].payload holds invalid UTF-8"},
		{name: "invalid UTF-8 in tag", method: "POST", path: enq, body: "{\"type\":\"t\",\"tags\":[\"\xfe\"]}", status: 400, code: bad, msg: "tags[0] holds invalid UTF-8"},
		{name: "invalid UTF-8 in publish", method: "POST", path: "/v1/topics/tp/messages", body: "{\"type\":\"t\",\"payload\":\"\x80\"}", status: 400, code: bad, msg: "payload holds invalid UTF-8"},
		{name: "invalid UTF-8 in result", method: "POST", path: "/v1/jobs/{active}/complete", body: "{\"token\":\"{token}\",\"result\":{\"r\":\"\xff\"}}", status: 400, code: bad, msg: "result.r holds invalid UTF-8"},
		{name: "invalid UTF-8 in ack result", method: "POST", path: "/v1/acks", body: "{\"acks\":[{\"id\":\"{active}\",\"token\":\"{token}\",\"outcome\":\"complete\",\"result\":\"\xff\"}]}", status: 400, code: bad, msg: "acks[0].result holds invalid UTF-8"},
		{name: "invalid UTF-8 in fail error", method: "POST", path: "/v1/jobs/{active}/fail", body: "{\"token\":\"{token}\",\"error\":\"\xff\"}", status: 400, code: bad, msg: "error holds invalid UTF-8"},
		{name: "lone surrogate in token", method: "POST", path: "/v1/jobs/{active}/heartbeat", body: `{"token":"\udc00"}`, status: 400, code: bad, msg: "token holds an escaped lone surrogate"},
		// Acks: what an outcome does not take, and ids.
		{name: "complete ack with retry_in", method: "POST", path: "/v1/acks", body: `{"acks":[{"id":"{active}","token":"{token}","outcome":"complete","retry_in":"5s"}]}`, status: 400, code: bad, msg: "acks[0]: a complete takes id, token and result"},
		{name: "complete ack with final", method: "POST", path: "/v1/acks", body: `{"acks":[{"id":"{active}","token":"{token}","outcome":"complete","final":true}]}`, status: 400, code: bad, msg: "acks[0]: a complete takes"},
		{name: "complete ack with error", method: "POST", path: "/v1/acks", body: `{"acks":[{"id":"{active}","token":"{token}","outcome":"complete","error":"x"}]}`, status: 400, code: bad, msg: "acks[0]: a complete takes"},
		{name: "ack id with a NUL", method: "POST", path: "/v1/acks", body: `{"acks":[{"id":"{active}","token":"{token}","outcome":"complete"},{"id":"a\u0000b","token":"x","outcome":"complete"}]}`, status: 400, code: bad, msg: `acks[1]: id "a\x00b" is not a job id`},
		{name: "ack id not a UUID", method: "POST", path: "/v1/acks", body: `{"acks":[{"id":"{active}","token":"{token}","outcome":"complete"},{"id":"42","token":"x","outcome":"fail"}]}`, status: 400, code: bad, msg: `acks[1]: id "42" is not a job id`},
		// Query parameters of the raw endpoints.
		{name: "metrics unknown query parameter", method: "GET", path: "/metrics?format=json", status: 400, code: bad, msg: `unknown query parameter "format"`},
		{name: "openapi unknown query parameter", method: "GET", path: "/v1/openapi.json?v=2", status: 400, code: bad, msg: `unknown query parameter "v"`},
	}

	snapshot := func() string {
		var b strings.Builder
		var qs spool.QueuesResponse
		ts.do("GET", "/v1/queues", nil).ok(t, http.StatusOK, &qs)
		for _, q := range qs.Queues {
			cfg, err := json.Marshal(q.Config)
			require.NoError(t, err)
			fmt.Fprintf(&b, "%s %v %s\n", q.Name, q.Counts, cfg)
		}
		b.Write(ts.do("GET", "/v1/queues/q/jobs", nil).body)
		for _, id := range []string{active.ID, dead.ID, ready.ID} {
			b.Write(ts.do("GET", "/v1/jobs/"+id, nil).body)
		}
		return b.String()
	}

	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			before := snapshot()
			var body any
			if row.body != "" {
				body = expand.Replace(row.body)
			}
			r := ts.do(row.method, expand.Replace(row.path), body, row.hdr...)
			e := r.fails(t, row.status, row.code)
			require.Contains(t, e.Message, row.msg)
			if row.allow != "" {
				require.Equal(t, row.allow, r.h.Get("Allow"))
			}
			require.Equal(t, before, snapshot(), "the request changed stored state")
		})
	}
}
