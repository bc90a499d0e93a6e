// Package deploy holds the Kubernetes manifests and the systemd unit; its
// tests decode them strictly and check what docs/deploy.md promises.
package deploy

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/fragscope/fragscope/internal/container"
)

const k8sDir = "kubernetes"

// Capabilities the agent is given; docs/deploy.md says what needs each.
var wantCaps = []corev1.Capability{"BPF", "PERFMON", "SYSLOG", "SYS_RESOURCE"}

// The host paths the agent reads or writes, with readOnly and hostPath type.
type hostMount struct {
	hostPath string
	typ      corev1.HostPathType
	readOnly bool
}

var wantMounts = map[string]hostMount{
	"/sys/kernel/tracing": {"/sys/kernel/tracing", corev1.HostPathDirectory, true},
	"/sys/fs/cgroup":      {"/sys/fs/cgroup", corev1.HostPathDirectory, true},
	"/var/lib/fragscope":  {"/var/lib/fragscope", corev1.HostPathDirectoryOrCreate, false},
	"/run/containerd":     {"/run/containerd", corev1.HostPathDirectoryOrCreate, true},
	"/run/crio":           {"/run/crio", corev1.HostPathDirectoryOrCreate, true},
}

// kustomization is the part of kustomize's Kustomization the manifests use;
// strict decoding makes any other field fail until it is added here.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
		Digest  string `json:"digest,omitempty"`
	} `json:"images"`
}

// serviceMonitor is the part of prometheus-operator's monitoring.coreos.com/v1
// ServiceMonitor the manifest uses.
type serviceMonitor struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
			Relabelings   []struct {
				SourceLabels []string `json:"sourceLabels"`
				TargetLabel  string   `json:"targetLabel"`
			} `json:"relabelings"`
		} `json:"endpoints"`
	} `json:"spec"`
}

type manifests struct {
	ns   corev1.Namespace
	sa   corev1.ServiceAccount
	svc  corev1.Service
	ds   appsv1.DaemonSet
	kust kustomization
	sm   serviceMonitor
}

