package gctune

import (
	"os"
	"path/filepath"
	"testing"
)

// A fake file tree: path (relative to the root) → content.
type tree map[string]string

func (tr tree) write(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range tr {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const (
	mib = 1 << 20
	// v1's "no limit".
	v1Unlimited = "9223372036854771712\n"

	mountsV2 = "31 23 0:28 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
	// v1 as on a host or a container without a cgroup namespace (the
	// memory hierarchy mounted whole), plus an unrelated mount.
	mountsV1 = "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n" +
		"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n" +
		"32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n" +
		"35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n" +
		"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
	groupsV1 = "9:name=systemd:/\n4:memory:/jobs/worker\n2:cpuacct:/\n1:cpu:/\n0::/\n"
)

func TestCgroupLimit(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		tree tree
		want int64
	}{
		{"v2 in a cgroup namespace", tree{
			"proc/self/cgroup":           "0::/\n",
			"proc/self/mountinfo":        mountsV2,
			"sys/fs/cgroup/memory.max":   "536870912\n",
			"sys/fs/cgroup/cgroup.procs": "1\n",
		}, 512 * mib},
		{"v2 limit on a parent cgroup", tree{
			"proc/self/cgroup":                  "0::/app/web\n",
			"proc/self/mountinfo":               mountsV2,
			"sys/fs/cgroup/app/memory.max":      "1073741824\n",
			"sys/fs/cgroup/app/web/memory.max":  "max\n",
			"sys/fs/cgroup/app/web/memory.high": "1\n",
		}, 1024 * mib},
		{"v2 lowest of nested limits", tree{
			"proc/self/cgroup":                 "0::/app/web\n",
			"proc/self/mountinfo":              mountsV2,
			"sys/fs/cgroup/app/memory.max":     "1073741824\n",
			"sys/fs/cgroup/app/web/memory.max": "268435456\n",
		}, 256 * mib},
		{"v2 without a limit", tree{
			"proc/self/cgroup":         "0::/\n",
			"proc/self/mountinfo":      mountsV2,
			"sys/fs/cgroup/memory.max": "max\n",
		}, 0},
		{"v1 limit on the process's cgroup", tree{
			"proc/self/cgroup":                                       groupsV1,
			"proc/self/mountinfo":                                    mountsV1,
			"sys/fs/cgroup/memory/memory.limit_in_bytes":             v1Unlimited,
			"sys/fs/cgroup/memory/jobs/worker/memory.limit_in_bytes": "268435456\n",
		}, 256 * mib},
		{"v1 limit on a parent cgroup", tree{
			"proc/self/cgroup":                                       groupsV1,
			"proc/self/mountinfo":                                    mountsV1,
			"sys/fs/cgroup/memory/memory.limit_in_bytes":             v1Unlimited,
			"sys/fs/cgroup/memory/jobs/memory.limit_in_bytes":        "134217728\n",
			"sys/fs/cgroup/memory/jobs/worker/memory.limit_in_bytes": v1Unlimited,
		}, 128 * mib},
		{"v1 unlimited", tree{
			"proc/self/cgroup":                                       groupsV1,
			"proc/self/mountinfo":                                    mountsV1,
			"sys/fs/cgroup/memory/memory.limit_in_bytes":             v1Unlimited,
			"sys/fs/cgroup/memory/jobs/worker/memory.limit_in_bytes": v1Unlimited,
		}, 9223372036854771712},
		{"v1 in a container: its own cgroup mounted as the root", tree{
			"proc/self/cgroup":                           "5:memory:/docker/4f2a\n0::/\n",
			"proc/self/mountinfo":                        "35 31 0:32 /docker/4f2a /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "104857600\n",
		}, 100 * mib},
		{"v1 controllers mounted together, in a cgroup namespace", tree{
			"proc/self/cgroup":                               "3:cpu,memory:/\n",
			"proc/self/mountinfo":                            "35 31 0:32 /docker/4f2a /sys/fs/cgroup/cpu,memory rw - cgroup cgroup rw,cpu,memory\n",
			"sys/fs/cgroup/cpu,memory/memory.limit_in_bytes": "209715200\n",
		}, 200 * mib},
		{"v1 mounted at a path with a space", tree{
			"proc/self/cgroup":            "4:memory:/\n",
			"proc/self/mountinfo":         `35 31 0:32 / /cg\040v1 rw - cgroup cgroup rw,memory` + "\n",
			"cg v1/memory.limit_in_bytes": "52428800\n",
		}, 50 * mib},
		{"hybrid: v2 without the memory controller, v1 with it", tree{
			"proc/self/cgroup":                                       groupsV1,
			"proc/self/mountinfo":                                    mountsV1,
			"sys/fs/cgroup/unified/cgroup.procs":                     "1\n",
			"sys/fs/cgroup/memory/jobs/worker/memory.limit_in_bytes": "67108864\n",
		}, 64 * mib},
		{"no mountinfo: the usual places", tree{
			"proc/self/cgroup": "4:memory:/jobs\n0::/\n",
			"sys/fs/cgroup/memory/jobs/memory.limit_in_bytes": "33554432\n",
		}, 32 * mib},
		{"no cgroup file", tree{
			"sys/fs/cgroup/memory.max": "536870912\n",
		}, 0},
		{"garbage", tree{
			"proc/self/cgroup":         "nonsense\n0::/\n",
			"proc/self/mountinfo":      "short line\n1 2 3 - cgroup2\n" + mountsV2,
			"sys/fs/cgroup/memory.max": "lots\n",
		}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := cgroupLimit(c.tree.write(t)); got != c.want {
				t.Errorf("cgroupLimit = %d (%d MiB), want %d (%d MiB)", got, got/mib, c.want, c.want/mib)
			}
		})
	}
}

func TestUnescapeMount(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`/a\040b`:  "/a b",
		`/tab\011`: "/tab\t",
		`/plain`:   "/plain",
		`/bad\09`:  `/bad\09`,
		`/end\04`:  `/end\04`,
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}
