package gctune

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Memory is the memory this process may use: the machine's RAM, or the
// cgroup (v2) limit when there is a lower one; 0 if neither can be read.
func Memory() int64 {
	var total int64
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err == nil {
		total = int64(si.Totalram) * int64(si.Unit)
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err == nil && n > 0 && (total == 0 || n < total) {
			total = n
		}
	}
	return total
}
