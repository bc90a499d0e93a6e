package container

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The sandbox ("pause") image the test containerd is configured with:
// containerd 1.6's RunPodSandbox insists on having it locally and would pull
// it otherwise, and no registry is reachable, so the test imports one built
// from busybox-static.
const liveSandboxImage = "fragscope.test/pause:1"

// TestCRILiveContainerd starts a containerd of its own with the CRI plugin,
// creates a pod sandbox through the CRI as kubelet would, and looks the pod
// up by UID.
func TestCRILiveContainerd(t *testing.T) {
	bins := testutil.RequireTools(t, "containerd runc busybox-static", "containerd", "ctr", "containerd-shim-runc-v2", "runc", "busybox")
	testutil.RequireRoot(t)
	// Short names: the socket path must fit sun_path (108 bytes).
	dir, err := os.MkdirTemp("", "fs-cri-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cgParent := fmt.Sprintf("/fragscope-crit-%d", os.Getpid())
	// Registered first, so it runs last: after the daemon and the shims
	// are gone, nothing is left mounted, and the cgroups are empty.
	t.Cleanup(func() {
		unmountUnder(t, dir)
		testutil.RemoveCgroupTree(t, cgParent)
	})

	sock := filepath.Join(dir, "containerd.sock")
	startContainerd(t, bins["containerd"], dir, sock)

	conn, err := grpc.NewClient("unix:"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	rt, img := runtimeapi.NewRuntimeServiceClient(conn), runtimeapi.NewImageServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	waitCRI(t, ctx, rt, dir)

	importSandboxImage(t, ctx, img, bins, dir, sock)

	const (
		name, namespace = "db-0", "shop"
		uid             = "6c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
	)
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: namespace, Uid: uid},
		LogDirectory: filepath.Join(dir, "pods", uid),
		Labels:       map[string]string{"io.kubernetes.pod.uid": uid},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: cgParent,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				// The node's network and IPC: no CNI to call, no netns
				// nor shm mount to leave behind.
				NamespaceOptions: &runtimeapi.NamespaceOption{
					Network: runtimeapi.NamespaceMode_NODE,
					Ipc:     runtimeapi.NamespaceMode_NODE,
					Pid:     runtimeapi.NamespaceMode_POD,
				},
			},
		},
	}
	run, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v\ncontainerd log:\n%s", err, tail(filepath.Join(dir, "containerd.log"), 30))
	}
	id := run.GetPodSandboxId()
	t.Logf("RunPodSandbox: %s", id)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Errorf("StopPodSandbox: %v", err)
		}
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Errorf("RemovePodSandbox: %v", err)
		}
	})

	st, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if err != nil || st.GetStatus().GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("PodSandboxStatus: %v %v", st.GetStatus().GetState(), err)
	}
	// The sandbox runs in the cgroup the cleanup removes.
	if cg, _ := filepath.Glob("/sys/fs/cgroup/*" + cgParent + "/" + id); len(cg) == 0 {
		t.Errorf("no cgroup %s/%s in any hierarchy", cgParent, id)
	}

	c := newTestCRI(t, "unix://"+sock)
	start := time.Now()
	p, ok := c.Pod(context.Background(), uid)
	d := time.Since(start)
	if want := (Pod{UID: uid, Name: name, Namespace: namespace}); !ok || p != want {
		t.Fatalf("Pod(%s) = %+v %v, want %+v (err %v)", uid, p, ok, want, c.Err())
	}
	const n = 20
	start = time.Now()
	for range n {
		c.next = time.Time{} // force a listing each time
		c.Pod(context.Background(), "00000000-0000-0000-0000-000000000000")
	}
	t.Logf("containerd %s: first lookup (connect+ListPodSandbox) %v, later miss %v", c.Endpoint(), d, time.Since(start)/n)
	if c.Err() != nil {
		t.Errorf("err %v", c.Err())
	}
}

