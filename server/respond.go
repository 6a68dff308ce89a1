package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/wire"
)

// bufPool holds buffers for request bodies and JSON answers.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuf keeps the pool from hoarding the buffers of rare big
// requests. It holds a batch of 1,000 small jobs, or its answer.
const maxPooledBuf = 4 << 20

func getBuf() *bytes.Buffer {
	b := bufPool.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

func putBuf(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBuf {
		bufPool.Put(b)
	}
}

// writeJSON answers with v encoded as JSON.
func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	buf := getBuf()
	defer putBuf(buf)
	if b, ok := appendFast(buf.AvailableBuffer(), v); ok {
		buf.Write(b)
		buf.WriteByte('\n')
	} else if err := encodeJSON(buf, v); err != nil {
		s.log.Error("encoding an answer", "status", status, "error", err)
		buf.Reset()
		buf.WriteString(`{"error":{"code":"internal","message":"internal error"}}` + "\n")
		status = http.StatusInternalServerError
	}
	if !utf8.Valid(buf.Bytes()) {
		// Only stored strings can hold invalid UTF-8 (JSON's own bytes are
		// ASCII): data stored before input was checked for it. Replacing
		// it keeps every answer JSON that any client's parser reads.
		s.log.Warn("answer held invalid UTF-8 from stored data; replaced with U+FFFD", "status", status)
		fixed := bytes.ToValidUTF8(buf.Bytes(), []byte("\uFFFD"))
		buf.Reset()
		buf.Write(fixed)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// appendFast appends the answers on the hot paths (a job, the jobs of a
// batch enqueue or a lease, and the ids-only answer) with the hand-written encoder of package wire,
// which writes the same bytes as encodeJSON; ok is false for any other
// answer, or a job it leaves to encoding/json.
func appendFast(b []byte, v any) ([]byte, bool) {
	switch v := v.(type) {
	case *spool.JobsResponse:
		return wire.TryAppendJobsResponse(b, v)
	case *spool.Job:
		return wire.TryAppendJob(b, v)
	case *spool.JobIDsResponse:
		return wire.AppendJobIDsResponse(b, v), true
	}
	return nil, false
}

// encodeJSON writes v and a newline to buf with encoding/json.
func encodeJSON(buf *bytes.Buffer, v any) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false) // payloads and results go back byte for byte
	return enc.Encode(v)
}
