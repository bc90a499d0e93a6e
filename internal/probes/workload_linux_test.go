package probes

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fragscope/fragscope/internal/workload"
)

// packetRing sets up a ring (workload.PacketRing) that lives until the
// test ends.
func packetRing(t *testing.T, blockSize, n uint32) {
	t.Helper()
	fd, err := workload.PacketRing(blockSize, n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
}

func TestOrder6FromPacketRings(t *testing.T) {
	requireRoot(t)
	s := openSet(t, Options{Hooks: []Hook{HookPageAlloc}})
	if ok, _, reason := status(s, HookPageAlloc); !ok {
		t.Fatalf("page_alloc not attached: %s", reason)
	}
	before, _, err := s.AllocCounts()
	if err != nil {
		t.Fatal(err)
	}
	const blocks = 16
	packetRing(t, 256<<10, blocks)
	after, _, err := s.AllocCounts()
	if err != nil {
		t.Fatal(err)
	}
	var d6 uint64
	for mt := range after[6] {
		d6 += after[6][mt] - before[6][mt]
	}
	// Other order-6 allocations may happen meanwhile; none may be missing.
	if d6 < blocks {
		t.Errorf("order-6 allocations counted: %d, want >= %d (one per 256 KiB ring block)", d6, blocks)
	}
	t.Logf("order-6 allocations during the ring setup: %d", d6)
}

// 1 GiB of unmovable ring blocks outgrows the unmovable pageblocks of any
// machine this runs on (a few hundred MiB on the 24 GiB development host),
// so the allocator must fall back to movable (or reclaimable) blocks: the
// extfrag counters must show unmovable allocations stealing.
func TestExtfragUnmovableFallback(t *testing.T) {
	requireRoot(t)
	s := openSet(t, Options{Hooks: []Hook{HookExtfrag}})
	if ok, _, reason := status(s, HookExtfrag); !ok {
		t.Fatalf("extfrag not attached: %s", reason)
	}
	before, _, err := s.ExtfragCounts()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 16; i++ {
		packetRing(t, 256<<10, 256) // 64 MiB each
	}
	after, overflow, err := s.ExtfragCounts()
	if err != nil {
		t.Fatal(err)
	}
	var stolen uint64
	for k, n := range after {
		if k.AllocMT == 0 && k.FallbackMT != 0 { // MIGRATE_UNMOVABLE is 0 on every kernel
			stolen += n - before[k]
		}
	}
	if stolen == 0 {
		t.Errorf("no unmovable fallbacks counted after 1 GiB of unmovable ring blocks (keys %d, overflow %d)", len(after), overflow)
	}
	t.Logf("unmovable fallbacks: %d", stolen)
}
