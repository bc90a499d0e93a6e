package cgroup

import (
	"io/fs"
	"path/filepath"
	"strings"
)

// walkStat returns the inode (= cgroup id) of every directory under root, with
// its path relative to root ("/" for root). Directories that vanish or
// cannot be read during the walk are skipped: cgroups come and go while we
// walk. Only an error on root itself is returned.
//
// It is the portable walk (filepath.WalkDir and one lstat per directory);
// on Linux walk reads the ids straight from getdents instead, see
// walk_linux.go.
func walkStat(root string) (map[uint64]string, error) {
	seen := make(map[uint64]string)
	strip := len(root) + 1 // root and the separator after it
	if strings.HasSuffix(root, "/") {
		strip = len(root) // root is "/"
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			return nil
		}
		if !d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		ino, ok := inode(fi)
		if !ok {
			return nil
		}
		rel := "/"
		if p != root {
			rel = "/" + filepath.ToSlash(p[strip:])
		}
		seen[ino] = rel
		return nil
	})
	return seen, err
}
