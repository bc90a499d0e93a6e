package privs

import (
	"strings"
	"syscall"
	"testing"
)

func TestMissing(t *testing.T) {
	bit := func(cs ...int) (m uint64) {
		for _, c := range cs {
			m |= 1 << uint(c)
		}
		return m
	}
	cases := []struct {
		eff    uint64
		capBPF bool
		want   string
	}{
		{bit(CapSysAdmin), true, ""},
		{bit(CapBPF, CapPerfmon), true, ""},
		{bit(CapBPF), true, "CAP_PERFMON"},
		{0, true, "CAP_BPF,CAP_PERFMON"},
		{bit(CapBPF, CapPerfmon), false, "CAP_SYS_ADMIN"},
	}
	for _, c := range cases {
		if got := strings.Join(Missing(c.eff, c.capBPF), ","); got != c.want {
			t.Errorf("Missing(%#x, %v) = %q, want %q", c.eff, c.capBPF, got, c.want)
		}
	}
}

// The hint never names a flag the runtime may reject: inside a container
// whose engine is unknown it leads with SYS_ADMIN; BPF/PERFMON alone only
// when the container already holds one of them; never on kernels without
// CAP_BPF; podman always SYS_ADMIN (its seccomp profile).
func TestErrorHint(t *testing.T) {
	newCaps := []string{"CAP_BPF", "CAP_PERFMON"}
	cases := []struct {
		name    string
		missing []string
		env     Env
		want    []string
		notWant []string
	}{
		{"host", newCaps, Env{}, []string{"CAP_BPF, CAP_PERFMON", "sudo", "setcap cap_bpf,cap_perfmon+ep"}, []string{"--cap-add"}},
		{"host old kernel", []string{"CAP_SYS_ADMIN"}, Env{}, []string{"setcap cap_sys_admin+ep"}, []string{"BPF"}},
		{"docker, engine unknown", newCaps, Env{Container: Docker}, []string{"Docker container", "run it with --cap-add SYS_ADMIN (any engine)", "--cap-add BPF --cap-add PERFMON on engines that accept them (Docker 23.0+"}, []string{"sudo", "setcap"}},
		{"docker, engine knows CAP_BPF", []string{"CAP_PERFMON"}, Env{Container: Docker, EngineHasNewCaps: true}, []string{"run it with --cap-add PERFMON (or --cap-add SYS_ADMIN)"}, []string{"--cap-add BPF"}},
		{"docker, old kernel", []string{"CAP_SYS_ADMIN"}, Env{Container: Docker}, []string{"run it with --cap-add SYS_ADMIN"}, []string{"BPF", "PERFMON"}},
		{"podman", newCaps, Env{Container: Podman, EngineHasNewCaps: true}, []string{"podman container", "--cap-add SYS_ADMIN", "seccomp"}, []string{"--cap-add BPF", "--cap-add PERFMON"}},
		{"kubernetes", newCaps, Env{Container: Kubernetes}, []string{"securityContext.capabilities.add", "SYS_ADMIN"}, []string{"--cap-add"}},
		{"unknown engine", newCaps, Env{Container: Other}, []string{"in this container", "--cap-add SYS_ADMIN (any engine)"}, nil},
	}
	for _, c := range cases {
		err := Error(c.missing, c.env)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") {
			t.Errorf("%s: not one line: %q", c.name, msg)
		}
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: %q lacks %q", c.name, msg, w)
			}
		}
		for _, w := range c.notWant {
			if strings.Contains(msg, w) {
				t.Errorf("%s: %q names %q", c.name, msg, w)
			}
		}
	}
	if Error(nil, Env{Container: Docker}) != nil {
		t.Error("Error(nil) != nil")
	}
}

