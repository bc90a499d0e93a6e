package probes

import (
	"errors"
	"strings"

	"github.com/fragscope/fragscope/internal/tracefs"
)

// nsSyscalls are the syscalls that create or join namespaces. Each pair is
// attached only where its tracepoints exist (clone3 is 5.3+; all need
// CONFIG_FTRACE_SYSCALLS).
var nsSyscalls = []string{"clone", "clone3", "unshare", "setns"}

// spawnSyscalls take no flags and never make namespaces: only their exits
// are traced, for the failures of process creation (ENOMEM, EAGAIN...).
var spawnSyscalls = []string{"fork", "vfork"}

func (s *Set) attachNsSyscall() (string, error) {
	spec, err := loadNssyscall()
	if err != nil {
		return "", err
	}
	var progs []string
	var present []string
	for _, sc := range nsSyscalls {
		if tracefs.Exists("syscalls", "sys_enter_"+sc) && tracefs.Exists("syscalls", "sys_exit_"+sc) {
			progs = append(progs, "ns_enter_"+sc, "ns_exit_"+sc)
			present = append(present, sc)
		}
	}
	if len(progs) == 0 {
		return "", errors.New("no syscalls:sys_enter_{clone,unshare,setns} tracepoints: kernel built without CONFIG_FTRACE_SYSCALLS")
	}
	var spawns []string
	for _, sc := range spawnSyscalls {
		if tracefs.Exists("syscalls", "sys_exit_"+sc) {
			progs = append(progs, "ns_exit_"+sc)
			spawns = append(spawns, sc)
		}
	}
	consts := map[string]any{"stall_ns": uint64(max(s.opts.StallThreshold, 0))}
	coll, err := s.loadPrograms(spec, progs, consts, nil)
	if err != nil {
		return "", describeLoadError("load ns_syscall", err)
	}
	s.nsCalls = coll.Maps["ns_calls"]
	for _, sc := range present {
		// Exit before entry, so no entry is left without its exit.
		if err := s.attachProgram(coll.Programs["ns_exit_"+sc], "tracepoint", "syscalls/sys_exit_"+sc); err != nil {
			return "", err
		}
		if err := s.attachProgram(coll.Programs["ns_enter_"+sc], "tracepoint", "syscalls/sys_enter_"+sc); err != nil {
			return "", err
		}
	}
	for _, sc := range spawns {
		if err := s.attachProgram(coll.Programs["ns_exit_"+sc], "tracepoint", "syscalls/sys_exit_"+sc); err != nil {
			return "", err
		}
	}
	target := "syscalls/sys_{enter,exit}_{" + strings.Join(present, ",") + "}"
	if len(spawns) > 0 {
		target += ", sys_exit_{" + strings.Join(spawns, ",") + "}"
	}
	return target, nil
}
