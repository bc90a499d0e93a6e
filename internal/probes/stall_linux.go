package probes

import (
	"errors"

	"github.com/cilium/ebpf"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/tracefs"
)

// CallMemcgOOMWait names the cgroup v1 memcg OOM wait in InFlight.Call.
const CallMemcgOOMWait = event.CallMemcgOOMWait

// MemcgOOMWaitFunc is the kernel function a task sleeps in, as its wchan
// shows, while it waits in the cgroup v1 memcg OOM wait: called at the end
// of the page fault whose charge failed (since Linux 3.12, commit
// 3812c8c8f395 "mm: memcg: do not trap chargers with full callstack on
// OOM"; still so in 6.18).
const MemcgOOMWaitFunc = "mem_cgroup_oom_synchronize"

// InFlight is one entry of the kernel's in-flight maps: a namespace
// syscall that has not returned, or a task that reclaimed against its
// memory cgroup's limit (CallMemcgOOMWait: a candidate, not yet a wait).
type InFlight struct {
	Call  string
	Task  event.Task // PID, TID, Comm, CgroupID as captured in the kernel
	Flags uint64
	// EnterNs is CLOCK_MONOTONIC: the syscall's entry, or the end of the
	// task's latest memcg reclaim.
	EnterNs uint64
}

func (s *Set) attachMemcgWait() (string, error) {
	if !s.opts.CgroupV1Memory {
		return "", errors.New("the memory controller is on cgroup v2 here: the memcg OOM wait (memory.oom_control's oom_kill_disable) exists only in cgroup v1")
	}
	const group, name = "vmscan", "mm_vmscan_memcg_reclaim_end"
	if !tracefs.Exists(group, name) {
		return "", errors.New("no vmscan:mm_vmscan_memcg_reclaim_end tracepoint: kernel built without CONFIG_MEMCG")
	}
	spec, err := loadMemcgwait()
	if err != nil {
		return "", err
	}
	coll, err := s.loadPrograms(spec, []string{"memcg_reclaim_end", "memcg_wait_exit"}, nil, nil)
	if err != nil {
		return "", describeLoadError("load memcg_oom_wait", err)
	}
	// The exit first: a candidate noted before it attached could outlive
	// its task.
	if err := s.attachProgram(coll.Programs["memcg_wait_exit"], "tracepoint", "sched/sched_process_exit"); err != nil {
		return "", err
	}
	if err := s.attachProgram(coll.Programs["memcg_reclaim_end"], "tracepoint", group+"/"+name); err != nil {
		return "", err
	}
	s.memcgWaits = coll.Maps["memcg_waits"]
	return group + "/" + name + ", sched/sched_process_exit", nil
}

// InFlight appends the entries of the in-flight maps to buf. A scan every
// few hundred milliseconds of maps that hold the few calls in flight at
// that moment: no per-call userspace work.
func (s *Set) InFlight(buf []InFlight) ([]InFlight, error) {
	var errs []error
	if s.nsCalls != nil {
		var (
			tid uint32
			c   nssyscallNsCall
		)
		it := s.nsCalls.Iterate()
		for it.Next(&tid, &c) {
			buf = append(buf, InFlight{
				Call:    syscallName(c.Syscall),
				Task:    event.Task{PID: c.Pid, TID: tid, Comm: cStringInt8(c.Comm[:]), CgroupID: c.CgroupId},
				Flags:   c.Flags,
				EnterNs: c.EnterNs,
			})
		}
		errs = append(errs, it.Err())
	}
	if s.memcgWaits != nil {
		var (
			tid uint32
			w   memcgwaitMemcgWait
		)
		it := s.memcgWaits.Iterate()
		for it.Next(&tid, &w) {
			buf = append(buf, InFlight{
				Call:    CallMemcgOOMWait,
				Task:    event.Task{PID: w.Pid, TID: tid, Comm: cStringInt8(w.Comm[:]), CgroupID: w.CgroupId},
				EnterNs: w.LastNs,
			})
		}
		errs = append(errs, it.Err())
	}
	return buf, errors.Join(errs...)
}

// ForgetInFlight deletes the entry of tid for call: a memcg candidate that
// turned out not to wait, or a namespace syscall whose task is gone (its
// exit will never come). An entry already gone is no error.
func (s *Set) ForgetInFlight(call string, tid uint32) error {
	var maps []*ebpf.Map
	if call == CallMemcgOOMWait {
		maps = []*ebpf.Map{s.memcgWaits}
	} else {
		maps = []*ebpf.Map{s.nsCalls, s.inflight}
	}
	var errs []error
	for _, m := range maps {
		if m == nil {
			continue
		}
		if err := m.Delete(tid); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
