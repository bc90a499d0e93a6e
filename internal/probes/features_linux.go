package probes

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"

	"github.com/fragscope/fragscope/internal/tracefs"
)

// Features is what the running kernel offers, probed once per process.
type Features struct {
	Release    string
	BTF        error // nil when kernel BTF is available (tp_btf, fentry, CO-RE)
	Tracefs    string
	TracefsErr error
	Kprobes    error // nil when kprobes can attach
	Fentry     error // nil when fentry/fexit programs load and attach
	// Lockdown is the kernel lockdown level ("none", "integrity",
	// "confidentiality"; "" without the lockdown LSM). Confidentiality
	// refuses BPF programs that read kernel memory (bpf_probe_read, which
	// every CO-RE read compiles to) and empties tracefs
	// (security/lockdown/lockdown.c, LOCKDOWN_BPF_READ_KERNEL, 5.4+).
	Lockdown string

	kernelBTF *btf.Spec
	symsOnce  sync.Once
	syms      map[string]bool
}

var (
	featuresOnce sync.Once
	features     *Features
)

// Probe returns the kernel's features, probing on first use only.
func Probe() *Features {
	featuresOnce.Do(func() { features = probe() })
	return features
}

func probe() *Features {
	f := &Features{}
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		f.Release = unix.ByteSliceToString(uts.Release[:])
	}
	f.kernelBTF, f.BTF = btf.LoadKernelSpec()
	if f.BTF != nil {
		f.BTF = fmt.Errorf("no kernel BTF (/sys/kernel/btf/vmlinux): kernel built without CONFIG_DEBUG_INFO_BTF")
	}
	f.Tracefs, f.TracefsErr = tracefs.Dir()
	f.Lockdown = lockdownLevel("/sys/kernel/security/lockdown")
	if f.Lockdown == "confidentiality" && f.TracefsErr != nil {
		f.TracefsErr = fmt.Errorf("kernel lockdown=confidentiality hides tracefs (%v)", f.TracefsErr)
	}
	f.Kprobes = probeKprobes(f.Tracefs)
	f.Fentry = f.probeFentry()
	return f
}

// probeKprobes checks the two interfaces link.Kprobe can use: the perf
// kprobe PMU (4.17+) and tracefs kprobe_events.
func probeKprobes(tracefsDir string) error {
	if _, err := os.Stat("/sys/bus/event_source/devices/kprobe/type"); err == nil {
		return nil
	}
	if tracefsDir != "" {
		if _, err := os.Stat(filepath.Join(tracefsDir, "kprobe_events")); err == nil {
			return nil
		}
	}
	return errors.New("kernel built without CONFIG_KPROBES")
}

// probeFentry loads a do-nothing fentry program on a function every kernel
// with BTF has. Some kernels (and sandboxes) refuse trampolines with EPERM.
func (f *Features) probeFentry() error {
	if f.BTF != nil {
		return fmt.Errorf("fentry needs kernel BTF: %w", f.BTF)
	}
	target := ""
	for _, fn := range []string{"copy_net_ns", "do_unlinkat", "vfs_read"} {
		if f.HasBTFFunc(fn) {
			target = fn
			break
		}
	}
	if target == "" {
		return errors.New("fentry probe: no known target function in kernel BTF")
	}
	prog, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
		Type:       ebpf.Tracing,
		AttachType: ebpf.AttachTraceFEntry,
		AttachTo:   target,
		License:    "GPL",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, 0),
			asm.Return(),
		},
	}, ebpf.ProgramOptions{KernelTypes: f.kernelBTF})
	if err != nil {
		return describeLoadError("fentry", err)
	}
	defer prog.Close()
	return nil
}

// HasBTFFunc reports whether the kernel's BTF has a function of that name.
func (f *Features) HasBTFFunc(name string) bool {
	if f.kernelBTF == nil {
		return false
	}
	var fn *btf.Func
	return f.kernelBTF.TypeByName(name, &fn) == nil
}

// HasSymbol reports whether /proc/kallsyms lists a text symbol of that name
// (what a kprobe needs; it also covers kernels without BTF).
func (f *Features) HasSymbol(name string) bool {
	f.symsOnce.Do(func() { f.syms = readTextSymbols() })
	if f.syms == nil { // kallsyms unreadable: let the attach itself decide
		return true
	}
	return f.syms[name]
}

func readTextSymbols() map[string]bool {
	fh, err := os.Open("/proc/kallsyms")
	if err != nil {
		return nil
	}
	defer fh.Close()
	syms := make(map[string]bool, 1<<16)
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		// "ffffffff81000000 T _stext [module]"
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		switch fields[1] {
		case "t", "T", "w", "W":
			syms[fields[2]] = true
		}
	}
	return syms
}

// describeLoadError turns a load or attach error into the reason a user
// reads. cilium/ebpf suggests raising MEMLOCK on EPERM, which misleads when
// the kernel refuses trampolines; say what actually happened.
func describeLoadError(what string, err error) error {
	switch {
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("%s refused by the kernel (EPERM)", what)
	case errors.Is(err, errENOTSUPP), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Errorf("%s not supported by this kernel", what)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%s: target not found on this kernel", what)
	}
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		// %v is the verifier's last lines, where the cause is; the full
		// log (%+v) runs to pages and a reason must be one line.
		return fmt.Errorf("%s rejected by the verifier: %s", what, strings.Join(strings.Fields(ve.Error()), " "))
	}
	return fmt.Errorf("%s: %w", what, err)
}

// lockdownLevel reads the bracketed level of securityfs' lockdown file,
// "none [integrity] confidentiality" -> "integrity"; "" when absent.
func lockdownLevel(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	s := string(b)
	i, j := strings.IndexByte(s, '['), strings.IndexByte(s, ']')
	if i < 0 || j < i {
		return ""
	}
	return s[i+1 : j]
}

// errENOTSUPP is the kernel-internal ENOTSUPP (524) the BPF syscall leaks to
// userspace, e.g. for fentry on kernels without trampoline support.
const errENOTSUPP = unix.Errno(524)
