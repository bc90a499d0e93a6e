package probes

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

const memcgChildEnv = "FRAGSCOPE_TEST_MEMCG_CHILD"

// A process that reclaims against its v1 memory cgroup's limit is a
// candidate for the OOM wait while it lives, and is forgotten when it
// exits: without host pids the stall scan takes a cgroup's latest
// candidate for its sleeper, and an exited one must never stand for it.
func TestMemcgWaitForgetsExitedTasks(t *testing.T) {
	if os.Getenv(memcgChildEnv) != "" {
		t.Skip("child mode runs in TestMemcgWaitChild")
	}
	requireRoot(t)
	dir, id := cgroupDir(t, "/sys/fs/cgroup/memory")
	if err := os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(strconv.Itoa(16<<20)), 0); err != nil {
		t.Fatal(err)
	}
	s := openSet(t, Options{Hooks: []Hook{HookMemcgOOMWait}, CgroupV1Memory: true})
	if !s.Attached(HookMemcgOOMWait) {
		t.Fatalf("memcg_oom_wait not attached: %+v", s.Status)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMemcgWaitChild$")
	cmd.Env = append(os.Environ(), memcgChildEnv+"="+dir, "FRAGSCOPE_TEST_MEMCG_FILE="+filepath.Join(t.TempDir(), "fill"))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "written\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child: %q %v", line, err)
	}
	pid := uint32(cmd.Process.Pid)
	candidates := func() (n int) {
		var (
			tid uint32
			w   memcgwaitMemcgWait
		)
		it := s.memcgWaits.Iterate()
		for it.Next(&tid, &w) {
			if w.Pid == pid && w.CgroupId == id {
				n++
			}
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		return n
	}
	alive := candidates()
	stdin.Close()
	go io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	if alive == 0 {
		t.Fatalf("the child %d reclaimed against cgroup %d's 16 MiB limit, yet no thread of it is a candidate", pid, id)
	}
	after := candidates()
	t.Logf("child %d: %d candidate threads while alive, %d after it exited", pid, alive, after)
	if after != 0 {
		t.Errorf("the child %d exited, yet %d of its threads are still candidates for cgroup %d's OOM wait", pid, after, id)
	}
}

// TestMemcgWaitChild joins the cgroup, writes 64 MiB of page cache (which
// reclaims against the limit), says so and waits for its stdin to close.
func TestMemcgWaitChild(t *testing.T) {
	dir := os.Getenv(memcgChildEnv)
	if dir == "" {
		t.Skip("runs only as the child of TestMemcgWaitForgetsExitedTasks")
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
		t.Fatal(err)
	}
	file := os.Getenv("FRAGSCOPE_TEST_MEMCG_FILE")
	if err := os.WriteFile(file, make([]byte, 64<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(file)
	os.Stdout.WriteString("written\n")
	io.Copy(io.Discard, os.Stdin)
}
