package container

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestSandboxNetnsFailureLive is scenario 5 of issue 11: a CRI pod sandbox
// whose network namespace containerd fails to create, driven as kubelet
// drives it (the pod's log directory, then RunPodSandbox over the CRI),
// with no kubelet. containerd runs in a user namespace whose
// max_net_namespaces is 0, so its CRI's unshare(CLONE_NEWNET), made on a
// thread of containerd itself, fails with ENOSPC. fragscope records it
// (the real binary, `record --cri-endpoint`), and the incident read back
// from the recording names the pod as a guess.
func TestSandboxNetnsFailureLive(t *testing.T) {
	bins := testutil.RequireTools(t, "containerd runc busybox-static", "containerd", "ctr", "containerd-shim-runc-v2", "runc", "busybox", "unshare")
	testutil.RequireRoot(t)
	dir, err := os.MkdirTemp("", "fs-sbx-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	t.Cleanup(func() { unmountUnder(t, dir) })

	// fragscope as a user runs it.
	bin := filepath.Join(dir, "fragscope")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/fragscope/fragscope/cmd/fragscope").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	sock := filepath.Join(dir, "containerd.sock")
	// The sysctl is per user namespace: only the daemon's is 0.
	wrap := []string{bins["unshare"], "--user", "--map-root-user", "--mount", "--propagation", "private",
		"sh", "-c", `echo 0 > /proc/sys/user/max_net_namespaces && exec "$0" "$@"`}
	startContainerdIn(t, wrap, "  netns_mounts_under_state_dir = true", bins["containerd"], dir, sock)

	conn, err := grpc.NewClient("unix:"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	rt, img := runtimeapi.NewRuntimeServiceClient(conn), runtimeapi.NewImageServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	waitCRI(t, ctx, rt, dir)
	importSandboxImage(t, ctx, img, bins, dir, sock)

	trace := filepath.Join(dir, "sbx.fst")
	rec, recErr := testutil.StartRecorder(t, bin, "record", "-o", trace, "--interval", "200ms", "--cri-endpoint", "unix://"+sock)

	const (
		name, namespace = "db-0", "shop"
		uid             = "7d2e3f4a-5b6c-4d7e-8f9a-0b1c2d3e4f5a"
	)
	// kubelet makes the pod's log directory, then asks for the sandbox
	// (kuberuntime_sandbox.go, createPodSandbox).
	logRoot := DefaultPodLogDir
	made := !isDir(logRoot)
	logDir := filepath.Join(logRoot, namespace+"_"+name+"_"+uid)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.Remove(logDir)
		if made {
			os.Remove(logRoot)
		}
	})
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: namespace, Uid: uid},
		LogDirectory: logDir,
		Labels:       map[string]string{"io.kubernetes.pod.uid": uid},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: "/fragscope-sbx",
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_POD},
			},
		},
	}
	_, runErr := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	t.Logf("RunPodSandbox: %v", runErr)
	// What the runtime said (kubelet would show it in the pod's events).
	if runErr == nil || !strings.Contains(runErr.Error(), "failed to create network namespace") || !strings.Contains(runErr.Error(), "no space left on device") {
		t.Fatalf("RunPodSandbox = %v, want containerd's netns creation failing with ENOSPC\ncontainerd log:\n%s", runErr, tail(filepath.Join(dir, "containerd.log"), 20))
	}
	list, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sandboxes listed after the failure: %d (containerd 1.6 lists a sandbox only once it runs)", len(list.GetItems()))

	time.Sleep(600 * time.Millisecond) // the failure's record is read within an interval
	rec.Process.Signal(syscall.SIGINT)
	if err := rec.Wait(); err != nil {
		t.Fatalf("fragscope record: %v\n%s", err, recErr.String())
	}
	out, err := exec.Command(bin, "incidents", "--json", trace).Output()
	if err != nil {
		t.Fatalf("fragscope incidents: %v\n%s", err, out)
	}
	var found bool
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<22)
	for sc.Scan() {
		var line struct {
			Incident struct {
				Task struct {
					Comm       string
					CgroupPath string `json:"cgroup_path"`
					Container  *struct {
						Runtime, Attribution, Guess string
						PodUID                      string `json:"pod_uid"`
						PodName                     string `json:"pod_name"`
						PodNamespace                string `json:"pod_namespace"`
					}
				}
				Syscall struct {
					Name      string
					ErrnoName string `json:"errno_name"`
				}
			}
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		inc := line.Incident
		if inc.Task.Comm != "containerd" || inc.Syscall.ErrnoName != "ENOSPC" {
			continue
		}
		found = true
		c := inc.Task.Container
		t.Logf("incident: %s by containerd (cgroup %s): container %+v", inc.Syscall.Name, inc.Task.CgroupPath, c)
		if c == nil || c.PodName != name || c.PodNamespace != namespace || c.PodUID != uid ||
			c.Attribution != "sandbox_being_created" || c.Guess == "" || c.Runtime != RuntimeContainerd {
			t.Errorf("incident's container = %+v, want pod %s/%s %s guessed as the sandbox being created", c, namespace, name, uid)
		}
	}
	if !found {
		t.Fatalf("no ENOSPC incident by containerd in the recording:\n%s\nrecord stderr:\n%s", out, recErr.String())
	}
	text, _ := exec.Command(bin, "incidents", trace).Output()
	if !bytes.Contains(text, []byte("pod shop/db-0")) || !bytes.Contains(text, []byte("a guess")) {
		t.Errorf("text incident lacks the guessed pod:\n%s", text)
	}
}
