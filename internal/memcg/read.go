package memcg

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fragscope/fragscope/internal/event"
)

// maxLevels bounds the walk up a hierarchy: deeper trees than kubelet's
// (kubepods/burstable/pod/container, 4) exist, 16 is far beyond them.
const maxLevels = 16

// v1Unlimited is PAGE_COUNTER_MAX in bytes as v1 prints it for "no limit"
// on 64-bit (LONG_MAX rounded down to a page): anything this large is
// unlimited.
const v1Unlimited = math.MaxInt64 / 2

// Reader finds and reads a task's memory cgroup. Zero fields are found
// from /proc/self/mountinfo by NewReader.
type Reader struct {
	Proc string // "/proc"
	// V1 is the mount point of the v1 hierarchy with the memory
	// controller ("" none); V2 the cgroup2 mount, used when V1 is "" and
	// its root offers the memory controller.
	V1, V2 string
}

// ErrNoController says the kernel offers no memory cgroup controller.
var ErrNoController = errors.New("no memory cgroup controller is mounted (neither a v1 memory hierarchy nor cgroup2 with memory)")

// NewReader finds the memory controller's hierarchy of this mount
// namespace.
func NewReader() (*Reader, error) {
	r := &Reader{Proc: "/proc"}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("memcg: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// mountinfo: id parent maj:min root mountpoint opts ... - fstype source superopts
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, x := range fields {
			if x == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+3 >= len(fields) || fields[3] != "/" {
			continue // a bind mount of a subtree cannot be walked to its root
		}
		switch fields[sep+1] {
		case "cgroup":
			for _, o := range strings.Split(fields[sep+3], ",") {
				if o == "memory" && r.V1 == "" {
					r.V1 = fields[4]
				}
			}
		case "cgroup2":
			if r.V2 == "" {
				r.V2 = fields[4]
			}
		}
	}
	if r.V1 == "" && !r.v2Memory() {
		return r, ErrNoController
	}
	return r, nil
}

func (r *Reader) v2Memory() bool {
	if r.V2 == "" {
		return false
	}
	b, err := os.ReadFile(filepath.Join(r.V2, "cgroup.controllers"))
	return err == nil && bytes.Contains(append(append([]byte(" "), b...), ' '), []byte(" memory"))
}

// Version is the memory controller's hierarchy version, 0 when none.
func (r *Reader) Version() int {
	switch {
	case r.V1 != "":
		return 1
	case r.v2Memory():
		return 2
	}
	return 0
}

// Read returns the state of task tid's memory cgroup and its ancestors.
// v2Path is the task's cgroup2 path as the cgroup resolver knows it, the
// fallback when the task exited before its /proc entry could be read.
func (r *Reader) Read(tid uint32, v2Path string, now time.Time) (*event.MemcgState, error) {
	ver := r.Version()
	if ver == 0 {
		return nil, ErrNoController
	}
	mount := r.V1
	if ver == 2 {
		mount = r.V2
	}
	st := &event.MemcgState{Time: now, TID: tid, Version: ver, From: "proc", Reason: "failure"}
	path, err := r.procPath(tid, ver)
	if err == nil && path == "/" {
		// An exited task (a zombie) is moved to the root by cgroup_exit:
		// "/" says nothing of where it failed, unless it is all we have.
		err = errors.New("task exited: /proc shows the root cgroup")
	}
	if err != nil {
		if v2Path == "" || v2Path == "/" || strings.HasPrefix(v2Path, "/..") {
			return nil, fmt.Errorf("task %d: %w", tid, err)
		}
		path, st.From = v2Path, "v2_path"
	}
	if strings.HasPrefix(path, "/..") {
		// A cgroup namespace root above ours: not under our mount.
		return nil, fmt.Errorf("memcg of task %d is outside this cgroup namespace (%s)", tid, path)
	}
	var first error
	st.Levels, first = walk(mount, path, ver)
	if len(st.Levels) == 0 {
		if first != nil {
			return nil, fmt.Errorf("memcg %s: %w", path, first)
		}
		return nil, fmt.Errorf("task %d is in the root memory cgroup: no limit applies", tid)
	}
	return st, nil
}

// walk reads path and its ancestors below the root. Levels already removed
// are skipped: a runtime removes a failed container's cgroup within
// milliseconds, while the parent whose limit refused the charge stays.
func walk(mount, path string, ver int) ([]event.MemcgLevel, error) {
	var levels []event.MemcgLevel
	var first error
	for p := filepath.Clean(path); p != "/" && p != "." && len(levels) < maxLevels; p = filepath.Dir(p) {
		l, err := readLevel(filepath.Join(mount, p), ver)
		if err != nil {
			if first == nil {
				first = err
			}
			if len(levels) == 0 {
				continue
			}
			break
		}
		l.Path = p
		levels = append(levels, l)
	}
	return levels, first
}

// ReadPath reads the cgroup at path (relative to the hierarchy) and its
// ancestors: the interval re-reading of cgroups that failed recently.
func (r *Reader) ReadPath(path string, now time.Time) (*event.MemcgState, error) {
	ver := r.Version()
	mount := r.V1
	if ver == 2 {
		mount = r.V2
	}
	st := &event.MemcgState{Time: now, Version: ver, From: "path", Reason: "interval"}
	levels, err := readLevel(filepath.Join(mount, path), ver)
	if err != nil {
		return nil, err // gone: stop watching it
	}
	levels.Path = filepath.Clean(path)
	rest, _ := walk(mount, filepath.Dir(path), ver)
	st.Levels = append([]event.MemcgLevel{levels}, rest...)
	return st, nil
}

// procPath is the task's memory cgroup path from /proc/<tid>/cgroup.
func (r *Reader) procPath(tid uint32, ver int) (string, error) {
	b, err := os.ReadFile(filepath.Join(r.Proc, strconv.FormatUint(uint64(tid), 10), "cgroup"))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		// hierarchy-id:controller-list:path
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if ver == 2 && parts[0] == "0" && parts[1] == "" {
			return parts[2], nil
		}
		if ver == 1 {
			for _, c := range strings.Split(parts[1], ",") {
				if c == "memory" {
					return parts[2], nil
				}
			}
		}
	}
	return "", fmt.Errorf("/proc/%d/cgroup names no memory cgroup", tid)
}

