package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The image as a user gets it, against real engines: `make image`, the
// README's run line as written, the agent in the container scraped from the
// host, an ENOSPC netns failure made on the host and kept by the
// containerized agent with the node's name. Each engine is private to the
// test (its own roots and socket) and removed afterwards.

// lap logs how long each part of a test took.
func lap(t *testing.T) func(part string) {
	last := time.Now()
	return func(part string) {
		t.Logf("%-34s %6.1fs", part, time.Since(last).Seconds())
		last = time.Now()
	}
}

// engine is a container CLI bound to a private daemon or storage.
type engine struct {
	argv []string // the CLI and the flags that point it at this test's engine
	env  []string
}

func (e *engine) cmd(args ...string) *exec.Cmd {
	c := exec.Command(e.argv[0], append(slices.Clone(e.argv[1:]), args...)...)
	c.Env = append(os.Environ(), e.env...)
	return c
}

func (e *engine) run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.cmd(args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", e.argv[0], strings.Join(args, " "), err, out)
	}
	return string(out)
}

// shell runs a README line with this engine's CLI in place of its first word.
func (e *engine) shell(t *testing.T, line string) string {
	t.Helper()
	name, rest, _ := strings.Cut(line, " ")
	var q []string
	for _, a := range e.argv {
		q = append(q, "'"+a+"'")
	}
	c := exec.Command("sh", "-c", strings.Join(q, " ")+" "+rest)
	c.Env = append(os.Environ(), e.env...)
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("README's %s line: %v\n%s\n%s", name, err, line, out)
	}
	return string(out)
}

// tempRoot is a short-lived directory for an engine's state (short: unix
// socket paths under it must fit in 108 bytes). Removal first detaches
// whatever the engine left mounted below it.
func tempRoot(t *testing.T, name string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		var under []string
		for _, line := range strings.Split(string(mi), "\n") {
			if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
				under = append(under, f[4])
			}
		}
		for i := len(under) - 1; i >= 0; i-- {
			unix.Unmount(under[i], unix.MNT_DETACH)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	return dir
}

