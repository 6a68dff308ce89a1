package server

import (
	_ "embed"
	"net/http"
	"strconv"
)

// openAPI is the OpenAPI document of the API, written by hand; a test
// checks that its paths and methods are exactly the routes of the server.
//
//go:embed openapi.json
var openAPI []byte

// serveOpenAPI: GET /v1/openapi.json.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(openAPI)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(openAPI)
}
