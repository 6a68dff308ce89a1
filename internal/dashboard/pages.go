package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/engine"
)

// reachable keeps the queues the request's key reaches.
func (d *Dashboard) reachable(r *http.Request, infos []spool.QueueInfo) []spool.QueueInfo {
	p := d.who(r)
	if !p.Scoped() {
		return infos
	}
	out := infos[:0:0]
	for _, q := range infos {
		if p.Reaches(q.Name) {
			out = append(out, q)
		}
	}
	return out
}

// outOfScope is the error of a queue the key does not reach.
func outOfScope(queue string) error {
	return fmt.Errorf("%w: your key does not reach queue %q", spool.ErrForbidden, queue)
}

// queueRow is one queue of the overview.
type queueRow struct {
	Info  spool.QueueInfo
	Stats *spool.QueueStats
	// Full is true at max_depth; RetryAfter is then what a 503 says.
	Full       bool
	RetryAfter int
}

// overview: GET / — every queue with its figures and sparklines.
func (d *Dashboard) overview(ctx context.Context, r *http.Request) (*view, error) {
	infos, err := d.e.Queues(ctx)
	if err != nil {
		return nil, err
	}
	infos = d.reachable(r, infos)
	all, err := d.e.AllQueueStats(ctx)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]*spool.QueueStats, len(all))
	for _, st := range all {
		byName[st.Queue] = st
	}
	rows := make([]queueRow, 0, len(infos))
	var totals struct {
		Depth, Busy          int64
		ArrivalRate, Through float64
	}
	for _, q := range infos {
		st := byName[q.Name]
		if st == nil {
			continue
		}
		row := queueRow{Info: q, Stats: st}
		if q.Config.MaxDepth != nil && q.Depth >= *q.Config.MaxDepth {
			row.Full = true
			row.RetryAfter = engine.RetryAfter(q.Depth, *q.Config.MaxDepth, 1, st.Windows[0].Throughput)
		}
		totals.Depth += q.Depth
		totals.Busy += st.Now.Busy
		totals.ArrivalRate += st.Windows[0].ArrivalRate
		totals.Through += st.Windows[0].Throughput
		rows = append(rows, row)
	}
	return &view{page: "overview", title: "Overview", data: struct {
		Queues []queueRow
		Totals any
	}{rows, totals}}, nil
}

// historyRanges are the spans the queue page offers.
var historyRanges = []string{"1h", "24h", "48h"}

// queue: GET /queues/{queue}[?range=24h] — charts, settings, jobs by state.
func (d *Dashboard) queue(ctx context.Context, r *http.Request) (*view, error) {
	name := r.PathValue("queue")
	rng := r.URL.Query().Get("range")
	if rng == "" {
		rng = "1h"
	}
	span, err := spool.ParseDuration(rng)
	if err != nil || span <= 0 || span > engine.MaxStatsHistory {
		return nil, spool.Invalidf("range must be a duration up to %s, such as 1h or 24h", engine.MaxStatsHistory)
	}
	info, err := d.e.Queue(ctx, name)
	if err != nil {
		return nil, err
	}
	st, err := d.e.QueueStats(ctx, name, span)
	if err != nil {
		return nil, err
	}
	return &view{page: "queue", title: "Queue " + name, data: struct {
		Info   *spool.QueueInfo
		Stats  *spool.QueueStats
		Range  string
		Ranges []string
		States []spool.State
	}{info, st, rng, historyRanges, spool.States}}, nil
}

// jobsPageSize is the explorer's page size.
const jobsPageSize = 50

