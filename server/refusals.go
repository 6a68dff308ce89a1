package server

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"strconv"

	"github.com/spoolq/spool"
)

// Refusals of malformed HTTP. Go's HTTP server answers some requests
// itself, before any handler runs: a request line or path it cannot parse
// (a bad percent-escape, say), a header name or value HTTP does not allow,
// Content-Length given twice with different values, headers over
// MaxHeaderBytes (431), no Host header in HTTP/1.1, a Transfer-Encoding it
// does not know (501). It writes each such answer as plain text, in one
// write to the connection, with fixed headers, and then closes the
// connection. refusalListener's connections recognise that write and send
// the same status in the JSON error shape instead.
//
// It works on the connections Serve is given. Over TLS the server writes
// through the TLS connection, whose bytes are ciphertext to a wrapper of
// the socket below it, so there Go's plain-text answers remain.

// goRefusalHeaders are the headers net/http writes after the status line
// of the answers it makes itself.
const goRefusalHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

type refusalListener struct{ net.Listener }

func (l refusalListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &refusalConn{Conn: c}, nil
}

// refusalConn rewrites net/http's own refusals into the JSON error shape.
type refusalConn struct{ net.Conn }

func (c *refusalConn) Write(p []byte) (int, error) {
	if b, ok := jsonRefusal(p); ok {
		if _, err := c.Conn.Write(b); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// CloseWrite lets net/http half-close the connection after a refusal, as
// it does on a bare TCP connection.
func (c *refusalConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// jsonRefusal returns the JSON form of p if p is a whole answer net/http
// made itself.
func jsonRefusal(p []byte) ([]byte, bool) {
	const proto = "HTTP/1.1 "
	if len(p) < len(proto)+3 || string(p[:len(proto)]) != proto {
		return nil, false
	}
	eol := bytes.Index(p, []byte("\r\n"))
	if eol < 0 || !bytes.HasPrefix(p[eol:], []byte(goRefusalHeaders)) {
		return nil, false
	}
	status, err := strconv.Atoi(string(p[len(proto) : len(proto)+3]))
	if err != nil || status < 400 || status > 599 {
		return nil, false
	}
	// The status line is "400 Bad Request" or "400 Bad Request: <why>".
	var why string
	if _, after, found := bytes.Cut(p[len(proto):eol], []byte(": ")); found {
		why = string(after)
	}
	code, msg := spool.CodeInvalid, refusalMessage(status, why)
	if status == http.StatusRequestHeaderFieldsTooLarge {
		code = spool.CodeTooLarge
	}
	body, err := json.Marshal(spool.ErrorBody{Error: spool.ErrorDetail{Code: code, Message: msg}})
	if err != nil {
		return nil, false
	}
	body = append(body, '\n')
	var b bytes.Buffer
	b.WriteString(proto + strconv.Itoa(status) + " " + http.StatusText(status))
	b.WriteString("\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\nContent-Length: ")
	b.WriteString(strconv.Itoa(len(body)))
	b.WriteString("\r\nConnection: close\r\n\r\n")
	b.Write(body)
	return b.Bytes(), true
}

// refusalMessage says what was wrong with a request net/http refused, as
// far as its answer tells.
func refusalMessage(status int, why string) string {
	switch status {
	case http.StatusRequestHeaderFieldsTooLarge:
		return "the request's headers are over the server's limit (spool serve --max-header-bytes); the request was not processed"
	case http.StatusNotImplemented:
		return "the request's Transfer-Encoding is not supported (send the body with Content-Length, or chunked); the request was not processed"
	case http.StatusHTTPVersionNotSupported:
		return "the request's HTTP version is not supported (use HTTP/1.1); the request was not processed"
	}
	switch why {
	case "missing required Host header":
		return "the request has no Host header, which HTTP/1.1 requires; the request was not processed"
	case "malformed Host header":
		return "the request's Host header is malformed; the request was not processed"
	case "invalid header name":
		return "a header name holds a character HTTP does not allow in one; the request was not processed"
	case "invalid header value":
		return "a header value holds a character HTTP does not allow (a control character, say); the request was not processed"
	}
	return "the request is not well-formed HTTP (a malformed request line or path, such as a bad percent-escape; a header name or value with a character HTTP does not allow; a malformed or repeated Content-Length); the request was not processed"
}
