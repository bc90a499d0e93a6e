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
package container
