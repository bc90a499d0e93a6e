package container

import "strings"

// Runtimes, as Identity.Runtime names them.
const (
	RuntimeContainerd = "containerd"
	RuntimeCRIO       = "cri-o"
	RuntimeDocker     = "docker"
	RuntimePodman     = "podman"
	// RuntimeRunc is runc run by hand (or by a tool that keeps runc's
	// default state root, /run/runc), not through containerd or docker.
	RuntimeRunc = "runc"
)

// Kubernetes QoS classes, as Identity.QoS names them.
const (
	QoSGuaranteed = "guaranteed"
	QoSBurstable  = "burstable"
	QoSBestEffort = "besteffort"
)

// Cgroup drivers (kubelet's, or docker's and podman's cgroup manager).
const (
	DriverCgroupfs = "cgroupfs"
	DriverSystemd  = "systemd"
)

// Identity is what a cgroup path says about the container and pod whose
// memory it holds. The zero Identity means the path is no container's
// (the root, system slices, user sessions). A pod-level cgroup has PodUID
// and no ContainerID; so has the conmon scope of CRI-O and podman, whose
// memory is the runtime's monitor, not the container's workload.
type Identity struct {
	// Runtime is "containerd", "cri-o", "docker", "podman", or "" when the
	// path does not tell: kubelet's cgroupfs driver names a container's
	// cgroup by its bare id whatever the runtime (except CRI-O's "crio-").
	Runtime     string
	ContainerID string
	// PodUID is the Kubernetes pod UID with dashes, as the API shows it,
	// also when the systemd driver wrote it with underscores.
	PodUID string
	QoS    string // "guaranteed", "burstable", "besteffort"; "" outside kubepods
	Driver string // "cgroupfs", "systemd"; "" when the path does not tell
}

// IsZero reports whether the path named no container, pod or kubepods level.
func (i Identity) IsZero() bool { return i == Identity{} }

// Parse reads the container identity from a cgroup path. The path may be
// relative to its hierarchy's root ("/kubepods.slice/...") or carry any
// prefix (a mount point, a test's parent cgroup, kind's node container):
// Parse looks at the components, not at where the path starts. It never
// fails: what it does not recognise it leaves empty.
//
// Forms (kubelet with the cgroupfs and the systemd driver, v1 or v2):
//
//	/kubepods/<qos>/pod<uid>/<container-id>            (guaranteed: /kubepods/pod<uid>/...)
//	/kubepods/<qos>/pod<uid>/crio-<container-id>
//	/kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid_>.slice/cri-containerd-<id>.scope
//	    (guaranteed: /kubepods.slice/kubepods-pod<uid_>.slice/...; also crio-<id>.scope,
//	    crio-conmon-<id>.scope, docker-<id>.scope)
//	/docker/<id>, /system.slice/docker-<id>.scope      (docker alone)
//	/machine.slice/libpod-<id>.scope[/container], /libpod_parent/libpod-<id>   (podman)
//	/libpod_parent/conmon                              (podman's monitors, cgroupfs manager)
//	/<slice>/runc-<id>.scope                           (runc --systemd-cgroup, default cgroupsPath)
//
// What a path cannot tell alone it leaves to Runtimes, which asks the
// runtimes' state: docker's --cgroup-parent (/<parent>/<id>), ctr
// (/<namespace>/<id>) and plain runc (/<id>, any name) put the container in
// a directory named only by its id, and a hex or a short name as the last
// component says nothing by itself (this machine's own sessions sit in
// /process_api/<32 hex>).
func Parse(path string) Identity {
	var id Identity
	prev := ""
	podAt := -1 // index of the pod<uid> component of the cgroupfs layout
	kubeAt := -1
	i := 0
	for c := range strings.SplitSeq(path, "/") {
		if c == "" || c == "." {
			continue
		}
		switch {
		case c == "kubepods":
			// A kubelet tree starts here; anything outside it (kind's
			// node container, say) is not this pod's.
			id = Identity{Driver: DriverCgroupfs}
			kubeAt, podAt = i, -1
		case kubeAt >= 0 && i == kubeAt+1 && (c == QoSBurstable || c == QoSBestEffort):
			id.QoS = c
		case kubeAt >= 0 && podAt < 0 && strings.HasPrefix(c, "pod") && isPodUID(c[3:]) &&
			(i == kubeAt+1 || (i == kubeAt+2 && id.QoS != "")):
			id.PodUID = normalizeUID(c[3:])
			if id.QoS == "" {
				id.QoS = QoSGuaranteed
			}
			podAt = i
		case strings.HasSuffix(c, ".slice"):
			systemdSlice(&id, strings.TrimSuffix(c, ".slice"))
		case strings.HasSuffix(c, ".scope"):
			scope(&id, strings.TrimSuffix(c, ".scope"), DriverSystemd)
		case podAt >= 0 && i == podAt+1 && isContainerID(c):
			id.ContainerID, id.Runtime = c, ""
		case prev == "docker" && isContainerID(c):
			id.ContainerID, id.Runtime = c, RuntimeDocker
			if id.Driver == "" {
				id.Driver = DriverCgroupfs
			}
		case prev == "libpod_parent" && c == "conmon":
			// podman's cgroupfs manager puts every container's conmon
			// here: the runtime's monitor, no container's workload.
			id.Runtime, id.ContainerID = RuntimePodman, ""
			if id.Driver == "" {
				id.Driver = DriverCgroupfs
			}
		case strings.HasPrefix(c, "crio-") || strings.HasPrefix(c, "libpod-"):
			// CRI-O and podman with the cgroupfs manager keep the
			// prefix and drop the ".scope".
			scope(&id, c, DriverCgroupfs)
		}
		prev = c
		i++
	}
	return id
}

