package spool

import (
	"encoding/json"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits bound what one request may ask for. Zero fields take the defaults
// of DefaultLimits.
type Limits struct {
	MaxPayloadBytes int   // one job's payload (and result)
	MaxBodyBytes    int64 // one request body
	MaxBatch        int   // jobs per batch enqueue, acks per batch ack
	MaxLease        int   // jobs per lease request
}

// DefaultLimits are the limits of a server started without options.
var DefaultLimits = Limits{
	MaxPayloadBytes: 1 << 20,
	MaxBodyBytes:    16 << 20,
	MaxBatch:        1000,
	MaxLease:        1000,
}

// WithDefaults fills zero fields from DefaultLimits.
func (l Limits) WithDefaults() Limits {
	if l.MaxPayloadBytes <= 0 {
		l.MaxPayloadBytes = DefaultLimits.MaxPayloadBytes
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultLimits.MaxBodyBytes
	}
	if l.MaxBatch <= 0 {
		l.MaxBatch = DefaultLimits.MaxBatch
	}
	if l.MaxLease <= 0 {
		l.MaxLease = DefaultLimits.MaxLease
	}
	return l
}

// Bounds on single values.
const (
	MaxNameLen        = 128
	MaxTypeLen        = 256
	MaxKeyLen         = 256
	MaxTags           = 32
	MaxTagLen         = 64
	MaxDependsOn      = 1000
	MinPriority       = -1000
	MaxPriority       = 1000
	MaxMaxAttempts    = 1000
	MaxDelay          = 366 * 24 * time.Hour
	MaxTimeout        = 7 * 24 * time.Hour
	MinLeaseDuration  = time.Second
	MaxLeaseDuration  = 24 * time.Hour
	MaxWait           = 5 * time.Minute
	MaxErrorLen       = 16 << 10
	MaxMessageLen     = 1024
	MaxWorkerLen      = 256
	MaxRetention      = 365 * 24 * time.Hour
	MaxBackoffDelay   = 30 * 24 * time.Hour
	MaxQueueDepthCeil = int64(1) << 40
	MaxConcurrency    = 1_000_000
	MaxRate           = 1_000_000.0
	MaxBurst          = 1_000_000
	// MaxQueueAttributes and MaxQueueAttributeLen bound a queue's
	// attributes (QueueConfig.Attributes).
	MaxQueueAttributes   = 128
	MaxQueueAttributeLen = 32 << 10
)

// ValidateQueueName checks a queue (or topic) name: [a-z0-9][a-z0-9._-]{0,127}.
func ValidateQueueName(name string) error {
	if name == "" {
		return Invalidf("queue name is empty")
	}
	if len(name) > MaxNameLen {
		return Invalidf("queue name %q is longer than %d characters", truncate(name, 40), MaxNameLen)
	}
	if name[0] == '_' {
		return Invalidf("queue name %q is reserved: names starting with '_' are Spool's internal queues", truncate(name, 40))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if i > 0 {
			ok = ok || c == '.' || c == '_' || c == '-'
		}
		if !ok {
			return Invalidf("queue name %q is not allowed: use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit", truncate(name, 40))
		}
	}
	return nil
}

func validText(field, s string, max int, required bool) error {
	if s == "" {
		if required {
			return Invalidf("%s is required", field)
		}
		return nil
	}
	if len(s) > max {
		return Invalidf("%s is longer than %d bytes", field, max)
	}
	if !utf8.ValidString(s) {
		return Invalidf("%s is not valid UTF-8", field)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return Invalidf("%s contains a control character", field)
		}
	}
	return nil
}

// Validate checks a job filter. The message names the field at fault.
func (f *JobFilter) Validate() error {
	if f.State != "" && !f.State.Valid() {
		return Invalidf("state %q is not one of %v", f.State, States)
	}
	if err := validText("type", f.Type, MaxTypeLen, false); err != nil {
		return err
	}
	if err := validText("tag", f.Tag, MaxTagLen, false); err != nil {
		return err
	}
	if err := validText("ordering_key", f.OrderingKey, MaxKeyLen, false); err != nil {
		return err
	}
	if f.PayloadField == "" {
		if f.PayloadValue != "" {
			return Invalidf("payload_value needs payload_field, the name of the payload's top-level field to compare")
		}
		return nil
	}
	if err := validText("payload_field", f.PayloadField, MaxPayloadFieldLen, true); err != nil {
		return err
	}
	switch {
	case f.PayloadValue == "":
		return Invalidf("payload_field needs payload_value, the JSON value to compare it with (such as 42 or \"acme\")")
	case len(f.PayloadValue) > MaxPayloadValueLen:
		return Invalidf("payload_value is longer than %d bytes", MaxPayloadValueLen)
	case !json.Valid([]byte(f.PayloadValue)):
		return Invalidf("payload_value is not JSON; give a JSON value such as 42, true or \"acme\" (a string in double quotes)")
	}
	return nil
}