// startDockerd starts Debian's dockerd with everything of its own: data and
// exec roots, pid file, socket and containerd namespaces; no iptables and
// no bridge, so it cannot clash with another engine on the machine.
func startDockerd(t *testing.T) *engine {
	t.Helper()
	dockerd := requireTool(t, "dockerd", "docker.io")
	// The client of the same package: another one earlier in PATH may be a
	// different version.
	client := filepath.Join(filepath.Dir(filepath.Dir(dockerd)), "bin", "docker")
	if _, err := os.Stat(client); err != nil {
		client = requireTool(t, "docker", "docker.io")
	}
	dir := tempRoot(t, "fsd")
	sock := filepath.Join(dir, "docker.sock")
	ns := fmt.Sprintf("fragscope-test-%d", os.Getpid())
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	d := exec.Command(dockerd, "--data-root", filepath.Join(dir, "root"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"), "-H", "unix://"+sock,
		"--iptables=false", "--ip-masq=false", "--bridge=none",
		"--containerd-namespace", ns, "--containerd-plugins-namespace", ns+"-plugins")
	d.Stdout, d.Stderr = logf, logf
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	e := &engine{argv: []string{client}, env: []string{"DOCKER_HOST=unix://" + sock}}
	t.Cleanup(func() {
		start := time.Now()
		e.cmd("rm", "-f", "-v", "fragscope").Run()
		d.Process.Signal(unix.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- d.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			d.Process.Kill()
			<-done
			t.Errorf("dockerd ignored SIGTERM for 20s")
		}
		logf.Close()
		t.Logf("%-34s %6.1fs", "dockerd stopped", time.Since(start).Seconds())
	})
	deadline := time.Now().Add(60 * time.Second)
	for e.cmd("version").Run() != nil {
		if time.Now().After(deadline) || d.ProcessState != nil {
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("dockerd not up after 60s:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return e
}

// makeImage runs `make image` against the engine and returns the version
// it stamped and the image's size in bytes.
func makeImage(t *testing.T, e *engine) (version string, size int64) {
	t.Helper()
	c := exec.Command("make", "-s", "image", "DOCKER="+strings.Join(e.argv, " "))
	c.Dir = "../.."
	c.Env = append(os.Environ(), e.env...)
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`make image: fragscope:(\S+), (\d+) bytes`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("make image did not name the image and its size:\n%s", out)
	}
	fmt.Sscan(m[2], &size)
	return m[1], size
}

// readmeRun returns the README "Container" section's `<engine> run` line
// (continuations joined) whose flags include every one of with and none of
// without.
func readmeRun(t *testing.T, eng string, with, without []string) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, _ := strings.Cut(string(b), "\n## Container\n")
	sec, _, _ = strings.Cut(sec, "\n## ")
	var lines []string
	cur := ""
	sc := bufio.NewScanner(strings.NewReader(sec))
	for sc.Scan() {
		l, ok := strings.CutPrefix(sc.Text(), "    ")
		if !ok {
			continue
		}
		l = strings.TrimSpace(l)
		if j, cont := strings.CutSuffix(l, `\`); cont {
			cur += j
			continue
		}
		lines = append(lines, cur+l)
		cur = ""
	}
next:
	for _, l := range lines {
		if !strings.HasPrefix(l, eng+" run ") {
			continue
		}
		for _, w := range with {
			if !strings.Contains(l, w) {
				continue next
			}
		}
		for _, w := range without {
			if strings.Contains(l, w) {
				continue next
			}
		}
		return l
	}
	t.Fatalf("README's Container section has no `%s run` line with %v and without %v", eng, with, without)
	return ""
}

// inTest points a README line at this test: its data dir instead of the
// node's, and the agent's flags appended: a free port rather than 9436,
// which a real agent may hold, and short incident windows, so the pin comes
// soon even while other tests on the node keep failing unshare calls (each
// joins the group and moves its pin later, up to 2*before+after).
func inTest(t *testing.T, line, dataDir, addr string) string {
	t.Helper()
	const vol = "-v /var/lib/fragscope:/var/lib/fragscope"
	if !strings.Contains(line, vol) {
		t.Fatalf("README line lacks %q: %s", vol, line)
	}
	line = strings.Replace(line, vol, "-v "+dataDir+":/var/lib/fragscope", 1)
	if !strings.HasSuffix(line, " fragscope") {
		t.Fatalf("README line does not end with the image name: %s", line)
	}
	return line + " agent --listen " + addr + " --interval 200ms --incident-before 2s --incident-after 1s"
}

// waitReady polls /readyz from the host.
func waitReadyz(t *testing.T, e *engine, addr string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			out, _ := e.cmd("logs", "fragscope").CombinedOutput()
			t.Fatalf("containerized agent not ready after 60s:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stopAgent stops the container the way an engine does (SIGTERM) and
// checks the agent exited 0.
func stopAgent(t *testing.T, e *engine) {
	t.Helper()
	e.run(t, "stop", "-t", "10", "fragscope")
	if code := strings.TrimSpace(e.run(t, "inspect", "-f", "{{.State.ExitCode}}", "fragscope")); code != "0" {
		t.Errorf("agent exit code %s after stop\n%s", code, e.run(t, "logs", "fragscope"))
	}
	e.run(t, "rm", "-v", "fragscope")
}

// keptNetnsIncident makes an ENOSPC netns failure on the host and waits
// for the agent to count it and keep it in dataDir: the JSON and the pinned
// recording. logs explains a failure.
func keptNetnsIncident(t *testing.T, a *agentProc, dataDir string, logs func() string) (jsonFile, traceFile string) {
	t.Helper()
	out, _ := exec.Command("unshare", "-Ur", "sh", "-c", "echo 0 > /proc/sys/user/max_net_namespaces; unshare -n true").CombinedOutput()
	if !strings.Contains(string(out), "No space left") {
		t.Fatalf("the ENOSPC workload did not fail as expected: %s", out)
	}
	waitMetric(t, a, "fragscope_namespace_syscall_failures_total", map[string]string{"syscall": "unshare", "errno": "ENOSPC"}, 1)
	waitMetric(t, a, "fragscope_incidents_total", map[string]string{"verdict": "namespace_limit"}, 1)
	deadline := time.Now().Add(30 * time.Second)
	for {
		js, _ := filepath.Glob(filepath.Join(dataDir, "incidents", "*namespace_limit*.json"))
		fs, _ := filepath.Glob(filepath.Join(dataDir, "incidents", "*namespace_limit*.fst"))
		if len(js) > 0 && len(fs) > 0 {
			return js[0], fs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no namespace_limit incident kept in %s: %v %v\n%s", dataDir, js, fs, logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// doctorLine returns the value of one of doctor's lines.
func doctorLine(out, key string) string {
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, key); ok && strings.HasPrefix(v, " ") {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func TestImageDocker(t *testing.T) {
	requireRoot(t)
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	took := lap(t)
	e := startDockerd(t)
	server := strings.TrimSpace(e.run(t, "version", "-f", "{{.Server.Version}}"))
	took("dockerd " + server + " up")

	version, size := makeImage(t, e)
	took("make image")
	t.Logf("image fragscope:%s: %d bytes (%.1f MiB)", version, size, float64(size)/(1<<20))
	if v := strings.TrimSpace(e.run(t, "run", "--rm", "--network", "none", "fragscope", "--version")); version == "dev" || v != "fragscope version "+version {
		t.Errorf("--version in the image = %q, want fragscope version %s (not dev)", v, version)
	}

	// The hints inside a container with the engine's default capabilities,
	// and the node name records would carry without and with NODE_NAME.
	out, _ := e.cmd("run", "--rm", "--network", "none", "fragscope", "doctor").CombinedOutput()
	if c := doctorLine(string(out), "container"); !strings.HasPrefix(c, "docker") {
		t.Errorf("doctor in a container: container %q, want docker\n%s", c, out)
	}
	if p := doctorLine(string(out), "privileges"); !strings.Contains(p, "--cap-add SYS_ADMIN (any engine)") {
		t.Errorf("doctor's hint does not lead with SYS_ADMIN: %q", p)
	}
	if n := doctorLine(string(out), "node name"); strings.HasPrefix(n, host+" ") {
		t.Errorf("without NODE_NAME and its own UTS namespace the container is named %q, the node's name: the NODE_NAME check below proves nothing", n)
	}
	out, _ = e.cmd("run", "--rm", "--network", "none", "-e", "NODE_NAME="+host, "fragscope", "doctor").CombinedOutput()
	if n := doctorLine(string(out), "node name"); n != host+" ($NODE_NAME)" {
		t.Errorf("doctor with NODE_NAME: node name %q, want %s", n, host)
	}
	// What the README says of Docker 20.10.
	if out, err := e.cmd("run", "--rm", "--network", "none", "--cap-add", "BPF", "fragscope", "--version").CombinedOutput(); strings.HasPrefix(server, "20.10") && (err == nil || !strings.Contains(string(out), "unknown capability")) {
		t.Errorf("Docker %s accepted --cap-add BPF (%v): the README's SYS_ADMIN-only claim for 20.10 is wrong\n%s", server, err, out)
	}
	took("doctor in containers")

	// The README's line for this engine, as written.
	line := readmeRun(t, "docker", []string{"SYS_ADMIN"}, []string{"BPF"})
	dataDir := filepath.Join(tempRoot(t, "fsdata"), "data")
	addr := freeAddr(t)
	e.shell(t, inTest(t, line, dataDir, addr))
	waitReadyz(t, e, addr)
	took("agent container ready")

	a := &agentProc{addr: addr}
	_, body := a.get("/metrics")
	for _, fam := range []string{"fragscope_free_blocks", "fragscope_hook_attached", "fragscope_zone_free_bytes", "fragscope_fragmentation_index", "fragscope_last_snapshot_timestamp_seconds", "process_resident_memory_bytes"} {
		if _, ok := sample(t, body, fam, nil); !ok {
			t.Errorf("no %s in the scrape from the host", fam)
		}
	}
	if _, ok := sample(t, body, "fragscope_build_info", map[string]string{"version": version}); !ok {
		t.Errorf("no fragscope_build_info{version=%q}", version)
	}
	if _, ok := sample(t, body, "fragscope_node_info", map[string]string{"hostname": host}); !ok {
		t.Errorf("no fragscope_node_info{hostname=%q}", host)
	}
	took("scrape from the host")

	// An ENOSPC netns failure on the host, kept by the agent in the container.
	jsonFile, traceFile := keptNetnsIncident(t, a, dataDir, func() string { return e.run(t, "logs", "fragscope") })
	took("incident kept in the volume")
	stopAgent(t, e)
	took("agent container stopped")

	if b, err := os.ReadFile(jsonFile); err != nil || !bytes.Contains(b, []byte(`"errno_name":"ENOSPC"`)) {
		t.Errorf("kept JSON %s: %v\n%.300s", jsonFile, err, b)
	}
	// Read back with the image's own binary, the volume read-only.
	inVol := "/var/lib/fragscope/incidents/" + filepath.Base(traceFile)
	mount := dataDir + ":/var/lib/fragscope:ro"
	if got := e.run(t, "run", "--rm", "--network", "none", "-v", mount, "fragscope", "incidents", "--json", inVol); !strings.Contains(got, `"cause":"namespace_limit"`) {
		t.Errorf("incidents on the pinned recording: no namespace_limit:\n%s", got)
	}
	for _, rec := range []string{inVol, "/var/lib/fragscope"} {
		got := e.run(t, "run", "--rm", "--network", "none", "-v", mount, "fragscope", "replay", "--json", rec)
		names := regexp.MustCompile(`"hostname":"([^"]*)"`).FindAllStringSubmatch(got, -1)
		if len(names) == 0 {
			t.Errorf("replay %s: no hostname", rec)
		}
		for _, n := range names {
			if n[1] != host {
				t.Errorf("replay %s: hostname %q, want the node's %q", rec, n[1], host)
			}
		}
	}
	took("incident read back")
}

// podman: its default seccomp profile really refuses bpf(2) with BPF and
// PERFMON alone, and doctor says so in one line; the same capabilities
// without the profile suffice (the narrower set of the README's Docker 23+
// line); the README's podman line runs the agent.
func TestImagePodman(t *testing.T) {
	requireRoot(t)
	podman := requireTool(t, "podman", "podman")
	host, _ := os.Hostname()
	took := lap(t)
	dir := tempRoot(t, "fsp")
	// No systemd here: cgroupfs and a file event log.
	e := &engine{argv: []string{podman, "--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"),
		"--tmpdir", filepath.Join(dir, "tmp"), "--cgroup-manager", "cgroupfs", "--events-backend", "file"}}
	t.Cleanup(func() { e.cmd("rm", "-f", "-v", "fragscope").Run() })
	// Root here lacks CAP_SYS_RESOURCE, so podman's default rlimits cannot
	// be set: these hosts need explicit ones (../shared/notes/runtimes.md).
	ulimits := []string{"--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096"}
	run := func(args ...string) (string, error) {
		out, err := e.cmd(append(append([]string{"run", "--rm", "--network", "host"}, ulimits...), args...)...).CombinedOutput()
		return string(out), err
	}

	version, size := makeImage(t, e)
	took("make image (podman)")
	t.Logf("image fragscope:%s: %d bytes", version, size)

	out, err := run("--cap-add", "BPF", "--cap-add", "PERFMON", "fragscope", "doctor")
	want := "bpf(2) refused by the container's seccomp profile: run with --security-opt seccomp=unconfined or a profile that allows bpf and perf_event_open (podman's default allows them only with CAP_SYS_ADMIN: add --cap-add SYS_ADMIN)"
	if err == nil || doctorLine(out, "privileges") != want || strings.Contains(out, "memlock") {
		t.Errorf("doctor under podman's default seccomp profile with BPF+PERFMON (%v): want privileges %q\n%s", err, want, out)
	}
	out, err = run("--cap-add", "BPF", "--cap-add", "PERFMON", "--cap-add", "SYSLOG", "--security-opt", "seccomp=unconfined",
		"-v", "/sys/kernel:/sys/kernel", "fragscope", "doctor")
	if err != nil || doctorLine(out, "privileges") != "ok" {
		t.Errorf("doctor with BPF+PERFMON+SYSLOG and no seccomp profile: %v\n%s", err, out)
	}
	took("doctor under podman")

	line := readmeRun(t, "podman", []string{"SYS_ADMIN"}, nil)
	line = strings.Replace(line, "podman run ", "podman run "+strings.Join(ulimits, " ")+" ", 1)
	dataDir := filepath.Join(dir, "data")
	if err := os.Mkdir(dataDir, 0o755); err != nil { // the README's mkdir -p
		t.Fatal(err)
	}
	addr := freeAddr(t)
	e.shell(t, inTest(t, line, dataDir, addr))
	waitReadyz(t, e, addr)
	_, body := (&agentProc{addr: addr}).get("/metrics")
	if _, ok := sample(t, body, "fragscope_node_info", map[string]string{"hostname": host}); !ok {
		t.Errorf("no fragscope_node_info{hostname=%q} from the podman agent", host)
	}
	took("podman agent ready and scraped")
	stopAgent(t, e)
	took("podman agent stopped")
}
