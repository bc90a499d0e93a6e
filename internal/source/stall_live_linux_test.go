package source

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/probes"
)

const vforkChildEnv = "FRAGSCOPE_TEST_VFORK_CHILD"

// vforkSleep is how long the vfork child keeps its parent inside clone.
const vforkSleep = 1500 * time.Millisecond

// TestVforkChild is the stalled caller: clone(CLONE_VFORK|CLONE_NEWUTS)
// returns in the parent only once the child exits, and the child sleeps
// first. Go's os/exec makes the same call (clone with CLONE_VFORK and the
// SysProcAttr's CLONE_NEW* flags) and blocks in it the same way whenever
// its child is slow to exec. The child runs only raw syscalls: it is a
// single-threaded copy of a Go process.
func TestVforkChild(t *testing.T) {
	if os.Getenv(vforkChildEnv) == "" {
		t.Skip("helper process of TestNamespaceSyscallStall")
	}
	runtime.LockOSThread()
	fmt.Printf("tid %d\n", unix.Gettid())
	os.Stdout.Sync()
	ts := unix.NsecToTimespec(int64(vforkSleep))
	pid, _, errno := unix.RawSyscall6(unix.SYS_CLONE, unix.CLONE_VFORK|unix.CLONE_NEWUTS|uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
	if errno == 0 && pid == 0 {
		unix.RawSyscall(unix.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
		unix.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
	}
	if errno != 0 {
		t.Fatalf("clone: %v", errno)
	}
	var ws unix.WaitStatus
	unix.Wait4(int(pid), &ws, 0, nil)
}

// A namespace syscall that runs past the threshold is reported while it
// runs, by the task that made it, with the flags it asked for and where it
// sleeps; its successful exit, streamed only because it was long, ends it
// and is no failure.
func TestNamespaceSyscallStall(t *testing.T) {
	if os.Getenv(vforkChildEnv) != "" {
		t.Skip("child mode runs in TestVforkChild")
	}
	requireRoot(t)
	set, err := probes.Open(probes.Options{Hooks: []probes.Hook{probes.HookNsSyscall}, StallThreshold: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	if !set.Attached(probes.HookNsSyscall) {
		t.Fatalf("ns_syscall not attached: %+v", set.Status)
	}
	live := &Live{Set: set, Interval: time.Second, StallThreshold: 500 * time.Millisecond, StallScan: 100 * time.Millisecond}

	var (
		mu        sync.Mutex
		childPID  int
		childTID  int
		evs       []event.Event
		inSyscall []string // the child's /proc syscall line when each running stall of it arrived
	)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- live.Run(ctx, func(ev event.Event) {
			mu.Lock()
			defer mu.Unlock()
			if s, ok := ev.(*event.Stall); ok && s.Running() && int(s.Task.PID) == childPID && childPID != 0 {
				b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/syscall", childPID, childTID))
				inSyscall = append(inSyscall, string(b))
			}
			switch e := ev.(type) {
			case *event.Stall:
				c := *e
				evs = append(evs, &c)
			case *event.NsSyscall:
				c := *e
				evs = append(evs, &c)
			}
		})
	}()
	time.Sleep(200 * time.Millisecond)

	cmd := exec.Command(os.Args[0], "-test.run", "^TestVforkChild$")
	cmd.Env = append(os.Environ(), vforkChildEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		t.Fatal("the child printed nothing")
	}
	tid, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "tid "))
	if err != nil {
		t.Fatalf("child said %q", sc.Text())
	}
	mu.Lock()
	childPID, childTID = cmd.Process.Pid, tid
	mu.Unlock()
	for sc.Scan() {
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	time.Sleep(500 * time.Millisecond) // the exit record's flush
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	var running, ended *event.Stall
	for _, ev := range evs {
		switch e := ev.(type) {
		case *event.Stall:
			if int(e.Task.TID) != childTID || e.Call != "clone" {
				continue
			}
			if e.Running() {
				if running != nil {
					t.Errorf("running stall reported twice: %+v", e)
				}
				running = e
			} else {
				ended = e
			}
		case *event.NsSyscall:
			if int(e.Task.TID) == childTID {
				t.Errorf("the successful clone came out as a failure: %+v", e)
			}
		}
	}
	if running == nil {
		t.Fatalf("no running stall of the child's clone among %d events", len(evs))
	}
	if int(running.Task.PID) != childPID || running.Flags&unix.CLONE_NEWUTS == 0 || running.Duration < 500*time.Millisecond ||
		running.Duration > vforkSleep || running.Wchan == "" || running.Task.Comm == "" {
		t.Errorf("running stall: %+v", running)
	}
	// When it arrived, the child was still inside clone (x86_64 nr 56).
	if len(inSyscall) != 1 || !strings.HasPrefix(inSyscall[0], strconv.Itoa(unix.SYS_CLONE)+" ") {
		t.Errorf("the child's syscall when the stall arrived: %q, want clone (%d)", inSyscall, unix.SYS_CLONE)
	}
	if ended == nil {
		t.Fatal("no end of the stall")
	}
	if ended.End != event.StallReturned || ended.Errno != 0 || ended.Duration < vforkSleep || !ended.Enter.Equal(running.Enter) {
		t.Errorf("end: %+v (running %+v)", ended, running)
	}
	t.Logf("running: %s[%d] %s for %v in %s; end after %v", running.Task.Comm, running.Task.TID, running.Call,
		running.Duration, running.Wchan, ended.Duration)
}
