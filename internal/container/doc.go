// Package container names the container and pod behind a cgroup path.
//
// Parse reads the runtime (containerd, CRI-O, docker, podman), container
// id, pod UID, QoS class and cgroup driver from the path alone, for
// kubelet's cgroupfs and systemd drivers, docker and podman on their own,
// on cgroup v1 (the memory hierarchy) and v2 alike. The layouts are listed
// on Parse and each has a table test.
//
// # Pod names: why crictl
//
// A path carries the pod's UID, not its name and namespace. Those live in
// the container runtime, behind the CRI v1 RuntimeService: gRPC over HTTP/2
// on a unix socket. The project allows no dependency beyond the standard
// library and golang.org/x/sys, so there is no gRPC nor HTTP/2 client
// (net/http only speaks HTTP/2 over TLS, and hand-writing HTTP/2 framing,
// HPACK and protobuf for one call is more code to trust than the feature is
// worth). The node's own files do not help either: kubelet's pod
// directories hold volumes keyed by UID, and the runtimes' state is in
// private formats (containerd's bolt database, CRI-O's storage).
//
// So CRI runs `crictl --runtime-endpoint <endpoint> --timeout 2s pods -o
// json`, which Kubernetes nodes usually have (it ships with kubeadm's
// cri-tools and most distributions' node images), and reads items[].metadata
// {uid, name, namespace} of the ListPodSandboxResponse it prints. The
// endpoint is --cri-endpoint, or the first of DefaultCRIEndpoints
// (containerd's, then CRI-O's socket) that exists. One listing serves every
// pod of the node; it is cached by pod UID and refreshed on a miss at most
// every 10 s, each run killed after 2 s. Pods that are gone stay cached
// (up to 4096) so reports can still name them. When crictl or the socket is
// absent (docker, podman, or a bare host) the lookup is skipped silently:
// Pod returns false and Err says why, for diagnostics only.
package container