// Bounds of a payload filter (JobFilter.PayloadField and PayloadValue).
const (
	MaxPayloadFieldLen = 128
	MaxPayloadValueLen = 1024
)

// Validate checks an enqueue request against the limits. The message names
// the field at fault.
func (r *EnqueueRequest) Validate(l Limits) error {
	l = l.WithDefaults()
	if err := validText("type", r.Type, MaxTypeLen, true); err != nil {
		return err
	}
	if len(r.Payload) > l.MaxPayloadBytes {
		return TooLargef("payload is %d bytes; the limit is %d", len(r.Payload), l.MaxPayloadBytes)
	}
	if len(r.Payload) > 0 && !json.Valid(r.Payload) {
		return Invalidf("payload is not valid JSON")
	}
	if r.Priority < MinPriority || r.Priority > MaxPriority {
		return Invalidf("priority %d is out of range [%d, %d]", r.Priority, MinPriority, MaxPriority)
	}
	if r.Delay != nil && r.RunAt != nil {
		return Invalidf("give delay or run_at, not both")
	}
	if r.Delay != nil && (r.Delay.D() < 0 || r.Delay.D() > MaxDelay) {
		return Invalidf("delay must be between 0 and %s", MaxDelay)
	}
	if r.MaxAttempts < 0 || r.MaxAttempts > MaxMaxAttempts {
		return Invalidf("max_attempts %d is out of range [1, %d] (0 or absent: the queue's default)", r.MaxAttempts, MaxMaxAttempts)
	}
	if r.Timeout != nil && (r.Timeout.D() <= 0 || r.Timeout.D() > MaxTimeout) {
		return Invalidf("timeout must be positive and at most %s", MaxTimeout)
	}
	if err := r.Backoff.Validate("backoff"); err != nil {
		return err
	}
	if err := validText("idempotency_key", r.IdempotencyKey, MaxKeyLen, false); err != nil {
		return err
	}
	if err := validText("ordering_key", r.OrderingKey, MaxKeyLen, false); err != nil {
		return err
	}
	if err := validText("ref", r.Ref, MaxKeyLen, false); err != nil {
		return err
	}
	if len(r.DependsOn) > MaxDependsOn {
		return Invalidf("depends_on names %d jobs; the limit is %d", len(r.DependsOn), MaxDependsOn)
	}
	seen := make(map[string]bool, len(r.DependsOn))
	for _, d := range r.DependsOn {
		if err := validText("depends_on entry", d, MaxKeyLen, true); err != nil {
			return err
		}
		if seen[d] {
			return Invalidf("depends_on names %q twice", d)
		}
		seen[d] = true
	}
	if len(r.Tags) > MaxTags {
		return Invalidf("at most %d tags", MaxTags)
	}
	for _, t := range r.Tags {
		if err := validText("tag", t, MaxTagLen, true); err != nil {
			return err
		}
	}
	if err := ValidateCallbackURL(r.CallbackURL); err != nil {
		return err
	}
	return nil
}

// Validate checks a backoff policy; nil is valid.
func (b *Backoff) Validate(field string) error {
	if b == nil {
		return nil
	}
	if b.Base.D() < 0 || b.Base.D() > MaxBackoffDelay {
		return Invalidf("%s.base must be between 0 and %s", field, MaxBackoffDelay)
	}
	if b.Max.D() < 0 || b.Max.D() > MaxBackoffDelay {
		return Invalidf("%s.max must be between 0 and %s", field, MaxBackoffDelay)
	}
	if b.Max != 0 && b.Base > b.Max {
		return Invalidf("%s.base must not exceed %s.max", field, field)
	}
	return nil
}

// Validate checks a batch enqueue request.
func (r *BatchEnqueueRequest) Validate(l Limits) error {
	l = l.WithDefaults()
	if len(r.Jobs) == 0 {
		return Invalidf("jobs is empty")
	}
	if len(r.Jobs) > l.MaxBatch {
		return Invalidf("%d jobs in one batch; the limit is %d", len(r.Jobs), l.MaxBatch)
	}
	for i := range r.Jobs {
		if err := r.Jobs[i].Validate(l); err != nil {
			return wrapIndex("jobs", i, err)
		}
	}
	return nil
}

