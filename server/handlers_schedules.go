package server

import (
	"context"
	"net/http"

	"github.com/spoolq/spool"
)

// scheduleBody is the body of PUT /v1/schedules/{name}.
type scheduleBody struct {
	spool.ScheduleRequest
}

// putSchedule: PUT /v1/schedules/{name} → 201 and the schedule when it is
// new, 200 when it replaced one. A bad expression, time zone or job
// template is refused (400) and nothing is stored.
func (s *Server) putSchedule(ctx context.Context, c *call, req *scheduleBody) (int, *spool.Schedule, error) {
	if err := s.checkRunAt(&req.Job.EnqueueRequest, "job.", -1); err != nil {
		return 0, nil, err
	}
	if err := checkQueues(c, []string{req.Job.Queue}); err != nil {
		return 0, nil, err
	}
	sc, created, err := s.engine.PutSchedule(ctx, c.r.PathValue("name"), req.ScheduleRequest)
	if err != nil {
		return 0, nil, err
	}
	if created {
		c.w.Header().Set("Location", "/v1/schedules/"+sc.Name)
		return http.StatusCreated, sc, nil
	}
	return http.StatusOK, sc, nil
}

// listSchedules: GET /v1/schedules.
func (s *Server) listSchedules(ctx context.Context, c *call, _ *noBody) (int, *spool.SchedulesResponse, error) {
	all, err := s.engine.Schedules(ctx)
	if err != nil {
		return 0, nil, err
	}
	all = filterSchedules(c, all)
	if all == nil {
		all = []*spool.Schedule{}
	}
	return http.StatusOK, &spool.SchedulesResponse{Schedules: all}, nil
}

// getSchedule: GET /v1/schedules/{name}.
func (s *Server) getSchedule(ctx context.Context, c *call, _ *noBody) (int, *spool.Schedule, error) {
	sc, err := s.engine.GetSchedule(ctx, c.r.PathValue("name"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, sc, nil
}

// deleteSchedule: DELETE /v1/schedules/{name} → 200, or 404. Jobs it
// enqueued stay.
func (s *Server) deleteSchedule(ctx context.Context, c *call, _ *noBody) (int, *spool.ScheduleDeleted, error) {
	name := c.r.PathValue("name")
	if err := s.engine.DeleteSchedule(ctx, name); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, &spool.ScheduleDeleted{Name: name, Deleted: true}, nil
}

// pauseSchedule: POST /v1/schedules/{name}/pause.
func (s *Server) pauseSchedule(ctx context.Context, c *call, _ *noBody) (int, *spool.Schedule, error) {
	sc, err := s.engine.PauseSchedule(ctx, c.r.PathValue("name"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, sc, nil
}

// runSchedule: POST /v1/schedules/{name}/run enqueues the schedule's job
// now → 202 and the job, its status URL in Location.
func (s *Server) runSchedule(ctx context.Context, c *call, _ *noBody) (int, *spool.Job, error) {
	j, err := s.engine.RunSchedule(ctx, c.r.PathValue("name"))
	if err != nil {
		return 0, nil, err
	}
	c.w.Header().Set("Location", "/v1/jobs/"+j.ID)
	return http.StatusAccepted, j, nil
}

// resumeSchedule: POST /v1/schedules/{name}/resume; the next firing is the
// first after now (no backlog).
func (s *Server) resumeSchedule(ctx context.Context, c *call, _ *noBody) (int, *spool.Schedule, error) {
	sc, err := s.engine.ResumeSchedule(ctx, c.r.PathValue("name"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, sc, nil
}
