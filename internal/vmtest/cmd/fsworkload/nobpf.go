//go:build linux

package main

import (
	"os"
	"os/exec"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// noBPF execs args[0] under a seccomp filter that fails bpf(2) with EPERM
// and allows everything else: the kernel itself refuses every BPF object
// to that process and its children, as systemd's SystemCallFilter=~bpf or
// a container runtime's default profile (without CAP_SYS_ADMIN) does.
func noBPF(args []string) {
	if len(args) == 0 {
		fail("nobpf: no command")
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		fail("nobpf: %v", err)
	}
	const (
		archOff = 4 // struct seccomp_data: nr (u32), arch (u32)
		nrOff   = 0
	)
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: archOff},
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 1, Jf: 0, K: unix.AUDIT_ARCH_X86_64},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: nrOff},
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: unix.SYS_BPF},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fail("nobpf: PR_SET_NO_NEW_PRIVS: %v", err)
	}
	// SECCOMP_FILTER_FLAG_TSYNC: every thread of this Go process, so the
	// exec'd program inherits the filter whichever thread execs.
	if _, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog))); errno != 0 {
		fail("nobpf: seccomp: %v", errno)
	}
	if err := syscall.Exec(path, args, os.Environ()); err != nil {
		fail("nobpf: exec %s: %v", path, err)
	}
}
