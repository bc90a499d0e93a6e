package main

import (
	"bufio"
	"bytes"
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

// runcBundle makes a runc bundle: a busybox-static rootfs and runc's own
// default spec running args, in the cgroup cgroupsPath ("" runc's default).
func runcBundle(t *testing.T, cgroupsPath string, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "rootfs", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	bb, _ := exec.LookPath("busybox")
	if out, err := exec.Command("cp", bb, filepath.Join(bin, "busybox")).CombinedOutput(); err != nil {
		t.Fatalf("cp busybox: %v %s", err, out)
	}
	// Relative links: busybox --install -s links to the path it was run
	// as, which must resolve inside the container too.
	inst := exec.Command("./busybox", "--install", "-s", ".")
	inst.Dir = bin
	if out, err := inst.CombinedOutput(); err != nil {
		t.Fatalf("busybox --install: %v %s", err, out)
	}
	cmd := exec.Command("runc", "spec")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v %s", err, out)
	}
	var spec map[string]any
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil || json.Unmarshal(b, &spec) != nil {
		t.Fatalf("runc spec wrote no config: %v", err)
	}
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = args
	spec["root"].(map[string]any)["path"] = filepath.Join(dir, "rootfs")
	if cgroupsPath != "" {
		spec["linux"].(map[string]any)["cgroupsPath"] = cgroupsPath
	}
	if b, err = json.Marshal(spec); err == nil {
		err = os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// watchJSON starts `fragscope watch --json --record FILE` and returns a
// stop function giving its NDJSON objects.
func watchJSON(t *testing.T, bin, file string) func() []map[string]any {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "watch", "--json", "--record", file, "--interval", "500ms", "--ready-file", ready)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	testutil.WaitReady(t, cmd, ready, &stderr)
	return func() []map[string]any {
		cmd.Process.Signal(syscall.SIGINT)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("watch: %v\n%s", err, stderr.String())
		}
		return ndjson(t, stdout.Bytes())
	}
}

func ndjson(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var obj map[string]any
		if err := json.Unmarshal(sc.Bytes(), &obj); err != nil {
			t.Fatalf("not JSON: %v: %.200s", err, sc.Text())
		}
		out = append(out, obj)
	}
	return out
}

// incidentsOf returns the incidents of the stream whose task's comm starts
// with comm, as JSON objects.
func incidentsOf(objs []map[string]any, comm string) []map[string]any {
	var out []map[string]any
	for _, o := range objs {
		if o["type"] != "incident" {
			continue
		}
		inc := o["incident"].(map[string]any)
		if c, _ := inc["task"].(map[string]any)["comm"].(string); strings.HasPrefix(c, comm) {
			out = append(out, inc)
		}
	}
	return out
}

// removeCgroups removes rel (and its parents up to the hierarchy root) in
// every cgroup hierarchy where runc made it: runc delete removes the
// container's own directory, never the parents it created.
func removeCgroups(rel string) {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	roots = append(roots, "/sys/fs/cgroup")
	for p := rel; p != "/" && p != "."; p = filepath.Dir(p) {
		for _, r := range roots {
			os.Remove(filepath.Join(r, p))
		}
	}
}

