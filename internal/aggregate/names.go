package aggregate

import (
	"math"
	"strconv"
)

// The namespace bits of clone(2), clone3(2), unshare(2) and setns(2)
// (include/uapi/linux/sched.h). setns takes one of them as nstype.
const (
	CloneNewTime   = 0x00000080 // 5.6+; unshare, clone3 and setns only: in clone it is part of the exit signal
	CloneNewNS     = 0x00020000
	CloneNewCgroup = 0x02000000
	CloneNewUTS    = 0x04000000
	CloneNewIPC    = 0x08000000
	CloneNewUser   = 0x10000000
	CloneNewPID    = 0x20000000
	CloneNewNet    = 0x40000000
)

// cloneSignalMask is CSIGNAL: clone(2) carries the exit signal in the low
// byte of its flags, where CLONE_NEWTIME would otherwise be.
const cloneSignalMask = 0xff

// namespaceBits lists the CLONE_NEW* bits in ascending bit order, which is
// the order FormatNamespaces prints them in.
var namespaceBits = [...]struct {
	bit  uint64
	name string
}{
	{CloneNewTime, "CLONE_NEWTIME"},
	{CloneNewNS, "CLONE_NEWNS"},
	{CloneNewCgroup, "CLONE_NEWCGROUP"},
	{CloneNewUTS, "CLONE_NEWUTS"},
	{CloneNewIPC, "CLONE_NEWIPC"},
	{CloneNewUser, "CLONE_NEWUSER"},
	{CloneNewPID, "CLONE_NEWPID"},
	{CloneNewNet, "CLONE_NEWNET"},
}

const allNamespaceBits = CloneNewTime | CloneNewNS | CloneNewCgroup | CloneNewUTS |
	CloneNewIPC | CloneNewUser | CloneNewPID | CloneNewNet

// Namespaces returns the CLONE_NEW* bits of a namespace syscall's flags
// argument (setns: its nstype). Other clone flags (CLONE_VM, CLONE_FILES...)
// say nothing about which namespace could not be made, so they are dropped;
// for clone the low byte is the exit signal and is dropped too.
func Namespaces(syscall string, flags uint64) uint64 {
	if syscall == "clone" {
		flags &^= cloneSignalMask
	}
	return flags & allNamespaceBits
}

// FormatNamespaces names CLONE_NEW* bits, "CLONE_NEWNS|CLONE_NEWNET";
// bits that are not namespace bits follow in hex so nothing is hidden, and
// 0 (setns with nstype 0: "any type") is "0".
func FormatNamespaces(flags uint64) string {
	if flags == 0 {
		return "0"
	}
	var b []byte
	for _, n := range namespaceBits {
		if flags&n.bit == 0 {
			continue
		}
		if len(b) > 0 {
			b = append(b, '|')
		}
		b = append(b, n.name...)
	}
	if rest := flags &^ allNamespaceBits; rest != 0 {
		if len(b) > 0 {
			b = append(b, '|')
		}
		b = append(b, "0x"...)
		b = strconv.AppendUint(b, rest, 16)
	}
	return string(b)
}

//go:generate go run ./internal/errnogen errno_generated.go

// kernelErrnoNames are the kernel-internal restart codes of
// include/linux/errno.h ("should never be seen by user programs"), which a
// syscall-exit tracepoint sees before signal delivery rewrites them; no
// library names them, unix's table (errno_generated.go) ends at 133.
var kernelErrnoNames = map[int32]string{
	512: "ERESTARTSYS", 513: "ERESTARTNOINTR", 514: "ERESTARTNOHAND", 515: "ENOIOCTLCMD",
	516: "ERESTART_RESTARTBLOCK",
}

// AbsErrno is errno without its sign: probes report the kernel's -ENOMEM
// or a positive ENOMEM depending on where they read it, and both must land
// in one bucket. (MinInt32 has no positive twin and stays as it is.)
func AbsErrno(errno int32) int32 {
	if errno < 0 && errno != math.MinInt32 {
		return -errno
	}
	return errno
}

// ErrnoName names an errno, "ENOSPC", whatever its sign. 0 is ""
// (success); values not in the table are "errno N".
func ErrnoName(errno int32) string {
	if errno == 0 {
		return ""
	}
	e := AbsErrno(errno)
	if name, ok := unixErrnoNames[e]; ok {
		return name
	}
	if name, ok := kernelErrnoNames[e]; ok {
		return name
	}
	return "errno " + strconv.FormatInt(int64(e), 10)
}