// decodeStrict fails on unknown and duplicate fields, and on a second
// document in the file (each manifest is one object).
func decodeStrict(t *testing.T, name string, b []byte, into any) {
	t.Helper()
	if bytes.Contains(b, []byte("\n---")) {
		t.Fatalf("%s: one object per file", name)
	}
	if err := yaml.UnmarshalStrict(b, into); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func loadManifests(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{}
	targets := map[string]any{
		"namespace.yaml":      &m.ns,
		"serviceaccount.yaml": &m.sa,
		"service.yaml":        &m.svc,
		"daemonset.yaml":      &m.ds,
		"kustomization.yaml":  &m.kust,
		"servicemonitor.yaml": &m.sm,
	}
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.y*ml"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		name := filepath.Base(f)
		into, ok := targets[name]
		if !ok {
			t.Errorf("%s: no decode target in this test; add one", name)
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		decodeStrict(t, name, b, into)
		seen[name] = true
	}
	for name := range targets {
		if !seen[name] {
			t.Errorf("%s missing", name)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return m
}

func TestManifestKinds(t *testing.T) {
	m := loadManifests(t)
	for _, c := range []struct{ file, apiVersion, kind, wantAPI, wantKind string }{
		{"namespace.yaml", m.ns.APIVersion, m.ns.Kind, "v1", "Namespace"},
		{"serviceaccount.yaml", m.sa.APIVersion, m.sa.Kind, "v1", "ServiceAccount"},
		{"service.yaml", m.svc.APIVersion, m.svc.Kind, "v1", "Service"},
		{"daemonset.yaml", m.ds.APIVersion, m.ds.Kind, "apps/v1", "DaemonSet"},
		{"kustomization.yaml", m.kust.APIVersion, m.kust.Kind, "kustomize.config.k8s.io/v1beta1", "Kustomization"},
		{"servicemonitor.yaml", m.sm.APIVersion, m.sm.Kind, "monitoring.coreos.com/v1", "ServiceMonitor"},
	} {
		if c.apiVersion != c.wantAPI || c.kind != c.wantKind {
			t.Errorf("%s: %s %s, want %s %s", c.file, c.apiVersion, c.kind, c.wantAPI, c.wantKind)
		}
	}
	ns := m.ns.Name
	for what, got := range map[string]string{
		"serviceaccount": m.sa.Namespace, "service": m.svc.Namespace,
		"daemonset": m.ds.Namespace, "servicemonitor": m.sm.Metadata.Namespace,
	} {
		if got != ns {
			t.Errorf("%s in namespace %q, want %q", what, got, ns)
		}
	}
	// hostPath, hostNetwork and added capabilities need the privileged level.
	if got := m.ns.Labels["pod-security.kubernetes.io/enforce"]; got != "privileged" {
		t.Errorf("namespace pod-security enforce = %q, want privileged", got)
	}
}

func TestKustomizationListsManifests(t *testing.T) {
	m := loadManifests(t)
	files, _ := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	var want []string
	for _, f := range files {
		switch name := filepath.Base(f); name {
		case "kustomization.yaml", "servicemonitor.yaml": // the CRD may be absent
		default:
			want = append(want, name)
		}
	}
	got := slices.Sorted(slices.Values(m.kust.Resources))
	if !slices.Equal(got, want) {
		t.Errorf("kustomization resources %v, want %v", got, want)
	}
	img, _, _ := strings.Cut(agentContainer(t, &m.ds).Image, ":")
	if len(m.kust.Images) != 1 || m.kust.Images[0].Name != img {
		t.Errorf("kustomization images %+v: want one entry for %q", m.kust.Images, img)
	}
}

// TestKustomizeBuild runs kubectl's kustomize, when present, and decodes its
// output strictly again: what users apply is what the other tests checked.
func TestKustomizeBuild(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed: kustomize build not checked")
	}
	out, err := exec.Command(kubectl, "kustomize", k8sDir).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v\n%s", err, stderrOf(err))
	}
	var kinds []string
	for doc := range strings.SplitSeq(string(out), "\n---\n") {
		var meta struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		var into any
		switch meta.Kind {
		case "Namespace":
			into = &corev1.Namespace{}
		case "ServiceAccount":
			into = &corev1.ServiceAccount{}
		case "Service":
			into = &corev1.Service{}
		case "DaemonSet":
			into = &appsv1.DaemonSet{}
		default:
			t.Fatalf("unexpected kind %q in kustomize output", meta.Kind)
		}
		decodeStrict(t, "kustomize output "+meta.Kind, []byte(doc), into)
		kinds = append(kinds, meta.Kind)
	}
	slices.Sort(kinds)
	if want := []string{"DaemonSet", "Namespace", "Service", "ServiceAccount"}; !slices.Equal(kinds, want) {
		t.Errorf("kustomize output kinds %v, want %v", kinds, want)
	}
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

func agentContainer(t *testing.T, ds *appsv1.DaemonSet) *corev1.Container {
	t.Helper()
	cs := ds.Spec.Template.Spec.Containers
	if len(cs) != 1 || cs[0].Name != "agent" {
		t.Fatalf("daemonset containers: want one named agent, got %d", len(cs))
	}
	return &cs[0]
}

// listenPort returns the port of the container's --listen argument.
func listenPort(t *testing.T, c *corev1.Container) int32 {
	t.Helper()
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--listen="); ok {
			i := strings.LastIndexByte(v, ':')
			p, err := strconv.ParseInt(v[i+1:], 10, 32)
			if i < 0 || err != nil {
				t.Fatalf("--listen=%s: no port", v)
			}
			return int32(p)
		}
	}
	t.Fatal("agent args have no --listen=: the default is loopback, unreachable for probes and scrapes")
	return 0
}