// Scenario 1 of issue 11: a runc container started under a memory cgroup
// parent too small to create its namespaces. runc fails ("can't get final
// child's PID from pipe"); fragscope's incident is memcg_limit, names the
// parent and its limit, and the container; the recording replays to the
// same verdict.
func TestRuncMemcgLimit(t *testing.T) {
	requireRoot(t)
	testutil.RequireTools(t, "runc busybox-static", "runc", "busybox")
	memRoot, limitFile, v1 := "/sys/fs/cgroup/memory", "memory.limit_in_bytes", true
	if _, err := os.Stat(filepath.Join(memRoot, limitFile)); err != nil {
		memRoot, limitFile, v1 = "/sys/fs/cgroup", "memory.max", false
		if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err != nil || !strings.Contains(string(b), "memory") {
			t.Skip("kernel offers no memory cgroup controller")
		}
	}
	var id, parent, pdir string
	const limit = 256 << 10
	// newParent makes a fresh parent per attempt: a hung attempt's pages
	// stay charged to its parent, which then cannot go back to the limit.
	newParent := func(attempt int) {
		parent = fmt.Sprintf("/fragscope-test-memcg-%d-%d", os.Getpid(), attempt)
		pdir = filepath.Join(memRoot, parent)
		if err := os.Mkdir(pdir, 0o755); err != nil {
			t.Fatal(err)
		}
		if !v1 {
			os.WriteFile(filepath.Join(memRoot, "cgroup.subtree_control"), []byte("+memory"), 0)
			os.WriteFile(filepath.Join(pdir, "cgroup.subtree_control"), []byte("+memory"), 0)
		}
		if v1 {
			// Without the OOM killer runc init may also wait in the memcg
			// OOM wait (runtimes.md): the release below ends that.
			os.WriteFile(filepath.Join(pdir, "memory.oom_control"), []byte("1"), 0)
		}
		if err := os.WriteFile(filepath.Join(pdir, limitFile), []byte(fmt.Sprint(limit)), 0); err != nil {
			t.Fatal(err)
		}
	}
	state := filepath.Join(t.TempDir(), "runc")
	var ids, parents []string
	t.Cleanup(func() {
		for _, p := range parents {
			os.WriteFile(filepath.Join(memRoot, p, limitFile), []byte("max"), 0)
			os.WriteFile(filepath.Join(memRoot, p, limitFile), []byte("-1"), 0)
		}
		for _, id := range ids {
			exec.Command("runc", "--root", state, "delete", "-f", id).Run()
		}
		time.Sleep(100 * time.Millisecond)
		for i, id := range ids {
			removeCgroups(parents[i] + "/" + id)
		}
	})

	bin := buildBinary(t)
	file := filepath.Join(t.TempDir(), "runc.fst")
	stop := watchJSON(t, bin, file)
	// Which charge the limit refuses first varies: a syscall's (ENOMEM
	// or ENOBUFS from clone/unshare, this scenario) or a page fault's,
	// which waits in the memcg OOM wait instead (scenario 4, the stall
	// test). A run that hung is released and the start tried again.
	var runOut bytes.Buffer
	var err error
	for attempt := 1; attempt <= 4; attempt++ {
		id = fmt.Sprintf("fs-memcg-%d-%d", os.Getpid(), attempt)
		newParent(attempt)
		ids, parents = append(ids, id), append(parents, parent)
		bundle := runcBundle(t, parent+"/"+id, "/bin/true")
		run := exec.Command("runc", "--root", state, "run", id)
		run.Dir = bundle
		runOut.Reset()
		run.Stdout, run.Stderr = &runOut, &runOut
		if err := run.Start(); err != nil {
			t.Fatal(err)
		}
		dir := pdir
		release := time.AfterFunc(4*time.Second, func() {
			os.WriteFile(filepath.Join(dir, limitFile), []byte(fmt.Sprint(64<<20)), 0)
		})
		err = run.Wait()
		release.Stop()
		t.Logf("attempt %d: runc: %v\n%s", attempt, err, runOut.String())
		if o := runOut.String(); strings.Contains(o, "Cannot allocate memory") || strings.Contains(o, "No buffer space available") {
			break
		}
		exec.Command("runc", "--root", state, "delete", "-f", id).Run()
	}
	time.Sleep(700 * time.Millisecond) // a flush and a tick
	objs := stop()
	if err == nil || !strings.Contains(runOut.String(), "can't get final child's PID from pipe") ||
		!(strings.Contains(runOut.String(), "Cannot allocate memory") || strings.Contains(runOut.String(), "No buffer space available")) {
		t.Fatalf("runc did not fail with ENOMEM/ENOBUFS the way a too-small memcg makes it fail: %v\n%s", err, runOut.String())
	}

	check := func(where string, incs []map[string]any) {
		t.Helper()
		var found map[string]any
		for _, inc := range incs {
			// Other tests may start runc beside this one: ours is the
			// one whose memcg chain holds this test's parent.
			if mc, _ := inc["memcg"].(map[string]any); mc != nil && mc["path"] == parent {
				found = inc
			}
		}
		if found == nil {
			var causes []string
			for _, inc := range incs {
				causes = append(causes, fmt.Sprintf("%v %v", inc["syscall"], inc["verdict"]))
			}
			var states []string
			for _, o := range objs {
				if o["type"] == "memcg_state" {
					b, _ := json.Marshal(o)
					states = append(states, string(b))
				}
			}
			t.Fatalf("%s: no incident naming %s among %d runc incidents: %q\nmemcg readings:\n%s", where, parent, len(incs), causes,
				strings.Join(states, "\n"))
		}
		if c := found["verdict"].(map[string]any)["cause"]; c != "memcg_limit" {
			t.Errorf("%s: cause %v, want memcg_limit", where, c)
		}
		mc, _ := found["memcg"].(map[string]any)
		if mc == nil || mc["path"] != parent || mc["limit_bytes"] != float64(limit) {
			t.Errorf("%s: memcg %v, want path %s limit %d", where, mc, parent, limit)
		}
		// The charges reclaimed in the memcg before they failed (issue 13):
		// the incident carries the task's and its cgroup's reclaim stalls.
		if st, _ := found["stalls"].(map[string]any); st == nil || len(st["task"].([]any)) == 0 || len(st["cgroup"].([]any)) == 0 {
			t.Errorf("%s: incident stalls %v, want the task's and its cgroup's memcg reclaim", where, found["stalls"])
		}
		task := found["task"].(map[string]any)
		ctr, _ := task["container"].(map[string]any)
		if ctr == nil || ctr["runtime"] != "runc" || ctr["id"] != id {
			t.Errorf("%s: container %v (cgroup %v), want runc %s", where, ctr, task["cgroup_path"], id)
		}
		reasons := fmt.Sprint(found["verdict"].(map[string]any)["reasons"])
		if !strings.Contains(reasons, "memory cgroup "+parent) || !strings.Contains(reasons, "256 kB limit") {
			t.Errorf("%s: reasons %s", where, reasons)
		}
	}
	check("live", incidentsOf(objs, "runc"))
	out, err := exec.Command(bin, "incidents", "--json", file).Output()
	if err != nil {
		t.Fatalf("incidents: %v", err)
	}
	check("replay", incidentsOf(ndjson(t, out), "runc"))
}

