package container

import (
	"strings"
	"testing"
)

const (
	ctr  = "8d2f6a0be1c34f5e9a7d3c2b1e0f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f"
	ctr2 = "3d1ef4b8e1c9a5f2d7b6c0e4a8f1d3b5c7e9a2f4d6b8c0e1a3f5d7b9c1e3a5f7"
	uid  = "5f1c4b2e-0d3a-4c8e-9a61-2b7f3d9e8c10"
	uid_ = "5f1c4b2e_0d3a_4c8e_9a61_2b7f3d9e8c10"
	// Static pods' UID is kubelet's 32-hex hash of the manifest.
	staticUID = "8d3f0c7e2b1a49d6a5c4e3f2b1a09d8c"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, path string
		want       Identity
	}{
		// kubelet, cgroupfs driver.
		{"cgroupfs burstable", "/kubepods/burstable/pod" + uid + "/" + ctr,
			Identity{ContainerID: ctr, PodUID: uid, QoS: QoSBurstable, Driver: DriverCgroupfs}},
		{"cgroupfs besteffort", "/kubepods/besteffort/pod" + uid + "/" + ctr,
			Identity{ContainerID: ctr, PodUID: uid, QoS: QoSBestEffort, Driver: DriverCgroupfs}},
		{"cgroupfs guaranteed", "/kubepods/pod" + uid + "/" + ctr,
			Identity{ContainerID: ctr, PodUID: uid, QoS: QoSGuaranteed, Driver: DriverCgroupfs}},
		{"cgroupfs cri-o", "/kubepods/burstable/pod" + uid + "/crio-" + ctr,
			Identity{Runtime: RuntimeCRIO, ContainerID: ctr, PodUID: uid, QoS: QoSBurstable, Driver: DriverCgroupfs}},
		{"cgroupfs pod level", "/kubepods/burstable/pod" + uid,
			Identity{PodUID: uid, QoS: QoSBurstable, Driver: DriverCgroupfs}},
		{"cgroupfs guaranteed pod level", "/kubepods/pod" + uid,
			Identity{PodUID: uid, QoS: QoSGuaranteed, Driver: DriverCgroupfs}},
		{"cgroupfs static pod", "/kubepods/burstable/pod" + staticUID + "/" + ctr,
			Identity{ContainerID: ctr, PodUID: staticUID, QoS: QoSBurstable, Driver: DriverCgroupfs}},
		{"cgroupfs qos level", "/kubepods/besteffort",
			Identity{QoS: QoSBestEffort, Driver: DriverCgroupfs}},
		{"cgroupfs kubepods", "/kubepods", Identity{Driver: DriverCgroupfs}},
		{"cgroupfs container child", "/kubepods/burstable/pod" + uid + "/" + ctr + "/" + ctr2,
			Identity{ContainerID: ctr, PodUID: uid, QoS: QoSBurstable, Driver: DriverCgroupfs}},

		// kubelet, systemd driver.
		{"systemd containerd burstable",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid_ + ".slice/cri-containerd-" + ctr + ".scope",
			Identity{Runtime: RuntimeContainerd, ContainerID: ctr, PodUID: uid, QoS: QoSBurstable, Driver: DriverSystemd}},
		{"systemd containerd besteffort",
			"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uid_ + ".slice/cri-containerd-" + ctr + ".scope",
			Identity{Runtime: RuntimeContainerd, ContainerID: ctr, PodUID: uid, QoS: QoSBestEffort, Driver: DriverSystemd}},
		{"systemd containerd guaranteed",
			"/kubepods.slice/kubepods-pod" + uid_ + ".slice/cri-containerd-" + ctr + ".scope",
			Identity{Runtime: RuntimeContainerd, ContainerID: ctr, PodUID: uid, QoS: QoSGuaranteed, Driver: DriverSystemd}},
		{"systemd cri-o",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid_ + ".slice/crio-" + ctr + ".scope",
			Identity{Runtime: RuntimeCRIO, ContainerID: ctr, PodUID: uid, QoS: QoSBurstable, Driver: DriverSystemd}},
		{"systemd cri-o conmon",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid_ + ".slice/crio-conmon-" + ctr + ".scope",
			Identity{Runtime: RuntimeCRIO, PodUID: uid, QoS: QoSBurstable, Driver: DriverSystemd}},
		{"systemd docker (dockershim, cri-dockerd)",
			"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uid_ + ".slice/docker-" + ctr + ".scope",
			Identity{Runtime: RuntimeDocker, ContainerID: ctr, PodUID: uid, QoS: QoSBestEffort, Driver: DriverSystemd}},
		{"systemd pod level",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid_ + ".slice",
			Identity{PodUID: uid, QoS: QoSBurstable, Driver: DriverSystemd}},
		{"systemd guaranteed pod level", "/kubepods.slice/kubepods-pod" + uid_ + ".slice",
			Identity{PodUID: uid, QoS: QoSGuaranteed, Driver: DriverSystemd}},
		{"systemd static pod",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + staticUID + ".slice/cri-containerd-" + ctr + ".scope",
			Identity{Runtime: RuntimeContainerd, ContainerID: ctr, PodUID: staticUID, QoS: QoSBurstable, Driver: DriverSystemd}},
		{"systemd qos level", "/kubepods.slice/kubepods-burstable.slice",
			Identity{QoS: QoSBurstable, Driver: DriverSystemd}},
		{"systemd kubepods", "/kubepods.slice", Identity{Driver: DriverSystemd}},
		{"systemd cgroup-root (kind)",
			"/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" + uid_ + ".slice/cri-containerd-" + ctr + ".scope",
			Identity{Runtime: RuntimeContainerd, ContainerID: ctr, PodUID: uid, QoS: QoSBestEffort, Driver: DriverSystemd}},
		// A kind node is itself a docker container: the pod inside it is
		// what the path names, not the node's container.
		{"kind node under docker",
			"/system.slice/docker-" + ctr2 + ".scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod" + uid_ + ".slice/cri-containerd-" + ctr + ".scope",
			Identity{Runtime: RuntimeContainerd, ContainerID: ctr, PodUID: uid, QoS: QoSGuaranteed, Driver: DriverSystemd}},
		{"kind node pod level under docker",
			"/docker/" + ctr2 + "/kubepods/besteffort/pod" + uid,
			Identity{PodUID: uid, QoS: QoSBestEffort, Driver: DriverCgroupfs}},

		// docker alone.
		{"docker cgroupfs", "/docker/" + ctr, Identity{Runtime: RuntimeDocker, ContainerID: ctr, Driver: DriverCgroupfs}},
		{"docker systemd", "/system.slice/docker-" + ctr + ".scope",
			Identity{Runtime: RuntimeDocker, ContainerID: ctr, Driver: DriverSystemd}},
		{"docker daemon", "/system.slice/docker.service", Identity{}},

		// podman.
		{"podman systemd", "/machine.slice/libpod-" + ctr + ".scope",
			Identity{Runtime: RuntimePodman, ContainerID: ctr, Driver: DriverSystemd}},
		{"podman systemd cgroupns child", "/machine.slice/libpod-" + ctr + ".scope/container",
			Identity{Runtime: RuntimePodman, ContainerID: ctr, Driver: DriverSystemd}},
		{"podman pod", "/machine.slice/machine-libpod_pod_" + ctr2 + ".slice/libpod-" + ctr + ".scope",
			Identity{Runtime: RuntimePodman, ContainerID: ctr, Driver: DriverSystemd}},
		{"podman conmon", "/machine.slice/libpod-conmon-" + ctr + ".scope",
			Identity{Runtime: RuntimePodman, Driver: DriverSystemd}},
		{"podman rootless",
			"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + ctr + ".scope",
			Identity{Runtime: RuntimePodman, ContainerID: ctr, Driver: DriverSystemd}},
		{"podman cgroupfs", "/libpod_parent/libpod-" + ctr,
			Identity{Runtime: RuntimePodman, ContainerID: ctr, Driver: DriverCgroupfs}},

		// Paths with a prefix: a v1 memory mount point, a test's parent.
		{"v1 memory mount, cgroupfs",
			"/sys/fs/cgroup/memory/kubepods/burstable/pod" + uid + "/" + ctr,
			Identity{ContainerID: ctr, PodUID: uid, QoS: QoSBurstable, Driver: DriverCgroupfs}},
		{"v1 memory mount, systemd",
			"/sys/fs/cgroup/memory/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid_ + ".slice/cri-containerd-" + ctr + ".scope",
			Identity{Runtime: RuntimeContainerd, ContainerID: ctr, PodUID: uid, QoS: QoSBurstable, Driver: DriverSystemd}},
		{"v1 memory, CentOS 7 docker", "/system.slice/docker-" + ctr + ".scope",
			Identity{Runtime: RuntimeDocker, ContainerID: ctr, Driver: DriverSystemd}},
		{"test parent cgroup",
			"/fragscope-test-4242/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid_ + ".slice/cri-containerd-" + ctr + ".scope",
			Identity{Runtime: RuntimeContainerd, ContainerID: ctr, PodUID: uid, QoS: QoSBurstable, Driver: DriverSystemd}},
		{"no leading slash", "kubepods/pod" + uid + "/" + ctr,
			Identity{ContainerID: ctr, PodUID: uid, QoS: QoSGuaranteed, Driver: DriverCgroupfs}},

		// Paths /proc/<pid>/cgroup showed for real runs on the development
		// machine (Debian 12: docker 20.10.24, containerd 1.6.20, runc
		// 1.1.5, podman 4.3.1; hybrid cgroups, cgroupfs drivers).
		{"real docker", "/docker/e86898f392da7aa096190e43270387c091cc207e47eeb19142a0c72b7e240863",
			Identity{Runtime: RuntimeDocker, ContainerID: "e86898f392da7aa096190e43270387c091cc207e47eeb19142a0c72b7e240863", Driver: DriverCgroupfs}},
		{"real podman cgroupfs", "/libpod_parent/libpod-ca8af8784ddf7a1ae613541ff096135d936c6839159c043b746c9096c0dd29d9",
			Identity{Runtime: RuntimePodman, ContainerID: "ca8af8784ddf7a1ae613541ff096135d936c6839159c043b746c9096c0dd29d9", Driver: DriverCgroupfs}},
		{"real podman conmon cgroupfs", "/libpod_parent/conmon", Identity{Runtime: RuntimePodman, Driver: DriverCgroupfs}},
		// Ambiguous from the path: Runtimes asks the runtimes' state.
		{"real docker --cgroup-parent", "/mytenant-a/9e17085f47d194c3186e4b0ddf5c97d7c5b69c5f011a701d9538609b5b27f91e", Identity{}},
		{"real docker relative --cgroup-parent (v1, under the caller's cgroup)",
			"/process_api/8c4fae7d4eaae7e1aaf017b039e81569/tenantrel/fab174b1cfbbf384a603c06cebd9edc9a1eed3afd481cd72c43664901455f4c2", Identity{}},
		{"real ctr run", "/fsns/web1", Identity{}},
		{"real runc run (v2)", "/runcplain1", Identity{}},
		{"real runc run (v1, under the caller's cgroup)", "/process_api/8c4fae7d4eaae7e1aaf017b039e81569/runcplain1", Identity{}},
		{"real session cgroup of this machine", "/process_api/8c4fae7d4eaae7e1aaf017b039e81569", Identity{}},
		// runc --systemd-cgroup's default (system.slice:runc:<id>); no
		// systemd on the development machine to run it.
		{"runc systemd", "/system.slice/runc-web_1.scope", Identity{Runtime: RuntimeRunc, ContainerID: "web_1", Driver: DriverSystemd}},
		{"runc systemd hex", "/system.slice/runc-" + ctr + ".scope", Identity{Runtime: RuntimeRunc, ContainerID: ctr, Driver: DriverSystemd}},
		{"runc-named directory, not a scope", "/runc-web", Identity{}},
		{"docker systemd --cgroup-parent", "/tenant.slice/docker-" + ctr + ".scope",
			Identity{Runtime: RuntimeDocker, ContainerID: ctr, Driver: DriverSystemd}},

		// Not containers.
		{"root", "/", Identity{}},
		{"empty", "", Identity{}},
		{"system slice", "/system.slice", Identity{}},
		{"service", "/system.slice/containerd.service", Identity{}},
		{"kubelet service", "/system.slice/kubelet.service", Identity{}},
		{"user session", "/user.slice/user-0.slice/session-3.scope", Identity{}},
		{"init scope", "/init.scope", Identity{}},
		{"short id", "/docker/abc123", Identity{}},
		{"not hex", "/system.slice/docker-" + strings.Repeat("z", 64) + ".scope", Identity{}},
		{"pod outside kubepods", "/pod" + uid + "/" + ctr, Identity{}},
		{"not a pod uid", "/kubepods/burstable/podcast/" + ctr,
			Identity{QoS: QoSBurstable, Driver: DriverCgroupfs}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Parse(tt.path)
			if got != tt.want {
				t.Errorf("Parse(%q)\n got %+v\nwant %+v", tt.path, got, tt.want)
			}
			if got.IsZero() != (tt.want == Identity{}) {
				t.Errorf("IsZero = %v", got.IsZero())
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"/kubepods/burstable/pod" + uid + "/" + ctr,
		"/kubepods.slice/kubepods-pod" + uid_ + ".slice/cri-containerd-" + ctr + ".scope",
		"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid_ + ".slice/crio-conmon-" + ctr + ".scope",
		"/docker/" + ctr, "/machine.slice/libpod-" + ctr + ".scope/container",
		"/", "", "kubepods-pod.slice", "/kubepods/pod", "-pod.slice", ".scope", "crio-",
	} {
		f.Add(s)
	}
	valid := map[string]map[string]bool{
		"runtime": {"": true, RuntimeContainerd: true, RuntimeCRIO: true, RuntimeDocker: true, RuntimePodman: true, RuntimeRunc: true},
		"qos":     {"": true, QoSGuaranteed: true, QoSBurstable: true, QoSBestEffort: true},
		"driver":  {"": true, DriverCgroupfs: true, DriverSystemd: true},
	}
	f.Fuzz(func(t *testing.T, path string) {
		id := Parse(path)
		if !valid["runtime"][id.Runtime] || !valid["qos"][id.QoS] || !valid["driver"][id.Driver] {
			t.Fatalf("Parse(%q) = %+v: value outside its set", path, id)
		}
		if strings.Contains(id.PodUID, "_") {
			t.Fatalf("Parse(%q): pod UID %q not normalized", path, id.PodUID)
		}
		if id.ContainerID != "" && !strings.Contains(path, id.ContainerID) {
			t.Fatalf("Parse(%q): container id %q not in the path", path, id.ContainerID)
		}
	})
}
