package gctune

import (
	"bufio"
	"bytes"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// cgroupLimit is the lowest memory limit set on this process's cgroup or
// any cgroup above it, cgroup v2 (memory.max) and v1 (the memory
// controller's memory.limit_in_bytes) alike; 0 if none is set or none can
// be read. root is where the file system starts ("/"; a fake tree in
// tests): the cgroup of the process comes from root/proc/self/cgroup and
// where each hierarchy is mounted from root/proc/self/mountinfo, or, when
// that cannot be read, the usual places (/sys/fs/cgroup for v2,
// /sys/fs/cgroup/memory for v1).
//
// A v1 "no limit" is a huge number (9223372036854771712), larger than any
// machine's memory, so the caller's min with the RAM drops it.
func cgroupLimit(root string) int64 {
	groups, err := os.ReadFile(filepath.Join(root, "proc/self/cgroup"))
	if err != nil {
		return 0
	}
	var v2Path, v1Path string
	var v2, v1 bool
	for _, line := range strings.Split(string(groups), "\n") {
		// hierarchy-ID:controller-list:cgroup-path
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		switch {
		case f[0] == "0" && f[1] == "":
			v2, v2Path = true, f[2]
		case hasField(f[1], ",", "memory"):
			v1, v1Path = true, f[2]
		}
	}
	mounts := cgroupMounts(root)
	var limit int64
	lower := func(n int64) {
		if n > 0 && (limit == 0 || n < limit) {
			limit = n
		}
	}
	for _, m := range mounts {
		switch {
		case m.v2 && v2:
			lower(limitUp(root, m, v2Path, "memory.max"))
		case !m.v2 && v1:
			lower(limitUp(root, m, v1Path, "memory.limit_in_bytes"))
		}
	}
	return limit
}

// cgroupMount is where one cgroup hierarchy is mounted: at dir, showing the
// hierarchy from its cgroup base (a cgroup namespace or a bind mount shows
// only a subtree).
type cgroupMount struct {
	dir, base string
	v2        bool
}

// cgroupMounts lists the cgroup2 mounts and the v1 mounts of the memory
// controller.
func cgroupMounts(root string) []cgroupMount {
	b, err := os.ReadFile(filepath.Join(root, "proc/self/mountinfo"))
	if err != nil {
		return []cgroupMount{
			{dir: "/sys/fs/cgroup", base: "/", v2: true},
			{dir: "/sys/fs/cgroup/memory", base: "/"},
		}
	}
	var mounts []cgroupMount
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// 36 35 98:0 /base /mount/point opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 1 {
			continue
		}
		m := cgroupMount{base: unescapeMount(f[3]), dir: unescapeMount(f[4])}
		switch {
		case g[0] == "cgroup2":
			m.v2 = true
		case g[0] == "cgroup" && len(g) >= 3 && hasField(g[2], ",", "memory"):
		default:
			continue
		}
		mounts = append(mounts, m)
	}
	return mounts
}

// limitUp reads file in the directory of cgroup path under mount m and in
// each directory above it up to the mount, and returns the lowest limit
// found (0: none).
func limitUp(root string, m cgroupMount, cgroup, file string) int64 {
	rel := cgroup
	if m.base != "/" {
		r, ok := strings.CutPrefix(cgroup, m.base)
		if !ok || (r != "" && r[0] != '/') {
			// The process's cgroup is outside what is mounted here (a
			// namespace whose paths are relative to its own root).
			r = cgroup
		}
		rel = r
	}
	rel = path.Clean("/" + rel)
	var limit int64
	for {
		if n := readLimit(filepath.Join(root, m.dir, rel, file)); n > 0 && (limit == 0 || n < limit) {
			limit = n
		}
		if rel == "/" {
			return limit
		}
		rel = path.Dir(rel)
	}
}

// readLimit parses a cgroup limit file: a number of bytes, or "max" (v2's
// no limit) and unreadable files as 0.
func readLimit(name string) int64 {
	b, err := os.ReadFile(name)
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}

func hasField(list, sep, want string) bool {
	for _, s := range strings.Split(list, sep) {
		if s == want {
			return true
		}
	}
	return false
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space, ...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
