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
	coll, err := s.loadPrograms(spec, progs, nil, nil)
	if err != nil {
		return "", describeLoadError("load ns_syscall", err)
	}
	for _, sc := range present {
		// Exit before entry, so no entry is left without its exit.
		if err := s.attachProgram(coll.Programs["ns_exit_"+sc], "tracepoint", "syscalls/sys_exit_"+sc); err != nil {
			return "", err
		}
		if err := s.attachProgram(coll.Programs["ns_enter_"+sc], "tracepoint", "syscalls/sys_enter_"+sc); err != nil {
			return "", err
		}
	}
	return "syscalls/sys_{enter,exit}_{" + strings.Join(present, ",") + "}", nil
}
