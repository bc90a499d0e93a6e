package source

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/testutil"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/kallsyms"
	"github.com/fragscope/fragscope/internal/probes"
	"github.com/fragscope/fragscope/internal/snapshot"
)

func requireRoot(tb testing.TB) { testutil.RequireRoot(tb) }

// runLive runs a live session around work and returns every event.
func runLive(t *testing.T, hooks []probes.Hook, work func()) []event.Event {
	t.Helper()
	set, err := probes.Open(probes.Options{Hooks: hooks})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	for _, st := range set.Status {
		if !st.Attached {
			t.Fatalf("%s not attached: %s", st.Hook, st.Reason)
		}
	}
	syms, err := kallsyms.Load()
	if err != nil {
		t.Fatal(err)
	}
	live := &Live{
		Symbolize:    syms.FormatFrame,
		Set:          set,
		Interval:     100 * time.Millisecond,
		TakeSnapshot: func(string) (*snapshot.Snapshot, error) { return snapshot.Take("") },
	}
	ctx, cancel := context.WithCancel(context.Background())
	var evs []event.Event
	done := make(chan error, 1)
	go func() { done <- live.Run(ctx, func(ev event.Event) { evs = append(evs, ev) }) }()
	time.Sleep(150 * time.Millisecond)
	work()
	time.Sleep(300 * time.Millisecond) // longer than the reader's flush deadline
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	return evs
}

// The deterministic failing unshare from kernel-facts.md: a user namespace
// whose max_net_namespaces is 0 makes unshare(CLONE_NEWNET) fail with ENOSPC.
func TestFailedUnshareENOSPC(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatalf("unshare(1) from util-linux is needed: %v", err)
	}
	evs := runLive(t, []probes.Hook{probes.HookNsSyscall, probes.HookPageAlloc}, func() {
		out, err := exec.Command("unshare", "-Ur", "sh", "-c", "echo 0 > /proc/sys/user/max_net_namespaces; unshare -n true").CombinedOutput()
		if err == nil {
			t.Errorf("unshare -n succeeded; want ENOSPC: %s", out)
		}
	})
	var starts, ticks, snaps int
	var found *event.NsSyscall
	for _, ev := range evs {
		switch e := ev.(type) {
		case *event.Start:
			starts++
		case *event.Tick:
			ticks++
		case *event.MemSnapshot:
			snaps++
		case *event.NsSyscall:
			if e.Syscall == "unshare" && e.Flags&0x40000000 != 0 && e.Errno == 28 {
				found = e
			}
		}
	}
	if found == nil {
		t.Fatalf("no failed unshare(CLONE_NEWNET) with ENOSPC among %d events", len(evs))
	}
	if found.Task.Comm != "unshare" || found.Task.PID == 0 || found.Latency < 0 || found.Time.Before(found.Enter) {
		t.Errorf("event details: %+v", found)
	}
	if _, ok := evs[0].(*event.Start); !ok || starts != 1 {
		t.Errorf("first event %T, %d starts", evs[0], starts)
	}
	if ticks < 2 || snaps < 2 {
		t.Errorf("ticks %d, snapshots %d: want the interval machinery running", ticks, snaps)
	}
	// The failure triggers a snapshot of its own.
	var failureSnap bool
	for _, ev := range evs {
		if s, ok := ev.(*event.MemSnapshot); ok && s.Reason == "failure" {
			failureSnap = true
		}
	}
	if !failureSnap {
		t.Error("no free-memory snapshot taken on the failure")
	}
}

// Counter deltas reach the stream: touching memory shows in the Ticks.
func TestTicksCarryAllocationDeltas(t *testing.T) {
	requireRoot(t)
	evs := runLive(t, []probes.Hook{probes.HookPageAlloc, probes.HookExtfrag}, func() {
		b := make([]byte, 32<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
	})
	var order0 uint64
	for _, ev := range evs {
		if tk, ok := ev.(*event.Tick); ok {
			for _, n := range tk.Allocs[0] {
				order0 += n
			}
			if tk.Interval <= 0 {
				t.Errorf("tick with interval %v", tk.Interval)
			}
		}
	}
	// 32 MiB touched = 8192 pages; THP may serve part of it at order 9.
	if order0 == 0 {
		t.Error("no order-0 allocations in the ticks after touching 32 MiB")
	}
}

// A plain fork, no CLONE_NEW* flag, that fails for a limit (EAGAIN: the
// pids cgroup at pids.max) is reported all the same: process creation
// failing is what keeps containers from starting, whatever the flags.
func TestFailedForkEAGAIN(t *testing.T) {
	requireRoot(t)
	root := "/sys/fs/cgroup/pids"
	if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
		root = "/sys/fs/cgroup" // cgroup v2 with the pids controller
		if b, err := os.ReadFile(filepath.Join(root, "cgroup.controllers")); err != nil || !strings.Contains(string(b), "pids") {
			t.Skip("no pids cgroup controller on this machine (v1 pids or v2 with pids)")
		}
	}
	dir := filepath.Join(root, fmt.Sprintf("fragscope-fork-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(dir)
	if err := os.WriteFile(filepath.Join(dir, "pids.max"), []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	var out []byte
	evs := runLive(t, []probes.Hook{probes.HookNsSyscall}, func() {
		// python joins the cgroup, which then holds its one allowed task;
		// its fork (glibc: clone(2)) fails with EAGAIN at once (dash
		// would vfork(2), bash retry for half a minute).
		script := "import os\nopen(" + strconv.Quote(filepath.Join(dir, "cgroup.procs")) + ", 'w').write(str(os.getpid()))\n" +
			"try:\n    os.fork()\nexcept OSError as e:\n    print('fork failed', e.errno)\n"
		out, _ = exec.Command("python3", "-c", script).CombinedOutput()
		// dash spawns with vfork(2).
		dash, _ := exec.Command("dash", "-c", "echo $$ > "+filepath.Join(dir, "cgroup.procs")+"; /bin/true").CombinedOutput()
		out = append(out, dash...)
	})
	if !strings.Contains(string(out), "fork failed 11") || !strings.Contains(string(out), "Cannot fork") {
		t.Fatalf("the forks did not fail as expected: %s", out)
	}
	seen := map[string]bool{}
	for _, ev := range evs {
		e, ok := ev.(*event.NsSyscall)
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(e.Task.Comm, "python") && (e.Syscall == "clone" || e.Syscall == "clone3"):
		case e.Task.Comm == "dash" && e.Syscall == "vfork":
		default:
			continue
		}
		if e.Errno != 11 || e.Flags&0x7e020000 != 0 || e.Latency != 0 {
			t.Errorf("fork failure: %+v, want errno 11 (EAGAIN), no CLONE_NEW* flags, no entry time", e)
		}
		seen[e.Task.Comm[:4]] = true
	}
	if !seen["pyth"] || !seen["dash"] {
		t.Errorf("failed process creations seen: %v, want python's clone and dash's vfork (they said %q)", seen, out)
	}
}
