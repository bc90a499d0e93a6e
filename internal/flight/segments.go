package flight

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Data directory layout.
const (
	segmentsDir  = "segments"
	incidentsDir = "incidents"
	segmentExt   = ".fst"
)

// nameLayout is the UTC creation time that starts a segment's name: fixed
// width, so names sort in time order.
const nameLayout = "20060102T150405.000000000Z"

// segment is one segment file as listed.
type segment struct {
	name string
	size int64
	mod  time.Time // the last flush: its newest event is at most FlushEvery older
}

// listSegments returns the segments of a segments directory in name
// (creation) order. Files that are not named like segments are left out.
func listSegments(dir string) ([]segment, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []segment
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if _, ok := segmentTime(e.Name()); !ok {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // pruned since ReadDir
		}
		if err != nil {
			return nil, err
		}
		out = append(out, segment{name: e.Name(), size: info.Size(), mod: info.ModTime()})
	}
	slices.SortFunc(out, func(a, b segment) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// segmentName names a segment created at t by this process.
func segmentName(t time.Time) string {
	return fmt.Sprintf("%s-%d%s", t.UTC().Format(nameLayout), os.Getpid(), segmentExt)
}

// segmentTime parses the creation time out of a segment's name.
func segmentTime(name string) (time.Time, bool) {
	stamp, rest, ok := strings.Cut(name, "-")
	if !ok || !strings.HasSuffix(rest, segmentExt) {
		return time.Time{}, false
	}
	t, err := time.Parse(nameLayout, stamp)
	return t, err == nil
}

// IsDataDir reports whether path is a flight-recorder data directory (it
// has a segments/ directory) rather than a trace file.
func IsDataDir(path string) bool {
	st, err := os.Stat(filepath.Join(path, segmentsDir))
	return err == nil && st.IsDir()
}

// dataDirError turns a failure to use the data directory into one line
// naming the problem and the fix.
func dataDirError(dir string, err error) error {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return fmt.Errorf("data dir %s: %v: pass --data-dir", dir, err)
	}
	switch errno {
	case syscall.EACCES, syscall.EPERM:
		return fmt.Errorf("data dir %s: %w: run as root or pass --data-dir", dir, errno)
	case syscall.EROFS:
		return fmt.Errorf("data dir %s: %w: pass --data-dir on a writable disk", dir, errno)
	case syscall.ENOSPC, syscall.EDQUOT:
		return fmt.Errorf("data dir %s: %w: free space or pass --data-dir", dir, errno)
	case syscall.ENOTDIR, syscall.EEXIST:
		return fmt.Errorf("data dir %s: not a directory: pass --data-dir", dir)
	}
	return fmt.Errorf("data dir %s: %w: pass --data-dir", dir, errno)
}

// checkWritable creates and removes a file in dir: Open fails at start, not
// at the first rotation, when the directory cannot be written.
func checkWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return err
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
