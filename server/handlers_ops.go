package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// statusResponse answers /healthz and /readyz.
type statusResponse struct {
	Status string `json:"status"`
}

// readyTimeout bounds the store probe of /readyz.
const readyTimeout = 2 * time.Second

// probeID is a job id no job has: reading it is a cheap store round trip.
const probeID = "00000000-0000-0000-0000-000000000000"

// healthz: GET /healthz, the process is alive and its store can write: a
// store that failed (a full disk, say) answers 503 until the server has
// stopped, so a liveness probe restarts it if it does not exit by itself.
func (s *Server) healthz(context.Context, *call, *noBody) (int, statusResponse, error) {
	if err := s.storeErr(); err != nil {
		msg := "the store cannot write; the server is stopping so that a restart recovers it"
		if errors.Is(err, spool.ErrDiskFull) {
			msg = "the store cannot write: the disk is full; the server is stopping so that a restart recovers it once space is freed"
		}
		return 0, statusResponse{}, &apiError{status: http.StatusServiceUnavailable, code: spool.Code(err), msg: msg}
	}
	return http.StatusOK, statusResponse{Status: "ok"}, nil
}

// storeErr is why the store stopped serving for good, nil while it serves.
func (s *Server) storeErr() error {
	if f, ok := s.store.(store.Failer); ok {
		return f.Err()
	}
	return nil
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