func TestDaemonSetSecurity(t *testing.T) {
	m := loadManifests(t)
	pod := &m.ds.Spec.Template.Spec
	c := agentContainer(t, &m.ds)
	sc := c.SecurityContext
	if sc == nil {
		t.Fatal("agent has no securityContext")
	}
	isFalse := func(b *bool) bool { return b != nil && !*b }
	isTrue := func(b *bool) bool { return b != nil && *b }
	if !isFalse(sc.Privileged) {
		t.Error("privileged must be set to false")
	}
	if !isFalse(sc.AllowPrivilegeEscalation) {
		t.Error("allowPrivilegeEscalation must be set to false")
	}
	if !isTrue(sc.ReadOnlyRootFilesystem) {
		t.Error("readOnlyRootFilesystem must be true")
	}
	if sc.Capabilities == nil {
		t.Fatal("no capabilities")
	}
	if !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("capabilities drop %v, want [ALL]", sc.Capabilities.Drop)
	}
	if !slices.Equal(sc.Capabilities.Add, wantCaps) {
		t.Errorf("capabilities add %v, want %v", sc.Capabilities.Add, wantCaps)
	}
	// Root for the root-only files (tracefs 0700, pagetypeinfo 0400).
	if sc.RunAsUser == nil || *sc.RunAsUser != 0 {
		t.Error("runAsUser must be 0")
	}
	// containerd's default profile lets CAP_BPF and CAP_PERFMON through.
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("seccompProfile %+v, want RuntimeDefault", sc.SeccompProfile)
	}
	if psc := pod.SecurityContext; psc != nil && psc.SeccompProfile != nil {
		t.Error("seccompProfile belongs on the container only")
	}
	if !pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Errorf("hostNetwork=%v hostPID=%v hostIPC=%v, want true false false", pod.HostNetwork, pod.HostPID, pod.HostIPC)
	}
	if isTrue(pod.AutomountServiceAccountToken) || pod.AutomountServiceAccountToken == nil {
		t.Error("automountServiceAccountToken must be false: the agent calls no API")
	}
	if pod.ServiceAccountName != m.sa.Name {
		t.Errorf("serviceAccountName %q, want %q", pod.ServiceAccountName, m.sa.Name)
	}
}

func TestDaemonSetMounts(t *testing.T) {
	m := loadManifests(t)
	pod := &m.ds.Spec.Template.Spec
	c := agentContainer(t, &m.ds)
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	got := map[string]hostMount{}
	for _, vm := range c.VolumeMounts {
		v, ok := vols[vm.Name]
		if !ok || v.HostPath == nil {
			t.Errorf("mount %s: volume %q is not a hostPath volume of the pod", vm.MountPath, vm.Name)
			continue
		}
		var typ corev1.HostPathType
		if v.HostPath.Type != nil {
			typ = *v.HostPath.Type
		}
		got[vm.MountPath] = hostMount{v.HostPath.Path, typ, vm.ReadOnly}
		delete(vols, vm.Name)
	}
	if !reflect.DeepEqual(got, wantMounts) {
		t.Errorf("mounts\n got %+v\nwant %+v", got, wantMounts)
	}
	for name := range vols {
		t.Errorf("volume %q is not mounted", name)
	}
	// Every socket the agent looks for by default is under a mount.
	for _, ep := range container.DefaultCRIEndpoints {
		sock := strings.TrimPrefix(ep, "unix://")
		if _, ok := got[path.Dir(sock)]; !ok {
			t.Errorf("CRI socket %s: its directory is not mounted", sock)
		}
	}
	if !slices.Contains(c.Args, "--data-dir=/var/lib/fragscope") {
		t.Errorf("args %v: want --data-dir=/var/lib/fragscope, the mounted data dir", c.Args)
	}
}