// importSandboxImage imports the sandbox image built from busybox into
// the k8s.io namespace and waits until the CRI plugin lists it (it learns
// of images from containerd's events).
func importSandboxImage(t *testing.T, ctx context.Context, img runtimeapi.ImageServiceClient, bins map[string]string, dir, sock string) {
	t.Helper()
	archive := filepath.Join(dir, "pause.tar")
	writeImageArchive(t, archive, bins["busybox"], liveSandboxImage)
	out, err := exec.CommandContext(ctx, bins["ctr"], "--address", sock, "-n", "k8s.io",
		"images", "import", "--snapshotter", "native", archive).CombinedOutput()
	if err != nil {
		t.Fatalf("ctr images import: %v\n%s", err, out)
	}
	for {
		st, err := img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: liveSandboxImage}})
		if err == nil && st.GetImage() != nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("CRI never listed the imported %s: %v", liveSandboxImage, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startContainerd runs containerd with everything under dir and stops it,
// and any shim it started, at cleanup.
func startContainerd(t *testing.T, bin, dir, sock string) {
	t.Helper()
	startContainerdIn(t, nil, "", bin, dir, sock)
}

// startContainerdIn is startContainerd run under the command prefix wrap
// (e.g. unshare), with extra lines for the CRI plugin's section.
func startContainerdIn(t *testing.T, wrap []string, criExtra, bin, dir, sock string) {
	t.Helper()
	cfg := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = []

[grpc]
  address = %[3]q

[plugins."io.containerd.internal.v1.opt"]
  path = %[4]q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[5]q
  disable_apparmor = true
  # Root here lacks CAP_SYS_RESOURCE: the sandbox's -998 would be refused
  # (runc: "failed to update /proc/self/oom_score_adj").
  restrict_oom_score_adj = true
%[9]s
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = %[8]q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[6]q
    conf_dir = %[7]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, filepath.Join(dir, "opt"),
		liveSandboxImage, filepath.Join(dir, "cni-bin"), filepath.Join(dir, "cni-conf"),
		filepath.Join(dir, "runc"), criExtra)
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	argv := append(slices.Clone(wrap), bin, "--config", cfgPath)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a ^C of the test does not leave the
	// daemon without its cleanup half done.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		// Shims outlive containerd by design; ours name its socket.
		for _, pid := range pidsWithArg(sock) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Logf("killed leftover shim %d", pid)
		}
	})
}

func waitCRI(t *testing.T, ctx context.Context, rt runtimeapi.RuntimeServiceClient, dir string) {
	t.Helper()
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := rt.Status(cctx, &runtimeapi.StatusRequest{})
		cancel()
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("CRI never answered: %v\ncontainerd log:\n%s", err, tail(filepath.Join(dir, "containerd.log"), 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// writeImageArchive writes a docker-archive (docker save format) image
// named ref with one layer holding a static busybox, whose entrypoint
// sleeps as a pause container does.
func writeImageArchive(t *testing.T, path, busybox, ref string) {
	t.Helper()
	bb, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	mod := time.Unix(0, 0)
	for _, h := range []*tar.Header{
		{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mod},
		{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bb)), ModTime: mod},
	} {
		if err := lw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			lw.Write(bb)
		}
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	layerSum := sha256.Sum256(layer.Bytes())
	config, _ := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"config":       map[string]any{"Entrypoint": []string{"/bin/busybox", "sleep", "2147483647"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(layerSum[:])}},
	})
	configSum := sha256.Sum256(config)
	configName := hex.EncodeToString(configSum[:]) + ".json"
	layerName := hex.EncodeToString(layerSum[:]) + "/layer.tar"
	manifest, _ := json.Marshal([]map[string]any{{"Config": configName, "RepoTags": []string{ref}, "Layers": []string{layerName}}})

	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := tar.NewWriter(f)
	for _, e := range []struct {
		name string
		data []byte
	}{{configName, config}, {layerName, layer.Bytes()}, {"manifest.json", manifest}} {
		if err := w.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), ModTime: mod}); err != nil {
			t.Fatal(err)
		}
		w.Write(e.data)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// pidsWithArg returns the processes with arg among their arguments.
func pidsWithArg(arg string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && slices.Contains(strings.Split(string(b), "\x00"), arg) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// unmountUnder detaches whatever is still mounted below dir, deepest first.
func unmountUnder(t *testing.T, dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			mounts = append(mounts, fields[4])
		}
	}
	slices.Sort(mounts)
	for _, m := range slices.Backward(mounts) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", m, err)
		} else {
			t.Logf("unmounted leftover %s", m)
		}
	}
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
