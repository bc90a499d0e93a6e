package main

import (
	"fmt"
	"os"
)

// cgroupV1Memory decides the attribution mode. On v1 and hybrid hosts
// (CentOS 7; the development machine) the memory cgroup is the one the
// kernel charges, and most tasks sit in the v2 root.
func cgroupV1Memory(mode string) (bool, error) {
	switch mode {
	case "v1":
		return true, nil
	case "v2":
		return false, nil
	case "auto", "":
		_, err := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes")
		return err == nil, nil
	}
	return false, fmt.Errorf("--cgroup-mode %q: use auto, v1 or v2", mode)
}
