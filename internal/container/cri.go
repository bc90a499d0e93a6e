package container

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultCRIEndpoints are tried in order when --cri-endpoint is empty:
// containerd's and CRI-O's usual sockets.
var DefaultCRIEndpoints = []string{
	"unix:///run/containerd/containerd.sock",
	"unix:///run/crio/crio.sock",
}

const (
	// criTimeout bounds one listing, connection included: a node's pods
	// take milliseconds to list; lookups run on the live source's path, so
	// a runtime that hangs must not stall it for longer than this.
	criTimeout = time.Second
	// criRefresh is the least time between two listings: an unknown pod
	// UID (a pod created since, or one the runtime no longer lists) costs
	// one RPC per interval, however many lookups ask for it.
	criRefresh = 10 * time.Second
	// criMaxBackoff caps the wait after failed listings, which doubles
	// from criRefresh: a socket nobody answers on costs one attempt per
	// 5 min at most.
	criMaxBackoff = 5 * time.Minute
	// criMaxPods bounds the cache. Pods no longer listed are kept for the
	// reports that still name them, up to this many entries in all.
	criMaxPods = 4096
	// criMaxMsg allows a listing of criMaxPods sandboxes with their labels
	// and annotations (~1-2 KiB each); gRPC's default is 4 MiB.
	criMaxMsg = 16 << 20
)

// ErrNoCRI is wrapped by CRI.Err when the lookup is skipped because no
// runtime socket exists: an ordinary situation (docker or podman hosts, a
// bare host), reported only for diagnostics.
var ErrNoCRI = errors.New("no CRI available")

// Pod is a Kubernetes pod as the container runtime knows it.
type Pod struct {
	UID       string
	Name      string
	Namespace string
}

// CRI looks up pod names and namespaces from the node's container runtime
// through the CRI v1 RuntimeService (ListPodSandbox) over its unix socket.
// It is safe for concurrent use; lookups run one at a time.
type CRI struct {
	endpoints []string
	timeout   time.Duration
	refresh   time.Duration
	now       func() time.Time

	mu         sync.Mutex
	pods       map[string]Pod
	containers map[string]string // container id -> name (CRI metadata)
	sandboxes  []Sandbox         // the last listing, for SandboxBeingCreated
	lastForced time.Time         // SandboxBeingCreated's last forced listing
	next       time.Time         // no listing before this
	backoff    time.Duration
	endpoint   string
	conn       *grpc.ClientConn // to endpoint; nil after a failure
	client     runtimeapi.RuntimeServiceClient
	err        error
	calls      int
}

// NewCRI returns a CRI client for endpoint (a --cri-endpoint value:
// "unix:///path" or a socket path); empty means DefaultCRIEndpoints. Nothing
// connects until the first lookup.
func NewCRI(endpoint string) *CRI {
	eps := DefaultCRIEndpoints
	if endpoint != "" {
		eps = []string{endpoint}
	}
	return &CRI{
		endpoints: eps,
		timeout:   criTimeout,
		refresh:   criRefresh,
		now:       time.Now,
		pods:      make(map[string]Pod),
	}
}

// Container returns the name of a Kubernetes container (its metadata name,
// "app", as in the pod spec) by container id, under the same listing rules
// as Pod: a miss lists the node's containers at most once per 10 s.
func (c *CRI) Container(ctx context.Context, id string) (name string, ok bool) {
	if id == "" {
		return "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.containers[id]; ok {
		return n, true
	}
	c.maybeListLocked(ctx)
	n, ok := c.containers[id]
	return n, ok
}

