package server

import (
	"context"
	"net/http"

	"github.com/spoolq/spool/internal/auth"
)

// principalKey keys the request's principal in its context.
type principalKey struct{}

// principalOf returns the principal authorize stored in ctx (the open
// principal if none: handlers reached without authorize, such as tests of
// the raw handlers).
func principalOf(ctx context.Context) *auth.Principal {
	if p, ok := ctx.Value(principalKey{}).(*auth.Principal); ok {
		return p
	}
	return auth.OpenPrincipal
}

// authorize wraps a route's handler: it finds who the request runs as and
// refuses it (403) unless that principal holds the route's permission.
func (s *Server) authorize(rt route, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := auth.OpenPrincipal
		if !p.Can(rt.perm) {
			s.writeError(w, r, &apiError{status: http.StatusForbidden, code: "forbidden",
				msg: "this key may not " + string(rt.perm) + "; the route " + rt.method + " " + rt.pattern + " needs the " + string(rt.perm) + " permission"})
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}
