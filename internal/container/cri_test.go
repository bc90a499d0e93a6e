package container

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakeRuntime is an in-process CRI RuntimeService serving a recorded
// ListPodSandboxResponse (testdata/cgroup/crictl-pods.json, as crictl
// printed it), or stalling for delay.
type fakeRuntime struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	resp       *runtimeapi.ListPodSandboxResponse
	containers *runtimeapi.ListContainersResponse // nil: ListContainers unimplemented
	delay      time.Duration
	calls      atomic.Int32
}

func (f *fakeRuntime) ListPodSandbox(ctx context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	f.calls.Add(1)
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return f.resp, nil
}

func (f *fakeRuntime) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	if f.containers == nil {
		return f.UnimplementedRuntimeServiceServer.ListContainers(ctx, req)
	}
	return f.containers, nil
}

// serveFake serves srv on a unix socket in a temporary directory and
// returns the socket's path. srv nil registers no RuntimeService, as a
// runtime without CRI v1 would.
func serveFake(t *testing.T, srv *fakeRuntime) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "containerd.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	if srv != nil {
		runtimeapi.RegisterRuntimeServiceServer(s, srv)
	}
	go s.Serve(l)
	t.Cleanup(s.Stop)
	return sock
}

func recordedPods(t *testing.T) *runtimeapi.ListPodSandboxResponse {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "cgroup", "crictl-pods.json"))
	if err != nil {
		t.Fatal(err)
	}
	var resp runtimeapi.ListPodSandboxResponse
	if err := protojson.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	return &resp
}

