package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// ReadRSS returns the resident set size of process pid in MiB, read from
// the VmRSS line of /proc/<pid>/status (Linux only).
func ReadRSS(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseVmRSS(b)
}

// parseVmRSS finds "VmRSS:   12345 kB" in a /proc/<pid>/status text and
// returns it in MiB.
func parseVmRSS(status []byte) (float64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("unexpected VmRSS line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("unexpected VmRSS line %q", sc.Text())
		}
		return float64(kb) / 1024, nil
	}
	return 0, errors.New("no VmRSS line")
}

// rssStats tracks a server's RSS over one run.
type rssStats struct {
	ok                     bool // at least one sample was read
	start, peak, end, last float64
}

// sample reads the RSS of pid once; a failed read is ignored.
func (s *rssStats) sample(pid int) {
	v, err := ReadRSS(pid)
	if err != nil {
		return
	}
	s.ok = true
	s.last = v
	s.peak = max(s.peak, v)
}
