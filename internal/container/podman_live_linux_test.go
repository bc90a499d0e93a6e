package container

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/testutil"
)

// TestPodmanNameLive runs a podman container (cgroupfs manager, a private
// root) and `podman system service`, and names it from its cgroup path the
// way the live source does: Parse says podman and the id, the
// Docker-compatible API on podman's socket gives the name.
func TestPodmanNameLive(t *testing.T) {
	podman := testutil.RequireTools(t, "podman (.ci/docker.sh)", "podman")["podman"]
	busybox := testutil.RequireTools(t, "busybox-static", "busybox")["busybox"]
	testutil.RequireRoot(t)
	dir, err := os.MkdirTemp("", "fs-pod-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	t.Cleanup(func() { unmountUnder(t, dir) })
	base := []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"),
		"--tmpdir", filepath.Join(dir, "tmp"), "--cgroup-manager", "cgroupfs", "--events-backend", "file"}
	pm := func(args ...string) *exec.Cmd {
		return exec.Command(podman, append(append([]string{}, base...), args...)...)
	}

	sock := filepath.Join(dir, "podman.sock")
	svc := pm("system", "service", "--time=0", "unix://"+sock)
	svc.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pm("rm", "-f", "-a").Run()
		svc.Process.Signal(syscall.SIGTERM)
		svc.Wait()
	})

	rootfs := filepath.Join(dir, "rootfs")
	os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755)
	if out, err := exec.Command("cp", busybox, filepath.Join(rootfs, "bin", "busybox")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	tarball, err := exec.Command("tar", "-C", rootfs, "-c", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	imp := pm("import", "-", "fsbb:1")
	imp.Stdin = bytes.NewReader(tarball)
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("podman import: %v\n%s", err, out)
	}
	// Root here lacks CAP_SYS_RESOURCE: podman's default ulimits are refused.
	out, err := pm("run", "-d", "--name", "pwork", "--network", "none", "--ulimit", "nofile=20000:20000",
		"--ulimit", "nproc=4096:4096", "localhost/fsbb:1", "/bin/busybox", "sleep", "60").CombinedOutput()
	if err != nil {
		t.Fatalf("podman run: %v\n%s", err, out)
	}
	id := strings.TrimSpace(string(out))
	pidOut, err := pm("inspect", "-f", "{{.State.Pid}}", "pwork").Output()
	if err != nil {
		t.Fatal(err)
	}
	cg, err := os.ReadFile(filepath.Join("/proc", strings.TrimSpace(string(pidOut)), "cgroup"))
	if err != nil {
		t.Fatal(err)
	}
	// The path as the resolver gives it: the last /proc line (v2, or the
	// v1 memory hierarchy on hybrid hosts; podman puts both in one place).
	lines := strings.Split(strings.TrimSpace(string(cg)), "\n")
	path := lines[0][strings.LastIndexByte(lines[0], ':')+1:]
	t.Logf("podman container %s in %s", id[:12], path)
	if got := Parse(path); got.Runtime != RuntimePodman || got.ContainerID != id {
		t.Fatalf("Parse(%q) = %+v, want podman %s", path, got, id)
	}
	for deadline := time.Now().Add(20 * time.Second); !isSocket(sock); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("podman system service never made its socket")
		}
	}
	d := NewDocker("unix://" + sock)
	r := &Runtimes{Docker: d}
	if got := r.Resolve(context.Background(), path); got != (Named{Name: "pwork"}) {
		t.Errorf("Resolve(%q) = %+v, want the name pwork (err %v)", path, got, d.Err())
	}
}
