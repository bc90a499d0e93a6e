package container

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fragscope/fragscope/internal/testutil"

	"github.com/fragscope/fragscope/internal/cgroup"
	"golang.org/x/sys/unix"
)

// TestLiveIdentity creates kubelet-shaped cgroups (both drivers) in each
// mounted hierarchy, resolves their ids with the cgroup package and checks
// the identity Parse gives the resolved paths: the path fragscope attributes
// to is the one Parse must understand.
func TestLiveIdentity(t *testing.T) {
	testutil.RequireRoot(t) // creating cgroups needs root
	_, m, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]Identity{
		"kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid_ + ".slice/cri-containerd-" + ctr + ".scope": {
			Runtime: RuntimeContainerd, ContainerID: ctr, PodUID: uid, QoS: QoSBurstable, Driver: DriverSystemd},
		"kubepods.slice/kubepods-pod" + uid_ + ".slice/crio-" + ctr2 + ".scope": {
			Runtime: RuntimeCRIO, ContainerID: ctr2, PodUID: uid, QoS: QoSGuaranteed, Driver: DriverSystemd},
		"kubepods/besteffort/pod" + uid + "/" + ctr: {
			ContainerID: ctr, PodUID: uid, QoS: QoSBestEffort, Driver: DriverCgroupfs},
		"system.slice/docker-" + ctr2 + ".scope": {Runtime: RuntimeDocker, ContainerID: ctr2, Driver: DriverSystemd},
		"system.slice/containerd.service":        {},
	}
	for _, h := range []struct{ name, mount, hierarchy string }{
		{"v2", m.V2, cgroup.HierarchyV2},
		{"v1-memory", m.Memory, cgroup.HierarchyMemory},
	} {
		t.Run(h.name, func(t *testing.T) {
			if h.mount == "" {
				t.Skipf("hierarchy %s is not mounted on this host", h.name)
			}
			base := filepath.Join(h.mount, fmt.Sprintf("fragscope-test-%d", os.Getpid()))
			var made []string
			t.Cleanup(func() {
				// Deepest first; the shared parents go after their children.
				for i := len(made) - 1; i >= 0; i-- {
					if err := unix.Rmdir(made[i]); err != nil && err != unix.ENOENT {
						t.Errorf("rmdir %s: %v", made[i], err)
					}
				}
			})
			if err := unix.Mkdir(base, 0o755); err != nil {
				t.Fatal(err)
			}
			made = append(made, base)
			ids := map[string]uint64{}
			for rel := range cases {
				p := base
				for _, c := range strings.Split(rel, "/") {
					p = filepath.Join(p, c)
					if err := unix.Mkdir(p, 0o755); err == nil {
						made = append(made, p)
					} else if err != unix.EEXIST {
						t.Fatal(err)
					}
				}
				var st unix.Stat_t
				if err := unix.Stat(p, &st); err != nil {
					t.Fatal(err)
				}
				ids[rel] = st.Ino
			}
			r := cgroup.NewResolver(h.mount, h.hierarchy)
			for rel, want := range cases {
				p, removed, ok := r.Path(ids[rel])
				if !ok || removed {
					t.Fatalf("%s: id %d did not resolve", rel, ids[rel])
				}
				if got := Parse(p); got != want {
					t.Errorf("Parse(%q)\n got %+v\nwant %+v", p, got, want)
				}
			}
		})
	}
}
