//go:build unix

package diskspace

import "golang.org/x/sys/unix"

// Stat reads the volume that holds dir with statfs(2).
func Stat(dir string) (Usage, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return Usage{}, err
	}
	bs := uint64(st.Bsize) //nolint:unconvert // int64 or uint32 by platform
	return Usage{Free: uint64(st.Bavail) * bs, Total: uint64(st.Blocks) * bs}, nil
}
