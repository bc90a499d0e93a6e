//go:build linux

// Command fsworkload is the guest-side workload of the QEMU tests
// (internal/vmtest): small, deterministic ways to make a real kernel do
// what fragscope watches. It is built static and put in the guests'
// initramfs; it is not meant to run on a developer's machine (it fragments
// memory, sets namespace limits and injects allocation failures).
//
//	fsworkload netns                 unshare(CLONE_NEWNET); prints the new netns inode
//	fsworkload nsfail                in a new user namespace: user.max_net_namespaces=0,
//	                                 then unshare(CLONE_NEWNET) must fail with ENOSPC
//	fsworkload rings MIB BLOCK_KIB [hold]
//	                                 AF_PACKET TPACKET_V3 rings: MIB MiB in BLOCK_KIB blocks
//	                                 (256 KiB blocks are order-6 page allocations); with
//	                                 hold, prints "held" and keeps them until killed
//	fsworkload fragment FREE_MIB RING_MIB HOLD
//	                                 mlock 1 MiB chunks until MemFree < FREE_MIB, unmap every
//	                                 other 4 KiB page, set up RING_MIB of 256 KiB ring blocks,
//	                                 keep everything for HOLD (a duration; "hold": print
//	                                 "held" and keep it until killed)
//	fsworkload thp MIB               fault MIB MiB of MADV_HUGEPAGE anonymous memory, one
//	                                 fault per 2 MiB (transparent huge page) region; prints
//	                                 the THPs it got and /proc/vmstat's thp_fault_* deltas
//	fsworkload inject CGROUP_DIR     move into CGROUP_DIR, set make-it-fail for this thread,
//	                                 unshare(CLONE_NEWNET), clear it: must fail (ENOMEM) when
//	                                 fail_page_alloc is set up with task-filter
//	fsworkload nobpf CMD [ARG...]    exec CMD under a seccomp filter that fails bpf(2) with
//	                                 EPERM (what systemd's SystemCallFilter= or a container's
//	                                 default profile does)
//
// Every command prints "key=value" result lines on stdout and exits non-zero
// when the kernel did not do what the command is there to produce.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/fragscope/fragscope/internal/workload"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: fsworkload netns|nsfail|rings|fragment|thp|inject ...")
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "netns":
		runtime.LockOSThread() // the affinity is per thread
		pinCPU0()
		netns()
	case "nsfail":
		nsfail()
	case "nsfail-child":
		nsfailChild()
	case "rings":
		mib, block := atoi(arg(args, 0)), atoi(arg(args, 1))
		rings(mib, block)
		fmt.Printf("rings_mib=%d block_kib=%d\n", mib, block)
		if len(args) > 2 && args[2] == "hold" {
			fmt.Println("held")
			time.Sleep(365 * 24 * time.Hour) // until killed: the blocks stay allocated
		}
	case "fragment":
		d := time.Duration(-1) // "hold": until killed
		if h := arg(args, 2); h != "hold" {
			var err error
			if d, err = time.ParseDuration(h); err != nil {
				fail("hold: %v", err)
			}
		}
		fragment(atoi(arg(args, 0)), atoi(arg(args, 1)), d)
	case "thp":
		thp(atoi(arg(args, 0)))
	case "inject":
		inject(arg(args, 0))
	case "nobpf":
		noBPF(args)
	default:
		fail("unknown command %q", os.Args[1])
	}
}

func arg(a []string, i int) string {
	if i >= len(a) {
		fail("missing argument %d", i+1)
	}
	return a[i]
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		fail("%q: %v", s, err)
	}
	return n
}

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "fsworkload: "+format+"\n", a...)
	os.Exit(1)
}

func errnoName(err error) string {
	if err == nil {
		return "0"
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return unix.ErrnoName(e)
	}
	return err.Error()
}

// netns creates a network namespace on this (locked) thread: copy_net_ns
// runs inside unshare.
func netns() {
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		fail("unshare(CLONE_NEWNET): %v", err)
	}
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		fail("stat netns: %v", err)
	}
	fmt.Printf("netns_ino=%d\n", st.Ino)
}

// nsfail re-executes itself in a new user namespace mapping root to root:
// a multithreaded Go process cannot unshare(CLONE_NEWUSER) itself.
func nsfail() {
	cmd := exec.Command("/proc/self/exe", "nsfail-child")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
	}
	if err := cmd.Run(); err != nil {
		fail("nsfail child: %v", err)
	}
}

