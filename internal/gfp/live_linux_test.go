package gfp

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/fragscope/fragscope/internal/workload"
)

// TestLiveKernelRendering asks the kernel to print masks through its own
// show_gfp_flags and compares the text with Format. It uses a private
// tracing instance so the global trace buffer, which other tools may be
// using, is left alone.
//
// The events are chosen by who allocates (this test's own thread) and the
// order (4, the ring's 64 KiB blocks), not by an exact mask: the kernel adds
// bits of its own on the way to the tracepoint (__GFP_HARDWALL when any
// cpuset besides the root exists, prepare_alloc_pages in mm/page_alloc.c;
// the slow path's current_gfp_context), and an exact-mask filter then saw
// nothing (it failed once on the 6.18 development VM with GFP_USER|...).
// Each printed mask is read back into its value with the table, and Format
// of that value must print the same text; the ring's own flags must be in it.
func TestLiveKernelRendering(t *testing.T) {
	needRoot(t, "tracefs and AF_PACKET need root")
	flags, _, err := LoadRunning()
	if err != nil {
		t.Fatal(err)
	}
	tab := NewTable(flags)

	inst := filepath.Join(tracefsRoots[0], "instances", fmt.Sprintf("fragscope-gfp-%d", os.Getpid()))
	if err := os.Mkdir(inst, 0o755); err != nil {
		t.Fatalf("create tracing instance: %v", err)
	}
	ev := filepath.Join(inst, "events/kmem/mm_page_alloc")
	t.Cleanup(func() {
		_ = os.WriteFile(filepath.Join(ev, "enable"), []byte("0"), 0)
		_ = os.Remove(inst)
	})
	// alloc_pg_vec allocates ring blocks with
	// GFP_KERNEL|__GFP_COMP|__GFP_ZERO|__GFP_NOWARN|__GFP_NORETRY; derive the
	// mask from the table so the test follows the kernel's bit positions.
	var mask uint64
	for _, n := range []string{"GFP_KERNEL", "__GFP_COMP", "__GFP_ZERO", "__GFP_NOWARN", "__GFP_NORETRY"} {
		m, ok := tab.Lookup(n)
		if !ok {
			t.Fatalf("no %s", n)
		}
		mask |= m
	}
	write := func(file, s string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(ev, file), []byte(s), 0); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	// The ring is set up on this locked thread: its tid is common_pid.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	write("filter", fmt.Sprintf("common_pid == %d && order == 4", syscall.Gettid()))
	write("enable", "1")
	packetRing(t)
	write("enable", "0")

	trace, err := os.ReadFile(filepath.Join(inst, "trace"))
	if err != nil {
		t.Fatal(err)
	}
	seen, ours := 0, 0
	for _, line := range strings.Split(string(trace), "\n") {
		_, kernel, ok := strings.Cut(line, "gfp_flags=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		kernel = strings.Fields(kernel)[0]
		seen++
		var value uint64
		for _, name := range strings.Split(kernel, "|") {
			m, ok := tab.Lookup(name)
			if !ok {
				t.Fatalf("kernel printed %q: the table has no %s", kernel, name)
			}
			value |= m
		}
		if got := tab.Format(value); got != kernel {
			t.Errorf("kernel printed %q for %#x, Format gives %q", kernel, value, got)
		}
		if value&mask == mask {
			ours++
		}
	}
	if seen == 0 || ours == 0 {
		t.Fatalf("%d order-4 mm_page_alloc events of this thread, %d with the ring's flags %s", seen, ours, tab.Format(mask))
	}
	t.Logf("%d events (%d with the ring's flags), kernel and Format agree", seen, ours)
}

// packetRing sets up an AF_PACKET receive ring with 64 KiB blocks:
// alloc_pg_vec gets each block with one order-4 page allocation.
func packetRing(t *testing.T) {
	t.Helper()
	fd, err := workload.PacketRing(1<<16, 4)
	if err != nil {
		t.Fatal(err)
	}
	syscall.Close(fd)
}
