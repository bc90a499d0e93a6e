package probes

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// packetRing sets up an AF_PACKET TPACKET_V3 RX ring of n blocks of
// blockSize bytes. The kernel allocates each block with __get_free_pages at
// order log2(blockSize/4096) (alloc_one_pg_vec_page), so 256 KiB blocks are
// order-6 allocations: a workload with a known allocation pattern.
// The ring lives until the test ends.
func packetRing(t *testing.T, blockSize, n uint32) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		t.Fatalf("AF_PACKET socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		t.Fatalf("PACKET_VERSION: %v", err)
	}
	req := unix.TpacketReq3{
		Block_size: blockSize,
		Block_nr:   n,
		Frame_size: 2048,
		Frame_nr:   blockSize / 2048 * n,
	}
	if _, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_PACKET, unix.PACKET_RX_RING,
		uintptr(unsafe.Pointer(&req)), unsafe.Sizeof(req), 0); e != 0 {
		t.Fatalf("PACKET_RX_RING: %v", e)
	}
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
