package view

import (
	"fmt"
	"strings"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/incident"
)

// keptIncidents bounds the incidents a terminal screen repeats.
const keptIncidents = 3

// Incident prints the report at once in a log; on a tty the newest reports
// are kept and drawn at the top of every screen, where a redraw cannot wipe
// them.
func (t *Terminal) Incident(inc *incident.Incident, agg *aggregate.Aggregator) error {
	t.incidents++
	t.recent = append(t.recent, inc)
	if len(t.recent) > keptIncidents {
		t.recent = t.recent[1:]
	}
	if t.tty {
		return nil
	}
	t.buf.Reset()
	t.buf.WriteString(strings.Repeat("!", width) + "\n")
	if err := incident.WriteText(&t.buf, inc); err != nil {
		return err
	}
	_, err := t.w.Write(t.buf.Bytes())
	return err
}

func (t *Terminal) writeIncidents(full bool) {
	if t.incidents == 0 {
		return
	}
	fmt.Fprintf(&t.buf, "INCIDENTS: %d (newest first)\n", t.incidents)
	for i := len(t.recent) - 1; i >= 0; i-- {
		inc := t.recent[i]
		if full && i == len(t.recent)-1 {
			incident.WriteText(&t.buf, inc)
			continue
		}
		fmt.Fprintf(&t.buf, "  %s %s by %s[%d]: %s\n", clock(inc.Time), inc.Syscall.Name, inc.Task.Comm, inc.Task.PID, inc.Verdict.Cause)
	}
	t.buf.WriteString("\n")
}

// jsonIncident is the "incident" object: the incident's own stable fields
// under "incident" (documented in docs/json.md).
type jsonIncident struct {
	jsonHeader
	Incident *incident.Incident `json:"incident"`
}

// Incident writes the incident object and flushes: an incident is what a
// reader of the stream waits for.
func (j *JSON) Incident(inc *incident.Incident, agg *aggregate.Aggregator) error {
	obj := jsonIncident{jsonHeader: jsonHeader{Type: "incident", Time: formatTime(inc.Time)}, Incident: inc}
	if err := j.enc.Encode(obj); err != nil {
		return err
	}
	return j.bw.Flush()
}