func readLevel(dir string, ver int) (event.MemcgLevel, error) {
	var l event.MemcgLevel
	var err error
	if ver == 1 {
		if l.Limit, err = readLimit(dir, "memory.limit_in_bytes"); err != nil {
			return l, err
		}
		l.Usage, _ = readUint(dir, "memory.usage_in_bytes")
		l.Failcnt, _ = readUint(dir, "memory.failcnt")
		if kl, err := readLimit(dir, "memory.kmem.limit_in_bytes"); err == nil {
			l.HaveKmem, l.KmemLimit = true, kl
			l.KmemUsage, _ = readUint(dir, "memory.kmem.usage_in_bytes")
			l.KmemFailcnt, _ = readUint(dir, "memory.kmem.failcnt")
		}
		return l, nil
	}
	if l.Limit, err = readLimit(dir, "memory.max"); err != nil {
		return l, err
	}
	l.Usage, _ = readUint(dir, "memory.current")
	if b, err := os.ReadFile(filepath.Join(dir, "memory.events")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, " ")
			if !ok {
				continue
			}
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			switch k {
			case "max":
				l.EventsMax = n
			case "oom":
				l.EventsOOM = n
			case "oom_kill":
				l.EventsOOMKill = n
			}
		}
	}
	return l, nil
}

func readUint(dir, name string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// readLimit reads a limit in bytes, -1 for none ("max", or v1's
// PAGE_COUNTER_MAX).
func readLimit(dir, name string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return -1, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a limit", name, s)
	}
	if n >= v1Unlimited {
		return -1, nil
	}
	return int64(n), nil
}
