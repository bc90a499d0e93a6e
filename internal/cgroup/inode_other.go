//go:build !unix

package cgroup

import "io/fs"

// inode is unavailable off Unix: cgroups only exist on Linux, and the rest
// of the package still builds for tests of mountinfo parsing.
func inode(fs.FileInfo) (uint64, bool) { return 0, false }
