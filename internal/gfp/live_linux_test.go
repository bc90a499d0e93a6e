package gfp

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/fragscope/fragscope/internal/workload"
)

// TestLiveKernelRendering asks the kernel to print a mask through its own
// show_gfp_flags and compares the text with Format. It uses a private
// tracing instance so the global trace buffer, which other tools may be
// using, is left alone.
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
	// With any cpuset besides the root (a container engine has made one on
	// most nodes), prepare_alloc_pages adds __GFP_HARDWALL to the mask the
	// tracepoint sees (mm/page_alloc.c, cpusets_enabled()), and the kernel
	// prints GFP_USER instead of GFP_KERNEL.
	hardwall, ok := tab.Lookup("__GFP_HARDWALL")
	if !ok {
		t.Fatal("no __GFP_HARDWALL")
	}
	write("filter", fmt.Sprintf("gfp_flags == %#x || gfp_flags == %#x", mask, mask|hardwall))
	write("enable", "1")
	packetRing(t)
	write("enable", "0")

	trace, err := os.ReadFile(filepath.Join(inst, "trace"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{tab.Format(mask): true, tab.Format(mask | hardwall): true}
	seen := 0
	for _, line := range strings.Split(string(trace), "\n") {
		_, kernel, ok := strings.Cut(line, "gfp_flags=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		seen++
		if !want[kernel] {
			t.Errorf("kernel printed %q, Format gives %q or, with __GFP_HARDWALL, %q", kernel, tab.Format(mask), tab.Format(mask|hardwall))
		}
	}
	if seen == 0 {
		t.Fatalf("no mm_page_alloc event with gfp_flags %#x", mask)
	}
	t.Logf("%d events, kernel and Format agree", seen)
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
