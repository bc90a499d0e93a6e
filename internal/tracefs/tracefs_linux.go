package tracefs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Candidates in the order the kernel documents them: /sys/kernel/tracing
// since 4.1, the debugfs path before.
var dirs = []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}

// Dir returns the tracefs mount point, mounting tracefs at
// /sys/kernel/tracing when no candidate holds it.
func Dir() (string, error) {
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "events")); err == nil {
			return d, nil
		}
	}
	if err := unix.Mount("tracefs", dirs[0], "tracefs", 0, ""); err != nil {
		return "", fmt.Errorf("tracefs not mounted and mounting it failed (%v): run `mount -t tracefs tracefs /sys/kernel/tracing` as root", err)
	}
	return dirs[0], nil
}

// ReadFormat reads events/<group>/<name>/format.
func ReadFormat(group, name string) (*Format, error) {
	d, err := Dir()
	if err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(d, "events", group, name, "format"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("tracepoint %s:%s does not exist on this kernel: %w", group, name, err)
		}
		return nil, err
	}
	defer f.Close()
	return ParseFormat(f)
}

// Exists reports whether the tracepoint group:name exists.
func Exists(group, name string) bool {
	d, err := Dir()
	if err != nil {
		return false
	}
	_, err = os.Stat(filepath.Join(d, "events", group, name))
	return err == nil
}
