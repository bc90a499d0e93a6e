package container

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// RuncProcess names the runc container a task belongs to by the runc
// command that started it: the task's nearest ancestor running `runc run`
// or `runc create` (docker's, containerd's and CRI-O's shims call runc the
// same way). It is the only witness where the cgroup says nothing: runc in
// a user namespace (rootless) skips cgroups it cannot write, and a failed
// start's cgroup is removed within milliseconds. runc's init stages
// (comm "runc:[0:PARENT]", "runc:[1:CHILD]", "runc:[2:INIT]") are children
// of that command (nsexec clones them with CLONE_PARENT).
func RuncProcess(proc string, pid uint32) (id, stateRoot string, ok bool) {
	for range 4 {
		ppid, ok := parentOf(proc, pid)
		if !ok || ppid <= 1 {
			return "", "", false
		}
		pid = ppid
		b, err := os.ReadFile(filepath.Join(proc, strconv.FormatUint(uint64(pid), 10), "cmdline"))
		if err != nil {
			return "", "", false
		}
		args := strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
		if id, root, ok := parseRuncArgs(args); ok {
			return id, root, true
		}
	}
	return "", "", false
}

func parentOf(proc string, pid uint32) (uint32, bool) {
	b, err := os.ReadFile(filepath.Join(proc, strconv.FormatUint(uint64(pid), 10), "status"))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PPid:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
			return uint32(n), err == nil
		}
	}
	return 0, false
}

// runc's flags that take a value (runc 1.1 main.go and run.go/create.go):
// the container id is the first argument after run/create that is neither
// a flag nor a flag's value.
var runcValueFlags = map[string]bool{
	"--root": true, "--log": true, "--log-format": true, "--criu": true, "--rootless": true,
	"--bundle": true, "-b": true, "--console-socket": true, "--pid-file": true, "--preserve-fds": true,
	"--pidfd-socket": true,
}

func parseRuncArgs(args []string) (id, root string, ok bool) {
	if len(args) < 2 || filepath.Base(args[0]) != "runc" {
		return "", "", false
	}
	root = "/run/runc"
	sub := ""
	for i := 1; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(a, "=")
		switch {
		case strings.HasPrefix(a, "-"):
			if runcValueFlags[name] && !hasVal && i+1 < len(args) {
				val = args[i+1]
				i++
			}
			if name == "--root" && sub == "" {
				root = val
			}
		case sub == "":
			if a != "run" && a != "create" {
				return "", "", false
			}
			sub = a
		default:
			return a, root, true
		}
	}
	return "", "", false
}
