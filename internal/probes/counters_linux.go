package probes

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf"

	"github.com/fragscope/fragscope/internal/event"
)

// AllocCounts returns the cumulative allocation counts by order and
// migratetype, summed over CPUs. ok is false when page_alloc is not attached.
func (s *Set) AllocCounts() (counts [event.Orders][event.Migratetypes]uint64, ok bool, err error) {
	if s.allocCounts == nil {
		return counts, false, nil
	}
	var perCPU []pageallocAllocCounts
	if err := s.allocCounts.Lookup(uint32(0), &perCPU); err != nil {
		return counts, false, fmt.Errorf("read page_alloc_counts: %w", err)
	}
	for _, c := range perCPU {
		for i, n := range c.N {
			counts[i/event.Migratetypes][i%event.Migratetypes] += n
		}
	}
	return counts, true, nil
}

// ExtfragCounts returns the cumulative extfrag counts per key and the
// cumulative number of keys lost to a full map.
func (s *Set) ExtfragCounts() (map[event.ExtfragKey]uint64, uint64, error) {
	if s.extfragCounts == nil {
		return nil, 0, nil
	}
	out := map[event.ExtfragKey]uint64{}
	var (
		key    extfragExtfragKey
		perCPU []uint64
	)
	it := s.extfragCounts.Iterate()
	for it.Next(&key, &perCPU) {
		var sum uint64
		for _, n := range perCPU {
			sum += n
		}
		out[event.ExtfragKey{
			CgroupID:      key.CgroupId,
			AllocOrder:    key.AllocOrder,
			FallbackOrder: key.FallbackOrder,
			AllocMT:       key.AllocMt,
			FallbackMT:    key.FallbackMt,
			Fragmenting:   key.Fragmenting != 0,
		}] = sum
	}
	if err := it.Err(); err != nil {
		return nil, 0, fmt.Errorf("read extfrag_counts: %w", err)
	}
	overflow, err := sumPerCPU(s.extfragOverflow)
	return out, overflow, err
}

// Drops returns the cumulative number of ringbuf records lost to a full buffer.
func (s *Set) Drops() (uint64, error) { return sumPerCPU(s.drops) }

func sumPerCPU(m *ebpf.Map) (uint64, error) {
	if m == nil {
		return 0, nil
	}
	var perCPU []uint64
	if err := m.Lookup(uint32(0), &perCPU); err != nil {
		return 0, fmt.Errorf("read %s: %w", m, err)
	}
	var sum uint64
	for _, n := range perCPU {
		sum += n
	}
	return sum, nil
}

// Stack returns the kernel stack addresses recorded under id.
func (s *Set) Stack(id int32) ([]uint64, error) {
	if id < 0 {
		return nil, errors.New("no stack recorded")
	}
	var pcs [127]uint64
	if err := s.stacks.Lookup(uint32(id), &pcs); err != nil {
		return nil, fmt.Errorf("read stack %d: %w", id, err)
	}
	n := 0
	for n < len(pcs) && pcs[n] != 0 {
		n++
	}
	return append([]uint64(nil), pcs[:n]...), nil
}

// CgroupAllocs returns the cumulative per-cgroup allocation counters,
// summed over CPUs, and how many allocations were not attributed because
// the map was full.
func (s *Set) CgroupAllocs() (map[uint64]event.CgroupAlloc, uint64, error) {
	if s.cgroupAllocs == nil {
		return nil, 0, nil
	}
	out := make(map[uint64]event.CgroupAlloc, len(s.cgroupBatch.keys))
	add := func(id uint64, perCPU []pageallocCgroupAlloc) {
		var sum event.CgroupAlloc
		sum.CgroupID = id
		for _, c := range perCPU {
			for o := range c.Unmovable {
				sum.Unmovable[o] += c.Unmovable[o]
				sum.Reclaimable[o] += c.Reclaimable[o]
			}
			sum.HighOrder += c.HighOrder
			sum.Failures += c.Failures
		}
		out[id] = sum
	}
	if err := s.cgroupBatch.read(s.cgroupAllocs, add); err != nil {
		return nil, 0, fmt.Errorf("read cgroup_allocs: %w", err)
	}
	overflow, err := sumPerCPU(s.cgroupOverflow)
	return out, overflow, err
}

