// Package jobtest holds the shared test fixture of spool.Job with every
// field set, and the reflection check that keeps it so: the tripwire a new
// job field trips in every codec's tests until each codec carries it (see
// docs/adding-a-job-field.md).
package jobtest

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/spoolq/spool"
)

// Full returns a job with every field of spool.Job set to a value other
// than its zero value, times in whole microseconds.
func Full() *spool.Job {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := t0.Add(d); return &v }
	return &spool.Job{
		ID:              "0190b3c4-7d2e-7a1b-9c3d-4e5f6a7b8c9d",
		Queue:           "emails",
		Type:            "send_welcome",
		Payload:         json.RawMessage(`{"to":"a@example.com","n":[1,2.5,-3e10,true,false,null],"s":"<&>"}`),
		Priority:        -7,
		State:           spool.StateActive,
		RunAt:           t0,
		Attempt:         2,
		MaxAttempts:     25,
		Timeout:         spool.Duration(90 * time.Second),
		Backoff:         &spool.Backoff{Base: spool.Duration(time.Second), Max: spool.Duration(time.Hour)},
		IdempotencyKey:  "key-1",
		OrderingKey:     "order/1",
		DependsOn:       []string{"0190b3c4-7d2e-7a1b-9c3d-4e5f6a7b8c9a", "0190b3c4-7d2e-7a1b-9c3d-4e5f6a7b8c9b"},
		Tags:            []string{"x", "y z"},
		CallbackURL:     "https://example.com/hook?a=1&b=<2>",
		Result:          json.RawMessage(`"done"`),
		Errors:          []spool.AttemptError{{Attempt: 1, Error: "boom\n\tat line 3", At: *at(time.Second)}},
		Progress:        &spool.Progress{Percent: 42.5, Message: "half", UpdatedAt: *at(2 * time.Second)},
		Worker:          "host-1:4242",
		LeaseExpiresAt:  at(time.Minute),
		CancelRequested: true,
		CreatedAt:       *at(-time.Hour),
		ReadyAt:         at(-time.Minute),
		StartedAt:       at(3 * time.Second),
		FinishedAt:      at(time.Hour),
		Lease:           &spool.Lease{Token: "tok", ExpiresAt: *at(time.Minute)},
	}
}

// RequireEveryField fails t if a field of j (a struct or a pointer to
// one) is at its zero value: a fixture that misses a new field would let
// a codec drop it unseen.
func RequireEveryField(t testing.TB, j any) {
	t.Helper()
	v := reflect.Indirect(reflect.ValueOf(j))
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Errorf("the fixture leaves %s.%s at its zero value: set it, so that every codec's test carries it (docs/adding-a-job-field.md)", v.Type().Name(), v.Type().Field(i).Name)
		}
	}
}