// Validate checks a lease request.
func (r *LeaseRequest) Validate(l Limits) error {
	l = l.WithDefaults()
	if len(r.Queues) == 0 {
		return Invalidf("queues is empty: name at least one queue")
	}
	if len(r.Queues) > 64 {
		return Invalidf("at most 64 queues per lease request")
	}
	for _, q := range r.Queues {
		if err := ValidateQueueName(q); err != nil {
			return err
		}
	}
	if r.Max < 0 || r.Max > l.MaxLease {
		return Invalidf("max %d is out of range [1, %d] (0 or absent: 1)", r.Max, l.MaxLease)
	}
	if r.Wait != nil && (r.Wait.D() < 0 || r.Wait.D() > MaxWait) {
		return Invalidf("wait must be between 0 and %s", MaxWait)
	}
	if r.Lease != nil && (r.Lease.D() < MinLeaseDuration || r.Lease.D() > MaxLeaseDuration) {
		return Invalidf("lease must be between %s and %s", MinLeaseDuration, MaxLeaseDuration)
	}
	return validText("worker", r.Worker, MaxWorkerLen, false)
}

// Validate checks a heartbeat request.
func (r *HeartbeatRequest) Validate() error {
	if err := validText("token", r.Token, MaxKeyLen, true); err != nil {
		return err
	}
	if r.Extend != nil && (r.Extend.D() < MinLeaseDuration || r.Extend.D() > MaxLeaseDuration) {
		return Invalidf("extend must be between %s and %s", MinLeaseDuration, MaxLeaseDuration)
	}
	if p := r.Progress; p != nil {
		if p.Percent < 0 || p.Percent > 100 || p.Percent != p.Percent {
			return Invalidf("progress.percent must be between 0 and 100")
		}
		if len(p.Message) > MaxMessageLen {
			return Invalidf("progress.message is longer than %d bytes", MaxMessageLen)
		}
	}
	return nil
}

// Validate checks a complete request.
func (r *CompleteRequest) Validate(l Limits) error {
	l = l.WithDefaults()
	if err := validText("token", r.Token, MaxKeyLen, true); err != nil {
		return err
	}
	if len(r.Result) > l.MaxPayloadBytes {
		return TooLargef("result is %d bytes; the limit is %d", len(r.Result), l.MaxPayloadBytes)
	}
	if len(r.Result) > 0 && !json.Valid(r.Result) {
		return Invalidf("result is not valid JSON")
	}
	return nil
}

// Validate checks a fail request.
func (r *FailRequest) Validate() error {
	if err := validText("token", r.Token, MaxKeyLen, true); err != nil {
		return err
	}
	if len(r.Error) > MaxErrorLen {
		return Invalidf("error is longer than %d bytes; send its tail", MaxErrorLen)
	}
	if r.RetryIn != nil && (r.RetryIn.D() < 0 || r.RetryIn.D() > MaxBackoffDelay) {
		return Invalidf("retry_in must be between 0 and %s", MaxBackoffDelay)
	}
	return nil
}

// Validate checks a release request.
func (r *ReleaseRequest) Validate() error {
	return validText("token", r.Token, MaxKeyLen, true)
}

// Validate checks a batch of acks.
func (r *AcksRequest) Validate(l Limits) error {
	l = l.WithDefaults()
	if len(r.Acks) == 0 {
		return Invalidf("acks is empty")
	}
	if len(r.Acks) > l.MaxBatch {
		return Invalidf("%d acks in one request; the limit is %d", len(r.Acks), l.MaxBatch)
	}
	for i, a := range r.Acks {
		var err error
		if a.ID == "" {
			err = Invalidf("id is required")
		} else if _, ok := ParseJobID(a.ID); !ok {
			err = Invalidf("id %q is not a job id (a UUID such as \"0190f5e4-7b8a-7c3d-9e2f-1a2b3c4d5e6f\")", truncate(a.ID, 40))
		} else {
			switch a.Outcome {
			case OutcomeComplete:
				c := CompleteRequest{Token: a.Token, Result: a.Result}
				err = c.Validate(l)
				if err == nil && (a.Error != "" || a.RetryIn != nil || a.Final) {
					err = Invalidf("a complete takes id, token and result: error, retry_in and final belong to a fail")
				}
			case OutcomeFail:
				f := FailRequest{Token: a.Token, Error: a.Error, RetryIn: a.RetryIn, Final: a.Final}
				err = f.Validate()
			case OutcomeRelease:
				rr := ReleaseRequest{Token: a.Token}
				err = rr.Validate()
				if err == nil && (len(a.Result) > 0 || a.Error != "" || a.RetryIn != nil || a.Final) {
					err = Invalidf("a release takes only id and token: result, error, retry_in and final do not apply")
				}
			default:
				err = Invalidf("outcome must be %q, %q or %q", OutcomeComplete, OutcomeFail, OutcomeRelease)
			}
		}
		if err != nil {
			return wrapIndex("acks", i, err)
		}
	}
	return nil
}

