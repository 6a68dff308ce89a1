package server

import (
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool/internal/auth"
)

// TestRoutesDeclarePermissions checks that every route names a known
// permission, and that a route without one is refused when the handler is
// built.
func TestRoutesDeclarePermissions(t *testing.T) {
	t.Parallel()
	s := &Server{reg: prometheus.NewRegistry()}
	for _, rt := range s.routeTable() {
		require.True(t, rt.perm.Valid(), "%s %s has permission %q", rt.method, rt.pattern, rt.perm)
	}
	require.Panics(t, func() {
		s.serveRoute(route{method: http.MethodGet, pattern: "/v1/new", raw: http.NotFoundHandler()})
	})
	require.NotPanics(t, func() {
		s.serveRoute(route{perm: auth.Public, method: http.MethodGet, pattern: "/v1/new", raw: http.NotFoundHandler()})
	})
}
