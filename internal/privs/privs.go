package privs

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// Capability numbers from include/uapi/linux/capability.h.
const (
	CapSysAdmin = 21
	CapPerfmon  = 38 // Linux 5.8+
	CapBPF      = 39 // Linux 5.8+
)

var capNames = map[int]string{CapSysAdmin: "CAP_SYS_ADMIN", CapPerfmon: "CAP_PERFMON", CapBPF: "CAP_BPF"}

// Missing returns the capabilities a tracer needs that effective lacks.
// Since 5.8 (commit a17b53c4a4b5 "bpf, capability: Introduce CAP_BPF")
// CAP_BPF with CAP_PERFMON suffices; before it only CAP_SYS_ADMIN does, and
// CAP_SYS_ADMIN still implies both.
func Missing(effective uint64, kernelHasCapBPF bool) []string {
	has := func(c int) bool { return effective&(1<<uint(c)) != 0 }
	if has(CapSysAdmin) {
		return nil
	}
	if !kernelHasCapBPF {
		return []string{capNames[CapSysAdmin]}
	}
	var out []string
	for _, c := range []int{CapBPF, CapPerfmon} {
		if !has(c) {
			out = append(out, capNames[c])
		}
	}
	return out
}

// Container engines the hints know apart.
const (
	Docker     = "docker"
	Podman     = "podman"
	Kubernetes = "kubernetes"
	Other      = "container" // $container says so, the engine is unknown
)

// Env is what a hint can know about where fragscope runs. The engine's
// version cannot be known from inside a container, so hints lead with the
// form every engine accepts.
type Env struct {
	Container string // "" on a host, else one of the engine names above
	Evidence  string // what Container was read from, for doctor
	// EngineHasNewCaps: this container holds CAP_BPF or CAP_PERFMON, so its
	// engine accepts those names (Docker 20.10 rejects them).
	EngineHasNewCaps bool
}

// Error formats the missing capabilities as the one-line error users see,
// with a fix that the user's runtime accepts.
func Error(missing []string, env Env) error {
	if len(missing) == 0 {
		return nil
	}
	what := "missing capabilities " + strings.Join(missing, ", ")
	adds := "--cap-add " + strings.Join(trimCap(missing), " --cap-add ")
	onlySysAdmin := len(missing) == 1 && missing[0] == capNames[CapSysAdmin]
	switch {
	case env.Container == "":
		return fmt.Errorf("%s: run as root (sudo fragscope ...) or grant them (setcap %s+ep on the binary)",
			what, strings.ToLower(strings.Join(missing, ",")))
	case env.Container == Kubernetes:
		if onlySysAdmin {
			return fmt.Errorf("%s in this pod: add SYS_ADMIN to the container's securityContext.capabilities.add", what)
		}
		return fmt.Errorf("%s in this pod: add SYS_ADMIN to the container's securityContext.capabilities.add (or BPF and PERFMON where the runtime accepts them)", what)
	case env.Container == Podman:
		// Measured with podman 4.3.1: BPF+PERFMON pass the capability check
		// but its default seccomp profile still refuses bpf(2).
		return fmt.Errorf("%s in this podman container: run it with --cap-add SYS_ADMIN (podman's default seccomp profile allows bpf(2) only with it)", what)
	}
	where := "this container"
	if env.Container == Docker {
		where = "this Docker container"
	}
	switch {
	case onlySysAdmin:
		return fmt.Errorf("%s in %s: run it with --cap-add SYS_ADMIN", what, where)
	case env.EngineHasNewCaps:
		return fmt.Errorf("%s in %s: run it with %s (or --cap-add SYS_ADMIN)", what, where, adds)
	default:
		return fmt.Errorf("%s in %s: run it with --cap-add SYS_ADMIN (any engine), or --cap-add BPF --cap-add PERFMON on engines that accept them (Docker 23.0+; 20.10 rejects them)", what, where)
	}
}

func trimCap(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.TrimPrefix(n, "CAP_")
	}
	return out
}