// Validate checks a queue config patch.
func (c *QueueConfig) Validate() error {
	if c.MaxDepth != nil && (*c.MaxDepth < 1 || *c.MaxDepth > MaxQueueDepthCeil) {
		return Invalidf("max_depth must be between 1 and %d", MaxQueueDepthCeil)
	}
	if c.Retention != nil && (c.Retention.D() < time.Second || c.Retention.D() > MaxRetention) {
		return Invalidf("retention must be between 1s and %s", MaxRetention)
	}
	if c.MaxAttempts != nil && (*c.MaxAttempts < 1 || *c.MaxAttempts > MaxMaxAttempts) {
		return Invalidf("max_attempts must be between 1 and %d", MaxMaxAttempts)
	}
	if c.Concurrency != nil && (*c.Concurrency < 0 || *c.Concurrency > MaxConcurrency) {
		return Invalidf("concurrency must be between 0 (no cap) and %d", MaxConcurrency)
	}
	// NaN fails both comparisons: test the range the other way round.
	if c.Rate != nil && !(*c.Rate >= 0 && *c.Rate <= MaxRate) {
		return Invalidf("rate must be a number of jobs per second between 0 (no cap) and %g", MaxRate)
	}
	if c.Burst != nil && (*c.Burst < 0 || *c.Burst > MaxBurst) {
		return Invalidf("burst must be between 0 (the rate rounded up) and %d", MaxBurst)
	}
	if c.TargetWait != nil && (c.TargetWait.D() < 0 || c.TargetWait.D() > MaxTargetWait) {
		return Invalidf("target_wait must be between 0 (no target) and %s", MaxTargetWait)
	}
	if c.DeadLetterQueue != nil && *c.DeadLetterQueue != "" {
		if err := ValidateQueueName(*c.DeadLetterQueue); err != nil {
			return Invalidf("dead_letter_queue: %v", err)
		}
	}
	if len(c.Attributes) > MaxQueueAttributes {
		return Invalidf("attributes has %d entries; the limit is %d", len(c.Attributes), MaxQueueAttributes)
	}
	for k, v := range c.Attributes {
		if err := validText("attributes key", k, MaxKeyLen, true); err != nil {
			return err
		}
		if len(v) > MaxQueueAttributeLen || !utf8.ValidString(v) {
			return Invalidf("attributes[%q] must be valid UTF-8 of at most %d bytes", truncate(k, 40), MaxQueueAttributeLen)
		}
	}
	return c.Backoff.Validate("backoff")
}

// wrapIndex prefixes an element's error with its position, keeping its kind.
func wrapIndex(field string, i int, err error) error {
	var me *messageError
	if e, ok := err.(*messageError); ok {
		me = e
		return &messageError{msg: field + "[" + itoa(i) + "]: " + me.msg, err: me.err}
	}
	return err
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// MaxTargetWait bounds a queue's target_wait.
const MaxTargetWait = 24 * time.Hour

// MaxCallbackURLLen bounds callback_url.
const MaxCallbackURLLen = 2048

// ValidateCallbackURL checks a callback_url: empty, or an absolute http or
// https URL with a host, no credentials, at most MaxCallbackURLLen bytes.
// Its addresses are checked when a delivery dials them.
func ValidateCallbackURL(raw string) error {
	if raw == "" {
		return nil
	}
	if len(raw) > MaxCallbackURLLen {
		return Invalidf("callback_url is %d bytes; the limit is %d", len(raw), MaxCallbackURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Invalidf("callback_url is not a URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return Invalidf("callback_url must be an absolute http or https URL")
	}
	if u.Hostname() == "" {
		return Invalidf("callback_url has no host")
	}
	if u.User != nil {
		return Invalidf("callback_url must not carry credentials")
	}
	return nil
}

// ParseJobID reports whether s is a job id, a UUID in its 36-character
// text form (either case), and returns it in canonical lower-case form.
func ParseJobID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	upper := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", false
			}
			continue
		}
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			upper = true
		default:
			return "", false
		}
	}
	if upper {
		return strings.ToLower(s), true
	}
	return s, true
}
