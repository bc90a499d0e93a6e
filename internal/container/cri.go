package container

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// DefaultCRIEndpoints are tried in order when --cri-endpoint is empty:
// containerd's and CRI-O's usual sockets.
var DefaultCRIEndpoints = []string{
	"unix:///run/containerd/containerd.sock",
	"unix:///run/crio/crio.sock",
}

const (
	// criTimeout bounds one crictl run: connecting and listing the pods
	// of a node takes milliseconds; a runtime that hangs must not stall
	// the caller for longer than this.
	criTimeout = 2 * time.Second
	// criRefresh is the least time between two listings: an unknown pod
	// UID (a pod created since, or one the runtime no longer lists) costs
	// one crictl run per interval, however many lookups ask for it.
	criRefresh = 10 * time.Second
	// criMaxPods bounds the cache. Pods no longer listed are kept for the
	// reports that still name them, up to this many entries in all.
	criMaxPods = 4096
)

// ErrNoCRI is wrapped by CRI.Err when the lookup is skipped because crictl
// or a runtime socket is missing: an ordinary situation (docker or podman
// hosts, no crictl installed), reported only for diagnostics.
var ErrNoCRI = errors.New("no CRI available")

// Pod is a Kubernetes pod as the container runtime knows it.
type Pod struct {
	UID       string
	Name      string
	Namespace string
}

// CRI looks up pod names and namespaces from the node's container runtime
// by running crictl (see the package documentation for why). It is safe for
// concurrent use; lookups run one at a time.
type CRI struct {
	endpoints []string
	crictl    string // program name or path
	timeout   time.Duration
	refresh   time.Duration
	now       func() time.Time

	mu       sync.Mutex
	pods     map[string]Pod
	listed   bool
	lastList time.Time
	endpoint string
	err      error
	runs     int
}

// NewCRI returns a CRI client for endpoint (a --cri-endpoint value:
// "unix:///path" or a socket path); empty means DefaultCRIEndpoints. Nothing
// runs until the first lookup.
func NewCRI(endpoint string) *CRI {
	eps := DefaultCRIEndpoints
	if endpoint != "" {
		eps = []string{endpoint}
	}
	return &CRI{
		endpoints: eps,
		crictl:    "crictl",
		timeout:   criTimeout,
		refresh:   criRefresh,
		now:       time.Now,
		pods:      make(map[string]Pod),
	}
}

// Pod returns the pod with the given UID (dashes, as Identity.PodUID). ok is
// false when the runtime does not list it, or when crictl or the socket is
// absent; Err says which. A cache miss lists the node's pods, at most once
// per 10 s, waiting at most 2 s for crictl: call it when a cgroup is first
// seen, not per event.
func (c *CRI) Pod(ctx context.Context, uid string) (pod Pod, ok bool) {
	if uid == "" {
		return Pod{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.pods[uid]; ok {
		return p, true
	}
	if c.listed && c.now().Sub(c.lastList) < c.refresh {
		return Pod{}, false
	}
	c.listed, c.lastList = true, c.now()
	c.err = c.listLocked(ctx)
	p, ok := c.pods[uid]
	return p, ok
}

// Endpoint returns the endpoint of the last listing, "" if none ran.
func (c *CRI) Endpoint() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endpoint
}

// Err returns why the last listing failed or was skipped (wrapping
// ErrNoCRI when crictl or the socket is missing), nil if it succeeded.
func (c *CRI) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *CRI) listLocked(ctx context.Context) error {
	bin, err := exec.LookPath(c.crictl)
	if err != nil {
		return fmt.Errorf("%w: %s not found in PATH", ErrNoCRI, c.crictl)
	}
	ep := ""
	for _, e := range c.endpoints {
		if isSocket(socketPath(e)) {
			ep = e
			break
		}
	}
	if ep == "" {
		return fmt.Errorf("%w: no socket at %s", ErrNoCRI, strings.Join(c.endpoints, ", "))
	}
	c.endpoint = ep
	if !strings.Contains(ep, "://") {
		ep = "unix://" + ep // crictl wants a URL; a bare path is a deprecated form
	}

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	// --timeout bounds crictl's own connection attempt; the context kills
	// it if the runtime accepts and then does not answer.
	cmd := exec.CommandContext(ctx, bin, "--runtime-endpoint", ep,
		"--timeout", c.timeout.String(), "pods", "-o", "json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A killed crictl can leave children holding the pipes; do not wait
	// for them beyond this.
	cmd.WaitDelay = 500 * time.Millisecond
	c.runs++
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		msg, _, _ := strings.Cut(strings.TrimSpace(stderr.String()), "\n")
		if msg != "" {
			return fmt.Errorf("crictl pods on %s: %w: %s", ep, err, msg)
		}
		return fmt.Errorf("crictl pods on %s: %w", ep, err)
	}
	pods, err := parsePods(stdout.Bytes())
	if err != nil {
		return fmt.Errorf("crictl pods on %s: %w", ep, err)
	}
	c.mergeLocked(pods)
	return nil
}

// mergeLocked replaces the cache with the listing, then keeps as many pods
// that are no longer listed as fit: their cgroups may still be in reports.
func (c *CRI) mergeLocked(listed map[string]Pod) {
	old := c.pods
	c.pods = listed
	for uid, p := range old {
		if len(c.pods) >= criMaxPods {
			break
		}
		if _, ok := c.pods[uid]; !ok {
			c.pods[uid] = p
		}
	}
}

// crictlPods is the part of `crictl pods -o json` we read: the CRI v1
// ListPodSandboxResponse in protojson form,
// {"items": [{"id": ..., "metadata": {"name", "uid", "namespace", "attempt"}, ...}]}.
type crictlPods struct {
	Items []struct {
		ID       string `json:"id"`
		Metadata struct {
			Name      string `json:"name"`
			UID       string `json:"uid"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
		Labels map[string]string `json:"labels"`
	} `json:"items"`
}

func parsePods(b []byte) (map[string]Pod, error) {
	var out crictlPods
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("parse crictl output: %w", err)
	}
	pods := make(map[string]Pod, len(out.Items))
	for _, it := range out.Items {
		p := Pod{UID: it.Metadata.UID, Name: it.Metadata.Name, Namespace: it.Metadata.Namespace}
		// Kubelet also puts the pod in the sandbox labels; use them if a
		// runtime left the metadata incomplete.
		if p.UID == "" {
			p.UID = it.Labels["io.kubernetes.pod.uid"]
		}
		if p.Name == "" {
			p.Name = it.Labels["io.kubernetes.pod.name"]
		}
		if p.Namespace == "" {
			p.Namespace = it.Labels["io.kubernetes.pod.namespace"]
		}
		if p.UID == "" || len(pods) >= criMaxPods {
			continue
		}
		pods[p.UID] = p
	}
	return pods, nil
}

// socketPath turns "unix:///run/x.sock" or "/run/x.sock" into the path.
func socketPath(ep string) string {
	if p, ok := strings.CutPrefix(ep, "unix://"); ok {
		return p
	}
	return ep
}

func isSocket(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode()&fs.ModeSocket != 0
}