// ContainerFrom decides where fragscope runs. A container is known by the
// files every engine bind-mounts over /etc (hostname, hosts, resolv.conf),
// its cgroup path, or $container; the engine by its marker file, the
// cgroup path or the pod's environment. Marker files alone do not count:
// machine images made from container images keep a stale /.dockerenv.
func ContainerFrom(getenv func(string) string, exists func(string) bool, selfCgroup, mountinfo string) (name, evidence string) {
	if getenv("KUBERNETES_SERVICE_HOST") != "" {
		return Kubernetes, "$KUBERNETES_SERVICE_HOST"
	}
	var byCgroup string
	switch {
	case strings.Contains(selfCgroup, "kubepods"):
		byCgroup = Kubernetes
	case strings.Contains(selfCgroup, "libpod"):
		byCgroup = Podman
	case strings.Contains(selfCgroup, "/docker/") || strings.Contains(selfCgroup, "/docker-"):
		byCgroup = Docker
	}
	bound := boundOverEtc(mountinfo)
	if bound == "" && byCgroup == "" && getenv("container") == "" {
		return "", ""
	}
	ev := bound
	if ev == "" {
		ev = "/proc/self/cgroup"
	}
	switch {
	case exists("/run/.containerenv"):
		return Podman, "/run/.containerenv, " + ev
	case exists("/.dockerenv"):
		return Docker, "/.dockerenv, " + ev
	case byCgroup != "":
		return byCgroup, ev
	case getenv("container") != "":
		return Other, "$container=" + getenv("container")
	}
	return Other, ev
}

// boundOverEtc returns the first of the files engines mount over /etc
// that /proc/self/mountinfo shows as a mount point of its own.
func boundOverEtc(mountinfo string) string {
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		switch f[4] {
		case "/etc/hostname", "/etc/hosts", "/etc/resolv.conf":
			return f[4] + " mounted"
		}
	}
	return ""
}

// BPFProbe is what the kernel answered to two bpf(2) calls made with the
// capabilities present, and what the process runs under.
type BPFProbe struct {
	MapCreate error // BPF_MAP_CREATE of a one-entry array, what the eBPF library tries first
	// BadCommand: an unknown command, which the kernel answers EINVAL
	// before any permission check; EPERM means the call never reached it.
	BadCommand    error
	Seccomp       int  // /proc/self/status Seccomp: 0 none, 1 strict, 2 filter
	InitialUserNS bool // /proc/self/uid_map maps the whole range: capabilities count for BPF
}

// Diagnose names why bpf(2) is refused although the capabilities are held,
// in one line with the fix, or returns nil when the probe shows nothing the
// eBPF library would misreport. Without it the library's first call turns
// the EPERM into "remove memlock limit: operation not permitted".
func Diagnose(p BPFProbe, env Env) error {
	if !errors.Is(p.MapCreate, syscall.EPERM) {
		return nil
	}
	if !p.InitialUserNS {
		return errors.New("bpf(2) refused: this process is in a user namespace (a rootless container?), whose capabilities do not count for BPF: run fragscope as root on the host or in a rootful container")
	}
	if p.Seccomp != 2 || !errors.Is(p.BadCommand, syscall.EPERM) {
		return nil
	}
	switch env.Container {
	case "":
		return errors.New("bpf(2) refused by this process's seccomp filter: run fragscope without one that blocks bpf and perf_event_open (systemd: SystemCallFilter=)")
	case Podman:
		return errors.New("bpf(2) refused by the container's seccomp profile: run with --security-opt seccomp=unconfined or a profile that allows bpf and perf_event_open (podman's default allows them only with CAP_SYS_ADMIN: add --cap-add SYS_ADMIN)")
	}
	return errors.New("bpf(2) refused by the container's seccomp profile: run with --security-opt seccomp=unconfined or a profile that allows bpf and perf_event_open (the defaults of podman and Docker before 23.0 allow them only with CAP_SYS_ADMIN: add --cap-add SYS_ADMIN)")
}

func statusField(status, key string) string {
	for _, line := range strings.Split(status, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// initialUserNS: the initial user namespace maps every uid to itself.
func initialUserNS(uidMap string) bool {
	f := strings.Fields(uidMap)
	return len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295"
}