// jobs: GET /jobs?queue=&state=&type=&tag=&ordering_key=&payload=&cursor= —
// the jobs explorer, a page at a time. payload is FIELD=VALUE, VALUE taken
// as JSON when it is JSON and else as a string, as spool jobs --payload.
func (d *Dashboard) jobs(ctx context.Context, r *http.Request) (*view, error) {
	q := r.URL.Query()
	infos, err := d.e.Queues(ctx)
	if err != nil {
		return nil, err
	}
	infos = d.reachable(r, infos)
	queue := q.Get("queue")
	if queue == "" && len(infos) > 0 {
		queue = infos[0].Name
	}
	if queue != "" && !d.who(r).Reaches(queue) {
		return nil, outOfScope(queue)
	}
	f := spool.JobFilter{State: spool.State(q.Get("state")), Type: q.Get("type"), Tag: q.Get("tag"), OrderingKey: q.Get("ordering_key")}
	payload := q.Get("payload")
	if payload != "" {
		field, value, ok := strings.Cut(payload, "=")
		if !ok || field == "" {
			return nil, spool.Invalidf("the payload filter is FIELD=VALUE, such as customer=42 or customer=acme")
		}
		if !json.Valid([]byte(value)) {
			b, _ := json.Marshal(value)
			value = string(b)
		}
		f.PayloadField, f.PayloadValue = field, value
	}
	var page *spool.JobList
	if queue != "" {
		page, err = d.e.ListJobs(ctx, engine.ListParams{Queue: queue, JobFilter: f, Cursor: q.Get("cursor"), Limit: jobsPageSize})
		if err != nil {
			return nil, err
		}
	} else {
		page = &spool.JobList{}
	}
	next := ""
	if page.NextCursor != "" {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("queue", queue)
		nq.Set("cursor", page.NextCursor)
		next = "/jobs?" + nq.Encode()
	}
	return &view{page: "jobs", title: "Jobs", data: struct {
		Queue   string
		Queues  []spool.QueueInfo
		Filter  spool.JobFilter
		Payload string
		States  []spool.State
		Jobs    []*spool.Job
		Next    string
		Paged   bool
	}{queue, infos, f, payload, spool.States, page.Jobs, next, q.Get("cursor") != ""}}, nil
}

// timelineEntry is one line of a job's timeline.
type timelineEntry struct {
	At   time.Time
	What string
	Note string
	Bad  bool
}

// job: GET /jobs/{id} — one job: timeline, payload, result, parents,
// actions and the equivalent commands.
func (d *Dashboard) job(ctx context.Context, r *http.Request) (*view, error) {
	id := r.PathValue("id")
	j, err := d.e.Get(ctx, id, 0)
	if err != nil {
		return nil, err
	}
	p := d.who(r)
	if !p.Reaches(j.Queue) {
		return nil, outOfScope(j.Queue)
	}
	parents, err := d.e.Parents(ctx, j.ID)
	if err != nil {
		return nil, err
	}
	hidden := !p.SeesPayloads()
	if hidden {
		j.Payload, j.Result = nil, nil
		for _, pj := range parents {
			pj.Payload, pj.Result = nil, nil
		}
	}
	tl := []timelineEntry{{At: j.CreatedAt, What: "enqueued", Note: "to " + j.Queue}}
	if j.RunAt.After(j.CreatedAt) && j.Attempt == 0 {
		tl = append(tl, timelineEntry{At: j.RunAt, What: "due", Note: "run_at"})
	}
	for _, e := range j.Errors {
		tl = append(tl, timelineEntry{At: e.At, What: "attempt " + strconv.Itoa(e.Attempt) + " failed", Note: e.Error, Bad: true})
	}
	if j.ReadyAt != nil {
		tl = append(tl, timelineEntry{At: *j.ReadyAt, What: "ready"})
	}
	if j.StartedAt != nil {
		note := "by " + j.Worker
		if j.Worker == "" {
			note = ""
		}
		if j.LeaseExpiresAt != nil && j.State == spool.StateActive {
			note += ", lease until " + j.LeaseExpiresAt.UTC().Format(time.RFC3339)
		}
		tl = append(tl, timelineEntry{At: *j.StartedAt, What: "attempt " + strconv.Itoa(j.Attempt) + " started", Note: note})
	}
	if p := j.Progress; p != nil {
		tl = append(tl, timelineEntry{At: p.UpdatedAt, What: "progress " + strconv.FormatFloat(p.Percent, 'f', -1, 64) + "%", Note: p.Message})
	}
	if j.FinishedAt != nil {
		tl = append(tl, timelineEntry{At: *j.FinishedAt, What: string(j.State), Bad: j.State != spool.StateSucceeded})
	}
	sort.SliceStable(tl, func(a, b int) bool { return tl[a].At.Before(tl[b].At) })
	base := "http://" + r.Host
	if r.TLS != nil {
		base = "https://" + r.Host
	}
	auth := ""
	if !p.Open {
		auth = ` -H "Authorization: Bearer $SPOOL_API_KEY"`
	}
	return &view{page: "job", title: "Job " + j.ID, data: struct {
		Job      *spool.Job
		Parents  []*spool.Job
		Timeline []timelineEntry
		Hidden   bool
		Base     string
		Auth     string
	}{j, parents, tl, hidden, base, auth}}, nil
}

