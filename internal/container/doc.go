// Package container names the container and pod behind a cgroup path.
//
// Parse reads the runtime (containerd, CRI-O, docker, podman), container
// id, pod UID, QoS class and cgroup driver from the path alone, for
// kubelet's cgroupfs and systemd drivers, docker and podman on their own,
// on cgroup v1 (the memory hierarchy) and v2 alike. The layouts are listed
// on Parse and each has a table test.
//
// # Pod names: the CRI over gRPC
//
// A path carries the pod's UID, not its name and namespace. Those live in
// the container runtime, behind the CRI v1 RuntimeService: gRPC on a unix
// socket, spoken here with k8s.io/cri-api and google.golang.org/grpc (the
// scratch image has no crictl to shell out to). The node's own files do
// not help: kubelet's pod directories hold volumes keyed by UID, and the
// runtimes' state is in private formats.
//
// CRI makes one ListPodSandbox call on a miss, unfiltered (sandboxes not
// made by kubelet may lack the pod-UID label), and reads each sandbox's
// metadata {uid, name, namespace}, falling back to its labels. The
// endpoint is --cri-endpoint, or the first of DefaultCRIEndpoints
// (containerd's, then CRI-O's socket) that exists. One listing serves every
// pod of the node; it is cached by pod UID and refreshed on a miss at most
// every 10 s, each call bounded by 1 s; a runtime that fails is retried
// with a backoff from 10 s to 5 min and its connection closed meanwhile.
// Pods that are gone stay cached (up to 4096) so reports can still name
// them. When the socket is absent (docker, podman, a bare host) the lookup
// costs a stat per 10 s: Pod returns false and Err says why, for
// diagnostics only.
//
// # Names and ambiguous layouts: the runtimes' own state
//
// Runtimes (runtimes.go) answers what a path cannot: runc's state files
// (/run/runc, docker's and containerd's runc roots) name the container
// whose cgroup_paths end in the path (plain runc, ctr's /<namespace>/<id>);
// Docker (docker.go) asks the engine API over its unix socket for names and
// for ids under a --cgroup-parent of any name; CRI.Container names
// Kubernetes containers. The live source records the answers on the
// CgroupPath records.
//
// # Pod sandboxes a runtime was creating
//
// containerd's CRI makes a pod's netns in its own process, so that failure
// names no pod. SandboxBeingCreated (sandbox.go) guesses it: the newest
// NOTREADY sandbox listed, else the newest pod with a kubelet log directory
// and no sandbox (containerd 1.6 lists a sandbox only once it runs). The
// guess is recorded on the NsSyscall event.
package container
