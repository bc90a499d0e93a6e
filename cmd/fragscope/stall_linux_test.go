package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/testutil"
)

// stallObj is the part of a "stall" JSON object the test reads.
type stallObj struct {
	Type string `json:"type"`
	Task struct {
		PID        uint32 `json:"pid"`
		TID        uint32 `json:"tid"`
		Comm       string `json:"comm"`
		CgroupPath string `json:"cgroup_path"`
	} `json:"task"`
	Container *struct {
		ID string `json:"id"`
	} `json:"container"`
	Call       string `json:"call"`
	Running    bool   `json:"running"`
	End        string `json:"end"`
	DurationNS int64  `json:"duration_ns"`
	Wchan      string `json:"wchan"`
	Memcg      *struct {
		Path       string `json:"path"`
		LimitBytes uint64 `json:"limit_bytes"`
	} `json:"memcg"`
}

// Issue 11, scenario 4: `runc run` under a v1 memory cgroup parent of 1M
// with the OOM killer disabled hangs: runc init's page fault waits in the
// memcg OOM wait (mem_cgroup_oom_synchronize, outside any syscall:
// runtimes.md and the stall design in DEVELOPERS.md). `fragscope watch
// --json` must report the stall while runc still hangs and has printed
// nothing, naming the task and its cgroup, and report its end once the
// limit is raised and the container runs; the recording replays the same
// stall objects and `incidents` lists them. Twice: with the host's tasks
// in /proc, and in a pid namespace of its own as the agent's pod (hostPID
// false) runs it, where no wchan can be read and the cgroup's under_oom
// decides.
func TestRuncStartHangsInMemcgOOMWait(t *testing.T) {
	t.Run("host-pids", func(t *testing.T) { runcStall(t, false) })
	t.Run("own-pid-namespace", func(t *testing.T) { runcStall(t, true) })
	t.Run("agent", runcStallAgent)
}

// The agent's view of the same hang: fragscope_stalls_in_flight holds the
// wait at 1 while runc hangs and drops to 0 once it ran; the flight
// recorder keeps the stall, and `incidents DATA_DIR` lists it.
func runcStallAgent(t *testing.T) {
	dir := t.TempDir()
	h := newRuncHang(t, dir)
	a := startAgent(t, buildBinary(t), filepath.Join(dir, "data"), "--stall-threshold", "1s", "--kmsg", "off")
	wait := map[string]string{"call": "memcg_oom_wait"}
	h.start(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, body := a.get("/metrics")
		if n, _ := sample(t, body, "fragscope_stalls_in_flight", wait); n >= 1 {
			break
		}
		h.hanging(t) // runc failing instead of hanging is no stall to see
		if time.Now().After(deadline) {
			t.Fatalf("fragscope_stalls_in_flight{call=memcg_oom_wait} not up within 20 s of the hang; agent stderr:\n%s", a.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, body := a.get("/metrics")
	if n, _ := sample(t, body, "fragscope_stalls_total", wait); n < 1 {
		t.Errorf("fragscope_stalls_total{call=memcg_oom_wait} = %v during the hang", n)
	}
	h.release(t)
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, body := a.get("/metrics")
		if n, _ := sample(t, body, "fragscope_stalls_in_flight", wait); n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("fragscope_stalls_in_flight{call=memcg_oom_wait} still up 10 s after the container ran")
		}
		time.Sleep(100 * time.Millisecond)
	}
	a.stop(t)
	out, err := exec.Command(buildBinary(t), "incidents", a.dataDir).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("STALL END")) || !bytes.Contains(out, []byte(h.CtrCgroup())) {
		t.Errorf("incidents of the agent's data dir: %v\n%s", err, out)
	}
}

// runcHang is a runc bundle whose start hangs in the memcg OOM wait: a v1
// memory cgroup parent of 1M with the OOM killer disabled.
type runcHang struct {
	parent, parentName, id, state, bundle string
	out                                   bytes.Buffer // what runc printed
	done                                  chan error
}

// CtrCgroup is the container's cgroup path in the memory hierarchy.
func (h *runcHang) CtrCgroup() string { return "/" + h.parentName + "/" + h.id }

