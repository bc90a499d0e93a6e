package source

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/gfp"
	"github.com/fragscope/fragscope/internal/probes"
)

const memcgChildEnv = "FRAGSCOPE_TEST_MEMCG_CHILD"

// memcgRoot returns a memory-controller hierarchy this kernel offers: the
// v1 memory hierarchy (hybrid hosts like the development machine), or
// cgroup2 with the memory controller.
func memcgRoot(t *testing.T) (dir, limitFile, usageFile string) {
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes"); err == nil {
		return "/sys/fs/cgroup/memory", "memory.limit_in_bytes", "memory.usage_in_bytes"
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil && strings.Contains(string(b), "memory") {
		return "/sys/fs/cgroup", "memory.max", "memory.current"
	}
	t.Skip("kernel offers no memory cgroup controller (neither v1 memory nor cgroup2 memory)")
	return
}

// A real allocation failure on this machine: BPF maps are memcg-charged
// (__GFP_ACCOUNT); created in a memory cgroup held at its limit, the charge
// of a page fails and __alloc_pages reports NULL through mm_page_alloc.
// fragscope must stream it with the task, the gfp flags and the kernel
// stack, symbolized and without the tracing frames on top.
func TestRealMemcgChargeFailure(t *testing.T) {
	evs, childPID := memcgChargeFailures(t)
	flags, _, err := gfp.LoadRunning()
	if err != nil {
		t.Fatal(err)
	}
	table := gfp.NewTable(flags)
	var found *event.AllocFail
	for _, ev := range evs {
		if af, ok := ev.(*event.AllocFail); ok && int(af.Task.PID) == childPID && table.Has(af.GFP, "__GFP_ACCOUNT") {
			found = af
			break
		}
	}
	if found == nil {
		t.Fatalf("no __GFP_ACCOUNT allocation failure from the child (pid %d) among %d events", childPID, len(evs))
	}
	stack := strings.Join(found.Stack, "\n")
	if len(found.Stack) == 0 || strings.HasPrefix(found.Stack[0], "bpf_prog_") || strings.HasPrefix(found.Stack[0], "bpf_trace") {
		t.Errorf("stack not trimmed to the kernel's call trace:\n%s", stack)
	}
	if !strings.Contains(stack, "map_create") || !strings.Contains(stack, "+0x") {
		t.Errorf("stack lacks the symbolized map_create path:\n%s", stack)
	}
	t.Logf("order %d gfp %s\n%s", found.Order, table.Format(found.GFP), stack)
}

// memcgChargeFailures runs TestMemcgChild in a memory cgroup of its own
// under a live session and returns the session's events and the child's pid.
func memcgChargeFailures(t *testing.T) ([]event.Event, int) {
	t.Helper()
	if os.Getenv(memcgChildEnv) != "" {
		t.Skip("child mode runs in TestMemcgChild")
	}
	requireRoot(t)
	root, limitFile, usageFile := memcgRoot(t)
	cg := filepath.Join(root, fmt.Sprintf("fragscope-test-%d", os.Getpid()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatalf("create memory cgroup: %v", err)
	}
	defer os.Remove(cg)

	var childPID int
	evs := runLive(t, []probes.Hook{probes.HookPageAlloc}, func() {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestMemcgChild$")
		cmd.Env = append(os.Environ(), memcgChildEnv+"="+strings.Join([]string{cg, limitFile, usageFile}, ","))
		out, _ := cmd.CombinedOutput() // the child may end in ENOMEM or be OOM-killed: both are fine
		if cmd.Process != nil {
			childPID = cmd.Process.Pid
		}
		t.Logf("child: %s", strings.TrimSpace(string(out)))
	})
	return evs, childPID
}

// TestMemcgChild is the child of TestRealMemcgChargeFailure: it joins the
// cgroup, caps it just above its own usage and creates BPF maps until the
// charge fails.
func TestMemcgChild(t *testing.T) {
	spec := os.Getenv(memcgChildEnv)
	if spec == "" {
		t.Skip("runs only as the child of TestRealMemcgChargeFailure")
	}
	parts := strings.Split(spec, ",")
	cg, limitFile, usageFile := parts[0], parts[1], parts[2]
	if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(cg, usageFile))
	if err != nil {
		t.Fatal(err)
	}
	usage, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err := os.WriteFile(filepath.Join(cg, limitFile), []byte(strconv.Itoa(usage+512<<10)), 0); err != nil {
		t.Fatal(err)
	}
	var maps []*ebpf.Map
	defer func() {
		for _, m := range maps {
			m.Close()
		}
	}()
	// Which charge fails first varies (a slab object or a page); keep
	// trying after failures so page-level charges fail too.
	failures := 0
	for i := 0; i < 512 && failures < 64; i++ {
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 32<<10 - 64, MaxEntries: 1})
		if err != nil {
			failures++
			continue
		}
		maps = append(maps, m)
	}
	fmt.Printf("%d maps created, %d failed\n", len(maps), failures)
}
