package testutil

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// RemoveCgroupTree removes the cgroup at path (relative to each
// hierarchy's root) and every cgroup below it, deepest first, in every
// mounted hierarchy (v1 controllers and v2): what a runtime a test drove
// left behind. A cgroup that cannot go (a process still in it) is an error.
func RemoveCgroupTree(tb testing.TB, path string) {
	tb.Helper()
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	roots = append(roots, "/sys/fs/cgroup")
	for _, root := range roots {
		top := filepath.Join(root, path)
		if fi, err := os.Stat(top); err != nil || !fi.IsDir() {
			continue
		}
		var dirs []string
		filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for _, d := range slices.Backward(dirs) {
			if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
				tb.Errorf("remove cgroup %s: %v", d, err)
			}
		}
	}
}