func newRuncHang(t *testing.T, dir string) *runcHang {
	t.Helper()
	requireRoot(t)
	requireTool(t, "runc", "runc")
	requireTool(t, "busybox", "busybox-static")
	const v1 = "/sys/fs/cgroup/memory"
	if _, err := os.Stat(filepath.Join(v1, "memory.oom_control")); err != nil {
		t.Skip("no cgroup v1 memory controller at /sys/fs/cgroup/memory: the memcg OOM wait exists only in cgroup v1")
	}
	idb := make([]byte, 32)
	rand.Read(idb)
	h := &runcHang{
		id:         hex.EncodeToString(idb), // a container id as runc's users make them
		parentName: fmt.Sprintf("fragscope-stall-%d", os.Getpid()),
		state:      filepath.Join(dir, "runc-state"),
		done:       make(chan error, 1),
	}
	h.parent = filepath.Join(v1, h.parentName)
	if err := os.Mkdir(h.parent, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Release any hang first, or the container's cgroup cannot go.
		os.WriteFile(filepath.Join(h.parent, "memory.limit_in_bytes"), []byte("64M"), 0)
		exec.Command("runc", "--root", h.state, "delete", "-f", h.id).Run()
		for i := 0; i < 50; i++ {
			os.Remove(filepath.Join(h.parent, h.id))
			if os.Remove(h.parent) == nil || os.IsNotExist(os.Remove(h.parent)) {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("memory cgroup %s could not be removed", h.parent)
	})
	for file, val := range map[string]string{"memory.oom_control": "1", "memory.limit_in_bytes": "1M"} {
		if err := os.WriteFile(filepath.Join(h.parent, file), []byte(val), 0); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	h.bundle = runcBundle(t, h.CtrCgroup(), "/bin/busybox", "sh", "-c", "echo hello-from-the-container")
	return h
}

// start runs `runc run` in the background and returns once it has hung
// for a second. runc 1.1.5 init sometimes dies of the full cgroup instead
// of waiting (a SIGSEGV in its Go runtime, "read init-p: connection reset
// by peer"; every time at 768K here): that start is retried, up to three
// times, since a start that fails at once is no hang to report.
func (h *runcHang) start(t *testing.T) {
	t.Helper()
	for try := 1; ; try++ {
		h.out.Reset()
		runc := exec.Command("runc", "--root", h.state, "run", "--bundle", h.bundle, h.id)
		runc.Stdout, runc.Stderr = &h.out, &h.out
		if err := runc.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { h.done <- runc.Wait() }()
		select {
		case err := <-h.done:
			t.Logf("runc start %d failed instead of hanging (%v): %s", try, err, h.out.String())
			exec.Command("runc", "--root", h.state, "delete", "-f", h.id).Run()
			if try == 3 {
				t.Fatal("runc never hung in three starts")
			}
		case <-time.After(time.Second):
			return
		}
	}
}

// hanging fails the test unless runc still hangs, having printed nothing
// of the container's.
func (h *runcHang) hanging(t *testing.T) {
	t.Helper()
	select {
	case err := <-h.done:
		t.Fatalf("runc returned (%v): not a hang; it printed %q", err, h.out.String())
	default:
	}
	if strings.Contains(h.out.String(), "hello-from-the-container") {
		t.Fatalf("the container already ran: %s", h.out.String())
	}
}

// release raises the limit and waits for the container to run.
func (h *runcHang) release(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(h.parent, "memory.limit_in_bytes"), []byte("64M"), 0); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-h.done:
		if err != nil || !strings.Contains(h.out.String(), "hello-from-the-container") {
			t.Fatalf("runc run after the limit was raised: %v, printed %q", err, h.out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("runc still hangs after the limit was raised; printed %q", h.out.String())
	}
}

func runcStall(t *testing.T, ownPidNs bool) {
	dir := t.TempDir()
	h := newRuncHang(t, dir)
	bin := buildBinary(t)
	parentName, id := h.parentName, h.id

	file, ready := filepath.Join(dir, "stall.fst"), filepath.Join(dir, "ready")
	args := []string{bin, "watch", "--json", "--record", file, "--stall-threshold", "1s",
		"--hooks", "ns_syscall,memcg_oom_wait", "--kmsg", "off", "--ready-file", ready}
	if ownPidNs {
		args = append([]string{"unshare", "--pid", "--fork", "--mount-proc"}, args...)
	}
	watch := exec.Command(args[0], args[1:]...)
	watch.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // SIGINT reaches fragscope behind unshare
	var stderr bytes.Buffer
	watch.Stderr = &stderr
	stdout, err := watch.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	defer watch.Process.Kill()
	stalls := make(chan stallObj, 16)
	var live bytes.Buffer // the stall lines as watch printed them
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var o stallObj
			if json.Unmarshal(sc.Bytes(), &o) == nil && o.Type == "stall" {
				live.Write(append(sc.Bytes(), '\n'))
				stalls <- o
			}
		}
		close(stalls)
	}()
	testutil.WaitReady(t, watch, ready, &stderr)

	h.start(t)
	ctrCgroup := h.CtrCgroup()
	var running stallObj
	timeout := time.After(20 * time.Second)
wait:
	for {
		select {
		case o, ok := <-stalls:
			if !ok {
				t.Fatalf("watch ended before any stall: %s", stderr.String())
			}
			if o.Running && o.Call == "memcg_oom_wait" && o.Task.CgroupPath == ctrCgroup {
				running = o
				break wait
			}
			t.Logf("other stall: %+v", o)
		case err := <-h.done:
			t.Fatalf("runc ended (%v) before fragscope reported a stall; it printed: %s", err, h.out.String())
		case <-timeout:
			t.Fatalf("no memcg_oom_wait stall within 20 s; runc printed %q; watch stderr:\n%s", h.out.String(), stderr.String())
		}
	}
	// The stall arrived while the start hangs: runc has not returned nor
	// printed the container's line, and the task still sleeps in the wait.
	h.hanging(t)
	// With host pids the named thread is the one asleep in the wait;
	// without, the cgroup's under_oom decides and the thread named is one
	// of the process that reclaimed against the limit and stopped (maybe
	// a sibling of the sleeper): some thread of it must be in the wait.
	threads := []string{fmt.Sprint(running.Task.TID)}
	if ownPidNs {
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", running.Task.PID))
		threads = threads[:0]
		for _, e := range ents {
			threads = append(threads, e.Name())
		}
	}
	inWait := false
	for _, tid := range threads {
		w, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/wchan", running.Task.PID, tid))
		inWait = inWait || string(w) == "mem_cgroup_oom_synchronize"
	}
	if !inWait {
		t.Fatalf("no thread of stalled task %d (%v) sleeps in mem_cgroup_oom_synchronize", running.Task.TID, threads)
	}
	wantWchan := "mem_cgroup_oom_synchronize"
	if ownPidNs {
		wantWchan = "" // not readable from there
		if !strings.Contains(stderr.String(), "does not see the host's tasks") {
			t.Errorf("no warning that /proc shows no host tasks: %s", stderr.String())
		}
	}
	if !strings.HasPrefix(running.Task.Comm, "runc:[2:INIT]") || running.Wchan != wantWchan ||
		running.DurationNS < int64(time.Second) {
		t.Errorf("running stall: %+v", running)
	}
	// The cgroup at its limit is the parent, not the container's own.
	if m := running.Memcg; m == nil || m.Path != "/"+parentName || m.LimitBytes != 1<<20 {
		t.Errorf("stall's memory cgroup at its limit: %+v, want /%s with 1048576 bytes", m, parentName)
	}
	if running.Container != nil && running.Container.ID != id {
		t.Errorf("stall names container %q, want %s", running.Container.ID, id)
	}
	t.Logf("stall while hanging: %s[%d] in %s for %v, container %+v", running.Task.Comm, running.Task.TID,
		running.Task.CgroupPath, time.Duration(running.DurationNS), running.Container)

	// Release the hang: the container runs, and the stall's end follows.
	h.release(t)
	var end stallObj
	timeout = time.After(10 * time.Second)
ended:
	for {
		select {
		case o := <-stalls:
			if !o.Running && o.Task.TID == running.Task.TID && o.Call == "memcg_oom_wait" {
				end = o
				break ended
			}
		case <-timeout:
			t.Fatal("no end of the stall within 10 s of the release")
		}
	}
	// Resumed, or gone: the container's sh ran and exited within one scan.
	if (end.End != "resumed" && end.End != "exited") || end.DurationNS < running.DurationNS {
		t.Errorf("stall end: %+v (running report %+v)", end, running)
	}
	syscall.Kill(-watch.Process.Pid, syscall.SIGINT)
	if err := watch.Wait(); err != nil {
		t.Fatalf("watch: %v\n%s", err, stderr.String())
	}

	// The recording replays the same stall objects, and incidents lists them.
	rep, err := exec.Command(bin, "replay", "--json", file).Output()
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	var replayed bytes.Buffer
	for _, line := range bytes.SplitAfter(rep, []byte("\n")) {
		if bytes.HasPrefix(line, []byte(`{"type":"stall"`)) {
			replayed.Write(line)
		}
	}
	if live.String() != replayed.String() {
		t.Errorf("replayed stalls differ:\nlive:\n%s\nreplay:\n%s", live.String(), replayed.String())
	}
	inc, err := exec.Command(bin, "incidents", file).Output()
	if err != nil {
		t.Fatalf("incidents: %v", err)
	}
	for _, want := range []string{"STALL ", "STALL END", "runc:[2:INIT]", "the memcg OOM wait", ctrCgroup,
		"of its 1024 KiB limit"} {
		if !bytes.Contains(inc, []byte(want)) {
			t.Errorf("incidents output lacks %q:\n%s", want, inc)
		}
	}
}
