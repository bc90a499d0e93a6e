package probes

import (
	"testing"

	"golang.org/x/sys/unix"
)

// A full ringbuf: every record that finds no room is counted. With a 4 KiB
// buffer and no reader, 500 failed setns calls (EBADF, each a ~100-byte
// ns_syscall record) must overflow it.
func TestDropsCounted(t *testing.T) {
	requireRoot(t)
	s := openSet(t, Options{Hooks: []Hook{HookNsSyscall}, RingBytes: 4096})
	if ok, _, reason := status(s, HookNsSyscall); !ok {
		t.Fatalf("ns_syscall not attached: %s", reason)
	}
	const calls = 500
	for i := 0; i < calls; i++ {
		unix.Setns(-1, 0)
	}
	drops, err := s.Drops()
	if err != nil {
		t.Fatal(err)
	}
	// 4096 bytes hold at most 4096/(8-byte header + record) records.
	if drops < calls-4096/64 {
		t.Errorf("%d drops after %d records into a 4 KiB ringbuf", drops, calls)
	}
	t.Logf("drops: %d of %d", drops, calls)
}