// nsfailChild runs in the new user namespace: its own limit of network
// namespaces is set to 0, so copy_net_ns fails with ENOSPC
// (inc_net_namespaces) and so does the unshare around it.
func nsfailChild() {
	if err := os.WriteFile("/proc/sys/user/max_net_namespaces", []byte("0\n"), 0); err != nil {
		fail("user.max_net_namespaces=0: %v", err)
	}
	runtime.LockOSThread()
	err := unix.Unshare(unix.CLONE_NEWNET)
	fmt.Printf("nsfail_errno=%s\n", errnoName(err))
	if !errors.Is(err, unix.ENOSPC) {
		fail("unshare(CLONE_NEWNET) in a user namespace limited to 0 netns: %v, want ENOSPC", err)
	}
}

// packetRing sets up a ring (workload.PacketRing); the socket stays open
// until the process exits.
func packetRing(blockSize, n uint32) error {
	_, err := workload.PacketRing(blockSize, n)
	return err
}

// rings sets up mib MiB of ring blocks of blockKiB each, 16 blocks per
// socket (or one when a block is larger than 1 MiB).
func rings(mib, blockKiB int) {
	block := uint32(blockKiB) << 10
	total := uint64(mib) << 20
	perRing := uint32(16)
	if block > 1<<20 {
		perRing = 1
	}
	for done := uint64(0); done < total; done += uint64(block) * uint64(perRing) {
		if err := packetRing(block, perRing); err != nil {
			fail("%v", err)
		}
	}
}

func memFreeKiB() int {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		fail("%v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemFree:"); ok {
			return atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		}
	}
	fail("no MemFree in /proc/meminfo")
	return 0
}

// fragment makes the free memory of a small guest into order-0 holes that
// compaction cannot close (the pages around them are mlocked and
// vm.compact_unevictable_allowed=0, set by the caller), then asks for
// order-6 blocks: the recipe of shared/notes/kernel-facts.md.
func fragment(freeMiB, ringMiB int, hold time.Duration) {
	const chunk = 1 << 20
	page := os.Getpagesize()
	var chunks [][]byte
	for memFreeKiB() > freeMiB<<10 {
		b, err := unix.Mmap(-1, 0, chunk, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			fail("mmap: %v", err)
		}
		// No transparent huge pages: every 4 KiB page must be its own.
		_ = unix.Madvise(b, unix.MADV_NOHUGEPAGE)
		if err := unix.Mlock(b); err != nil {
			fail("mlock after %d MiB: %v", len(chunks), err)
		}
		chunks = append(chunks, b)
	}
	lockedFree := memFreeKiB()
	for _, b := range chunks {
		base := uintptr(unsafe.Pointer(&b[0]))
		for off := page; off < chunk; off += 2 * page {
			if _, _, e := unix.Syscall(unix.SYS_MUNMAP, base+uintptr(off), uintptr(page), 0); e != 0 {
				fail("munmap: %v", e)
			}
		}
	}
	holesFree := memFreeKiB()
	fmt.Printf("locked_mib=%d memfree_locked_kib=%d memfree_holes_kib=%d\n", len(chunks), lockedFree, holesFree)
	// In rounds of 4 MiB with a pause longer than fragscope's 100 ms
	// between failure snapshots: the failures of one burst share one
	// snapshot, and kcompactd, woken by each failure, may have assembled a
	// block by the time /proc is read. Two or three bursts left the test
	// at the mercy of that race; one per round gives it many chances.
	for done := 0; done < ringMiB; done += 4 {
		rings(min(4, ringMiB-done), 256)
		time.Sleep(150 * time.Millisecond)
	}
	fmt.Printf("rings_mib=%d memfree_rings_kib=%d\n", ringMiB, memFreeKiB())
	// Keep the picture while fragscope takes its snapshot after the failures.
	if hold < 0 {
		fmt.Println("held")
		hold = 365 * 24 * time.Hour // until killed
	}
	time.Sleep(hold)
	runtime.KeepAlive(chunks)
}

