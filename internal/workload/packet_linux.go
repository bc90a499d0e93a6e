package workload

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PacketRing sets up an AF_PACKET TPACKET_V3 RX ring of n blocks of
// blockSize bytes and returns the socket; the blocks stay allocated until
// it is closed. The kernel allocates each block with __get_free_pages at
// order log2(blockSize/4096) (alloc_one_pg_vec_page, GFP_KERNEL|__GFP_COMP|
// __GFP_ZERO|__GFP_NOWARN|__GFP_NORETRY, unmovable), falling back to
// vzalloc when that fails: 256 KiB blocks are order-6 allocations.
func PacketRing(blockSize, n uint32) (int, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		return -1, fmt.Errorf("AF_PACKET socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("PACKET_VERSION: %w", err)
	}
	req := unix.TpacketReq3{
		Block_size: blockSize,
		Block_nr:   n,
		Frame_size: 2048,
		Frame_nr:   blockSize / 2048 * n,
	}
	if _, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_PACKET, unix.PACKET_RX_RING,
		uintptr(unsafe.Pointer(&req)), unsafe.Sizeof(req), 0); e != 0 {
		unix.Close(fd)
		return -1, fmt.Errorf("PACKET_RX_RING (%d x %d KiB): %w", n, blockSize>>10, e)
	}
	return fd, nil
}