func newTestCRI(t *testing.T, endpoint string) *CRI {
	t.Helper()
	c := NewCRI(endpoint)
	t.Cleanup(func() { c.Close() })
	return c
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestCRIPods(t *testing.T) {
	srv := &fakeRuntime{resp: recordedPods(t)}
	sock := serveFake(t, srv)
	c := newTestCRI(t, "unix://"+sock)
	clk := &clock{time.Unix(1000, 0)}
	c.now = clk.now
	ctx := context.Background()

	p, ok := c.Pod(ctx, uid)
	if want := (Pod{UID: uid, Name: "redis-cache-7f9c8d6b5-x2kqp", Namespace: "shop"}); !ok || p != want {
		t.Fatalf("Pod(%s) = %+v %v, want %+v (err %v)", uid, p, ok, want, c.Err())
	}
	// The same listing answers for every pod of the node.
	if p, ok := c.Pod(ctx, "c2a7e9d1-4b3f-4e6a-8d0c-1f5b7a9e3c2d"); !ok || p.Name != "kube-proxy-8hx4r" || p.Namespace != "kube-system" {
		t.Errorf("kube-proxy = %+v %v", p, ok)
	}
	if p, ok := c.Pod(ctx, staticUID); !ok || p.Name != "etcd-node-1" {
		t.Errorf("static pod = %+v %v", p, ok)
	}
	if n := srv.calls.Load(); n != 1 {
		t.Fatalf("%d ListPodSandbox calls, want 1", n)
	}
	// Unknown UIDs wait for the refresh interval, however many lookups.
	for range 100 {
		if _, ok := c.Pod(ctx, "00000000-0000-0000-0000-000000000000"); ok {
			t.Fatal("unknown uid found")
		}
	}
	if n := srv.calls.Load(); n != 1 {
		t.Errorf("%d calls after 100 misses within the interval, want 1", n)
	}
	clk.t = clk.t.Add(criRefresh)
	c.Pod(ctx, "00000000-0000-0000-0000-000000000000")
	if n := srv.calls.Load(); n != 2 {
		t.Errorf("%d calls after the interval, want 2", n)
	}
	if c.Err() != nil || c.Endpoint() != "unix://"+sock {
		t.Errorf("err %v endpoint %q", c.Err(), c.Endpoint())
	}
	// A pod the runtime no longer lists stays cached.
	srv.resp = &runtimeapi.ListPodSandboxResponse{}
	clk.t = clk.t.Add(criRefresh)
	c.Pod(ctx, "00000000-0000-0000-0000-000000000000")
	if p, ok := c.Pod(ctx, uid); !ok || p.Name != "redis-cache-7f9c8d6b5-x2kqp" {
		t.Errorf("removed pod = %+v %v", p, ok)
	}
	if _, ok := c.Pod(ctx, ""); ok {
		t.Error("empty uid found")
	}
}

// TestCRILatency measures a miss (one ListPodSandbox on a kept
// connection) and a hit.
func TestCRILatency(t *testing.T) {
	sock := serveFake(t, &fakeRuntime{resp: recordedPods(t)})
	c := newTestCRI(t, sock)
	clk := &clock{time.Unix(1000, 0)}
	c.now = clk.now
	ctx := context.Background()
	start := time.Now()
	if _, ok := c.Pod(ctx, uid); !ok {
		t.Fatal(c.Err())
	}
	first := time.Since(start)
	const n = 50
	start = time.Now()
	for range n {
		clk.t = clk.t.Add(criRefresh)
		c.Pod(ctx, "00000000-0000-0000-0000-000000000000")
	}
	miss := time.Since(start) / n
	start = time.Now()
	for range n {
		c.Pod(ctx, uid)
	}
	hit := time.Since(start) / n
	t.Logf("first lookup (connect+list) %v, later miss %v, hit %v", first, miss, hit)
	if miss > 100*time.Millisecond {
		t.Errorf("a miss takes %v", miss)
	}
}

func TestCRIDefaultEndpoints(t *testing.T) {
	sock := serveFake(t, &fakeRuntime{resp: recordedPods(t)})
	saved := DefaultCRIEndpoints
	t.Cleanup(func() { DefaultCRIEndpoints = saved })
	// The first default is absent; the second, a bare path, is there.
	DefaultCRIEndpoints = []string{"unix://" + filepath.Join(t.TempDir(), "absent.sock"), sock}
	c := newTestCRI(t, "")
	if _, ok := c.Pod(context.Background(), uid); !ok {
		t.Fatalf("not found through the second default endpoint: %v", c.Err())
	}
	if c.Endpoint() != sock {
		t.Errorf("endpoint %q, want %q", c.Endpoint(), sock)
	}
}

func TestCRINoSocket(t *testing.T) {
	c := newTestCRI(t, "unix://"+filepath.Join(t.TempDir(), "none.sock"))
	clk := &clock{time.Unix(1000, 0)}
	c.now = clk.now
	if _, ok := c.Pod(context.Background(), uid); ok {
		t.Fatal("found without a socket")
	}
	if !errors.Is(c.Err(), ErrNoCRI) {
		t.Errorf("err %v, want ErrNoCRI", c.Err())
	}
	if c.conn != nil || c.calls != 0 {
		t.Errorf("connected without a socket: conn %v calls %d", c.conn, c.calls)
	}
	// The runtime starting later is found after one refresh interval.
	sock := serveFake(t, &fakeRuntime{resp: recordedPods(t)})
	c.endpoints = []string{sock}
	if _, ok := c.Pod(context.Background(), uid); ok {
		t.Error("looked again within the interval")
	}
	clk.t = clk.t.Add(criRefresh)
	if _, ok := c.Pod(context.Background(), uid); !ok {
		t.Errorf("not found once the runtime is up: %v", c.Err())
	}
}

// staleSocket leaves a socket file nobody listens on, as a runtime that
// died does.
func staleSocket(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	return sock
}

// mute accepts connections and never answers, as a wedged runtime does.
func muteSocket(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "mute.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { conn.Close() })
		}
	}()
	return sock
}

func TestCRIFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		sock func(t *testing.T) string
		want string
	}{
		{"slow", func(t *testing.T) string {
			return serveFake(t, &fakeRuntime{resp: recordedPods(t), delay: 5 * time.Second})
		}, "DeadlineExceeded"},
		{"mute", muteSocket, "DeadlineExceeded"},
		{"refused", staleSocket, "connection refused"},
		{"no CRI v1", func(t *testing.T) string { return serveFake(t, nil) }, "does not serve CRI v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCRI(t, "unix://"+tc.sock(t))
			c.timeout = 200 * time.Millisecond
			clk := &clock{time.Unix(1000, 0)}
			c.now = clk.now
			start := time.Now()
			if _, ok := c.Pod(context.Background(), uid); ok {
				t.Fatal("found despite a failing runtime")
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("lookup took %v with a 200ms timeout", d)
			}
			err := c.Err()
			if err == nil || errors.Is(err, ErrNoCRI) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want a failure saying %q", err, tc.want)
			}
			t.Logf("%s: %v", tc.name, err)
			if c.conn != nil {
				t.Error("connection kept after a failure: gRPC would redial in the background")
			}
			// Backoff: nothing is tried again for the refresh interval,
			// then for twice as long, up to criMaxBackoff.
			for _, wait := range []time.Duration{criRefresh, 2 * criRefresh} {
				calls := c.calls
				clk.t = clk.t.Add(wait - time.Millisecond)
				c.Pod(context.Background(), uid)
				if c.calls != calls {
					t.Fatalf("retried %v after a failure", wait-time.Millisecond)
				}
				clk.t = clk.t.Add(time.Millisecond)
				c.Pod(context.Background(), uid)
				if c.calls != calls+1 {
					t.Fatalf("not retried after %v", wait)
				}
			}
		})
	}
}

func TestPodsOfLabels(t *testing.T) {
	// A runtime that filled only the labels; an item without any UID.
	var resp runtimeapi.ListPodSandboxResponse
	err := protojson.Unmarshal([]byte(`{"items":[{"id":"a","metadata":{},"labels":{
		"io.kubernetes.pod.uid":"u-1","io.kubernetes.pod.name":"n","io.kubernetes.pod.namespace":"ns"}},
		{"id":"b","metadata":{"name":"x"}}]}`), &resp)
	if err != nil {
		t.Fatal(err)
	}
	pods := podsOf(resp.Items)
	if len(pods) != 1 || pods["u-1"] != (Pod{UID: "u-1", Name: "n", Namespace: "ns"}) {
		t.Errorf("pods %+v", pods)
	}
	if pods := podsOf(nil); len(pods) != 0 {
		t.Errorf("empty listing: %v", pods)
	}
}

// Kubernetes container names come from the same listing as pod names; a
// runtime without ListContainers still names pods.
func TestCRIContainers(t *testing.T) {
	srv := &fakeRuntime{resp: recordedPods(t), containers: &runtimeapi.ListContainersResponse{Containers: []*runtimeapi.Container{
		{Id: ctr, PodSandboxId: "s1", Metadata: &runtimeapi.ContainerMetadata{Name: "redis"}},
	}}}
	c := newTestCRI(t, "unix://"+serveFake(t, srv))
	if name, ok := c.Container(context.Background(), ctr); !ok || name != "redis" || c.Err() != nil {
		t.Fatalf("Container = %q %v (err %v)", name, ok, c.Err())
	}
	if _, ok := c.Container(context.Background(), ctr2); ok {
		t.Error("an unlisted container was named")
	}
	r := &Runtimes{CRI: c}
	if n := r.Resolve(context.Background(), "/kubepods/burstable/pod"+uid+"/"+ctr); n != (Named{Name: "redis"}) {
		t.Errorf("Resolve = %+v", n)
	}
	old := newTestCRI(t, "unix://"+serveFake(t, &fakeRuntime{resp: recordedPods(t)}))
	if _, ok := old.Pod(context.Background(), uid); !ok || old.Err() != nil {
		t.Errorf("without ListContainers: pod lookup failed (%v)", old.Err())
	}
}
