package container

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeCrictl is put first on PATH: it logs its arguments and prints a
// recorded `crictl pods -o json` (testdata/cgroup/crictl-pods.json), or
// misbehaves as FAKE_CRICTL_MODE says.
const fakeCrictl = `#!/bin/sh
echo "$@" >> "$FAKE_CRICTL_LOG"
case "$FAKE_CRICTL_MODE" in
sleep) exec sleep 10 ;;
hang) sleep 3 ;;
refused)
	echo 'time="2024-11-27T12:00:00Z" level=fatal msg="validate service connection: validate CRI v1 runtime API for endpoint \"unix:///run/containerd/containerd.sock\": rpc error: code = Unavailable desc = connection error"' >&2
	exit 1 ;;
garbage) echo '{"items": [' ; exit 0 ;;
esac
cat "$FAKE_CRICTL_OUTPUT"
`

type fakeEnv struct {
	log, socket string
}

// setupFake installs the fake crictl and a listening unix socket standing
// for the runtime's.
func setupFake(t *testing.T, mode string) fakeEnv {
	t.Helper()
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "crictl"), []byte(fakeCrictl), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := filepath.Abs(filepath.Join("..", "..", "testdata", "cgroup", "crictl-pods.json"))
	if err != nil {
		t.Fatal(err)
	}
	env := fakeEnv{log: filepath.Join(bin, "log"), socket: filepath.Join(t.TempDir(), "containerd.sock")}
	l, err := net.Listen("unix", env.socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("FAKE_CRICTL_LOG", env.log)
	t.Setenv("FAKE_CRICTL_OUTPUT", out)
	t.Setenv("FAKE_CRICTL_MODE", mode)
	return env
}

func (e fakeEnv) runs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(e.log)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestCRIPods(t *testing.T) {
	env := setupFake(t, "")
	c := NewCRI("unix://" + env.socket)
	clk := &clock{time.Unix(1000, 0)}
	c.now = clk.now
	ctx := context.Background()

	p, ok := c.Pod(ctx, uid)
	if want := (Pod{UID: uid, Name: "redis-cache-7f9c8d6b5-x2kqp", Namespace: "shop"}); !ok || p != want {
		t.Fatalf("Pod(%s) = %+v %v, want %+v (err %v)", uid, p, ok, want, c.Err())
	}
	runs := env.runs(t)
	if want := "--runtime-endpoint unix://" + env.socket + " --timeout 2s pods -o json"; len(runs) != 1 || runs[0] != want {
		t.Fatalf("crictl runs %q, want [%q]", runs, want)
	}
	// The same listing answers for every pod of the node.
	if p, ok := c.Pod(ctx, "c2a7e9d1-4b3f-4e6a-8d0c-1f5b7a9e3c2d"); !ok || p.Name != "kube-proxy-8hx4r" || p.Namespace != "kube-system" {
		t.Errorf("kube-proxy = %+v %v", p, ok)
	}
	if p, ok := c.Pod(ctx, staticUID); !ok || p.Name != "etcd-node-1" {
		t.Errorf("static pod = %+v %v", p, ok)
	}
	// Unknown UIDs wait for the refresh interval, however many lookups.
	for range 100 {
		if _, ok := c.Pod(ctx, "00000000-0000-0000-0000-000000000000"); ok {
			t.Fatal("unknown uid found")
		}
	}
	if n := len(env.runs(t)); n != 1 {
		t.Errorf("%d crictl runs within the refresh interval, want 1", n)
	}
	clk.t = clk.t.Add(criRefresh)
	c.Pod(ctx, "00000000-0000-0000-0000-000000000000")
	if n := len(env.runs(t)); n != 2 {
		t.Errorf("%d crictl runs after the interval, want 2", n)
	}
	if c.Err() != nil || c.Endpoint() != "unix://"+env.socket {
		t.Errorf("err %v endpoint %q", c.Err(), c.Endpoint())
	}
	if _, ok := c.Pod(ctx, ""); ok {
		t.Error("empty uid found")
	}
}

func TestCRIDefaultEndpoints(t *testing.T) {
	env := setupFake(t, "")
	saved := DefaultCRIEndpoints
	t.Cleanup(func() { DefaultCRIEndpoints = saved })
	// The first default is absent; the second, a bare path, is there.
	DefaultCRIEndpoints = []string{"unix://" + filepath.Join(t.TempDir(), "absent.sock"), env.socket}
	c := NewCRI("")
	if _, ok := c.Pod(context.Background(), uid); !ok {
		t.Fatalf("not found through the second default endpoint: %v", c.Err())
	}
	if runs := env.runs(t); len(runs) != 1 || !strings.HasPrefix(runs[0], "--runtime-endpoint unix://"+env.socket+" ") {
		t.Errorf("crictl runs %q", runs)
	}
}

func TestCRIAbsent(t *testing.T) {
	t.Run("no socket", func(t *testing.T) {
		env := setupFake(t, "")
		c := NewCRI("unix://" + filepath.Join(t.TempDir(), "none.sock"))
		if _, ok := c.Pod(context.Background(), uid); ok {
			t.Fatal("found without a socket")
		}
		if !errors.Is(c.Err(), ErrNoCRI) {
			t.Errorf("err %v, want ErrNoCRI", c.Err())
		}
		if runs := env.runs(t); len(runs) != 0 {
			t.Errorf("crictl ran without a socket: %q", runs)
		}
	})
	t.Run("no crictl", func(t *testing.T) {
		env := setupFake(t, "")
		t.Setenv("PATH", t.TempDir())
		c := NewCRI(env.socket)
		if _, ok := c.Pod(context.Background(), uid); ok {
			t.Fatal("found without crictl")
		}
		if !errors.Is(c.Err(), ErrNoCRI) || !strings.Contains(c.Err().Error(), "crictl") {
			t.Errorf("err %v, want ErrNoCRI naming crictl", c.Err())
		}
	})
}

func TestCRIFailures(t *testing.T) {
	for _, mode := range []string{"sleep", "hang", "refused", "garbage"} {
		t.Run(mode, func(t *testing.T) {
			env := setupFake(t, mode)
			c := NewCRI("unix://" + env.socket)
			c.timeout = 200 * time.Millisecond
			start := time.Now()
			if _, ok := c.Pod(context.Background(), uid); ok {
				t.Fatal("found despite a failing crictl")
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("lookup took %v with a 200ms timeout", d)
			}
			err := c.Err()
			if err == nil || errors.Is(err, ErrNoCRI) {
				t.Fatalf("err %v, want a crictl failure", err)
			}
			t.Logf("%s: %v", mode, err)
			if mode == "refused" && !strings.Contains(err.Error(), "connection error") {
				t.Errorf("stderr not in the error: %v", err)
			}
		})
	}
}

func TestParsePodsLabels(t *testing.T) {
	// A runtime that filled only the labels; an item without any UID.
	pods, err := parsePods([]byte(`{"items":[{"id":"a","metadata":{},"labels":{
		"io.kubernetes.pod.uid":"u-1","io.kubernetes.pod.name":"n","io.kubernetes.pod.namespace":"ns"}},
		{"id":"b","metadata":{"name":"x"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != 1 || pods["u-1"] != (Pod{UID: "u-1", Name: "n", Namespace: "ns"}) {
		t.Errorf("pods %+v", pods)
	}
	if pods, err := parsePods([]byte(`{"items":[]}`)); err != nil || len(pods) != 0 {
		t.Errorf("empty listing: %v %v", pods, err)
	}
}
