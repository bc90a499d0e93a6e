package aggtest

import (
	"time"

	"github.com/fragscope/fragscope/internal/event"
)

// Cgroups of Kubelet: pods laid out by kubelet's systemd and cgroupfs
// drivers, a system service, and an id that never resolves.
const (
	ContainerdCgroup = 2001 // burstable pod, systemd driver, containerd
	CgroupfsCgroup   = 2002 // besteffort pod, cgroupfs driver
	CRIOCgroup       = 2003 // guaranteed pod, systemd driver, CRI-O; removed at 1.5s
	ServiceCgroup    = 2004 // /system.slice/containerd.service
	UnknownCgroup    = 2005 // never resolved
)

// Pod UIDs and container ids of Kubelet.
const (
	BurstableUID    = "6d1c3a0e-2b4f-4c1e-9a7d-0f3e5b8c2a11"
	BestEffortUID   = "9b2e7f40-1c3d-4e5f-8a9b-c0d1e2f3a4b5"
	GuaranteedUID   = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	ContainerdID    = "3c1d9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f"
	CgroupfsID      = "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1"
	CRIOContainerID = "f00dfeedf00dfeedf00dfeedf00dfeedf00dfeedf00dfeedf00dfeedf00dfeed"
)

// Cgroup paths of Kubelet, as kubelet names them.
var (
	ContainerdPath = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + underscores(BurstableUID) +
		".slice/cri-containerd-" + ContainerdID + ".scope"
	CgroupfsPath = "/kubepods/besteffort/pod" + BestEffortUID + "/" + CgroupfsID
	CRIOPath     = "/kubepods.slice/kubepods-pod" + underscores(GuaranteedUID) + ".slice/crio-" + CRIOContainerID + ".scope"
	ServicePath  = "/system.slice/containerd.service"
)

func underscores(uid string) string {
	b := []byte(uid)
	for i, c := range b {
		if c == '-' {
			b[i] = '_'
		}
	}
	return string(b)
}

// Kubelet returns a session on a Kubernetes node, three 1 s intervals:
//
//	interval 1: the containerd and CRI-O containers cause 50 and 60 fragmenting
//	            fallbacks; the containerd one makes unmovable high-order
//	            allocations, the CRI-O one suffers 2 failures; the
//	            cgroupfs pod's movable allocations fall back without
//	            fragmenting; the service allocates reclaimable order-0 pages;
//	            the CRI-O container's cgroup is removed after it
//	interval 2: the containerd container fragments 10 more: 60 in all, tied
//	            with the removed CRI-O one's 60 (ties go to the interval, then
//	            to unmovable high-order allocations); the cgroupfs pod
//	            makes order-9 movable allocations and suffers a failure; 7
//	            allocations overflow the kernel's cgroup map
//	interval 3: quiet
func Kubelet() []event.Event {
	evs := []event.Event{
		Start(),
		&event.CgroupPath{Time: T0, ID: ContainerdCgroup, Path: ContainerdPath},
		&event.CgroupPath{Time: T0, ID: CgroupfsCgroup, Path: CgroupfsPath},
		&event.CgroupPath{Time: T0, ID: CRIOCgroup, Path: CRIOPath},
		&event.CgroupPath{Time: T0, ID: ServiceCgroup, Path: ServicePath},
	}
	frag := func(id uint64, n uint64) event.ExtfragCount {
		return event.ExtfragCount{ExtfragKey: event.ExtfragKey{CgroupID: id, AllocOrder: 0, FallbackOrder: 3,
			AllocMT: Unmovable, FallbackMT: Movable, Fragmenting: true}, Count: n}
	}
	tick1 := &event.Tick{
		Time: At(time.Second), Interval: time.Second,
		Extfrag: []event.ExtfragCount{
			frag(ContainerdCgroup, 50),
			{ExtfragKey: event.ExtfragKey{CgroupID: CgroupfsCgroup, AllocOrder: 9, FallbackOrder: 10,
				AllocMT: Movable, FallbackMT: Unmovable}, Count: 20},
			frag(CRIOCgroup, 60),
		},
		Cgroups: []event.CgroupAlloc{
			{CgroupID: ContainerdCgroup, HighOrder: 24},
			{CgroupID: CRIOCgroup, HighOrder: 15, Failures: 2},
			{CgroupID: ServiceCgroup},
			{CgroupID: UnknownCgroup, HighOrder: 1},
		},
	}
	tick1.Cgroups[0].Unmovable[0] = 100
	tick1.Cgroups[0].Unmovable[3] = 20
	tick1.Cgroups[0].Unmovable[6] = 4
	tick1.Cgroups[1].Unmovable[4] = 10
	tick1.Cgroups[1].Reclaimable[3] = 5
	tick1.Cgroups[2].Reclaimable[0] = 1000
	tick1.Cgroups[3].Unmovable[9] = 1
	tick1.Allocs[0][Unmovable] = 100
	tick1.Allocs[3][Unmovable] = 20
	tick1.Allocs[4][Unmovable] = 10
	tick1.Allocs[6][Unmovable] = 4
	tick1.Allocs[9][Unmovable] = 1
	tick1.Allocs[3][Reclaimable] = 5
	tick1.Allocs[0][Reclaimable] = 1000
	tick2 := &event.Tick{
		Time: At(2 * time.Second), Interval: time.Second, CgroupOverflow: 7,
		Extfrag: []event.ExtfragCount{frag(ContainerdCgroup, 10)},
		Cgroups: []event.CgroupAlloc{
			{CgroupID: CgroupfsCgroup, HighOrder: 64, Failures: 1},
		},
	}
	tick2.Cgroups[0].Unmovable[0] = 5
	tick2.Allocs[9][Movable] = 64
	tick2.Allocs[0][Unmovable] = 5
	evs = append(evs,
		tick1,
		&event.CgroupPath{Time: At(1500 * time.Millisecond), ID: CRIOCgroup, Path: CRIOPath, Removed: true},
		tick2,
		&event.Tick{Time: At(3 * time.Second), Interval: time.Second},
	)
	return evs
}