func TestDaemonSetAgent(t *testing.T) {
	m := loadManifests(t)
	pod := &m.ds.Spec.Template.Spec
	c := agentContainer(t, &m.ds)
	if !slices.Equal(c.Command, []string{"/fragscope"}) || len(c.Args) == 0 || c.Args[0] != "agent" {
		t.Errorf("command %v args %v: want /fragscope agent ...", c.Command, c.Args)
	}
	if c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("imagePullPolicy %q: want IfNotPresent (images are loaded, not pulled)", c.ImagePullPolicy)
	}
	port := listenPort(t, c)
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != port || c.Ports[0].Name != "metrics" {
		t.Fatalf("ports %+v: want one named metrics on %d (--listen)", c.Ports, port)
	}
	for _, p := range []struct {
		name, path string
		probe      *corev1.Probe
	}{{"readiness", "/readyz", c.ReadinessProbe}, {"liveness", "/healthz", c.LivenessProbe}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s probe: want httpGet", p.name)
			continue
		}
		g := p.probe.HTTPGet
		if g.Path != p.path || g.Port != intstr.FromString("metrics") || (g.Scheme != "" && g.Scheme != corev1.URISchemeHTTP) {
			t.Errorf("%s probe %+v: want HTTP %s on port metrics", p.name, g, p.path)
		}
	}

	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom == nil || e.ValueFrom.FieldRef == nil {
			t.Errorf("env %s: want a fieldRef", e.Name)
			continue
		}
		env[e.Name] = e.ValueFrom.FieldRef.FieldPath
	}
	if want := map[string]string{"NODE_NAME": "spec.nodeName", "POD_IP": "status.podIP"}; !reflect.DeepEqual(env, want) {
		t.Errorf("env fieldRefs %v, want %v", env, want)
	}
	// $(POD_IP) is expanded by the kubelet only when the variable is defined.
	if !slices.Contains(c.Args, fmt.Sprintf("--listen=$(POD_IP):%d", port)) {
		t.Errorf("args %v: want --listen=$(POD_IP):%d", c.Args, port)
	}

	r := c.Resources
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okr := r.Requests[res]
		lim, okl := r.Limits[res]
		if !okr || !okl || req.IsZero() || lim.Cmp(req) < 0 {
			t.Errorf("%s: request %v limit %v: want both set, limit >= request", res, req.String(), lim.String())
		}
	}

	if !slices.ContainsFunc(pod.Tolerations, func(tl corev1.Toleration) bool {
		return tl.Operator == corev1.TolerationOpExists && tl.Key == "" && tl.Effect == ""
	}) {
		t.Errorf("tolerations %+v: want operator Exists for every taint", pod.Tolerations)
	}
	if pod.PriorityClassName != "system-node-critical" {
		t.Errorf("priorityClassName %q", pod.PriorityClassName)
	}
	// The agent stops in under 2 s; the grace period must cover it, and not
	// hold a node drain for the default 30 s.
	if g := pod.TerminationGracePeriodSeconds; g == nil || *g < 5 || *g > 30 {
		t.Errorf("terminationGracePeriodSeconds %v: want 5..30", g)
	}
	if u := m.ds.Spec.UpdateStrategy; u.Type != appsv1.RollingUpdateDaemonSetStrategyType || u.RollingUpdate == nil ||
		u.RollingUpdate.MaxSurge == nil || u.RollingUpdate.MaxSurge.IntValue() != 0 {
		t.Errorf("updateStrategy %+v: want RollingUpdate without surge (the port is the node's)", u)
	}

	ann := m.ds.Spec.Template.Annotations
	want := map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": strconv.Itoa(int(port)), "prometheus.io/path": "/metrics"}
	for k, v := range want {
		if ann[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, ann[k], v)
		}
	}
}

func TestServiceAndMonitorSelectAgents(t *testing.T) {
	m := loadManifests(t)
	podLabels := m.ds.Spec.Template.Labels
	if !subset(m.ds.Spec.Selector.MatchLabels, podLabels) || len(m.ds.Spec.Selector.MatchExpressions) > 0 {
		t.Errorf("daemonset selector %v does not match its pod labels %v", m.ds.Spec.Selector, podLabels)
	}
	svc := m.svc.Spec
	if svc.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("service clusterIP %q, want None (headless)", svc.ClusterIP)
	}
	if len(svc.Selector) == 0 || !subset(svc.Selector, podLabels) {
		t.Errorf("service selector %v does not match pod labels %v", svc.Selector, podLabels)
	}
	c := agentContainer(t, &m.ds)
	if len(svc.Ports) != 1 || svc.Ports[0].TargetPort != intstr.FromString(c.Ports[0].Name) || svc.Ports[0].Port != c.Ports[0].ContainerPort {
		t.Errorf("service ports %+v: want one targeting %q on %d", svc.Ports, c.Ports[0].Name, c.Ports[0].ContainerPort)
	}

	sm := m.sm.Spec
	if len(sm.Selector.MatchLabels) == 0 || !subset(sm.Selector.MatchLabels, m.svc.Labels) {
		t.Errorf("servicemonitor selector %v does not match service labels %v", sm.Selector.MatchLabels, m.svc.Labels)
	}
	if !slices.Equal(sm.NamespaceSelector.MatchNames, []string{m.svc.Namespace}) {
		t.Errorf("servicemonitor namespaces %v, want [%s]", sm.NamespaceSelector.MatchNames, m.svc.Namespace)
	}
	if len(sm.Endpoints) != 1 || sm.Endpoints[0].Port != svc.Ports[0].Name || sm.Endpoints[0].Path != "/metrics" {
		t.Errorf("servicemonitor endpoints %+v: want port %q path /metrics", sm.Endpoints, svc.Ports[0].Name)
	}
}

func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}
