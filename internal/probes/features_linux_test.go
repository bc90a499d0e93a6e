package probes

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// The bracketed word of securityfs' lockdown file is the level in force.
func TestLockdownLevel(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]string{
		"[none] integrity confidentiality\n": "none",
		"none integrity [confidentiality]\n": "confidentiality",
		"garbled\n":                          "",
	} {
		p := filepath.Join(dir, "lockdown")
		os.WriteFile(p, []byte(content), 0o600)
		if got := lockdownLevel(p); got != want {
			t.Errorf("lockdownLevel(%q) = %q, want %q", content, got, want)
		}
	}
	if got := lockdownLevel(filepath.Join(dir, "missing")); got != "" {
		t.Errorf("no lockdown LSM: %q, want empty", got)
	}
}

// The verifier's words for a helper this kernel lacks become the release
// that added it, in one line.
func TestMissingHelperReason(t *testing.T) {
	for log, want := range map[string]string{
		"invalid func unknown#184":               "needs Linux 5.17+ (bpf_get_func_ret)",
		"unknown func bpf_get_func_arg#183":      "needs Linux 5.17+ (bpf_get_func_arg)",
		"invalid func unknown#158":               "needs Linux 5.11+ (bpf_get_current_task_btf)",
		"R1 type=ctx expected=fp":                "",
		"invalid func unknown#60000":             "this kernel has no BPF helper BuiltinFunc(60000) (#60000)",
		"program of this type cannot use helper": "",
	} {
		if got := missingHelper([]string{"0: (85) call", log, "processed 3 insns"}); got != want {
			t.Errorf("missingHelper(%q) = %q, want %q", log, got, want)
		}
	}
	if got := Reason(Kprobe, nil); got != "kprobe: ok" {
		t.Errorf("Reason(kprobe, nil) = %q", got)
	}
}

// A program calling a helper the running kernel does not have is refused
// with a one-line reason naming it; the verifier's log is kept for
// --verbose. Before 5.17 that includes an fexit calling bpf_get_func_ret
// (what the fexit programs no longer call); on every kernel, a helper
// number past the last.
func TestRefusedHelperIsOneLine(t *testing.T) {
	requireRoot(t)
	check := func(err error, want string) {
		t.Helper()
		err = describeLoadError("load test", err)
		reason := Reason(Fentry, err)
		t.Logf("%s", reason)
		if strings.Contains(reason, "\n") || len(reason) > 200 || !strings.Contains(reason, want) {
			t.Errorf("reason %q: want one short line containing %q", reason, want)
		}
		if VerboseLog(err) == "" {
			t.Errorf("no verifier log kept for --verbose: %v", err)
		}
	}
	_, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.Kprobe, License: "GPL",
		Instructions: asm.Instructions{asm.BuiltinFunc(4000).Call(), asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if err == nil {
		t.Fatal("a program calling helper #4000 loaded")
	}
	check(err, "no BPF helper BuiltinFunc(4000) (#4000)")

	f := Probe()
	if f.Fentry != nil {
		t.Logf("fexit with bpf_get_func_ret not tried: %v", f.Fentry)
		return
	}
	prog, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
		Type: ebpf.Tracing, AttachType: ebpf.AttachTraceFExit, AttachTo: "copy_net_ns", License: "GPL",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R3, 0), asm.StoreMem(asm.RFP, -8, asm.R3, asm.DWord),
			asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, -8),
			asm.FnGetFuncRet.Call(), asm.Mov.Imm(asm.R0, 0), asm.Return(),
		},
	}, ebpf.ProgramOptions{KernelTypes: f.kernelBTF})
	if err == nil {
		prog.Close()
		t.Logf("%s has bpf_get_func_ret (5.17+)", f.Release)
		return
	}
	check(err, "needs Linux 5.17+ (bpf_get_func_ret)")
}
