package server_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/server"
)

// Requests that Go's HTTP server refuses before any handler runs are
// answered in the JSON error shape all the same.
func TestProtocolRefusalsAreJSON(t *testing.T) {
	t.Parallel()
	ts := newServingServer(t)
	addr := strings.TrimPrefix(ts.url, "http://")
	tests := []struct {
		name    string
		request string
		status  int
		code    string
		msg     string
	}{
		{"bad percent-escape in the path", "GET /v1/jobs/%zz HTTP/1.1\r\nHost: spool\r\n\r\n", 400, spool.CodeInvalid, "not well-formed HTTP"},
		{"bad request line", "GET /v1/queues HTTP/9\r\nHost: spool\r\n\r\n", 400, spool.CodeInvalid, "not well-formed HTTP"},
		{"missing Host", "GET /healthz HTTP/1.1\r\n\r\n", 400, spool.CodeInvalid, "no Host header"},
		{"malformed Host", "GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n", 400, spool.CodeInvalid, "Host header is malformed"},
		{"bad header name", "GET /healthz HTTP/1.1\r\nHost: spool\r\nBad(Name): v\r\n\r\n", 400, spool.CodeInvalid, "header"},
		{"bad header value", "GET /healthz HTTP/1.1\r\nHost: spool\r\nX-A: a\x01b\r\n\r\n", 400, spool.CodeInvalid, "header"},
		{"two Content-Lengths", "POST /v1/queues/q/jobs HTTP/1.1\r\nHost: spool\r\nContent-Type: application/json\r\nContent-Length: 12\r\nContent-Length: 13\r\n\r\n{\"type\":\"t\"}", 400, spool.CodeInvalid, "Content-Length"},
		{"headers too large", "GET /healthz HTTP/1.1\r\nHost: spool\r\nX-Big: " + strings.Repeat("a", 100<<10) + "\r\n\r\n", 431, spool.CodeTooLarge, "--max-header-bytes"},
		{"unknown Transfer-Encoding", "POST /v1/queues/q/jobs HTTP/1.1\r\nHost: spool\r\nTransfer-Encoding: gzip\r\n\r\n", 501, spool.CodeInvalid, "Transfer-Encoding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			defer conn.Close()
			require.NoError(t, conn.SetDeadline(time.Now().Add(30*time.Second)))
			_, err = io.WriteString(conn, tt.request)
			require.NoError(t, err)
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			require.NoError(t, err)
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			require.NoError(t, err)
			require.Equal(t, tt.status, res.StatusCode, "body: %s", body)
			require.Equal(t, "application/json", res.Header.Get("Content-Type"))
			var eb spool.ErrorBody
			dec := json.NewDecoder(strings.NewReader(string(body)))
			dec.DisallowUnknownFields()
			require.NoError(t, dec.Decode(&eb), "body: %s", body)
			require.Equal(t, tt.code, eb.Error.Code)
			require.Contains(t, eb.Error.Message, tt.msg)
		})
	}
	// The server goes on serving.
	ts.do("GET", "/healthz", nil).ok(t, http.StatusOK, nil)
	ts.do("GET", "/v1/queues/q", nil).fails(t, http.StatusNotFound, spool.CodeNotFound) // nothing enqueued
}

// The header size limit is a setting: headers of 20 KiB pass the default
// (64 KiB) and are refused (431) by a server set to 8 KiB.
func TestMaxHeaderBytesIsASetting(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		limit  int
		status int
	}{{0, http.StatusOK}, {8 << 10, http.StatusRequestHeaderFieldsTooLarge}} {
		ts := newServingServer(t, func(c *server.Config) { c.MaxHeaderBytes = tt.limit })
		addr := strings.TrimPrefix(ts.url, "http://")
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		require.NoError(t, conn.SetDeadline(time.Now().Add(30*time.Second)))
		_, err = io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: "+addr+"\r\nX-Big: "+strings.Repeat("a", 20<<10)+"\r\n\r\n")
		require.NoError(t, err)
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		require.Equal(t, tt.status, res.StatusCode, "limit %d", tt.limit)
		require.NoError(t, res.Body.Close())
		require.NoError(t, conn.Close())
	}
}
