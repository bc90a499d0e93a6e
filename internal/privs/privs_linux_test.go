package privs

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// On this machine, unfiltered and as root, both probe calls reach the
// kernel: the map is made, the unknown command is EINVAL.
func TestProbeUnfiltered(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	p := Probe()
	if p.MapCreate != nil || !errors.Is(p.BadCommand, syscall.EINVAL) {
		t.Fatalf("Probe = %+v, want the map made and EINVAL for the unknown command", p)
	}
	if Diagnose(p, Detect()) != nil {
		t.Errorf("Diagnose blames something on an unfiltered root process: %v", Diagnose(p, Detect()))
	}
}

const seccompChildEnv = "FRAGSCOPE_PRIVS_SECCOMP_CHILD"

// A real seccomp filter refusing bpf(2) with EPERM, as podman's and
// Docker 20.10's default profiles do without CAP_SYS_ADMIN: Check says so
// in one line instead of blaming the memlock limit. The filter is
// installed in a child (this test binary run again), so it cannot leak.
func TestCheckUnderSeccompFilter(t *testing.T) {
	if os.Getenv(seccompChildEnv) != "" {
		seccompChild(t)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: the capabilities must be present for the filter to be the cause")
	}
	for _, c := range []struct{ container, want string }{
		{"", "bpf(2) refused by this process's seccomp filter"},
		{"fragscope-test", "bpf(2) refused by the container's seccomp profile: run with --security-opt seccomp=unconfined"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCheckUnderSeccompFilter$", "-test.v")
		cmd.Env = append(os.Environ(), seccompChildEnv+"=1", "container="+c.container)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		var got string
		for _, line := range strings.Split(string(out), "\n") {
			if _, v, ok := strings.Cut(line, "check: "); ok {
				got = v
			}
		}
		if !strings.HasPrefix(got, c.want) {
			t.Errorf("container=%q: Check under the filter = %q, want %q...\n%s", c.container, got, c.want, out)
		}
	}
}

func seccompChild(t *testing.T) {
	if err := installBPFFilter(); err != nil {
		t.Fatalf("install seccomp filter: %v", err)
	}
	if s := statusField(readFile("/proc/self/status"), "Seccomp"); s != "2" {
		t.Fatalf("Seccomp: %s after installing a filter", s)
	}
	t.Logf("probe: %+v", Probe())
	err := Check()
	if err == nil {
		t.Fatal("Check passed with bpf(2) filtered")
	}
	t.Logf("check: %v", err)
}

// installBPFFilter makes bpf(2) fail with EPERM in every thread of this
// process: a classic-BPF seccomp program on the syscall number.
func installBPFFilter() error {
	arch := map[string]uint32{"amd64": unix.AUDIT_ARCH_X86_64, "arm64": unix.AUDIT_ARCH_AARCH64}[runtime.GOARCH]
	if arch == 0 {
		return errors.New("no audit arch for " + runtime.GOARCH)
	}
	const (
		ldAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret   = unix.BPF_RET | unix.BPF_K
	)
	// struct seccomp_data: nr at offset 0, arch at 4.
	prog := []unix.SockFilter{
		{Code: ldAbs, K: 4},
		{Code: jeq, K: arch, Jt: 0, Jf: 3}, // another arch: allow
		{Code: ldAbs, K: 0},
		{Code: jeq, K: unix.SYS_BPF, Jt: 0, Jf: 1},
		{Code: ret, K: unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		{Code: ret, K: unix.SECCOMP_RET_ALLOW},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return err
	}
	// TSYNC: the Go runtime's other threads get the filter too.
	if _, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog))); errno != 0 {
		return errno
	}
	return nil
}