// systemdSlice reads a slice of kubelet's systemd driver, name without
// ".slice". systemd names a slice after its whole ancestry joined by
// dashes, which is why kubelet writes the UID's dashes as underscores:
// kubepods, kubepods-burstable, kubepods-burstable-pod<uid_> (and with
// --cgroup-root, e.g. kind's kubelet-kubepods-...).
func systemdSlice(id *Identity, name string) {
	if !strings.Contains(name, "kubepods") {
		return
	}
	if name == "kubepods" || strings.HasSuffix(name, "-kubepods") {
		*id = Identity{Driver: DriverSystemd}
		return
	}
	id.Driver = DriverSystemd
	parent := name
	if i := strings.LastIndex(name, "-pod"); i >= 0 && isPodUID(name[i+4:]) {
		parent = name[:i]
		id.PodUID = normalizeUID(name[i+4:])
		id.ContainerID, id.Runtime = "", ""
	}
	switch {
	case strings.HasSuffix(parent, "-"+QoSBurstable):
		id.QoS = QoSBurstable
	case strings.HasSuffix(parent, "-"+QoSBestEffort):
		id.QoS = QoSBestEffort
	case id.PodUID != "" && (parent == "kubepods" || strings.HasSuffix(parent, "-kubepods")):
		id.QoS = QoSGuaranteed // guaranteed pods sit directly in kubepods.slice
	}
}

// scopePrefixes maps the name prefixes runtimes give container cgroups to
// the runtime; conmon ones are the runtime's monitor process, not the
// container, and set no container id. Longer prefixes come first.
var scopePrefixes = []struct {
	prefix, runtime string
	conmon          bool
	anyID           bool // the id is a name, not hex (runc's ids are the user's)
}{
	{"cri-containerd-", RuntimeContainerd, false, false},
	{"crio-conmon-", RuntimeCRIO, true, false},
	{"crio-", RuntimeCRIO, false, false},
	{"docker-", RuntimeDocker, false, false},
	{"libpod-conmon-", RuntimePodman, true, false},
	{"libpod-", RuntimePodman, false, false},
	// runc --systemd-cgroup without a cgroupsPath: system.slice:runc:<id>.
	// Only runc makes scopes with this prefix.
	{"runc-", RuntimeRunc, false, true},
}

// scope reads a container cgroup named <prefix><id> (a systemd scope
// without its ".scope", or a cgroupfs directory).
func scope(id *Identity, name, driver string) {
	for _, p := range scopePrefixes {
		cid, ok := strings.CutPrefix(name, p.prefix)
		if !ok || !(isContainerID(cid) || p.anyID && driver == DriverSystemd && isName(cid)) {
			continue
		}
		id.Runtime = p.runtime
		id.ContainerID = cid
		if p.conmon {
			id.ContainerID = ""
		}
		if id.Driver == "" {
			id.Driver = driver
		}
		return
	}
}

// isContainerID accepts the hex ids runtimes use: 64 characters in
// practice; 12 or more so that truncated ids in tests and old tools pass
// and names like "docker.service" or "session-3" do not.
func isContainerID(s string) bool {
	if len(s) < 12 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

// isName accepts a container name as runc and containerd allow them
// (^[\w+-\.]+$ in runc's validator).
func isName(s string) bool {
	if s == "" || len(s) > 1024 || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '+') {
			return false
		}
	}
	return true
}

// isPodUID accepts a pod UID: a UUID (dashes, or underscores in systemd
// slice names) or the 32-hex config hash kubelet uses for static pods.
func isPodUID(s string) bool {
	if len(s) < 8 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) && s[i] != '-' && s[i] != '_' {
			return false
		}
	}
	return true
}

func normalizeUID(s string) string { return strings.ReplaceAll(s, "_", "-") }

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }
