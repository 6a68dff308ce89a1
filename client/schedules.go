package client

import (
	"context"
	"errors"
	"net/http"

	"github.com/spoolq/spool"
)

// PutSchedule creates or replaces the cron schedule name: at each firing of
// req.Cron (read in req.Timezone, default UTC) the server enqueues
// req.Job into req.Job.Queue, once however many servers share the store.
// Replacing a schedule keeps its counters, and its next firing unless the
// expression, time zone or paused state changed. A bad expression, time
// zone or job template is an error that unwraps to spool.ErrInvalid.
func (c *Client) PutSchedule(ctx context.Context, name string, req spool.ScheduleRequest) (*spool.Schedule, error) {
	if name == "" {
		return nil, errors.New("client: PutSchedule: empty schedule name")
	}
	out := new(spool.Schedule)
	cl := call{method: http.MethodPut, path: "/v1/schedules/" + pathEscape(name), body: req, repeat: repeatSafe}
	if _, err := c.do(ctx, cl, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Schedule returns one schedule: its definition, next firing and counters.
func (c *Client) Schedule(ctx context.Context, name string) (*spool.Schedule, error) {
	if name == "" {
		return nil, errors.New("client: Schedule: empty schedule name")
	}
	out := new(spool.Schedule)
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/schedules/" + pathEscape(name), repeat: repeatSafe}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Schedules lists every schedule, by name.
func (c *Client) Schedules(ctx context.Context) ([]*spool.Schedule, error) {
	var out spool.SchedulesResponse
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/schedules", repeat: repeatSafe}, &out); err != nil {
		return nil, err
	}
	return out.Schedules, nil
}

// DeleteSchedule removes a schedule; the jobs it enqueued stay. A schedule
// that does not exist is an error that unwraps to spool.ErrNotFound (also
// after a retry whose first try did delete it but whose answer was lost).
func (c *Client) DeleteSchedule(ctx context.Context, name string) error {
	if name == "" {
		return errors.New("client: DeleteSchedule: empty schedule name")
	}
	_, err := c.do(ctx, call{method: http.MethodDelete, path: "/v1/schedules/" + pathEscape(name), repeat: repeatSafe}, nil)
	return err
}

// PauseSchedule stops a schedule from firing until ResumeSchedule.
func (c *Client) PauseSchedule(ctx context.Context, name string) (*spool.Schedule, error) {
	return c.scheduleAction(ctx, name, "pause")
}

// ResumeSchedule lets a paused schedule fire again, from its first firing
// after now (the firings that fell while it was paused are not made).
func (c *Client) ResumeSchedule(ctx context.Context, name string) (*spool.Schedule, error) {
	return c.scheduleAction(ctx, name, "resume")
}

func (c *Client) scheduleAction(ctx context.Context, name, action string) (*spool.Schedule, error) {
	if name == "" {
		return nil, errors.New("client: " + action + " schedule: empty schedule name")
	}
	out := new(spool.Schedule)
	cl := call{method: http.MethodPost, path: "/v1/schedules/" + pathEscape(name) + "/" + action, repeat: repeatSafe}
	if _, err := c.do(ctx, cl, out); err != nil {
		return nil, err
	}
	return out, nil
}