// deadScan bounds how many dead jobs per queue the dead-letter page reads.
const deadScan = 1000

// deadGroup is the dead jobs that ended with one error message.
type deadGroup struct {
	Error  string
	Count  int
	Queues []string
	IDs    []string
	Last   time.Time
}

// dead: GET /dead[?queue=] — dead jobs grouped by their last error.
func (d *Dashboard) dead(ctx context.Context, r *http.Request) (*view, error) {
	only := r.URL.Query().Get("queue")
	infos, err := d.e.Queues(ctx)
	if err != nil {
		return nil, err
	}
	infos = d.reachable(r, infos)
	groups := map[string]*deadGroup{}
	truncated := false
	for _, q := range infos {
		if (only != "" && q.Name != only) || q.Counts[spool.StateDead] == 0 {
			continue
		}
		page, err := d.e.ListJobs(ctx, engine.ListParams{Queue: q.Name, JobFilter: spool.JobFilter{State: spool.StateDead}, Limit: deadScan})
		if err != nil {
			return nil, err
		}
		truncated = truncated || page.NextCursor != ""
		for _, j := range page.Jobs {
			msg := "(no error recorded)"
			if n := len(j.Errors); n > 0 {
				msg = j.Errors[n-1].Error
			}
			g := groups[msg]
			if g == nil {
				g = &deadGroup{Error: msg}
				groups[msg] = g
			}
			g.Count++
			g.IDs = append(g.IDs, j.ID)
			if len(g.Queues) == 0 || g.Queues[len(g.Queues)-1] != j.Queue {
				g.Queues = append(g.Queues, j.Queue)
			}
			if j.FinishedAt != nil && j.FinishedAt.After(g.Last) {
				g.Last = *j.FinishedAt
			}
		}
	}
	out := make([]*deadGroup, 0, len(groups))
	for _, g := range groups {
		out = append(out, g)
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].Count != out[b].Count {
			return out[a].Count > out[b].Count
		}
		return out[a].Error < out[b].Error
	})
	return &view{page: "dead", title: "Dead letters", data: struct {
		Groups    []*deadGroup
		Queue     string
		Queues    []spool.QueueInfo
		Truncated bool
		Scan      int
	}{out, only, infos, truncated, deadScan}}, nil
}

// schedules: GET /schedules.
func (d *Dashboard) schedules(ctx context.Context, r *http.Request) (*view, error) {
	all, err := d.e.Schedules(ctx)
	if err != nil {
		return nil, err
	}
	p := d.who(r)
	ss := all[:0:0]
	for _, s := range all {
		if p.Reaches(s.Job.Queue) {
			ss = append(ss, s)
		}
	}
	return &view{page: "schedules", title: "Schedules", data: ss}, nil
}

// topics: GET /topics.
func (d *Dashboard) topics(ctx context.Context, r *http.Request) (*view, error) {
	all, err := d.e.Topics(ctx)
	if err != nil {
		return nil, err
	}
	p := d.who(r)
	var ts []spool.TopicInfo
	for _, t := range all {
		if !p.Reaches(t.Name) {
			continue
		}
		subs := t.Subscriptions[:0:0]
		for _, s := range t.Subscriptions {
			if p.Reaches(s.Queue) {
				subs = append(subs, s)
			}
		}
		if len(subs) > 0 {
			ts = append(ts, spool.TopicInfo{Name: t.Name, Subscriptions: subs})
		}
	}
	return &view{page: "topics", title: "Topics", data: ts}, nil
}

