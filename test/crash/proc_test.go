package crash

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// spoolBin is the spool binary built by TestMain.
var spoolBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "spool-crash-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash test:", err)
		os.Exit(1)
	}
	spoolBin = filepath.Join(dir, "spool")
	start := time.Now()
	build := exec.Command("go", "build", "-o", spoolBin, "github.com/spoolq/spool/cmd/spool")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "crash test: building the spool binary: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	if testing.Verbose() {
		fmt.Printf("crash test: built %s in %s\n", spoolBin, time.Since(start).Round(time.Millisecond))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one running `spool serve`.
type proc struct {
	cmd  *exec.Cmd
	addr string
	logs *logSink
	done chan struct{} // closed when the process has exited and been reaped
	err  error         // Wait's answer, once done is closed
}

// startServer runs `spool serve` on dataDir and a free port, and waits for
// the log line that names the address.
func startServer(t *testing.T, dataDir string) *proc {
	t.Helper()
	logs := &logSink{addr: make(chan string, 1)}
	cmd := exec.Command(spoolBin, "serve", "--data", dataDir, "--addr", "127.0.0.1:0", "--log-format", "text")
	cmd.Stdout = logs
	cmd.Stderr = logs
	cmd.Env = append(os.Environ(), "SPOOL_LOG_LEVEL=info")
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", spoolBin, err)
	}
	p := &proc{cmd: cmd, logs: logs, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("server log (pid %d):\n%s", cmd.Process.Pid, logs.String())
		}
	})
	select {
	case p.addr = <-logs.addr:
		return p
	case <-p.done:
		t.Fatalf("spool serve exited before listening: %v\n%s", p.err, logs.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("spool serve did not log its address within 20s:\n%s", logs.String())
	}
	return nil
}

// kill sends SIGKILL and reaps the process.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// stop asks the server to shut down gracefully and checks it exits cleanly.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("spool serve exited with %v after SIGTERM", p.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("spool serve did not exit within 20s of SIGTERM")
	}
}

var listeningRE = regexp.MustCompile(`msg=listening addr=(\S+)\s`)

// logSink collects a process's output and reports the listening address.
type logSink struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	addr chan string
	sent bool
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(p)
	if !s.sent {
		if m := listeningRE.FindSubmatch(s.buf.Bytes()); m != nil {
			s.sent = true
			s.addr <- string(m[1])
		}
	}
	return len(p), nil
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}
