package container

import (
	"context"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultPodLogDir is where kubelet makes a pod's log directory,
// <namespace>_<name>_<uid>, before it asks the runtime for the pod's
// sandbox (kuberuntime's createPodSandbox; --pod-logs-dir since 1.29).
const DefaultPodLogDir = "/var/log/pods"

const (
	// sandboxWindow is how long before a failure a NOTREADY sandbox may
	// have been created to count as the one being created.
	sandboxWindow = 30 * time.Second
	// sandboxRelist bounds the forced listings of SandboxBeingCreated: a
	// storm of failed sandboxes costs one listing per second.
	sandboxRelist = time.Second
)

// Sandbox is one pod sandbox as the CRI lists it.
type Sandbox struct {
	ID      string
	Pod     Pod
	Ready   bool
	Created time.Time
}

// Guess is the pod whose sandbox a runtime was most likely creating when
// a namespace creation failed in the runtime's own process.
type Guess struct {
	Pod        Pod
	SandboxID  string // "" when the runtime never listed it
	Candidates int    // pods that fitted; the newest is Pod
	Why        string // how it was chosen, for the incident
}

// CreatesPodNetns reports whether a failed namespace syscall is a
// container runtime creating a pod's network namespace in its own process:
// containerd's CRI unshares it on a thread of containerd itself
// (pkg/netns), CRI-O in its pinns helper. Such a failure is charged to the
// runtime's cgroup, which names no pod.
func CreatesPodNetns(comm, syscall string, flags uint64) bool {
	if syscall == "setns" || flags&unix.CLONE_NEWNET == 0 {
		return false
	}
	switch comm {
	case "containerd", "crio", "pinns":
		return true
	}
	return false
}

// SandboxBeingCreated guesses the pod whose sandbox the runtime was
// creating at time at. The runtime's own listing comes first: a NOTREADY
// sandbox created in the 30 s before (runtimes that store a sandbox before
// its network). containerd 1.6 stores it only once it runs, so a sandbox
// whose netns failed is never listed; then the pod kubelet is waiting for
// is the one with a log directory under podLogDir and no sandbox at all,
// the most recently created first. It is a guess, and Why says from what.
// The listing is forced (at most once per second) and bounded by 1 s.
func (c *CRI) SandboxBeingCreated(ctx context.Context, at time.Time, podLogDir string) (Guess, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now().Sub(c.lastForced) >= sandboxRelist && !c.now().Before(c.failedUntil()) {
		c.lastForced = c.now()
		c.next = time.Time{}
		c.maybeListLocked(ctx)
	}
	return guessSandbox(c.sandboxes, at, podLogs(podLogDir))
}

// failedUntil is the end of the backoff after a failed listing (zero
// when the last one answered or found no socket).
func (c *CRI) failedUntil() time.Time {
	if c.backoff == 0 {
		return time.Time{}
	}
	return c.next
}

// podLog is a kubelet pod log directory.
type podLog struct {
	Pod     Pod
	ModTime time.Time
}

func podLogs(dir string) []podLog {
	if dir == "" {
		return nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []podLog
	for _, e := range ents {
		// Namespaces and names are DNS labels and subdomains: no '_'.
		f := strings.Split(e.Name(), "_")
		if !e.IsDir() || len(f) != 3 || !isPodUID(f[2]) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, podLog{Pod{UID: f[2], Name: f[1], Namespace: f[0]}, fi.ModTime()})
	}
	return out
}

func guessSandbox(sbs []Sandbox, at time.Time, logs []podLog) (Guess, bool) {
	var recent []Sandbox
	listed := map[string]bool{}
	for _, s := range sbs {
		listed[s.Pod.UID] = true
		if !s.Ready && !s.Created.Before(at.Add(-sandboxWindow)) && !s.Created.After(at.Add(2*time.Second)) {
			recent = append(recent, s)
		}
	}
	var waiting []podLog
	for _, l := range logs {
		if !listed[l.Pod.UID] {
			waiting = append(waiting, l)
		}
	}
	n := len(recent) + len(waiting)
	switch {
	case len(recent) > 0:
		s := slices.MaxFunc(recent, func(a, b Sandbox) int { return a.Created.Compare(b.Created) })
		return Guess{Pod: s.Pod, SandboxID: s.ID, Candidates: n,
			Why: "the newest NOTREADY sandbox the runtime lists, created " + ago(at, s.Created)}, true
	case len(waiting) > 0:
		l := slices.MaxFunc(waiting, func(a, b podLog) int { return a.ModTime.Compare(b.ModTime) })
		return Guess{Pod: l.Pod, Candidates: n,
			Why: "the newest pod with a kubelet log directory (made " + ago(at, l.ModTime) + ") and no sandbox listed by the runtime"}, true
	}
	return Guess{}, false
}

func ago(at, t time.Time) string {
	d := at.Sub(t).Round(time.Millisecond)
	if d < 0 {
		return (-d).String() + " after the failure"
	}
	return d.String() + " before the failure"
}

func sandboxesOf(items []*runtimeapi.PodSandbox) []Sandbox {
	out := make([]Sandbox, 0, min(len(items), criMaxPods))
	pods := podsOf(items)
	for _, it := range items {
		if len(out) >= criMaxPods {
			break
		}
		md := it.GetMetadata()
		p := Pod{UID: md.GetUid(), Name: md.GetName(), Namespace: md.GetNamespace()}
		if full, ok := pods[p.UID]; ok {
			p = full
		}
		out = append(out, Sandbox{ID: it.GetId(), Pod: p,
			Ready:   it.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY,
			Created: time.Unix(0, it.GetCreatedAt())})
	}
	return out
}