// cgroupBatchLen is how many cgroups one BPF_MAP_LOOKUP_BATCH call reads:
// 4096 known cgroups cost 16 calls a tick instead of 8192 (a get-next-key
// and a lookup per entry), which was 46% of an idle agent's CPU with 4096
// cgroups known (internal/bench/cmd/agent).
const cgroupBatchLen = 256

// cgroupBatch reads the per-CPU cgroup counters in batches, reusing its
// buffers from tick to tick. Kernels before 5.6 have no batch operations
// (commit cb4d03ab499d, "bpf: Add generic support for lookup batch op"):
// those iterate entry by entry.
type cgroupBatch struct {
	// mu makes reads of the one Set safe from several goroutines (the live
	// source's tick, a test or a tool reading beside it): the buffers are
	// shared.
	mu          sync.Mutex
	unsupported bool
	keys        []uint64
	values      []pageallocCgroupAlloc // cgroupBatchLen * possible CPUs
	perCPU      []pageallocCgroupAlloc // for the iterating fallback
}

func (b *cgroupBatch) read(m *ebpf.Map, add func(id uint64, perCPU []pageallocCgroupAlloc)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return err
	}
	if !b.unsupported {
		if b.keys == nil {
			b.keys = make([]uint64, cgroupBatchLen)
			b.values = make([]pageallocCgroupAlloc, cgroupBatchLen*ncpu)
		}
		var cursor ebpf.MapBatchCursor
		for {
			n, err := m.BatchLookup(&cursor, b.keys, b.values, nil)
			for i := range n {
				add(b.keys[i], b.values[i*ncpu:(i+1)*ncpu])
			}
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				return nil // the end of the map
			}
			if errors.Is(err, ebpf.ErrNotSupported) {
				b.unsupported = true
				break
			}
			if err != nil {
				return err
			}
		}
	}
	var id uint64
	it := m.Iterate()
	for it.Next(&id, &b.perCPU) {
		add(id, b.perCPU)
	}
	return it.Err()
}

// ForgetCgroup deletes a cgroup's counters and extfrag keys (after their
// last delta was read), making room in the bounded maps for new cgroups.
func (s *Set) ForgetCgroup(id uint64) error {
	var errs []error
	if s.cgroupAllocs != nil {
		if err := s.cgroupAllocs.Delete(id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, err)
		}
	}
	if s.extfragCounts != nil {
		var (
			key    extfragExtfragKey
			perCPU []uint64
			gone   []extfragExtfragKey
		)
		it := s.extfragCounts.Iterate()
		for it.Next(&key, &perCPU) {
			if key.CgroupId == id {
				gone = append(gone, key)
			}
		}
		for _, k := range gone {
			if err := s.extfragCounts.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				errs = append(errs, err)
			}
		}
	}
	errs = append(errs, s.forgetStalls(id))
	return errors.Join(errs...)
}

// ProgramStats returns, per loaded program, its accumulated run time and
// run count, which the kernel keeps while BPF stats are enabled
// (ebpf.EnableStats, Linux 5.8+): what each hook costs per event, measured
// by the kernel itself.
func (s *Set) ProgramStats() (map[string]ebpf.ProgramStats, error) {
	out := map[string]ebpf.ProgramStats{}
	for _, c := range s.colls {
		for name, p := range c.Programs {
			st, err := p.Stats()
			if err != nil {
				return nil, fmt.Errorf("stats of %s: %w", name, err)
			}
			out[name] = *st
		}
	}
	return out, nil
}
