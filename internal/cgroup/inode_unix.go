//go:build unix

package cgroup

import (
	"io/fs"
	"syscall"
)

// inode returns a file's inode number. For a cgroupfs directory that is the
// kernfs node id, which is the cgroup id BPF reports: since Linux 5.5
// (kernfs ids became u64) a 64-bit kernel uses the whole id as the inode
// number. Older kernels kept a generation in the top 32 bits of the id and
// only the low 32 bits in the inode; those ids do not resolve.
func inode(fi fs.FileInfo) (uint64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return uint64(st.Ino), true
}
