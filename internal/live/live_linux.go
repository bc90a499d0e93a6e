// Package live opens a live session: it checks privileges, reads what the
// running kernel is (its gfp and migratetype tables, pageblock order, node
// name), attaches the hooks with their mechanism fallbacks and builds the
// live event source with fragscope's snapshot policy. watch, record, top and
// agent all start here, so they attach and snapshot the same way.
package live

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fragscope/fragscope/internal/cgroup"
	"github.com/fragscope/fragscope/internal/container"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/gfp"
	"github.com/fragscope/fragscope/internal/kallsyms"
	"github.com/fragscope/fragscope/internal/kernlog"
	"github.com/fragscope/fragscope/internal/memcg"
	"github.com/fragscope/fragscope/internal/privs"
	"github.com/fragscope/fragscope/internal/probes"
	"github.com/fragscope/fragscope/internal/snapshot"
	"github.com/fragscope/fragscope/internal/source"
)

// Options are the user's choices for a live session (the hook flags).
type Options struct {
	Hooks       string // "default", "all" or names
	Attach      string // "auto", a mechanism, or hook=mechanism,...
	Interval    time.Duration
	Attribution string // on, off, all
	CRIEndpoint string
	CgroupMode  string // auto, v1, v2
	// NodeName names the node in the Start record; empty: $NODE_NAME, else
	// the host name.
	NodeName string
	Version  string
	// Warn receives one-line warnings (degraded stacks, gfp names).
	Warn func(msg string)
	// Kmsg is whether /dev/kmsg is followed too: "on" (an error if it
	// cannot be read), "off", or "auto"/"" (followed when readable).
	Kmsg string
	// StallThreshold: namespace syscalls and memcg OOM waits lasting this
	// long are reported while they last (source.Live.StallThreshold); 0:
	// off.
	StallThreshold time.Duration
}

// Session is an attached live session. Close detaches everything.
type Session struct {
	Source *source.Live
	Status []event.HookStatus
	// Logs are the verifier's logs of refused mechanisms (--verbose).
	Logs []probes.VerifierLog
	set  *probes.Set
	kmsg *kernlog.Follower
}

// errEveryHookRefused is why a session goes on without BPF when every hook
// was tried and refused: the hooks' own reasons are printed with it.
var errEveryHookRefused = errors.New("the kernel refused every hook (reasons above)")

// ErrNoHook is returned when the kernel refused every hook.
var ErrNoHook = errors.New("no hook attached; see the reasons above, or run `fragscope doctor`")

// Open attaches the hooks. On success at least one hook is attached; the
// Status says how each did or why not.
func Open(ctx context.Context, o Options) (*Session, error) {
	if o.Interval <= 0 {
		return nil, fmt.Errorf("--interval must be positive")
	}
	if o.StallThreshold < 0 {
		return nil, fmt.Errorf("--stall-threshold %s: use 0 (off) or a positive duration such as 1s", o.StallThreshold)
	}
	warn := o.Warn
	if warn == nil {
		warn = func(string) {}
	}
	switch o.Kmsg {
	case "", "auto", "on", "off":
	default:
		return nil, fmt.Errorf("--kmsg %q: use auto, on or off", o.Kmsg)
	}
	if o.Hooks == "none" {
		// BPF off by request (and how no-BPF nodes are tested): procfs and
		// the kernel log only.
		return openWithoutBPF(ctx, o, warn, "--hooks none", nil)
	}
	hooks, err := probes.ParseHooks(o.Hooks)
	if err != nil {
		return nil, err
	}
	modes, err := probes.ParseModes(o.Attach)
	if err != nil {
		return nil, err
	}
	if err := privs.Check(); err != nil {
		return degrade(ctx, o, warn, err, nil)
	}
	var noAttr, attrAll bool
	switch o.Attribution {
	case "on", "":
	case "off":
		noAttr = true
	case "all":
		attrAll = true
	default:
		return nil, fmt.Errorf("--attribution %q: use on, off or all", o.Attribution)
	}
	v1, cgroups, err := cgroupSetup(o.CgroupMode)
	if err != nil {
		return nil, err
	}
	start, pageblockOrder := sessionStart(o, warn)
	set, err := probes.Open(probes.Options{
		Hooks: hooks, Modes: modes, PageblockOrder: pageblockOrder,
		CgroupV1Memory:     v1,
		NoAttribution:      noAttr,
		AttributeAll:       attrAll,
		MigrateReclaimable: reclaimableValue(start.Migratetypes),
		StallThreshold:     o.StallThreshold,
	})
	if err != nil {
		return degrade(ctx, o, warn, err, nil)
	}
	s := &Session{set: set, Status: set.Status, Logs: set.Logs}
	if !AnyAttached(set.Status) {
		set.Close()
		if ds, derr := degrade(ctx, o, warn, errEveryHookRefused, set.Status); derr == nil {
			return ds, nil
		}
		return s, ErrNoHook
	}
	syms, err := kallsyms.Load()
	if err != nil {
		warn(fmt.Sprintf("stacks will show raw addresses: %v", err))
	}
	s.Source = &source.Live{
		Set:          set,
		Start:        start,
		Interval:     o.Interval,
		TakeSnapshot: (&snapshotPolicy{now: time.Now}).take,
		Warn:         warn,
		Cgroups:      cgroups,
		Pod:          podLookup(ctx, o.CRIEndpoint),

		StallThreshold: o.StallThreshold,
		Memcg:          memcgReader(),
	}
	if syms != nil {
		s.Source.Symbolize = syms.FormatFrame
	}
	attached := map[string]bool{}
	for _, h := range set.Status {
		attached[h.Hook] = h.Attached
	}
	if err := s.followKmsg(o, warn, attached[string(probes.HookSlabCreate)]); err != nil {
		set.Close()
		return nil, err
	}
	return s, nil
}

// followKmsg adds the /dev/kmsg follower as --kmsg says. noSlab: the BPF
// slab_create hook reports slab failures itself.
func (s *Session) followKmsg(o Options, warn func(string), noSlab bool) error {
	if o.Kmsg == "off" {
		return nil
	}
	f, err := kernlog.OpenFollower(kernlog.Options{Source: kernlog.DevKmsg, Boot: bootTime(), NoSlab: noSlab})
	st := event.HookStatus{Hook: kernlog.Hook, Mechanism: "devkmsg", Target: kernlog.DevKmsg, Attached: err == nil}
	if err != nil {
		if o.Kmsg == "on" {
			return fmt.Errorf("--kmsg on: %w", err)
		}
		st.Reason = err.Error()
		warn(fmt.Sprintf("kernel reports will not be read: %v", err))
	} else {
		s.kmsg = f
		s.Source.Kmsg = f
	}
	s.Status = append(s.Status, st)
	s.Source.Hooks = append(s.Source.Hooks, st)
	return nil
}

// degrade opens the session without BPF when BPF cannot run (why) and the
// kernel log can stand in for it; otherwise it returns why.
func degrade(ctx context.Context, o Options, warn func(string), why error, refused []event.HookStatus) (*Session, error) {
	if o.Kmsg == "off" {
		return nil, why
	}
	s, err := openWithoutBPF(ctx, o, warn, why.Error(), refused)
	if err != nil {
		return nil, why
	}
	return s, nil
}

// openWithoutBPF is the session of a node where BPF cannot run (no BTF, no
// ringbuf, BPF refused) or was turned off: the free-block timeline from
// procfs snapshots, ticks without kernel counters, and incidents from the
// reports the kernel prints. It says so in one line.
// refused, when the kernel refused every hook, keeps each hook's own reason.
func openWithoutBPF(ctx context.Context, o Options, warn func(string), why string, refused []event.HookStatus) (*Session, error) {
	if o.Kmsg == "off" {
		return nil, fmt.Errorf("%s with --kmsg off leaves nothing to trace: allow BPF, or drop --kmsg off", why)
	}
	if _, err := snapshot.Take(""); err != nil {
		return nil, fmt.Errorf("no BPF (%s) and /proc cannot be read: %w", why, err)
	}
	_, cgroups, err := cgroupSetup(o.CgroupMode)
	if err != nil {
		return nil, err
	}
	start, _ := sessionStart(o, warn)
	status := refused
	if status == nil {
		for _, h := range probes.AllHooks {
			status = append(status, event.HookStatus{Hook: string(h), Reason: "BPF not used: " + why})
		}
	}
	s := &Session{Status: status}
	s.Source = &source.Live{
		Start: start, Interval: o.Interval, Hooks: status,
		TakeSnapshot: (&snapshotPolicy{now: time.Now}).take,
		Warn:         warn,
		Cgroups:      cgroups,
		Pod:          podLookup(ctx, o.CRIEndpoint),
	}
	o.Kmsg = "on" // without BPF the kernel log is the only source of failures
	if err := s.followKmsg(o, warn, false); err != nil {
		return nil, err
	}
	warn(fmt.Sprintf("BPF cannot run (%s): going on with the free-block timeline from /proc and incidents from the kernel's reports in %s", why, kernlog.DevKmsg))
	return s, nil
}

// bootTime is the wall time of CLOCK_MONOTONIC's zero, which printk's
// timestamps (local_clock) and the BPF events' both count from.
func bootTime() time.Time {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return time.Time{}
	}
	return time.Now().Add(-time.Duration(ts.Nano()))
}

// Close detaches the hooks and frees their maps.
func (s *Session) Close() {
	if s.set != nil {
		s.set.Close()
	}
	if s.kmsg != nil {
		s.kmsg.Close()
	}
}

