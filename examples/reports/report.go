package main

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"time"

	"github.com/spoolq/spool/client"
)

// JobType is the type of the jobs this example enqueues and works on.
const JobType = "build-report"

// ReportRequest is a job's payload: what report to build.
type ReportRequest struct {
	// Kind is "sales" or "returns".
	Kind string `json:"kind"`
	// Months is how many months, back from the current one, it covers.
	Months int `json:"months"`
}

// Validate checks a request as the web form sends it.
func (r ReportRequest) Validate() error {
	if r.Kind != "sales" && r.Kind != "returns" {
		return fmt.Errorf("kind must be \"sales\" or \"returns\", got %q", r.Kind)
	}
	if r.Months < 1 || r.Months > 24 {
		return fmt.Errorf("months must be between 1 and 24, got %d", r.Months)
	}
	return nil
}

// Report is a job's result.
type Report struct {
	Kind   string `json:"kind"`
	Rows   []Row  `json:"rows"`
	Total  int    `json:"total"`
	Months int    `json:"months"`
}

// Row is one month of a report.
type Row struct {
	Month  string `json:"month"`
	Amount int    `json:"amount"`
}

// Builder builds reports: the worker side of the example. A real one
// would query a database month by month; this one takes Step per month.
type Builder struct {
	// Step is how long one month takes to "compute".
	Step time.Duration
	// Now is the current month's reference time.
	Now func() time.Time
	// stepHook, if set, runs before each month instead of sleeping (tests).
	stepHook func(ctx context.Context, month int) error
}

// Handle is the job handler: it reports progress month by month and
// returns the report.
func (b *Builder) Handle(ctx context.Context, job *client.Job) (any, error) {
	var req ReportRequest
	if err := job.Decode(&req); err != nil {
		return nil, client.Permanent(err)
	}
	if err := req.Validate(); err != nil {
		return nil, client.Permanent(err)
	}
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	first := now().AddDate(0, -(req.Months - 1), 0)
	rep := Report{Kind: req.Kind, Months: req.Months, Rows: make([]Row, 0, req.Months)}
	job.Progress(0, "starting")
	for i := 0; i < req.Months; i++ {
		if err := b.step(ctx, i); err != nil {
			return nil, err
		}
		month := first.AddDate(0, i, 0).Format("2006-01")
		amount := amountFor(req.Kind, month)
		rep.Rows = append(rep.Rows, Row{Month: month, Amount: amount})
		rep.Total += amount
		job.Progress(math.Round(float64(i+1)*1000/float64(req.Months))/10, fmt.Sprintf("month %d of %d (%s) done", i+1, req.Months, month))
	}
	return rep, nil
}

func (b *Builder) step(ctx context.Context, month int) error {
	if b.stepHook != nil {
		return b.stepHook(ctx, month)
	}
	t := time.NewTimer(b.Step)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return errors.Join(errors.New("report interrupted"), context.Cause(ctx))
	}
}

// amountFor makes up a stable figure for a month.
func amountFor(kind, month string) int {
	h := fnv.New32a()
	h.Write([]byte(kind + "/" + month))
	return 1000 + int(h.Sum32()%9000)
}
