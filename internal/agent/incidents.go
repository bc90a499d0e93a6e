package agent

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/flight"
	"github.com/fragscope/fragscope/internal/incident"
	"github.com/fragscope/fragscope/internal/view"
)

// traceExt names a pinned recording: the trace file extension.
const traceExt = ".fst"

// keeper writes each incident's JSON at once and pins the recording of the
// window around it once the window has passed, into dataDir/incidents/, which
// the segments' retention never touches.
type keeper struct {
	dir           string // data dir
	before, after time.Duration
	maxCount      int
	maxBytes      int64
	log           *slog.Logger
	pin           func(out string, from, to time.Time) error // the flight recorder's Pin: flushes, then copies the window
	now           func() time.Time

	mu      sync.Mutex
	pending []pin
	wg      sync.WaitGroup
	stop    chan struct{}
}

type pin struct {
	name     string
	from, to time.Time
	due      time.Time // wall time after which the window is on disk
}

func (k *keeper) incidentsDir() string { return filepath.Join(k.dir, "incidents") }

// add is called on the pipeline's goroutine when an incident closes.
func (k *keeper) add(inc *incident.Incident, agg *aggregate.Aggregator) {
	name := incidentName(inc)
	jsonPath := filepath.Join(k.incidentsDir(), name+".json")
	tracePath := filepath.Join(k.incidentsDir(), name+traceExt)
	err := os.MkdirAll(k.incidentsDir(), 0o700)
	if err == nil {
		err = writeIncidentJSON(jsonPath, inc, agg)
	}
	attrs := []any{"verdict", string(inc.Verdict.Cause), "syscall", inc.Syscall.Name,
		"errno", inc.Syscall.ErrnoName, "comm", inc.Task.Comm, "pid", inc.Task.PID,
		"cgroup", inc.Task.CgroupPath, "chain", inc.Chain, "json", jsonPath, "recording", tracePath}
	if err != nil {
		k.log.Error("incident: could not write its JSON", append(attrs, "err", err.Error())...)
	} else {
		k.log.Warn("incident", attrs...)
	}
	k.mu.Lock()
	k.pending = append(k.pending, pin{name: name, from: inc.Time.Add(-k.before), to: inc.Time.Add(k.after),
		due: k.now().Add(k.after)})
	k.mu.Unlock()
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
	k.mu.Lock()
	var due, keep []pin
	now := k.now()
	for _, p := range k.pending {
		if all || !now.Before(p.due) {
			due = append(due, p)
		} else {
			keep = append(keep, p)
		}
	}
	k.pending = keep
	k.mu.Unlock()
	if len(due) == 0 {
		return
	}
	for _, p := range due {
		out := filepath.Join(k.incidentsDir(), p.name+traceExt)
		if err := k.pin(out, p.from, p.to); err != nil {
			k.log.Error("incident recording not pinned", "file", out, "err", err.Error())
		}
	}
	if err := flight.PruneIncidents(k.dir, k.maxCount, k.maxBytes); err != nil {
		k.log.Error("pruning kept incidents", "err", err.Error())
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

// incidentName sorts by time and says what it was: 20261202T001500.123Z-namespace_limit-unshare-4242.
func incidentName(inc *incident.Incident) string {
	sys := inc.Syscall.Name
	if sys == "" {
		sys = inc.ClosedBy
	}
	return fmt.Sprintf("%s-%s-%s-%d", inc.Time.UTC().Format("20060102T150405.000Z"), inc.Verdict.Cause, sys, inc.Task.TID)
}

// writeIncidentJSON writes the object `fragscope incidents --json` prints,
// through a temporary file so a crash leaves no half file.
func writeIncidentJSON(path string, inc *incident.Incident, agg *aggregate.Aggregator) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = view.NewJSON(f).Incident(inc, agg) // flushes
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
