package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestRuntimesNameContainers is scenario 3 of issue 11: `ctr run` and
// `docker run` of a packet-ring workload (a static binary as the whole
// rootfs: no registry), the agent's metrics and `fragscope top` naming the
// runtime and the container (ctr: runtime, id, containerd namespace, from
// runc's state; docker: its engine API's name); then a failed start of
// each under a v1 memory parent too small for runc init's unshare, an
// incident naming the container (ctr: the namespace's runc root, its state
// gone with the start; docker --cgroup-parent: the engine API). Each daemon
// is private to the test and stopped by PID; every container, namespace
// and cgroup is removed.
func TestRuntimesNameContainers(t *testing.T) {
	requireRoot(t)
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes"); err != nil {
		t.Skip("no v1 memory hierarchy (a v2-only host): the failed starts use a v1 memory cgroup parent")
	}
	containerd := requireTool(t, "containerd", "containerd")
	ctrBin := requireTool(t, "ctr", "containerd")
	bin := buildBinary(t)
	took := lap(t)

	// The workload and its rootfs.
	rootfs := filepath.Join(tempRoot(t, "fsr"), "rootfs")
	os.MkdirAll(rootfs, 0o755)
	build := exec.Command("go", "build", "-o", filepath.Join(rootfs, "packetring"), "./testdata/packetring")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the workload: %v\n%s", err, out)
	}

	// containerd, for ctr: its own root, state and socket.
	cdir := tempRoot(t, "fsc")
	sock := filepath.Join(cdir, "c.sock")
	cfg := fmt.Sprintf("version = 2\nroot = %q\nstate = %q\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = %q\n",
		filepath.Join(cdir, "root"), filepath.Join(cdir, "state"), sock)
	os.WriteFile(filepath.Join(cdir, "config.toml"), []byte(cfg), 0o644)
	logf, _ := os.Create(filepath.Join(cdir, "containerd.log"))
	cd := exec.Command(containerd, "--config", filepath.Join(cdir, "config.toml"))
	cd.Stdout, cd.Stderr = logf, logf
	cd.SysProcAttr = &unix.SysProcAttr{Setpgid: true}
	if err := cd.Start(); err != nil {
		t.Fatal(err)
	}
	ns := fmt.Sprintf("fsr%d", os.Getpid())
	ctr := func(args ...string) *exec.Cmd {
		return exec.Command(ctrBin, append([]string{"--address", sock}, args...)...)
	}
	t.Cleanup(func() {
		nss := []string{ns}
		for n := 1; n <= 4; n++ {
			nss = append(nss, fmt.Sprint(ns, "f", n))
		}
		for _, n := range nss {
			for _, id := range []string{"ring", "fail1", "fail2", "fail3", "fail4"} {
				ctr("-n", n, "tasks", "kill", "-s", "SIGKILL", id).Run()
				time.Sleep(100 * time.Millisecond)
				ctr("-n", n, "tasks", "rm", "-f", id).Run()
				ctr("-n", n, "containers", "rm", id).Run()
			}
			ctr("namespaces", "rm", n).Run()
			// The shim's runc root for the namespace outlives it.
			os.RemoveAll(filepath.Join("/run/containerd/runc", n))
			os.RemoveAll(filepath.Join("/run/containerd/io.containerd.runtime.v2.task", n))
		}
		cd.Process.Signal(unix.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cd.Process.Kill()
			<-done
		}
		logf.Close()
		for _, n := range nss {
			testutil.RemoveCgroupTree(t, n)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ctr("version").Run() != nil; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("containerd not up:\n%s", b)
		}
	}
	docker := startDockerd(t)
	took("containerd and dockerd up")

	// docker: the same rootfs, imported (no registry to pull from).
	var img bytes.Buffer
	tw := tar.NewWriter(&img)
	pr, _ := os.ReadFile(filepath.Join(rootfs, "packetring"))
	tw.WriteHeader(&tar.Header{Name: "packetring", Mode: 0o755, Size: int64(len(pr))})
	tw.Write(pr)
	tw.Close()
	imp := docker.cmd("import", "-", "fsring:1")
	imp.Stdin = &img
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("docker import: %v\n%s", err, out)
	}

	dockerHost := ""
	for _, e := range docker.env {
		if v, ok := strings.CutPrefix(e, "DOCKER_HOST="); ok {
			dockerHost = v
		}
	}
	// fragscope finds the engine as the docker CLI does.
	t.Setenv("DOCKER_HOST", dockerHost)
	dataDir := t.TempDir()
	a := startAgent(t, bin, dataDir)
	t.Cleanup(func() {
		if a.cmd.ProcessState == nil {
			a.stop(t)
		}
	})

	ring := []string{"/packetring", "-for", "8s", "-blocks", "4", "-period", "50ms"}
	if out, err := ctr(append([]string{"-n", ns, "run", "-d", "--rootfs", rootfs, "ring"}, ring...)...).CombinedOutput(); err != nil {
		t.Fatalf("ctr run: %v\n%s", err, out)
	}
	dockerID := strings.TrimSpace(docker.run(t, append([]string{"run", "-d", "--name", "fsring", "--network", "none", "fsring:1"}, ring...)...))
	t.Cleanup(func() { docker.cmd("rm", "-f", "fsring", "fsfail1", "fsfail2", "fsfail3", "fsfail4").Run() })

	var top, topErr bytes.Buffer
	tc := exec.Command(bin, "top", "--json", "--duration", "3s", "--interval", "500ms", "--sort", "unmovable", "--limit", "50")
	tc.Stdout, tc.Stderr = &top, &topErr
	if err := tc.Run(); err != nil {
		t.Fatalf("fragscope top: %v\n%s", err, topErr.String())
	}
	took("ctr run, docker run, top")
	type topRow struct {
		Path      string `json:"cgroup_path"`
		Unmovable uint64 `json:"unmovable_high_order"`
		Container struct {
			Runtime, Name    string
			ID               string `json:"container_id"`
			RuntimeNamespace string `json:"runtime_namespace"`
		}
	}
	lines := strings.Split(strings.TrimSpace(top.String()), "\n")
	var final struct{ Cgroups []topRow }
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &final); err != nil {
		t.Fatalf("top's last line: %v\n%s", err, top.String())
	}
	want := map[string]topRow{}
	for _, r := range final.Cgroups {
		switch {
		case r.Container.Runtime == "containerd" && r.Container.ID == "ring" && r.Container.Name == "ring" && r.Container.RuntimeNamespace == ns:
			want["ctr"] = r
		case r.Container.Runtime == "docker" && r.Container.ID == dockerID && r.Container.Name == "fsring":
			want["docker"] = r
		}
	}
	for _, k := range []string{"ctr", "docker"} {
		if r, ok := want[k]; !ok || r.Unmovable == 0 {
			t.Errorf("top names no %s container with its high-order unmovable allocations (%+v):\n%s", k, r, lines[len(lines)-1])
		} else {
			t.Logf("top: %s %s/%s %s: %d", r.Container.Runtime, r.Container.RuntimeNamespace, r.Container.Name, r.Path, r.Unmovable)
		}
	}
	for _, l := range []map[string]string{{"runtime": "containerd", "container": "ring"}, {"runtime": "docker", "container": dockerID}} {
		v := waitMetric(t, a, "fragscope_cgroup_unmovable_high_order_allocations_total", l, 1)
		t.Logf("metrics %v: %v", l, v)
	}

	// Failed starts, recorded by `fragscope record` and read back with
	// `fragscope incidents`, as a user would.
	a.stop(t)
	trace := filepath.Join(t.TempDir(), "fail.fst")
	rec, recErr := testutil.StartRecorder(t, bin, "record", "-o", trace, "--interval", "200ms")
	limit := func(cg, v string) {
		dir := filepath.Join("/sys/fs/cgroup/memory", cg)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "memory.oom_control"), []byte("1"), 0)
		if err := os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(v), 0); err != nil {
			t.Fatal(err)
		}
	}
	// failStart runs start under a 192K v1 memory parent with the OOM
	// killer off: runc init's unshare cannot charge the new namespaces
	// (ENOMEM or ENOBUFS) and the start fails. The runtime's clean-up then
	// waits in the memcg OOM wait, and an init that faults a page before
	// its unshare hangs there: after 3 s the limit is raised, which ends
	// either. A start that then succeeded is tried again (fresh parent:
	// a released one stays charged).
	failStart := func(what string, cgOf func(attempt int) string, start func(attempt int) *exec.Cmd) int {
		for attempt := 1; attempt <= 4; attempt++ {
			cg := cgOf(attempt)
			limit(cg, "192K")
			c := start(attempt)
			var out bytes.Buffer
			c.Stdout, c.Stderr = &out, &out
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			release := time.AfterFunc(3*time.Second, func() { limit(cg, "64M") })
			err := c.Wait()
			release.Stop()
			limit(cg, "64M")
			t.Logf("%s attempt %d under 192K: %v: %s", what, attempt, err, bytes.TrimSpace(out.Bytes()))
			// What the runtime printed.
			if err != nil && bytes.Contains(out.Bytes(), []byte("OCI runtime create failed")) {
				return attempt
			}
		}
		t.Fatalf("%s never failed to start under a 192K memory cgroup parent", what)
		return 0
	}
	// ctr's cgroup is /<namespace>/<id>: the namespace's is the parent.
	nsOf := func(n int) string { return fmt.Sprint(ns, "f", n) }
	ctrAttempt := failStart("ctr run", nsOf, func(n int) *exec.Cmd {
		return ctr("-n", nsOf(n), "run", "--rootfs", rootfs, fmt.Sprint("fail", n), "/packetring", "-for", "1s")
	})
	failCtr, failNS := fmt.Sprint("fail", ctrAttempt), nsOf(ctrAttempt)
	parentOf := func(n int) string { return fmt.Sprintf("/fsrp%d-%d", os.Getpid(), n) }
	t.Cleanup(func() {
		for n := 1; n <= 4; n++ {
			testutil.RemoveCgroupTree(t, parentOf(n))
		}
	})
	dockerAttempt := failStart("docker run", parentOf, func(n int) *exec.Cmd {
		return docker.cmd("run", "--name", fmt.Sprint("fsfail", n), "--network", "none", "--cgroup-parent", parentOf(n), "fsring:1", "/packetring", "-for", "1s")
	})
	failName := fmt.Sprint("fsfail", dockerAttempt)
	failID := strings.TrimSpace(docker.run(t, "inspect", "-f", "{{.Id}}", failName))

	time.Sleep(time.Second)
	rec.Process.Signal(unix.SIGINT)
	if err := rec.Wait(); err != nil {
		t.Fatalf("fragscope record: %v\n%s", err, recErr.String())
	}
	out, err := exec.Command(bin, "incidents", "--json", trace).Output()
	if err != nil {
		t.Fatalf("fragscope incidents %s: %v", trace, err)
	}
	found := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<22)
	for sc.Scan() {
		var line struct {
			Incident struct {
				Task struct {
					CgroupPath string `json:"cgroup_path"`
					Container  *struct {
						Runtime, ID, Name, Attribution string
						RuntimeNamespace               string `json:"runtime_namespace"`
					}
				}
				Syscall struct {
					Name      string
					ErrnoName string `json:"errno_name"`
				}
				Verdict struct{ Cause string }
			}
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Incident.Task.Container == nil {
			continue
		}
		inc := line.Incident
		c := inc.Task.Container
		switch {
		case c.Runtime == "containerd" && c.ID == failCtr && c.Name == failCtr && c.RuntimeNamespace == failNS && c.Attribution == "runtime":
			t.Logf("ctr incident: %s %s in %s, %s: %+v", inc.Syscall.Name, inc.Syscall.ErrnoName, inc.Task.CgroupPath, inc.Verdict.Cause, *c)
			found["ctr"] = true
		case c.Runtime == "docker" && c.ID == failID && c.Name == failName && c.Attribution == "runtime":
			t.Logf("docker incident: %s %s in %s, %s: %+v", inc.Syscall.Name, inc.Syscall.ErrnoName, inc.Task.CgroupPath, inc.Verdict.Cause, *c)
			found["docker"] = true
		}
	}
	for _, k := range []string{"ctr", "docker"} {
		if !found[k] {
			t.Errorf("no incident names the failed %s container; incidents:\n%s", k, out)
		}
	}
	took("failed starts and their incidents")
}