// Pod returns the pod with the given UID (dashes, as Identity.PodUID). ok is
// false when the runtime does not list it, or when no socket answers; Err
// says which. A cache miss lists the node's pods, at most once per 10 s (and
// less often while the runtime fails to answer), waiting at most 1 s: call
// it when a cgroup is first seen, not per event.
func (c *CRI) Pod(ctx context.Context, uid string) (pod Pod, ok bool) {
	if uid == "" {
		return Pod{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.pods[uid]; ok {
		return p, true
	}
	c.maybeListLocked(ctx)
	p, ok := c.pods[uid]
	return p, ok
}

// maybeListLocked lists the node's sandboxes and containers unless the
// refresh interval or a backoff says not yet.
func (c *CRI) maybeListLocked(ctx context.Context) {
	if c.now().Before(c.next) {
		return
	}
	c.err = c.listLocked(ctx)
	switch {
	case c.err == nil || errors.Is(c.err, ErrNoCRI):
		// A missing socket costs one stat per interval: retry as often
		// as a pod could be new.
		c.backoff = 0
		c.next = c.now().Add(c.refresh)
	default:
		c.backoff = min(max(2*c.backoff, c.refresh), criMaxBackoff)
		c.next = c.now().Add(c.backoff)
	}
}

// Endpoint returns the endpoint of the last listing, "" if none ran.
func (c *CRI) Endpoint() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endpoint
}

// Err returns why the last listing failed or was skipped (wrapping
// ErrNoCRI when no socket exists), nil if it succeeded.
func (c *CRI) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close drops the connection; a later lookup reconnects.
func (c *CRI) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeLocked()
}

func (c *CRI) closeLocked() error {
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn, c.client = nil, nil
	return err
}

func (c *CRI) listLocked(ctx context.Context) error {
	ep := ""
	for _, e := range c.endpoints {
		if isSocket(socketPath(e)) {
			ep = e
			break
		}
	}
	if ep == "" {
		c.closeLocked()
		return fmt.Errorf("%w: no socket at %s", ErrNoCRI, strings.Join(c.endpoints, ", "))
	}
	if ep != c.endpoint {
		c.closeLocked()
		c.endpoint = ep
	}
	if c.conn == nil {
		// NewClient does not dial: the RPC below connects, within its
		// deadline. "unix:" targets take an absolute path.
		conn, err := grpc.NewClient("unix:"+socketPath(ep),
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(criMaxMsg)))
		if err != nil {
			return fmt.Errorf("CRI %s: %w", ep, err)
		}
		c.conn, c.client = conn, runtimeapi.NewRuntimeServiceClient(conn)
	}

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	c.calls++
	// No filter: one listing names every pod of the node, and sandboxes
	// not made by kubelet may lack the io.kubernetes.pod.uid label.
	resp, err := c.client.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		// Close, so that gRPC does not keep redialling a runtime that
		// is down in the background: the next attempt, after the
		// backoff, dials afresh.
		c.closeLocked()
		if status.Code(err) == codes.Unimplemented {
			return fmt.Errorf("CRI ListPodSandbox on %s: runtime does not serve CRI v1 (runtime.v1.RuntimeService): %w", ep, err)
		}
		return fmt.Errorf("CRI ListPodSandbox on %s: %w", ep, err)
	}
	c.mergeLocked(podsOf(resp.GetItems()))
	c.sandboxes = sandboxesOf(resp.GetItems())
	// Container names are a second call; a runtime that lists sandboxes
	// but fails here still names pods.
	cresp, err := c.client.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if status.Code(err) == codes.Unimplemented {
		return nil
	}
	if err != nil {
		return fmt.Errorf("CRI ListContainers on %s: %w", ep, err)
	}
	if c.containers == nil || len(c.containers) > criMaxPods*8 {
		c.containers = map[string]string{}
	}
	for _, it := range cresp.GetContainers() {
		if n := it.GetMetadata().GetName(); n != "" {
			c.containers[it.GetId()] = n
		}
	}
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

func podsOf(items []*runtimeapi.PodSandbox) map[string]Pod {
	pods := make(map[string]Pod, len(items))
	for _, it := range items {
		md, labels := it.GetMetadata(), it.GetLabels()
		p := Pod{UID: md.GetUid(), Name: md.GetName(), Namespace: md.GetNamespace()}
		// Kubelet also puts the pod in the sandbox labels; use them if a
		// runtime left the metadata incomplete.
		if p.UID == "" {
			p.UID = labels["io.kubernetes.pod.uid"]
		}
		if p.Name == "" {
			p.Name = labels["io.kubernetes.pod.name"]
		}
		if p.Namespace == "" {
			p.Namespace = labels["io.kubernetes.pod.namespace"]
		}
		if p.UID == "" || len(pods) >= criMaxPods {
			continue
		}
		// A pod's sandboxes (attempts) share its UID and names.
		pods[p.UID] = p
	}
	return pods
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
