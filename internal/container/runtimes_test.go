package container

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Ids and paths from real runs on the development machine (docker 20.10.24,
// containerd 1.6.20 with ctr, runc 1.1.5), as /proc/<pid>/cgroup and runc's
// state.json showed them.
const (
	realPlain  = "e86898f392da7aa096190e43270387c091cc207e47eeb19142a0c72b7e240863"
	realParent = "9e17085f47d194c3186e4b0ddf5c97d7c5b69c5f011a701d9538609b5b27f91e"
	realSess   = "/process_api/8c4fae7d4eaae7e1aaf017b039e81569"
)

// fakeDocker serves GET /containers/{id}/json for the ids it knows, 404
// otherwise, as the engine does, on a unix socket.
type fakeDocker struct {
	names map[string]string // id -> name with docker's leading slash
	calls atomic.Int32
	fail  atomic.Bool // answer 500
}

func (f *fakeDocker) serve(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		if f.fail.Load() {
			http.Error(w, `{"message":"boom"}`, http.StatusInternalServerError)
			return
		}
		var filters struct{ ID []string }
		if r.URL.Path != "/containers/json" || json.Unmarshal([]byte(r.URL.Query().Get("filters")), &filters) != nil || len(filters.ID) != 1 {
			http.Error(w, `{"message":"bad request"}`, http.StatusBadRequest)
			return
		}
		// The engine's id filter matches prefixes.
		list := []map[string]any{}
		for id, name := range f.names {
			if strings.HasPrefix(id, filters.ID[0]) {
				list = append(list, map[string]any{"Id": id, "Names": []string{name}, "State": "created"})
			}
		}
		json.NewEncoder(w).Encode(list)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return sock
}

// writeState writes a runc state.json with the given cgroup paths (runc
// writes them absolute, under each hierarchy's mount point).
func writeState(t *testing.T, dir string, paths map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"id": filepath.Base(dir), "cgroup_paths": paths})
	if err := os.WriteFile(filepath.Join(dir, "state.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRuntimesResolve(t *testing.T) {
	root := t.TempDir()
	runcDir := filepath.Join(root, "runc")
	dockerRoot := filepath.Join(root, "docker-runc")
	ctrRoot := filepath.Join(root, "containerd-runc")
	writeState(t, filepath.Join(runcDir, "runcplain1"), map[string]string{
		"":       "/sys/fs/cgroup/unified/runcplain1",
		"memory": "/sys/fs/cgroup/memory" + realSess + "/runcplain1",
	})
	writeState(t, filepath.Join(ctrRoot, "fsns", "web1"), map[string]string{
		"": "/sys/fs/cgroup/unified/fsns/web1", "memory": "/sys/fs/cgroup/memory/fsns/web1",
	})
	writeState(t, filepath.Join(dockerRoot, "moby", realPlain), map[string]string{
		"memory": "/sys/fs/cgroup/memory/other-parent/" + realPlain,
	})
	fd := &fakeDocker{names: map[string]string{realPlain: "/plainbox", realParent: "/parentbox"}}
	docker := NewDocker(fd.serve(t))
	r := &Runtimes{Docker: docker, roots: []runcRoot{
		{runcDir, RuntimeRunc, false}, {dockerRoot, RuntimeDocker, true}, {ctrRoot, RuntimeContainerd, true},
	}}
	for _, tc := range []struct {
		name, path string
		want       Named
	}{
		{"runc v1, under the caller's cgroup", realSess + "/runcplain1", Named{Runtime: RuntimeRunc, ID: "runcplain1", Name: "runcplain1"}},
		{"runc v2", "/runcplain1", Named{Runtime: RuntimeRunc, ID: "runcplain1", Name: "runcplain1"}},
		{"a cgroup that only shares a runc container's name", "/elsewhere/runcplain1", Named{}},
		{"ctr running", "/fsns/web1", Named{Runtime: RuntimeContainerd, ID: "web1", Name: "web1", Namespace: "fsns"}},
		{"ctr start failed, state gone", "/fsns/gone", Named{Runtime: RuntimeContainerd, ID: "gone", Name: "gone", Namespace: "fsns"}},
		{"two levels, no containerd namespace", realSess, Named{}},
		{"docker --cgroup-parent, any name", "/mytenant-a/" + realParent, Named{Runtime: RuntimeDocker, ID: realParent, Name: "parentbox"}},
		{"docker runc state, custom parent", "/other-parent/" + realPlain, Named{Runtime: RuntimeDocker, ID: realPlain, Name: "plainbox"}},
		{"docker default layout: the name only", "/docker/" + realPlain, Named{Name: "plainbox"}},
		{"64 hex the engine does not know", "/mytenant-a/" + strings.Repeat("0", 64), Named{}},
		{"kubepods without CRI", "/kubepods/besteffort/pod" + uid + "/" + ctr, Named{}},
		{"root", "/", Named{}},
	} {
		if got := r.Resolve(context.Background(), tc.path); got != tc.want {
			t.Errorf("%s: Resolve(%q) = %+v, want %+v", tc.name, tc.path, got, tc.want)
		}
	}
	// Answers are cached, "no such container" too.
	n := fd.calls.Load()
	r.Resolve(context.Background(), "/mytenant-a/"+realParent)
	r.Resolve(context.Background(), "/mytenant-a/"+strings.Repeat("0", 64))
	if fd.calls.Load() != n {
		t.Errorf("cached ids asked again: %d calls, then %d", n, fd.calls.Load())
	}
}

// No state roots and no socket: nothing is claimed, and the engine is not
// asked for every hex leaf.
func TestRuntimesAbsent(t *testing.T) {
	d := NewDocker(filepath.Join(t.TempDir(), "none.sock"))
	r := &Runtimes{Docker: d, roots: []runcRoot{{filepath.Join(t.TempDir(), "nothing"), RuntimeContainerd, true}}}
	if got := r.Resolve(context.Background(), "/fsns/web1"); !got.IsZero() {
		t.Errorf("claimed %+v", got)
	}
	if got := r.Resolve(context.Background(), "/mytenant-a/"+realParent); !got.IsZero() {
		t.Errorf("claimed %+v", got)
	}
	if err := d.Err(); err == nil || !strings.Contains(err.Error(), "no Docker engine socket") {
		t.Errorf("err %v", err)
	}
}

// An engine that fails is left alone for the backoff, then asked again.
func TestDockerBackoff(t *testing.T) {
	fd := &fakeDocker{names: map[string]string{realPlain: "/plainbox"}}
	d := NewDocker("unix://" + fd.serve(t))
	now := time.Unix(1000, 0)
	d.now = func() time.Time { return now }
	fd.fail.Store(true)
	if _, ok := d.Name(context.Background(), realPlain); ok || d.Err() == nil {
		t.Fatalf("a failing engine named it (err %v)", d.Err())
	}
	fd.fail.Store(false)
	if _, ok := d.Name(context.Background(), realPlain); ok || fd.calls.Load() != 1 {
		t.Fatalf("asked during the backoff: %d calls", fd.calls.Load())
	}
	now = now.Add(criRefresh)
	if name, ok := d.Name(context.Background(), realPlain); !ok || name != "plainbox" || d.Err() != nil {
		t.Fatalf("after the backoff: %q %v %v", name, ok, d.Err())
	}
}

// The engine resolves names and id prefixes too; only an exact id counts.
func TestDockerExactID(t *testing.T) {
	fd := &fakeDocker{names: map[string]string{realPlain: "/plainbox"}}
	d := NewDocker(fd.serve(t))
	if _, ok := d.Name(context.Background(), realPlain[:12]); ok {
		t.Error("a prefix match was taken for the container")
	}
	if name, ok := d.Name(context.Background(), realPlain); !ok || name != "plainbox" {
		t.Errorf("Name = %q %v", name, ok)
	}
}
