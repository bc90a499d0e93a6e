package probes

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"

	"github.com/fragscope/fragscope/internal/snapshot"
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
	symsOnce  sync.Once // readKallsyms
	syms      map[string]bool
	symsErr   error
	pgdat     int // pgdatMissing, pgdatHidden, pgdatFound
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

// FuncParams returns the number of parameters of a kernel function in BTF:
// typed fentry/fexit programs read exactly that many, and fexit finds the
// return value after them.
func (f *Features) FuncParams(name string) (int, error) {
	names, err := f.FuncParamNames(name)
	return len(names), err
}

// FuncParamNames returns the parameter names of a kernel function in BTF.
func (f *Features) FuncParamNames(name string) ([]string, error) {
	if f.kernelBTF == nil {
		return nil, f.BTF
	}
	var fn *btf.Func
	if err := f.kernelBTF.TypeByName(name, &fn); err != nil {
		return nil, fmt.Errorf("symbol not found: %s in kernel BTF", name)
	}
	proto, ok := fn.Type.(*btf.FuncProto)
	if !ok {
		return nil, fmt.Errorf("%s: BTF type %T is not a function prototype", name, fn.Type)
	}
	names := make([]string, len(proto.Params))
	for i, p := range proto.Params {
		names[i] = p.Name
	}
	return names, nil
}

// ZoneNames names the kernel's zones by index, as /proc does, from its
// BTF's enum zone_type (which zones exist depends on the configuration:
// CONFIG_ZONE_DMA, CONFIG_HIGHMEM, CONFIG_ZONE_DEVICE); nil without BTF.
func (f *Features) ZoneNames() []string {
	if f.kernelBTF == nil {
		return nil
	}
	var e *btf.Enum
	if f.kernelBTF.TypeByName("zone_type", &e) != nil {
		return nil
	}
	var names []string
	for _, v := range e.Values {
		n := snapshot.ZoneTypeName(v.Name)
		if n == "" || v.Value >= 64 {
			continue // __MAX_NR_ZONES
		}
		for uint64(len(names)) <= v.Value {
			names = append(names, "")
		}
		names[v.Value] = n
	}
	return names
}

// FreeListCapture says why the page_alloc hook cannot read the free lists
// at a failure, nil when it can: its program finds the nodes' pglist_data
// by the node_data (NUMA) or contig_page_data symbol, which /proc/kallsyms
// lists only with CONFIG_KALLSYMS_ALL (Debian's kernels have it; many
// minimal and VM kernels do not), and with addresses only where
// kptr_restrict lets this process see them.
func (f *Features) FreeListCapture() error {
	f.symsOnce.Do(f.readKallsyms)
	switch {
	case f.symsErr != nil:
		return fmt.Errorf("no free lists captured at failures: %v", f.symsErr)
	case f.pgdat == pgdatHidden:
		return errors.New("no free lists captured at failures: kptr_restrict hides kernel addresses in /proc/kallsyms; failures are judged on /proc read after them")
	case f.pgdat == pgdatMissing:
		return errors.New("no free lists captured at failures: neither node_data nor contig_page_data is in /proc/kallsyms (kernel built without CONFIG_KALLSYMS_ALL); failures are judged on /proc read after them")
	}
	return nil
}

// HasSymbol reports whether /proc/kallsyms lists a text symbol of that name
// (what a kprobe needs; it also covers kernels without BTF).
func (f *Features) HasSymbol(name string) bool {
	f.symsOnce.Do(f.readKallsyms)
	if f.syms == nil { // kallsyms unreadable: let the attach itself decide
		return true
	}
	return f.syms[name]
}

// What /proc/kallsyms says of the pglist_data symbols the free-list capture
// needs (FreeListCapture).
const (
	pgdatMissing = iota
	pgdatHidden  // listed with a zero address (kptr_restrict)
	pgdatFound
)

// readKallsyms reads /proc/kallsyms once for everything Features asks of
// it: the text symbols (kprobe targets) and the pglist_data symbols.
func (f *Features) readKallsyms() {
	fh, err := os.Open("/proc/kallsyms")
	if err != nil {
		f.symsErr = err
		return
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
		if (fields[2] == "node_data" || fields[2] == "contig_page_data") && f.pgdat != pgdatFound {
			f.pgdat = pgdatFound
			if strings.Trim(fields[0], "0") == "" {
				f.pgdat = pgdatHidden
			}
		}
	}
	f.syms = syms
}

