package privs

import (
	"fmt"

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

// Check verifies the capabilities, then lifts the memlock limit that
// kernels before 5.11 charge BPF maps against.
func Check() error {
	eff, err := Effective()
	if err != nil {
		return err
	}
	if err := Error(Missing(eff, kernelHasCapBPF())); err != nil {
		return err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("remove memlock limit: %w", err)
	}
	return nil
}