// thp faults mib MiB of anonymous memory advised MADV_HUGEPAGE, touching
// one byte per 2 MiB region: each touch is one huge page fault, which with
// transparent_hugepage/defrag at madvise (or always) compacts directly
// when no free 2 MiB block is at hand, and falls back to a 4 KiB page when
// compaction cannot make one (thp_fault_fallback).
func thp(mib int) {
	const huge = 2 << 20
	before := vmstat("thp_fault_alloc", "thp_fault_fallback")
	b, err := unix.Mmap(-1, 0, (mib<<20)+huge, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		fail("mmap: %v", err)
	}
	off := int((huge - uintptr(unsafe.Pointer(&b[0]))%huge) % huge) // the first 2 MiB boundary
	region := b[off : off+mib<<20]
	if err := unix.Madvise(region, unix.MADV_HUGEPAGE); err != nil {
		fail("madvise(MADV_HUGEPAGE): %v", err)
	}
	for i := 0; i < len(region); i += huge {
		region[i] = 1
	}
	after := vmstat("thp_fault_alloc", "thp_fault_fallback")
	fmt.Printf("thp_faults=%d anon_huge_kib=%d thp_fault_alloc=%d thp_fault_fallback=%d\n", mib<<20/huge,
		anonHugeKiB(), after[0]-before[0], after[1]-before[1])
	runtime.KeepAlive(b)
}

// vmstat reads counters of /proc/vmstat, in the order asked.
func vmstat(names ...string) []int {
	data, err := os.ReadFile("/proc/vmstat")
	if err != nil {
		fail("%v", err)
	}
	out := make([]int, len(names))
	for _, line := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(line, " ")
		for i, n := range names {
			if k == n {
				out[i] = atoi(v)
			}
		}
	}
	return out
}

// anonHugeKiB is this process's AnonHugePages (smaps_rollup, 4.14+).
func anonHugeKiB() int {
	data, err := os.ReadFile("/proc/self/smaps_rollup")
	if err != nil {
		fail("%v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "AnonHugePages:"); ok {
			return atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		}
	}
	return 0
}

// inject moves this process into cgroupDir, marks this thread for
// fail_page_alloc's task filter and creates a network namespace: the page
// allocations of copy_net_ns fail, and so does the unshare. make-it-fail is
// per task: the thread is locked, and the flag written through
// /proc/thread-self; nothing but the unshare runs while it is set.
func inject(cgroupDir string) {
	if err := os.MkdirAll(cgroupDir, 0o755); err != nil {
		fail("%v", err)
	}
	if err := os.WriteFile(cgroupDir+"/cgroup.procs", []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
		fail("join %s: %v", cgroupDir, err)
	}
	runtime.LockOSThread()
	pinCPU0()
	// Between setting and clearing the flag every page allocation of this
	// thread fails, page faults included: only raw syscalls on memory
	// already touched run there (the flag file is opened beforehand, the
	// errno is not boxed).
	fd, err := unix.Open("/proc/thread-self/make-it-fail", unix.O_WRONLY, 0)
	if err != nil {
		fail("make-it-fail: %v", err)
	}
	one, zero := []byte("1"), []byte("0")
	var e1, e2 syscall.Errno
	_, _, e1 = unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&one[0])), 1)
	if e1 == 0 {
		_, _, e2 = unix.RawSyscall(unix.SYS_UNSHARE, unix.CLONE_NEWNET, 0, 0)
		unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&zero[0])), 1)
	}
	unix.Close(fd)
	if e1 != 0 {
		fail("make-it-fail: %v", e1)
	}
	err = nil
	if e2 != 0 {
		err = e2
	}
	var st unix.Stat_t
	_ = unix.Stat(cgroupDir, &st)
	fmt.Printf("inject_errno=%s pid=%d tid=%d cgroup_ino=%d\n", errnoName(err), os.Getpid(), unix.Gettid(), st.Ino)
	if !errors.Is(err, unix.ENOMEM) {
		fail("unshare(CLONE_NEWNET) with page allocations failing: %v, want ENOMEM", err)
	}
}

// pinCPU0 keeps the warm-up unshares and the injected one on one CPU: SLUB
// caches free objects per CPU, so only then do the objects the warm-up
// freed (nsproxy and friends) serve the injected call, and the first
// allocation that needs fresh pages, the one that fails, is inside
// copy_net_ns rather than in create_new_namespaces (seen on both CPUs
// otherwise).
func pinCPU0() {
	var set unix.CPUSet
	set.Set(0)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		fail("pin to CPU 0: %v", err)
	}
}