// describeLoadError turns a load or attach error into the reason a user
// reads. cilium/ebpf suggests raising MEMLOCK on EPERM, which misleads when
// the kernel refuses trampolines; say what actually happened.
func describeLoadError(what string, err error) error {
	switch {
	case errors.Is(err, unix.EPERM):
		return &loadError{msg: what + " refused by the kernel (EPERM)", err: err}
	case isNotSupported(err):
		return &loadError{msg: what + " not supported by this kernel", err: err}
	case errors.Is(err, os.ErrNotExist):
		return &loadError{msg: what + ": target not found on this kernel", err: err}
	}
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		if why := missingHelper(ve.Log); why != "" {
			return &loadError{msg: why, err: err}
		}
		// %v is the verifier's last lines, where the cause is; the full
		// log (%+v) runs to pages and a reason must be one line.
		return &loadError{msg: fmt.Sprintf("%s rejected by the verifier: %s", what, strings.Join(strings.Fields(ve.Error()), " ")), err: err}
	}
	return fmt.Errorf("%s: %w", what, err)
}

func isNotSupported(err error) bool {
	return errors.Is(err, errENOTSUPP) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, ebpf.ErrNotSupported)
}

// loadError is a one-line reason that keeps the error it came from, whose
// verifier log VerboseLog gives to -v / --verbose.
type loadError struct {
	msg string
	err error
}

func (e *loadError) Error() string { return e.msg }
func (e *loadError) Unwrap() error { return e.err }

// Reason is the one-line reason users read for one mechanism of a hook:
// "fentry: needs Linux 5.17+ (bpf_get_func_ret)", "kprobe: ok" (err nil).
// Every hook's status, doctor and the hooks of other helpers format their
// reasons with it; the verifier's log is VerboseLog's, never a reason's.
func Reason(m Mechanism, err error) string {
	if err == nil {
		return string(m) + ": ok"
	}
	return string(m) + ": " + strings.Join(strings.Fields(err.Error()), " ")
}

// VerboseLog returns the whole verifier log behind a load error, or "".
func VerboseLog(err error) string {
	var ve *ebpf.VerifierError
	if !errors.As(err, &ve) {
		return ""
	}
	return strings.Join(ve.Log, "\n")
}

// helperSince is the first Linux release with each BPF helper that a
// fragscope program may call and that is newer than the 5.8 every run
// needs (include/uapi/linux/bpf.h history); a verifier refusing one names
// that release instead of its log.
var helperSince = map[asm.BuiltinFunc]string{
	asm.FnGetFuncArg:        "5.17",
	asm.FnGetFuncRet:        "5.17",
	asm.FnGetFuncArgCnt:     "5.17",
	asm.FnGetAttachCookie:   "5.15",
	asm.FnGetCurrentTaskBtf: "5.11",
	asm.FnTaskStorageGet:    "5.11",
	asm.FnKtimeGetCoarseNs:  "5.11",
}

// The verifier's words for a helper it does not know: "invalid func
// unknown#184" when the number is past the kernel's last helper (5.10 on
// bpf_get_func_ret), "unknown func bpf_x#N" when it has no such helper.
var unknownHelper = regexp.MustCompile(`(?:invalid func unknown|unknown func [a-z_0-9]+)#([0-9]+)`)

func missingHelper(log []string) string {
	for i := len(log) - 1; i >= 0; i-- {
		m := unknownHelper.FindStringSubmatch(log[i])
		if m == nil {
			continue
		}
		id, _ := strconv.Atoi(m[1])
		fn := asm.BuiltinFunc(id)
		if v, ok := helperSince[fn]; ok {
			return fmt.Sprintf("needs Linux %s+ (%s)", v, helperName(fn))
		}
		return fmt.Sprintf("this kernel has no BPF helper %s (#%d)", helperName(fn), id)
	}
	return ""
}

// helperName turns cilium/ebpf's FnGetFuncRet into the kernel's
// bpf_get_func_ret.
func helperName(fn asm.BuiltinFunc) string {
	name := strings.TrimPrefix(fn.String(), "Fn")
	if strings.HasPrefix(name, "BuiltinFunc(") {
		return name
	}
	var b strings.Builder
	b.WriteString("bpf")
	for _, r := range name {
		if unicode.IsUpper(r) {
			b.WriteByte('_')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
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
