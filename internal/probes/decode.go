package probes

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/snapshot"
)

// Record types: the first byte of every ringbuf record (enum event_type in
// bpf/fragscope.h).
const (
	recAllocFail   = 1
	recSlabCreate  = 2
	recNetnsCreate = 3
	recNsSyscall   = 4
	// Not an event: the failing task's stalls, for the alloc_fail after it.
	recFailureStalls = 5
	// Not an event: the free lists at a failure, for the alloc_fail after it.
	recZoneCapture = 6
)

// Decoder turns raw ringbuf records into events. Clock converts the BPF
// timestamp (CLOCK_MONOTONIC ns) to wall time; Stack symbolizes a stack id.
type Decoder struct {
	Clock func(monoNs uint64) time.Time
	Stack func(id int32) []string
}

// syscallNames maps enum ns_syscall to names.
var syscallNames = [...]string{"", "clone", "clone3", "unshare", "setns", "fork", "vfork"}

func syscallName(id uint8) string {
	if int(id) < len(syscallNames) {
		return syscallNames[id]
	}
	return fmt.Sprintf("syscall_%d", id)
}

// Decode decodes one record. Records are rare (failures, creations), so
// clarity wins over speed here: binary.Decode into the bpf2go twins.
func (d *Decoder) Decode(raw []byte) (event.Event, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("empty record")
	}
	switch raw[0] {
	case recAllocFail:
		var r pageallocAllocFailEvent
		if err := decodeRecord(raw, &r); err != nil {
			return nil, err
		}
		ev := &event.AllocFail{
			Time:        d.Clock(r.Hdr.TsNs),
			Task:        task(r.Task.CgroupId, r.Task.Pid, r.Task.Tid, r.Task.NetnsIno, r.Task.Comm),
			Order:       r.Order,
			GFP:         r.Gfp,
			Migratetype: r.Migratetype,
			Hook:        allocHookName(r.Hook),
			In:          d.ref(r.In.EnterNs, r.In.Syscall),
		}
		if d.Stack != nil && r.StackId >= 0 {
			ev.Stack = d.Stack(r.StackId)
		}
		return ev, nil
	case recSlabCreate:
		var r slabcreateSlabCreateEvent
		if err := decodeRecord(raw, &r); err != nil {
			return nil, err
		}
		return &event.SlabCreate{
			Time:    d.Clock(r.Hdr.TsNs),
			Task:    task(r.Task.CgroupId, r.Task.Pid, r.Task.Tid, r.Task.NetnsIno, r.Task.Comm),
			Name:    cStringInt8(r.Name[:]),
			Size:    r.Size,
			Flags:   r.Flags,
			Failed:  r.Failed != 0,
			Latency: time.Duration(r.LatencyNs),
			In:      d.ref(r.In.EnterNs, r.In.Syscall),
		}, nil
	case recNetnsCreate:
		var r netnsNetnsCreateEvent
		if err := decodeRecord(raw, &r); err != nil {
			return nil, err
		}
		return &event.NetnsCreate{
			Time:    d.Clock(r.Hdr.TsNs),
			Task:    task(r.Task.CgroupId, r.Task.Pid, r.Task.Tid, r.Task.NetnsIno, r.Task.Comm),
			Errno:   -r.Err,
			Inode:   r.Inum,
			Latency: time.Duration(r.LatencyNs),
			In:      d.ref(r.In.EnterNs, r.In.Syscall),
		}, nil
	case recNsSyscall:
		var r nssyscallNsSyscallEvent
		if err := decodeRecord(raw, &r); err != nil {
			return nil, err
		}
		ev := &event.NsSyscall{
			Time:    d.Clock(r.Hdr.TsNs),
			Task:    task(r.Task.CgroupId, r.Task.Pid, r.Task.Tid, r.Task.NetnsIno, r.Task.Comm),
			Syscall: syscallName(r.Syscall),
			Flags:   r.Flags,
			Errno:   int32(-r.Ret),
			Enter:   d.Clock(r.EnterNs),
			Latency: time.Duration(r.Hdr.TsNs - r.EnterNs),
		}
		if r.Ret >= 0 {
			// A successful call, streamed because it ran past the stall
			// threshold: the end of a stall, not a failure.
			ev.Errno = 0
		}
		if r.EnterNs == 0 {
			// A fork or thread without CLONE_NEW* flags, reported only on
			// its failing exit (bpf/nssyscall.bpf.c): no entry time, and
			// no evidence inside it was tied to it.
			ev.Enter, ev.Latency = ev.Time, 0
		}
		return ev, nil
	}
	return nil, fmt.Errorf("unknown record type %d (%d bytes)", raw[0], len(raw))
}

