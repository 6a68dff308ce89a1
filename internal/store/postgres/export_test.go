package postgres

import (
	"github.com/spoolq/spool"

	"time"

	"github.com/spoolq/spool/internal/store"
)

// Exported for the tests of package postgres_test.
var (
	LeaseSQL    = leaseSQL
	ListAllSQL  = listAllSQL
	ExpiredSQL  = expiredSQL
	PromoteSQL  = promoteSQL
	NextDueSQL  = nextDueSQL
	PurgeSQL    = purgeSQL
	InsertSQL   = insertSQL
	PlainSQL    = plainInsertSQL
	FreshSQL    = freshInsertSQL
	UpdateSQL   = updateSQL
	JobColumns  = jobColumns
	TextArray   = textArray
	Retryable   = retryable
	Interpret   = interpretError
	Migrations  = migrations
	LeaseRound1 = leaseFirstRound
)

// WithAdmission sets the admission tuning of opts.
func WithAdmission(opts Options, tickets int32, maxFastGain int64) Options {
	opts.admission = admission{tickets: tickets, maxFastGain: maxFastGain}
	return opts
}

const (
	DefaultTickets     = defaultTickets
	DefaultMaxFastGain = defaultMaxFastGain
)

// JobArgs returns the unnest parameters of Insert and Update for recs.
func JobArgs(recs ...*store.Record) []any {
	p := newJobParams(len(recs))
	for _, r := range recs {
		if err := p.add(r, r.Rev, r.Token, true); err != nil {
			panic(err)
		}
	}
	return p.args()
}

// FreshJobArgs returns the parameters of FreshSQL for recs, which must be
// fresh.
func FreshJobArgs(recs ...*store.Record) []any {
	p := newJobParams(len(recs))
	for _, r := range recs {
		if err := p.add(r, 1, "", true); err != nil {
			panic(err)
		}
	}
	if !p.fresh {
		panic("FreshJobArgs: a record is not fresh")
	}
	return p.freshArgs()
}

// ChannelName is the NOTIFY channel of a schema.
var ChannelName = channelName

// ParsePayload decodes a notification as Listen does, for node own.
var ParsePayload = parsePayload

// Payloads returns the notifications that carry the given wake-ups, as
// node sends them.
func Payloads(node string, ready, changed, finished []string) []string {
	n := &sender{node: node, queues: map[string]struct{}{}, changed: map[string]struct{}{}, jobs: map[string]struct{}{},
		kick: make(chan struct{}, 1)}
	n.add(ready, changed, finished)
	return n.take()
}

const MaxPayload = maxPayload

// WithAnalyzeEvery sets how often the store checks spool_jobs' statistics.
func WithAnalyzeEvery(opts Options, d time.Duration) Options {
	opts.analyzeEvery = d
	return opts
}

// EventPayloads returns the notifications that carry job events, as node
// sends them.
func EventPayloads(node string, evs []spool.JobEvent) []string {
	n := &sender{node: node, queues: map[string]struct{}{}, changed: map[string]struct{}{}, jobs: map[string]struct{}{},
		kick: make(chan struct{}, 1)}
	n.events = append(n.events, evs...)
	return n.take()
}
