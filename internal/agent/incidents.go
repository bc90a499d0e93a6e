package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/flight"
	"github.com/fragscope/fragscope/internal/incident"
	"github.com/fragscope/fragscope/internal/view"
)

// traceExt names a pinned recording: the trace file extension.
const traceExt = ".fst"

// maxUnwritten bounds the incident lines a group holds while its JSON
// cannot be written (a full disk during a storm): beyond it they are
// counted and dropped, and the log says how many.
const maxUnwritten = 1024

// retryEvery is how often a pin or a JSON write that failed (a full disk)
// is tried again; giveUpAfter is when the keeper stops trying.
const (
	retryEvery  = 5 * time.Second
	giveUpAfter = time.Hour
)

// keeper keeps incidents in dataDir/incidents/, which the segments'
// retention never touches. Incidents whose windows overlap share one group:
// <name>.json holds their objects, one per line, exactly as `fragscope
// incidents --json` prints them, and <name>.fst the recording of the joined
// window, pinned once the window has passed. A runc retry loop failing every
// few seconds then makes one recording, not one copy of the same ten minutes
// per failure.
type keeper struct {
	dir           string // data dir
	before, after time.Duration
	maxCount      int
	maxBytes      int64
	log           *slog.Logger
	// pin is the flight recorder's Pin: flush, then copy the window.
	pin func(out string, from, to time.Time) error
	// diskPaused says the flight recorder is paused on a write error: it
	// has said so once, and the keeper's own failures are the same cause.
	diskPaused func() bool
	now        func() time.Time

	pinFailures atomic.Uint64 // failed pin attempts, for /metrics

	mu      sync.Mutex
	open    *group   // the group new incidents join while their windows overlap
	pending []*group // waiting for their window to pass, or for room on disk
	wg      sync.WaitGroup
	stop    chan struct{}
}

type group struct {
	name     string
	from, to time.Time // event time
	due      time.Time // wall time after which the window is on disk
	// unwritten holds the incidents' JSON objects not yet on disk; size
	// is the bytes of the JSON file that hold whole lines. Only unwritten
	// lines are kept: a storm's group can gather thousands.
	unwritten [][]byte
	size      int64
	lost      int       // incidents whose JSON was dropped: unwritten was full
	failedAt  time.Time // first failure, zero while none
	reported  bool      // a failure was logged
}

func (k *keeper) incidentsDir() string { return filepath.Join(k.dir, "incidents") }

// maxSpan bounds one group's window, so a storm that never stops still
// yields recordings.
func (k *keeper) maxSpan() time.Duration { return 2*k.before + k.after }

// add is called on the pipeline's goroutine when an incident closes: the
// JSON reaches the disk at once, the recording later.
func (k *keeper) add(inc *incident.Incident, agg *aggregate.Aggregator) {
	var buf bytes.Buffer
	jerr := view.NewJSON(&buf).Incident(inc, agg)

	k.mu.Lock()
	g := k.open
	from, to := inc.Time.Add(-k.before), inc.Time.Add(k.after)
	if g == nil || from.After(g.to) || to.Sub(g.from) > k.maxSpan() {
		g = &group{name: incidentName(inc), from: from}
		k.open = g
		k.pending = append(k.pending, g)
	}
	// Incidents close out of time order (a long syscall, a late kernel
	// report): the window only ever grows.
	if to.After(g.to) {
		g.to = to
	}
	if from.Before(g.from) {
		g.from = from
	}
	g.due = k.now().Add(k.after)
	if jerr == nil {
		if len(g.unwritten) < maxUnwritten {
			g.unwritten = append(g.unwritten, buf.Bytes())
		} else {
			g.lost++ // a disk that has been failing for thousands of incidents
		}
	}
	err := k.writeJSON(g)
	if err != nil {
		k.failed(g, "incident JSON not written (will retry)", err)
	}
	name := g.name
	k.mu.Unlock()

	attrs := []any{"verdict", string(inc.Verdict.Cause), "syscall", inc.Syscall.Name,
		"errno", inc.Syscall.ErrnoName, "comm", inc.Task.Comm, "pid", inc.Task.PID,
		"cgroup", inc.Task.CgroupPath, "chain", inc.Chain,
		"json", filepath.Join(k.incidentsDir(), name+".json"),
		"recording", filepath.Join(k.incidentsDir(), name+traceExt)}
	if c := inc.Task.Container; c != nil {
		attrs = append(attrs, slog.Group("container", "runtime", c.Runtime, "id", c.ID, "name", c.Name,
			"pod", c.PodName, "namespace", c.PodNamespace, "pod_uid", c.PodUID, "attribution", c.Attribution))
	}
	if jerr != nil {
		attrs = append(attrs, "err", jerr.Error())
	}
	k.log.Warn("incident", attrs...)
}

