package gctune

import "syscall"

// Memory is the memory this process may use: the machine's RAM, or the
// lowest cgroup limit (v2 or v1) on the process when that is lower; 0 if
// neither can be read.
func Memory() int64 {
	var total int64
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err == nil {
		total = int64(si.Totalram) * int64(si.Unit)
	}
	if n := cgroupLimit("/"); n > 0 && (total == 0 || n < total) {
		total = n
	}
	return total
}