func TestContainerFrom(t *testing.T) {
	const (
		hostRoot  = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
		dockerEtc = "610 600 254:0 /var/lib/docker/containers/ab/hostname /etc/hostname rw,relatime - ext4 /dev/vda rw\n"
		podmanEtc = "610 600 0:25 /containers/storage/overlay-containers/ab/userdata/hosts /etc/hosts rw - tmpfs tmpfs rw\n"
	)
	cases := []struct {
		name      string
		env       map[string]string
		files     []string
		cgroup    string
		mountinfo string
		want      string
	}{
		{"host", nil, nil, "0::/init.scope", hostRoot, ""},
		// A VM made from a container image: the marker stays, nothing is mounted over /etc.
		{"stale /.dockerenv", nil, []string{"/.dockerenv"}, "4:memory:/process_api/ab\n0::/", hostRoot, ""},
		{"docker", nil, []string{"/.dockerenv"}, "0::/", hostRoot + dockerEtc, Docker},
		{"podman marker wins", nil, []string{"/run/.containerenv", "/.dockerenv"}, "0::/", podmanEtc, Podman},
		{"docker v1 cgroup, no marker", nil, nil, "12:memory:/docker/0123abcd\n0::/", hostRoot, Docker},
		{"docker systemd cgroup", nil, nil, "0::/system.slice/docker-0123abcd.scope", "", Docker},
		{"podman cgroup", nil, nil, "0::/machine.slice/libpod-0123.scope", "", Podman},
		{"kubernetes env", map[string]string{"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, []string{"/.dockerenv"}, "", "", Kubernetes},
		{"kubernetes cgroup", nil, nil, "0::/kubepods/besteffort/pod1/abc", "", Kubernetes},
		{"lxc", map[string]string{"container": "lxc"}, nil, "0::/", hostRoot, Other},
		{"unknown engine", nil, nil, "0::/", dockerEtc, Other},
	}
	for _, c := range cases {
		exists := func(p string) bool {
			for _, f := range c.files {
				if f == p {
					return true
				}
			}
			return false
		}
		if got, ev := ContainerFrom(func(k string) string { return c.env[k] }, exists, c.cgroup, c.mountinfo); got != c.want {
			t.Errorf("%s: ContainerFrom = %q (%s), want %q", c.name, got, ev, c.want)
		}
	}
}

func TestDiagnose(t *testing.T) {
	eperm, einval := syscall.EPERM, syscall.EINVAL
	cases := []struct {
		name string
		p    BPFProbe
		env  Env
		want string // "" for nil
	}{
		{"bpf works", BPFProbe{Seccomp: 2, InitialUserNS: true, BadCommand: einval}, Env{Container: Docker}, ""},
		{"podman default profile", BPFProbe{MapCreate: eperm, BadCommand: eperm, Seccomp: 2, InitialUserNS: true}, Env{Container: Podman},
			"bpf(2) refused by the container's seccomp profile: run with --security-opt seccomp=unconfined or a profile that allows bpf and perf_event_open (podman's default allows them only with CAP_SYS_ADMIN: add --cap-add SYS_ADMIN)"},
		{"docker profile", BPFProbe{MapCreate: eperm, BadCommand: eperm, Seccomp: 2, InitialUserNS: true}, Env{Container: Docker}, "Docker before 23.0"},
		{"host filter", BPFProbe{MapCreate: eperm, BadCommand: eperm, Seccomp: 2, InitialUserNS: true}, Env{}, "this process's seccomp filter"},
		// The syscall reached the kernel, which refused the map: not
		// seccomp's doing, the library reports it.
		{"kernel refused", BPFProbe{MapCreate: eperm, BadCommand: einval, Seccomp: 2, InitialUserNS: true}, Env{Container: Docker}, ""},
		{"no filter", BPFProbe{MapCreate: eperm, BadCommand: eperm, Seccomp: 0, InitialUserNS: true}, Env{}, ""},
		{"rootless", BPFProbe{MapCreate: eperm, BadCommand: eperm, Seccomp: 2}, Env{Container: Podman}, "user namespace"},
		{"other error", BPFProbe{MapCreate: syscall.ENOMEM, Seccomp: 2, InitialUserNS: true}, Env{}, ""},
	}
	for _, c := range cases {
		err := Diagnose(c.p, c.env)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: Diagnose = %v, want nil", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: Diagnose = %v, want %q", c.name, err, c.want)
		}
	}
}

func TestInitialUserNS(t *testing.T) {
	if !initialUserNS("         0          0 4294967295") {
		t.Error("the initial map is not initial")
	}
	if initialUserNS("0 1000 1") || initialUserNS("0 0 65536") || initialUserNS("") {
		t.Error("a child namespace's map reads as initial")
	}
}