// webhooks: GET /webhooks[?state=] — webhook deliveries (jobs of the
// internal deliveries queue), newest pages via the cursor.
func (d *Dashboard) webhooks(ctx context.Context, r *http.Request) (*view, error) {
	if !d.who(r).Reaches(engine.WebhookQueue) {
		return nil, outOfScope(engine.WebhookQueue)
	}
	state := spool.State(r.URL.Query().Get("state"))
	page, err := d.e.ListJobs(ctx, engine.ListParams{Queue: engine.WebhookQueue, JobFilter: spool.JobFilter{State: state},
		Cursor: r.URL.Query().Get("cursor"), Limit: jobsPageSize})
	if err != nil {
		return nil, err
	}
	next := ""
	if page.NextCursor != "" {
		next = "/webhooks?" + url.Values{"state": {string(state)}, "cursor": {page.NextCursor}}.Encode()
	}
	return &view{page: "webhooks", title: "Webhooks", data: struct {
		Jobs   []*spool.Job
		State  spool.State
		States []spool.State
		Next   string
	}{page.Jobs, state, spool.States, next}}, nil
}

// workerRow is one worker holding leases.
type workerRow struct {
	Name   string
	Jobs   []*spool.Job
	Queues []string
	// Oldest is the start of its longest-running job; NextExpiry the
	// soonest lease expiry; Stale is true when a lease expired (the
	// worker stopped heartbeating and the lease waits to be reclaimed).
	Oldest     time.Time
	NextExpiry time.Time
	Stale      bool
}

// activeScan bounds how many active jobs per queue the workers page reads.
const activeScan = 1000

// workers: GET /workers — the workers that hold leases now, from the
// active jobs' worker names.
func (d *Dashboard) workers(ctx context.Context, r *http.Request) (*view, error) {
	infos, err := d.e.Queues(ctx)
	if err != nil {
		return nil, err
	}
	infos = d.reachable(r, infos)
	now := d.now()
	byName := map[string]*workerRow{}
	for _, q := range infos {
		if q.Counts[spool.StateActive] == 0 {
			continue
		}
		page, err := d.e.ListJobs(ctx, engine.ListParams{Queue: q.Name, JobFilter: spool.JobFilter{State: spool.StateActive}, Limit: activeScan})
		if err != nil {
			return nil, err
		}
		for _, j := range page.Jobs {
			name := j.Worker
			if name == "" {
				name = "(unnamed)"
			}
			w := byName[name]
			if w == nil {
				w = &workerRow{Name: name}
				byName[name] = w
			}
			w.Jobs = append(w.Jobs, j)
			if len(w.Queues) == 0 || w.Queues[len(w.Queues)-1] != j.Queue {
				w.Queues = append(w.Queues, j.Queue)
			}
			if j.StartedAt != nil && (w.Oldest.IsZero() || j.StartedAt.Before(w.Oldest)) {
				w.Oldest = *j.StartedAt
			}
			if e := j.LeaseExpiresAt; e != nil {
				if w.NextExpiry.IsZero() || e.Before(w.NextExpiry) {
					w.NextExpiry = *e
				}
				if !e.After(now) {
					w.Stale = true
				}
			}
		}
	}
	rows := make([]*workerRow, 0, len(byName))
	for _, w := range byName {
		rows = append(rows, w)
	}
	sort.Slice(rows, func(a, b int) bool { return rows[a].Name < rows[b].Name })
	return &view{page: "workers", title: "Workers", data: rows}, nil
}

// login: GET /login[?next=] — the sign-in form (the key's secret goes to
// POST /v1/session; the session lives in HttpOnly cookies).
func (d *Dashboard) login(_ context.Context, r *http.Request) (*view, error) {
	next := r.URL.Query().Get("next")
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		next = "/"
	}
	return &view{page: "login", title: "Sign in", data: next}, nil
}