// NodeName is the node's name for records: the flag, else $NODE_NAME (the
// Kubernetes downward API), else the host name. Inside a container the host
// name is the container's UTS name, which is why the first two come first.
func NodeName(flag string) string {
	if flag != "" {
		return flag
	}
	if n := os.Getenv("NODE_NAME"); n != "" {
		return n
	}
	n, _ := os.Hostname()
	return n
}

// sessionStart gathers the metadata every recording and view needs about
// this kernel, including its own gfp and migratetype tables.
func sessionStart(o Options, warn func(string)) (event.Start, uint32) {
	s := event.Start{Version: o.Version, PageSize: uint32(os.Getpagesize()), Hostname: NodeName(o.NodeName)}
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		s.KernelRelease = unix.ByteSliceToString(uts.Release[:])
	}
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		s.BootID = strings.TrimSpace(string(b))
	}
	flags, mts, err := gfp.LoadRunning()
	if err != nil {
		warn(fmt.Sprintf("gfp flags will show as numbers: %v", err))
	}
	s.GFPFlags, s.Migratetypes = flags, mts
	// x86_64's HPAGE_PMD_ORDER; /proc/pagetypeinfo gives the real value.
	order := uint32(9)
	if snap, err := snapshot.Take(""); err == nil && snap.PageblockOrder > 0 {
		order = uint32(snap.PageblockOrder)
	}
	s.PageblockOrder = uint8(order)
	return s, order
}

// AnyAttached reports whether at least one hook attached.
func AnyAttached(st []event.HookStatus) bool {
	for _, s := range st {
		if s.Attached {
			return true
		}
	}
	return false
}

// snapshotPolicy decides what each snapshot reads. /proc/pagetypeinfo costs
// 5-7 ms and walks every free list with the zone lock held and interrupts
// off (pagetypeinfo_show), so it is read at start and on failures only,
// and on failures at most once per pagetypeinfoGap: in a storm of failed
// clones (10/s) it was 55% of an agent's CPU (internal/bench/cmd/agent)
// and would slow the node's own allocations. buddyinfo and zoneinfo, which
// carry the free blocks and watermarks, are read every time.
type snapshotPolicy struct {
	mu       sync.Mutex
	lastFull time.Time
	now      func() time.Time
}

const pagetypeinfoGap = 5 * time.Second

func (p *snapshotPolicy) take(reason string) (*snapshot.Snapshot, error) {
	skip := reason == "interval"
	if reason == "failure" {
		p.mu.Lock()
		now := p.now()
		if now.Sub(p.lastFull) < pagetypeinfoGap {
			skip = true
		} else {
			p.lastFull = now
		}
		p.mu.Unlock()
	}
	return snapshot.TakeWith("", snapshot.Options{SkipPagetypeinfo: skip})
}

// reclaimableValue is MIGRATE_RECLAIMABLE on the running kernel (2 since
// 4.4, 1 before), from its own migratetype table; 0 lets the loader default.
func reclaimableValue(mts []string) uint32 {
	for i, n := range mts {
		if strings.EqualFold(n, "reclaimable") {
			return uint32(i)
		}
	}
	return 0
}

// cgroupSetup decides the attribution mode from --cgroup-mode and the
// host's mounts, and returns a resolver for that hierarchy's ids. On v1 and
// hybrid hosts (CentOS 7; the development machine) the v1 memory cgroup is
// the one the kernel charges, and most tasks sit in the v2 root.
func cgroupSetup(flag string) (v1 bool, res *cgroup.Resolver, err error) {
	override, err := cgroup.ParseMode(flag)
	if err != nil {
		return false, nil, fmt.Errorf("--cgroup-mode: %w", err)
	}
	detected, mounts, err := cgroup.Detect()
	if err != nil {
		return false, nil, fmt.Errorf("detect cgroup mode: %w", err)
	}
	mode, err := cgroup.Select(override, detected, mounts)
	if err != nil {
		return false, nil, fmt.Errorf("--cgroup-mode %s: %w", flag, err)
	}
	mount, hierarchy, root, err := mounts.Hierarchy(mode)
	if err != nil {
		return false, nil, err
	}
	return mode.MemoryV1(), cgroup.NewResolver(mount, hierarchy, cgroup.WithMountRoot(root)), nil
}

// podLookup asks the CRI (over gRPC, when a runtime socket exists) for pod names; it
// stays silent when no runtime socket is reachable.
func podLookup(ctx context.Context, endpoint string) func(uid string) (string, string, bool) {
	cri := container.NewCRI(endpoint)
	return func(uid string) (string, string, bool) {
		pod, ok := cri.Pod(ctx, uid)
		return pod.Name, pod.Namespace, ok
	}
}

// memcgReader finds this host's memory controller; nil (no readings) when
// the kernel has none.
func memcgReader() *memcg.Reader {
	r, err := memcg.NewReader()
	if err != nil {
		return nil
	}
	return r
}
