package cgroup

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// kubeletTree returns the cgroups of a kubelet (systemd driver) node with
// pods pods of ctrs containers each, spread over the three QoS classes:
// pods*(ctrs+1)+4 directories.
func kubeletTree(pods, ctrs int) []string {
	var rels []string
	for p := range pods {
		uid := fmt.Sprintf("%08x_0d3a_4c8e_9a61_%012x", p, p)
		var slice string
		switch p % 3 {
		case 0:
			slice = "kubepods.slice/kubepods-pod" + uid + ".slice"
		case 1:
			slice = "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid + ".slice"
		default:
			slice = "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uid + ".slice"
		}
		for c := range ctrs {
			rels = append(rels, fmt.Sprintf("%s/cri-containerd-%056x%08x.scope", slice, p, c))
		}
	}
	return append(rels, "system.slice/containerd.service", "system.slice/kubelet.service")
}

// BenchmarkWalk measures one walk of each hierarchy as this host has it,
// then with a kubelet-shaped tree of 100 and 500 pods (3 containers each)
// added below it, with the getdents walk the Resolver uses ("dirents") and
// the portable filepath.WalkDir + lstat one ("walkdir"). One op is one walk;
// dirs/op is the cgroups it found.
func BenchmarkWalk(b *testing.B) {
	requireRoot(b)
	walkers := []struct {
		name string
		fn   func(string) (map[uint64]string, error)
	}{{"dirents", walk}, {"walkdir", walkStat}}
	for _, h := range liveHierarchies(b) {
		for _, pods := range []int{0, 100, 500} {
			for _, wk := range walkers {
				b.Run(fmt.Sprintf("%s/pods=%d/%s", h.name, pods, wk.name), func(b *testing.B) {
					if h.mount == "" {
						b.Skipf("hierarchy %s is not mounted on this host", h.name)
					}
					if pods > 0 {
						base := filepath.Join(h.mount, fmt.Sprintf("fragscope-bench-%d", os.Getpid()))
						mkcgroups(b, base, kubeletTree(pods, 3)...)
					}
					var dirs int
					for b.Loop() {
						seen, err := wk.fn(h.mount)
						if err != nil {
							b.Fatal(err)
						}
						dirs = len(seen)
					}
					b.ReportMetric(float64(dirs), "dirs/op")
				})
			}
		}
	}
}

// BenchmarkPathCached is the cost of resolving an id that is cached: what
// every per-interval lookup of a known cgroup pays.
func BenchmarkPathCached(b *testing.B) {
	root := b.TempDir()
	var ids []uint64
	for i := range 1000 {
		ids = append(ids, mkdirInoB(b, filepath.Join(root, fmt.Sprintf("c%d", i))))
	}
	r := NewResolver(root, HierarchyV2)
	r.Path(ids[0])
	i := 0
	for b.Loop() {
		if _, _, ok := r.Path(ids[i%len(ids)]); !ok {
			b.Fatal("miss")
		}
		i++
	}
}

func mkdirInoB(b *testing.B, p string) uint64 {
	if err := os.MkdirAll(p, 0o755); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		b.Fatal(err)
	}
	ino, _ := inode(fi)
	return ino
}

// BenchmarkSweep is the per-interval cost of noticing removals when none
// happened, with every container cgroup of a 500-pod tree announced.
func BenchmarkSweep(b *testing.B) {
	requireRoot(b)
	for _, h := range liveHierarchies(b) {
		b.Run(h.name, func(b *testing.B) {
			if h.mount == "" {
				b.Skipf("hierarchy %s is not mounted on this host", h.name)
			}
			ids := mkcgroups(b, filepath.Join(h.mount, fmt.Sprintf("fragscope-bench-%d", os.Getpid())), kubeletTree(500, 3)...)
			r := NewResolver(h.mount, h.hierarchy)
			for _, id := range ids {
				if _, _, ok := r.Path(id); !ok {
					b.Fatal("miss")
				}
			}
			walks := r.Stats().Walks
			for b.Loop() {
				if err := r.Sweep(); err != nil {
					b.Fatal(err)
				}
			}
			if r.Stats().Walks != walks {
				b.Fatal("sweep walked")
			}
			b.ReportMetric(float64(len(ids)), "cgroups/op")
		})
	}
}
