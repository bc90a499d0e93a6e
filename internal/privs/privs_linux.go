package privs

import (
	"fmt"
	"os"
	"unsafe"

	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Effective returns the process's effective capability set.
func Effective() (uint64, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return 0, fmt.Errorf("capget: %w", err)
	}
	return uint64(data[0].Effective) | uint64(data[1].Effective)<<32, nil
}

// kernelHasCapBPF reports whether the kernel knows CAP_BPF: its last
// capability number is published in /proc/sys/kernel/cap_last_cap.
func kernelHasCapBPF() bool {
	var last int
	if _, err := fmt.Sscan(readFile("/proc/sys/kernel/cap_last_cap"), &last); err != nil {
		return true
	}
	return last >= CapBPF
}

// Detect reads where this process runs: host or which container engine.
func Detect() Env {
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	name, ev := ContainerFrom(os.Getenv, exists, readFile("/proc/self/cgroup"), readFile("/proc/self/mountinfo"))
	env := Env{Container: name, Evidence: ev}
	if eff, err := Effective(); err == nil {
		env.EngineHasNewCaps = eff&(1<<CapBPF|1<<CapPerfmon) != 0
	}
	return env
}

// Probe makes the two bpf(2) calls Diagnose reads.
func Probe() BPFProbe {
	p := BPFProbe{InitialUserNS: initialUserNS(readFile("/proc/self/uid_map"))}
	fmt.Sscan(statusField(readFile("/proc/self/status"), "Seccomp"), &p.Seccomp)
	attr := struct{ mapType, keySize, valueSize, maxEntries uint32 }{unix.BPF_MAP_TYPE_ARRAY, 4, 4, 1}
	fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_MAP_CREATE, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if errno != 0 {
		p.MapCreate = errno
	} else {
		unix.Close(int(fd))
	}
	if _, _, errno := unix.Syscall(unix.SYS_BPF, 1<<30, 0, 0); errno != 0 {
		p.BadCommand = errno
	}
	return p
}

// Check verifies the capabilities, that bpf(2) reaches the kernel with
// them, then lifts the memlock limit that kernels before 5.11 charge BPF
// maps against.
func Check() error {
	eff, err := Effective()
	if err != nil {
		return err
	}
	env := Detect()
	if err := Error(Missing(eff, kernelHasCapBPF()), env); err != nil {
		return err
	}
	if err := Diagnose(Probe(), env); err != nil {
		return err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("remove memlock limit: %w", err)
	}
	return nil
}
