package main

import (
	"context"
	"fmt"

	"github.com/fragscope/fragscope/internal/cgroup"
	"github.com/fragscope/fragscope/internal/container"
)

// cgroupSetup decides the attribution mode from --cgroup-mode and the
// host's mounts, and returns a resolver for that hierarchy's ids. On v1 and
// hybrid hosts (CentOS 7; the development machine) the v1 memory cgroup is
// the one the kernel charges, and most tasks sit in the v2 root.
func cgroupSetup(flag string) (v1 bool, res *cgroup.Resolver, err error) {
	override, err := cgroup.ParseMode(flag)
	if err != nil {
		return false, nil, fmt.Errorf("--cgroup-mode: %w", err)
	}
	detected, mounts, err := cgroup.Detect()
	if err != nil {
		return false, nil, fmt.Errorf("detect cgroup mode: %w", err)
	}
	mode, err := cgroup.Select(override, detected, mounts)
	if err != nil {
		return false, nil, fmt.Errorf("--cgroup-mode %s: %w", flag, err)
	}
	mount, hierarchy, root, err := mounts.Hierarchy(mode)
	if err != nil {
		return false, nil, err
	}
	return mode.MemoryV1(), cgroup.NewResolver(mount, hierarchy, cgroup.WithMountRoot(root)), nil
}

// podLookup asks the CRI (through crictl, when present) for pod names; it
// stays silent when no runtime socket is reachable.
func podLookup(ctx context.Context, endpoint string) func(uid string) (string, string, bool) {
	cri := container.NewCRI(endpoint)
	return func(uid string) (string, string, bool) {
		pod, ok := cri.Pod(ctx, uid)
		return pod.Name, pod.Namespace, ok
	}
}