// writeJSON appends g's unwritten lines to its JSON file in one write. An
// append that fails is cut back to the last whole line, so a reader never
// sees half an object, and is tried again with the next incident or pin;
// a kill in the middle of the write leaves a torn last line, which recover
// cuts off. Called with mu held.
func (k *keeper) writeJSON(g *group) error {
	if len(g.unwritten) == 0 {
		return nil
	}
	if err := os.MkdirAll(k.incidentsDir(), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(k.incidentsDir(), g.name+".json"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	data := bytes.Join(g.unwritten, nil)
	_, err = f.Write(data)
	if err != nil {
		f.Truncate(g.size)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	g.size += int64(len(data))
	g.unwritten = g.unwritten[:0]
	return nil
}

// failed logs a keeper failure once per group; called with mu held. A full disk is not logged:
// the flight recorder writes to the same file system every second and
// reports it once, with the fix.
func (k *keeper) failed(g *group, msg string, err error) {
	if g.failedAt.IsZero() {
		g.failedAt = k.now()
	}
	if g.reported || errors.Is(err, syscall.ENOSPC) || (k.diskPaused != nil && k.diskPaused()) {
		return
	}
	g.reported = true
	k.log.Error(msg, "incident", g.name, "err", err.Error())
}

// run pins due windows until stop; on stop it pins what is pending with
// what is on disk so far.
func (k *keeper) run() {
	defer k.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-k.stop:
			k.pinDue(true)
			return
		case <-t.C:
			k.pinDue(false)
		}
	}
}

func (k *keeper) pinDue(all bool) {
	now := k.now()
	k.mu.Lock()
	var due []*group
	keep := k.pending[:0]
	for _, g := range k.pending {
		retryWait := !g.failedAt.IsZero() && now.Sub(g.due) < retryEvery
		if all || (!now.Before(g.due) && !retryWait) {
			due = append(due, g)
		} else {
			keep = append(keep, g)
		}
		if g == k.open && (all || !now.Before(g.due)) {
			k.open = nil // its window has passed: the next incident starts a group
		}
	}
	k.pending = keep
	k.mu.Unlock()
	if len(due) == 0 {
		return
	}
	pinned := 0
	for _, g := range due {
		k.mu.Lock()
		err := k.writeJSON(g)
		k.mu.Unlock()
		if err == nil {
			err = k.pin(filepath.Join(k.incidentsDir(), g.name+traceExt), g.from, g.to)
		}
		if err == nil {
			pinned++
			if g.reported {
				k.log.Info("incident recording pinned after a retry", "incident", g.name)
			}
			if g.lost > 0 {
				k.log.Error("incident JSON lines dropped while the disk refused them", "incident", g.name, "dropped", g.lost)
			}
			continue
		}
		k.pinFailures.Add(1)
		k.mu.Lock()
		k.failed(g, "incident recording not pinned (will retry)", err)
		k.mu.Unlock()
		if all {
			k.log.Error("incident recording not pinned before exit: the next start pins it from the segments",
				"incident", g.name, "err", err.Error())
			continue
		}
		if now.Sub(g.failedAt) > giveUpAfter {
			k.log.Error("incident recording given up: its events stay in the segments until retention removes them",
				"incident", g.name, "err", err.Error())
			continue
		}
		g.due = now // retried retryEvery after now
		k.mu.Lock()
		k.pending = append(k.pending, g)
		k.mu.Unlock()
	}
	if pinned > 0 {
		k.mu.Lock()
		keep := make([]string, 0, len(due)+len(k.pending))
		for _, g := range append(due, k.pending...) {
			keep = append(keep, g.name)
		}
		k.mu.Unlock()
		if err := flight.PruneIncidents(k.dir, k.maxCount, k.maxBytes, keep...); err != nil {
			k.log.Error("pruning kept incidents", "err", err.Error())
		}
	}
}

func (k *keeper) start() {
	k.stop = make(chan struct{})
	k.wg.Add(1)
	go k.run()
}

// close pins everything still pending and waits for it.
func (k *keeper) close() {
	close(k.stop)
	k.wg.Wait()
}

// recover finds groups whose JSON reached the disk but whose recording did
// not (the agent was killed in between) and pins them from the segments,
// which still hold the window.
func (k *keeper) recover() {
	// Temporary files of a JSON write or a pin the kill interrupted: their
	// final files were never renamed into place, so nothing refers to them.
	for _, pat := range []string{"*.tmp", ".*.tmp"} {
		tmps, _ := filepath.Glob(filepath.Join(k.incidentsDir(), pat))
		for _, t := range tmps {
			os.Remove(t)
		}
	}
	jsons, _ := filepath.Glob(filepath.Join(k.incidentsDir(), "*.json"))
	for _, j := range jsons {
		cutTornLine(j)
		name := strings.TrimSuffix(filepath.Base(j), ".json")
		if _, err := os.Stat(filepath.Join(k.incidentsDir(), name+traceExt)); err == nil {
			continue
		}
		from, to, err := incidentTimes(j)
		if err != nil {
			k.log.Error("kept incident unreadable: left as it is", "file", j, "err", err.Error())
			continue
		}
		k.mu.Lock()
		k.pending = append(k.pending, &group{name: name, from: from.Add(-k.before), to: to.Add(k.after), due: k.now()})
		k.mu.Unlock()
		k.log.Info("pinning the recording of an incident kept before a restart", "incident", name)
	}
}

// cutTornLine drops a last line without its newline: the object a kill
// interrupted.
func cutTornLine(path string) {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 || b[len(b)-1] == '\n' {
		return
	}
	os.Truncate(path, int64(bytes.LastIndexByte(b, '\n')+1))
}

// incidentTimes reads the first and last incident times of a group's JSON.
func incidentTimes(path string) (first, last time.Time, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return first, last, err
	}
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var obj struct {
			Time time.Time `json:"time"`
		}
		if err := json.Unmarshal(line, &obj); err != nil {
			continue // a torn last line after a power loss
		}
		if first.IsZero() || obj.Time.Before(first) {
			first = obj.Time
		}
		if obj.Time.After(last) {
			last = obj.Time
		}
	}
	if first.IsZero() {
		return first, last, errors.New("no incident object in it")
	}
	return first, last, nil
}

// incidentName sorts by time and says what it was:
// 20261202T001500.123Z-namespace_limit-unshare-4242.
func incidentName(inc *incident.Incident) string {
	sys := inc.Syscall.Name
	if sys == "" {
		sys = inc.ClosedBy
	}
	return fmt.Sprintf("%s-%s-%s-%d", inc.Time.UTC().Format("20060102T150405.000Z"), inc.Verdict.Cause, sys, inc.Task.TID)
}
