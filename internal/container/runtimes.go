package container

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Named is what a container runtime itself says about a cgroup: the
// runtime and container id where the path alone was ambiguous, the
// container's name, and the containerd namespace of a ctr container.
type Named struct {
	Runtime   string
	ID        string
	Name      string
	Namespace string // containerd namespace ("default", "k8s.io"); "" elsewhere
}

// IsZero reports whether no runtime said anything.
func (n Named) IsZero() bool { return n == Named{} }

// runcRoot is a directory where runc keeps one state directory per
// container (<dir>/<id>/state.json), per namespace when namespaced
// (<dir>/<namespace>/<id>): the runtime that passed --root is who runs it.
type runcRoot struct {
	dir        string
	runtime    string
	namespaced bool
}

// defaultRuncRoots are runc's own default root and the ones docker
// (--exec-root /run/docker, containerd namespace moby) and containerd's
// runc shims (one per containerd namespace) give it.
var defaultRuncRoots = []runcRoot{
	{"/run/runc", RuntimeRunc, false},
	{"/run/docker/runtime-runc", RuntimeDocker, true},
	{"/run/containerd/runc", RuntimeContainerd, true},
}

// Runtimes confirms and names containers with the runtimes' own state and
// APIs, for what Parse cannot tell from a path: runc's state directories
// (which cgroup each container runs in), docker's engine API (names, and
// ids in a --cgroup-parent of any name), the CRI (names of Kubernetes
// containers). Each source is optional: an absent state root costs one
// stat, an absent socket one stat per 10 s. Call Resolve once per new
// cgroup path, not per event: a runtime's answer may take up to 1 s.
type Runtimes struct {
	Docker *Docker // nil: no engine API lookups
	CRI    *CRI    // nil: no CRI container names
	roots  []runcRoot
}

// NewRuntimes returns a resolver over the default runc roots and the given
// API clients (either may be nil).
func NewRuntimes(docker *Docker, cri *CRI) *Runtimes {
	return &Runtimes{Docker: docker, CRI: cri, roots: defaultRuncRoots}
}

// Resolve names the container in the cgroup at path (relative to its
// hierarchy's root, as the cgroup resolver gives it). The zero Named means
// no runtime claimed it.
func (r *Runtimes) Resolve(ctx context.Context, path string) Named {
	id := Parse(path)
	switch {
	case id.PodUID != "" && id.ContainerID != "":
		if r.CRI != nil {
			if name, ok := r.CRI.Container(ctx, id.ContainerID); ok {
				return Named{Name: name}
			}
		}
		return Named{}
	case id.ContainerID != "" && (id.Runtime == RuntimeDocker || id.Runtime == RuntimePodman):
		if r.Docker != nil {
			if name, ok := r.Docker.Name(ctx, id.ContainerID); ok {
				return Named{Name: name}
			}
		}
		return Named{}
	case id.ContainerID != "":
		if id.Runtime == RuntimeRunc {
			return Named{Name: id.ContainerID}
		}
		return Named{}
	case !id.IsZero():
		return Named{} // a pod, a QoS level, a conmon: no container
	}
	comps := components(path)
	if len(comps) == 0 {
		return Named{}
	}
	leaf := comps[len(comps)-1]
	if !isName(leaf) {
		return Named{}
	}
	if n, ok := r.fromState(path, leaf); ok {
		if n.Runtime == RuntimeDocker && r.Docker != nil {
			n.Name, _ = r.Docker.Name(ctx, n.ID)
		}
		return n
	}
	// ctr's default: /<namespace>/<id>. The namespace's runc root outlives
	// its containers, so a start that failed (and took its state with it)
	// is still recognised; a two-level path whose first level is no
	// containerd namespace is not.
	if len(comps) == 2 && isName(comps[0]) {
		for _, root := range r.roots {
			if root.runtime == RuntimeContainerd && isDir(filepath.Join(root.dir, comps[0])) {
				return Named{Runtime: RuntimeContainerd, ID: leaf, Name: leaf, Namespace: comps[0]}
			}
		}
	}
	// docker --cgroup-parent with the cgroupfs driver: /<parent>/<id>. A
	// 64-hex leaf alone is no proof; the engine knowing the id is, and it
	// keeps a container whose start failed.
	if len(leaf) == 64 && isContainerID(leaf) && r.Docker != nil {
		if name, ok := r.Docker.Name(ctx, leaf); ok {
			return Named{Runtime: RuntimeDocker, ID: leaf, Name: name}
		}
	}
	return Named{}
}

// fromState finds the runc state directory of a container named leaf whose
// cgroup is path: the state's cgroup_paths must end in path, so a cgroup
// that merely shares a container's name is not taken for it.
func (r *Runtimes) fromState(path, leaf string) (Named, bool) {
	for _, root := range r.roots {
		if !isDir(root.dir) {
			continue
		}
		if !root.namespaced {
			if stateCgroup(filepath.Join(root.dir, leaf, "state.json"), path) {
				return Named{Runtime: root.runtime, ID: leaf, Name: leaf}, true
			}
			continue
		}
		nss, _ := os.ReadDir(root.dir)
		for _, ns := range nss {
			if !ns.IsDir() || !stateCgroup(filepath.Join(root.dir, ns.Name(), leaf, "state.json"), path) {
				continue
			}
			n := Named{Runtime: root.runtime, ID: leaf}
			if root.runtime == RuntimeContainerd {
				// ctr's container id is its name; the namespace
				// tells whose it is (k8s.io: the CRI's).
				n.Name, n.Namespace = leaf, ns.Name()
			}
			return n, true
		}
	}
	return Named{}, false
}

// stateCgroup reports whether the runc state file at statePath puts its
// container in the cgroup at path (in any hierarchy).
func stateCgroup(statePath, path string) bool {
	f, err := os.Open(statePath)
	if err != nil {
		return false
	}
	defer f.Close()
	var st struct {
		CgroupPaths map[string]string `json:"cgroup_paths"`
	}
	if err := json.NewDecoder(io.LimitReader(f, 1<<20)).Decode(&st); err != nil {
		return false
	}
	want := "/" + strings.Trim(path, "/")
	for _, p := range st.CgroupPaths {
		if strings.HasSuffix(p, want) {
			return true
		}
	}
	return false
}

func components(path string) []string {
	var out []string
	for c := range strings.SplitSeq(path, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
