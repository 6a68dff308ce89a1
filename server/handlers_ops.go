package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/spoolq/spool"
)

// statusResponse answers /healthz and /readyz.
type statusResponse struct {
	Status string `json:"status"`
}

// readyTimeout bounds the store probe of /readyz.
const readyTimeout = 2 * time.Second

// probeID is a job id no job has: reading it is a cheap store round trip.
const probeID = "00000000-0000-0000-0000-000000000000"

// healthz: GET /healthz, the process is alive.
func (s *Server) healthz(context.Context, *call, *noBody) (int, statusResponse, error) {
	return http.StatusOK, statusResponse{Status: "ok"}, nil
}

// readyz: GET /readyz, the server can take work: not shutting down, and
// the store answers.
func (s *Server) readyz(ctx context.Context, _ *call, _ *noBody) (int, statusResponse, error) {
	if s.stopping.Load() {
		return 0, statusResponse{}, &apiError{status: http.StatusServiceUnavailable, code: spool.CodeUnavailable, msg: "the server is shutting down"}
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if _, err := s.store.Get(ctx, probeID); err != nil && !errors.Is(err, spool.ErrNotFound) {
		s.log.Warn("readiness probe: the store does not answer", "error", err)
		return 0, statusResponse{}, &apiError{status: http.StatusServiceUnavailable, code: spool.CodeUnavailable, msg: "the store does not answer"}
	}
	return http.StatusOK, statusResponse{Status: "ready"}, nil
}

// metricsHandler serves the server's Prometheus registry.
func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{
		ErrorLog:      slogPrinter{s},
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      s.reg,
	})
}

// slogPrinter adapts the logger to promhttp.Logger.
type slogPrinter struct{ s *Server }

func (p slogPrinter) Println(v ...any) { p.s.log.Warn("serving metrics", "error", v) }
