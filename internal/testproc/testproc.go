// Package testproc runs the real spool binary for tests that need whole
// processes (kill -9, several nodes): it builds the binary once, starts
// `spool serve` on a free port, learns the address from its log, and stops
// or kills it. Only tests import it.
package testproc

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BuildSpool builds cmd/spool into a new temporary directory. cleanup
// removes the directory.
func BuildSpool(prefix string) (bin string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	bin = filepath.Join(dir, "spool")
	build := exec.Command("go", "build", "-o", bin, "github.com/spoolq/spool/cmd/spool")
	if out, err := build.CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("building the spool binary: %v\n%s", err, out)
	}
	return bin, cleanup, nil
}

// Server is one running `spool serve`.
type Server struct {
	Name string
	// Addr is the listening address, known once Await returned.
	Addr string
	bin  string
	cmd  *exec.Cmd
	logs *logSink
	done chan struct{} // closed once the process has exited and been reaped
	err  error         // Wait's answer (or Start's), once done is closed
}

// Start launches `spool serve --addr 127.0.0.1:0 args...` and waits up to
// timeout for it to listen. The test's cleanup kills it and, if the test
// failed, logs its output.
func Start(t testing.TB, bin, name string, timeout time.Duration, args ...string) *Server {
	t.Helper()
	return Launch(bin, name, args...).Await(t, timeout)
}

// Launch starts the process without waiting; it may run in any goroutine.
// Await must follow, in the test's goroutine.
func Launch(bin, name string, args ...string) *Server {
	logs := &logSink{addr: make(chan string, 1)}
	args = append([]string{"serve", "--addr", "127.0.0.1:0", "--log-format", "text"}, args...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logs
	cmd.Stderr = logs
	cmd.Env = append(os.Environ(), "SPOOL_LOG_LEVEL=info")
	s := &Server{Name: name, bin: bin, cmd: cmd, logs: logs, done: make(chan struct{})}
	if s.err = cmd.Start(); s.err != nil {
		close(s.done)
		return s
	}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	return s
}

// Await waits up to timeout for the server's "listening" log line and
// registers its cleanup.
func (s *Server) Await(t testing.TB, timeout time.Duration) *Server {
	t.Helper()
	if s.cmd.Process == nil {
		t.Fatalf("starting %s: %v", s.bin, s.err)
	}
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			t.Logf("log of %s (pid %d):\n%s", s.Name, s.cmd.Process.Pid, s.logs.String())
		}
	})
	select {
	case s.Addr = <-s.logs.addr:
		return s
	case <-s.done:
		t.Fatalf("%s exited before listening: %v\n%s", s.Name, s.err, s.logs.String())
	case <-time.After(timeout):
		t.Fatalf("%s did not log its address within %s:\n%s", s.Name, timeout, s.logs.String())
	}
	return nil
}

// Listening waits up to timeout for the server's "listening" log line and
// sets Addr, without registering a cleanup: for tests that start many
// processes and kill each themselves.
func (s *Server) Listening(timeout time.Duration) error {
	if s.cmd.Process == nil {
		return fmt.Errorf("starting %s: %v", s.bin, s.err)
	}
	select {
	case s.Addr = <-s.logs.addr:
		return nil
	case <-s.done:
		return fmt.Errorf("%s exited before listening: %v\n%s", s.Name, s.err, s.logs.String())
	case <-time.After(timeout):
		return fmt.Errorf("%s did not log its address within %s:\n%s", s.Name, timeout, s.logs.String())
	}
}

// PID is the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// URL is the server's base URL.
func (s *Server) URL() string { return "http://" + s.Addr }

// Done is closed once the process has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err is the process's exit error, valid once Done is closed.
func (s *Server) Err() error { return s.err }

// Kill sends SIGKILL and reaps the process.
func (s *Server) Kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Stop asks the server to shut down (SIGTERM) and fails the test unless it
// exits cleanly within timeout.
func (s *Server) Stop(t testing.TB, timeout time.Duration) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM to %s: %v", s.Name, err)
	}
	select {
	case <-s.done:
		if s.err != nil {
			t.Fatalf("%s exited with %v after SIGTERM", s.Name, s.err)
		}
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %s of SIGTERM", s.Name, timeout)
	}
}

// Logs returns everything the process wrote so far.
func (s *Server) Logs() string { return s.logs.String() }

// CountLogs returns how many times sub occurs in the output so far.
func (s *Server) CountLogs(sub string) int { return strings.Count(s.logs.String(), sub) }

var listeningRE = regexp.MustCompile(`msg=listening addr=(\S+)\s`)

// logSink collects a process's output and reports the listening address.
type logSink struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	addr chan string
	sent bool
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	if !l.sent {
		if m := listeningRE.FindSubmatch(l.buf.Bytes()); m != nil {
			l.sent = true
			l.addr <- string(m[1])
		}
	}
	return len(p), nil
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
