package server

import (
	"context"
	"errors"
	"strings"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// Scopes: a key limited to queue and topic name patterns reaches only
// those. authorize checks the {queue} and {topic} of a path; prepare the
// queue of a {id} job and of a {name} schedule; the handlers below the
// names in bodies (leases, acks, schedules) and what a publish fans out to,
// and listings are filtered. A key without scopes skips all of it.

// checkJobScope refuses a job of a queue the key does not reach. An
// unknown job is left to the endpoint (404).
func (s *Server) checkJobScope(ctx context.Context, c *call, id string) error {
	if !c.p.Scoped() {
		return nil
	}
	rec, err := s.store.Get(ctx, id)
	if errors.Is(err, spool.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !c.p.Reaches(rec.Queue) {
		return outOfScope(c.p, "the queue of job "+id+",", rec.Queue)
	}
	return nil
}

// checkScheduleScope refuses a schedule whose queue the key does not
// reach (an unknown schedule is left to the endpoint).
func (s *Server) checkScheduleScope(ctx context.Context, c *call, name string) error {
	if !c.p.Scoped() {
		return nil
	}
	sc, err := s.engine.GetSchedule(ctx, name)
	if errors.Is(err, spool.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !c.p.Reaches(sc.Job.Queue) {
		return outOfScope(c.p, "the queue of schedule "+name+",", sc.Job.Queue)
	}
	return nil
}

// checkQueues refuses a list of queues unless the key reaches every one.
func checkQueues(c *call, queues []string) error {
	for _, q := range queues {
		if !c.p.Reaches(q) {
			return outOfScope(c.p, "queue", q)
		}
	}
	return nil
}

// checkPublishScope refuses a publish unless the key reaches every queue
// subscribed to the topic: a publish is refused whole, never delivered to
// some queues only.
func (s *Server) checkPublishScope(ctx context.Context, c *call, topic string) error {
	if !c.p.Scoped() {
		return nil
	}
	subs, err := s.store.Subscriptions(ctx, store.SubscriptionsParams{Topic: topic})
	if err != nil {
		return err
	}
	var out []string
	for _, sub := range subs {
		if !c.p.Reaches(sub.Queue) {
			out = append(out, sub.Queue)
		}
	}
	if len(out) > 0 {
		return forbidden("key %s may not publish to topic %q: it does not reach the subscribed queues %s (its scopes are %s); nothing was published",
			c.p.KeyID, topic, strings.Join(out, ", "), strings.Join(c.p.Scopes, ", "))
	}
	return nil
}

// Listing filters.

func filterQueues(c *call, qs []spool.QueueInfo) []spool.QueueInfo {
	if !c.p.Scoped() {
		return qs
	}
	out := qs[:0:0]
	for _, q := range qs {
		if c.p.Reaches(q.Name) {
			out = append(out, q)
		}
	}
	return out
}

func filterTopics(c *call, ts []spool.TopicInfo) []spool.TopicInfo {
	if !c.p.Scoped() {
		return ts
	}
	out := ts[:0:0]
	for _, t := range ts {
		if !c.p.Reaches(t.Name) {
			continue
		}
		subs := t.Subscriptions[:0:0]
		for _, sub := range t.Subscriptions {
			if c.p.Reaches(sub.Queue) {
				subs = append(subs, sub)
			}
		}
		t.Subscriptions = subs
		out = append(out, t)
	}
	return out
}

func filterSchedules(c *call, all []*spool.Schedule) []*spool.Schedule {
	if !c.p.Scoped() {
		return all
	}
	out := all[:0:0]
	for _, sc := range all {
		if c.p.Reaches(sc.Job.Queue) {
			out = append(out, sc)
		}
	}
	return out
}