// stallKinds names enum stall_kind (bpf/fragscope.h).
var stallKinds = [...]string{1: event.StallDirectCompaction, 2: event.StallDirectReclaim, 3: event.StallMemcgReclaim}

func stallKind(k uint8) string {
	if int(k) < len(stallKinds) && stallKinds[k] != "" {
		return stallKinds[k]
	}
	return fmt.Sprintf("kind %d", k)
}

// RecentStall is one entry of a task's ring of recent stalls, with the
// kernel's monotonic end time.
type RecentStall struct {
	EndNs, DurNs, Reclaimed, GFP uint64
	Kind                         string
	Order                        uint8
	Result                       int // index into StallCounts.Results
}

// ringStalls unrolls a task's ring of recent stalls, oldest first.
func ringStalls(t *memstallTaskStalls) []RecentStall {
	n := uint64(len(t.S))
	var out []RecentStall
	for i := t.Next - min(t.Next, n); i < t.Next; i++ {
		r := t.S[i%n]
		out = append(out, RecentStall{EndNs: r.EndNs, DurNs: r.DurNs, Reclaimed: r.Reclaimed, GFP: r.Gfp,
			Kind: stallKind(r.Kind), Order: r.Order, Result: int(r.Result)})
	}
	return out
}

// FailureStalls is a failing task's recent stalls as the kernel copied them
// at the failure (bpf/pagealloc.bpf.c), streamed just before its alloc_fail.
type FailureStalls struct {
	TID    uint32
	At     time.Time
	Stalls []RecentStall
}

// FailureStalls decodes raw if it is a failure_stalls record; ok is false
// for every other record type, which Decode handles.
func (d *Decoder) FailureStalls(raw []byte) (fs *FailureStalls, ok bool, err error) {
	if len(raw) == 0 || raw[0] != recFailureStalls {
		return nil, false, nil
	}
	var r pageallocFailureStallsEvent
	if err := decodeRecord(raw, &r); err != nil {
		return nil, true, err
	}
	t := memstallTaskStalls(r.T) // the same struct task_stalls, generated for each object
	return &FailureStalls{TID: r.Tid, At: d.Clock(r.Hdr.TsNs), Stalls: ringStalls(&t)}, true, nil
}

// ZoneCapture is the free lists of the failing allocation's node as the
// kernel read them at the failure (bpf/pagealloc.bpf.c), streamed just
// before its alloc_fail.
type ZoneCapture struct {
	TID   uint32
	At    time.Time
	Node  int
	Zones []snapshot.CapturedZone // by enum zone_type index
}

// ZoneCapture decodes raw if it is a zone_capture record; ok is false for
// every other record type. Zones and orders are the kernel's counts (from
// its BTF array lengths), cut at the record's bounds.
func (d *Decoder) ZoneCapture(raw []byte) (zc *ZoneCapture, ok bool, err error) {
	if len(raw) == 0 || raw[0] != recZoneCapture {
		return nil, false, nil
	}
	var r pageallocZoneCaptureEvent
	if err := decodeRecord(raw, &r); err != nil {
		return nil, true, err
	}
	zc = &ZoneCapture{TID: r.Tid, At: d.Clock(r.Hdr.TsNs), Node: int(r.Node)}
	nz := min(int(r.NrZones), len(r.Z))
	no := min(int(r.NrOrders), len(r.Z[0].NrFree))
	for i := range nz {
		z := &r.Z[i]
		zc.Zones = append(zc.Zones, snapshot.CapturedZone{
			Index: i, FreeBlocks: slices.Clone(z.NrFree[:no]), NrFree: z.FreePages,
			Min: z.Wmark[0], Low: z.Wmark[1], High: z.Wmark[2], Boost: z.Boost,
		})
	}
	return zc, true, nil
}

func decodeRecord(raw []byte, out any) error {
	if need := binary.Size(out); len(raw) < need {
		return fmt.Errorf("record type %d: %d bytes, want %d", raw[0], len(raw), need)
	}
	_, err := binary.Decode(raw, binary.LittleEndian, out)
	return err
}

func (d *Decoder) ref(enterNs uint64, sc uint8) event.SyscallRef {
	if sc == 0 {
		return event.SyscallRef{}
	}
	return event.SyscallRef{Syscall: syscallName(sc), Enter: d.Clock(enterNs)}
}

func task(cg uint64, pid, tid, netns uint32, comm [16]int8) event.Task {
	return event.Task{PID: pid, TID: tid, Comm: cStringInt8(comm[:]), CgroupID: cg, NetnsIno: netns}
}

func cStringInt8(b []int8) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}

func allocHookName(h uint8) string {
	switch h {
	case 1:
		return "tracepoint"
	case 2:
		return "fexit"
	}
	return fmt.Sprintf("hook_%d", h)
}