// Scenario 2 of issue 11: runc run inside a user namespace whose
// user.max_net_namespaces is 0. runc prints its ENOSPC; fragscope's
// incident is namespace_limit for runc's unshare.
func TestRuncNamespaceLimit(t *testing.T) {
	requireRoot(t)
	testutil.RequireTools(t, "runc busybox-static", "runc", "busybox")
	id := fmt.Sprintf("fs-nslimit-%d", os.Getpid())
	bundle := runcBundle(t, "", "/bin/true")
	state := filepath.Join(t.TempDir(), "runc")
	bin := buildBinary(t)
	stop := watchJSON(t, bin, filepath.Join(t.TempDir(), "ns.fst"))
	// Inside the user namespace runc is rootless: its cgroups are not
	// writable and are skipped, so the container runs in this test's.
	run := exec.Command("unshare", "-Ur", "sh", "-c",
		fmt.Sprintf("echo 0 > /proc/sys/user/max_net_namespaces && cd %s && exec runc --root %s run %s", bundle, state, id))
	out, err := run.CombinedOutput()
	time.Sleep(700 * time.Millisecond)
	objs := stop()
	if err == nil || !strings.Contains(string(out), "No space left on device") {
		t.Fatalf("runc did not hit the namespace limit: %v\n%s", err, out)
	}
	var found map[string]any
	for _, inc := range incidentsOf(objs, "runc") {
		if inc["verdict"].(map[string]any)["cause"] == "namespace_limit" {
			found = inc
		}
	}
	if found == nil {
		t.Fatalf("no namespace_limit incident from runc; runc said:\n%s", out)
	}
	sc := found["syscall"].(map[string]any)
	if sc["errno_name"] != "ENOSPC" || !strings.Contains(sc["flags_text"].(string), "CLONE_NEWNET") {
		t.Errorf("syscall %v", sc)
	}
	// No cgroup names it (rootless runc skips them): runc's command line does.
	ctr, _ := found["task"].(map[string]any)["container"].(map[string]any)
	if ctr == nil || ctr["runtime"] != "runc" || ctr["id"] != id || ctr["attribution"] != "runc_command" {
		t.Errorf("container %v, want runc %s by its command line", ctr, id)
	}
}
